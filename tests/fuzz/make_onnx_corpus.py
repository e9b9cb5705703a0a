#!/usr/bin/python3
"""Writes the seed corpus tests/fuzz/onnx.in/ for the fuzz_onnx target.

Usage: tests/fuzz/make_onnx_corpus.py [OUTDIR]   (default: onnx.in next to
this script). Needs python3-onnx (onnx.helper) and numpy.

The output is deterministic: every weight is arithmetic (no random
generator), ir_version and opsets are always given explicitly, and
malformed files are assembled byte by byte with the protobuf wire format
helpers below. Existing files in OUTDIR with the same names are
overwritten; other files (e.g. inputs found by libFuzzer) are kept.

File names say what each file is:
  good_*      loads and runs (a dry run succeeds);
  bad_run_*   loads, but running it fails (shape errors found by kernels);
  bad_*       refused by the loader (malformed or not runnable);
  unsup_*     valid ONNX that lowrank refuses with LR_EUNSUPPORTED.
tests/unit/test_onnx.c runs this script into a temporary directory and
checks the exact error code and message for each file.
"""
import os
import sys

import numpy as np
from onnx import TensorProto, helper, numpy_helper

H = helper
F = TensorProto.FLOAT
I64 = TensorProto.INT64


# ---- protobuf wire format ----------------------------------------------

def varint(v):
    """Unsigned base-128 varint (negative values as 64-bit two's complement)."""
    if v < 0:
        v += 1 << 64
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def key(field, wire):
    return varint(field << 3 | wire)


def ld(field, payload):
    """A length-delimited field (wire type 2)."""
    if isinstance(payload, str):
        payload = payload.encode()
    return key(field, 2) + varint(len(payload)) + payload


def vint(field, v):
    """A varint field (wire type 0)."""
    return key(field, 0) + varint(v)


# ---- model helpers -----------------------------------------------------

def vi(name, dims, et=F):
    return H.make_tensor_value_info(name, et, dims)


def arr(shape, scale=0.1, dtype=np.float32):
    """Deterministic weights: a sawtooth of small values."""
    n = int(np.prod(shape)) if len(shape) else 1
    a = ((np.arange(n) % 7) - 3) * scale
    return a.astype(dtype).reshape(shape)


def init(name, a):
    return numpy_helper.from_array(np.asarray(a), name)


def i64(name, vals, dims=None):
    vals = list(vals)
    return H.make_tensor(name, I64, [len(vals)] if dims is None else dims, vals)


def tensor(name, data_type, dims, **fields):
    """A TensorProto built field by field (no consistency checks)."""
    t = TensorProto()
    t.name = name
    t.data_type = data_type
    t.dims.extend(dims)
    for k, v in fields.items():
        if k == "raw_data":
            t.raw_data = v
        elif k == "data_location":
            t.data_location = v
        elif k == "external_data":
            for ek, ev in v:
                e = t.external_data.add()
                e.key = ek
                e.value = ev
        else:
            getattr(t, k).extend(v)
    return t


def model(nodes, inputs, outputs, inits=(), opset=13, ir=8, opsets=None,
          value_info=(), **kw):
    g = H.make_graph(nodes, "g", inputs, outputs, initializer=list(inits),
                     value_info=list(value_info))
    if opsets is None:
        opsets = [H.make_opsetid("", opset)]
    return H.make_model(g, opset_imports=opsets, ir_version=ir, **kw)


def relu_model(**kw):
    return model([H.make_node("Relu", ["x"], ["y"], name="relu")],
                 [vi("x", [1, 4])], [vi("y", [1, 4])], **kw)


# ---- valid models --------------------------------------------------------

def good_models():
    out = {}
    N = H.make_node

    out["good_conv_relu"] = model(
        [N("Conv", ["x", "w", "b"], ["c"], name="conv", pads=[1, 1, 1, 1]),
         N("Relu", ["c"], ["y"], name="relu")],
        [vi("x", [1, 3, 8, 8])], [vi("y", [1, 4, 8, 8])],
        [init("w", arr([4, 3, 3, 3])), init("b", arr([4]))])

    out["good_gemm"] = model(
        [N("Gemm", ["x", "w", "b"], ["y"], name="fc", transB=1, alpha=1.0,
           beta=1.0)],
        [vi("x", [2, 4])], [vi("y", [2, 3])],
        [init("w", arr([3, 4])), init("b", arr([3]))])

    # Shape arithmetic: y = Reshape(x, [dim0(x), -1]).
    out["good_shape_chain"] = model(
        [N("Shape", ["x"], ["s"], name="shape"),
         N("Gather", ["s", "i0"], ["d0"], name="gather", axis=0),
         N("Unsqueeze", ["d0", "ax"], ["d0v"], name="unsqueeze"),
         N("Concat", ["d0v", "m1"], ["shp"], name="concat", axis=0),
         N("Reshape", ["x", "shp"], ["y"], name="reshape")],
        [vi("x", ["N", 3, 4, 4])], [vi("y", ["N", 48])],
        [H.make_tensor("i0", I64, [], [0]), i64("ax", [0]),
         i64("m1", [-1])])

    out["good_constants"] = model(
        [N("Constant", [], ["k"], name="k",
           value=numpy_helper.from_array(arr([1, 4], 0.5), "kv")),
         N("Constant", [], ["shp"], name="shp",
           value=H.make_tensor("sv", I64, [2], [4, 1])),
         N("Add", ["x", "k"], ["a"], name="add"),
         N("Reshape", ["a", "shp"], ["y"], name="reshape")],
        [vi("x", [1, 4])], [vi("y", [4, 1])])

    # IR 3 style: weights are also listed as graph inputs.
    out["good_initializer_input"] = model(
        [N("Gemm", ["x", "w", "b"], ["y"], name="fc", transB=1)],
        [vi("x", [1, 4]), vi("w", [3, 4]), vi("b", [3])], [vi("y", [1, 3])],
        [init("w", arr([3, 4])), init("b", arr([3]))], opset=9, ir=3)

    # Nodes listed consumers first; the loader sorts them.
    out["good_out_of_order"] = model(
        [N("Relu", ["b"], ["y"], name="n3"),
         N("Add", ["a", "a"], ["b"], name="n2"),
         N("Identity", ["x"], ["a"], name="n1")],
        [vi("x", [2, 2])], [vi("y", [2, 2])])

    out["good_unnamed_nodes"] = model(
        [N("Identity", ["x"], ["a"]), N("Relu", ["a"], ["b"]),
         N("Identity", ["b"], ["c"]), N("Relu", ["c"], ["y"])],
        [vi("x", [2, 2])], [vi("y", [2, 2])])

    out["good_no_nodes"] = model([], [vi("x", [1, 2])], [vi("x", [1, 2])])

    # Every TensorProto storage the loader converts (values checked by
    # tests/unit/test_onnx.c).
    h = np.array([1.0, -2.5, 65504.0], dtype="<f2")
    inits = [
        init("f_raw", np.array([1.5, -2.0, 3.25], dtype="<f4")),
        tensor("f_data", F, [3], float_data=[0.5, 1.0, -7.0]),
        tensor("d_data", TensorProto.DOUBLE, [3],
               double_data=[0.1, 2.5, -1e10]),
        tensor("d_raw", TensorProto.DOUBLE, [2],
               raw_data=np.array([0.25, -3.0], dtype="<f8").tobytes()),
        tensor("h_data", TensorProto.FLOAT16, [3],
               int32_data=[int(v) for v in h.view("<u2")]),
        tensor("h_raw", TensorProto.FLOAT16, [3], raw_data=h.tobytes()),
        tensor("bf_data", TensorProto.BFLOAT16, [2],
               int32_data=[0x3F80, 0xC020]),
        tensor("i64_data", I64, [3], int64_data=[-1, 2**40, 7]),
        tensor("i64_raw", I64, [2],
               raw_data=np.array([-(2**62), 5], dtype="<i8").tobytes()),
        tensor("i32_data", TensorProto.INT32, [3],
               int32_data=[-5, 0, 2147483647]),
        tensor("i32_raw", TensorProto.INT32, [2],
               raw_data=np.array([-7, 9], dtype="<i4").tobytes()),
        tensor("u8_raw", TensorProto.UINT8, [3], raw_data=bytes([0, 200, 255])),
        tensor("i8_data", TensorProto.INT8, [3], int32_data=[-128, 0, 127]),
        tensor("b_data", TensorProto.BOOL, [3], int32_data=[0, 1, 5]),
        tensor("u64_data", TensorProto.UINT64, [2], uint64_data=[3, 2**40]),
        tensor("u32_data", TensorProto.UINT32, [2], uint64_data=[1, 4000000000]),
        tensor("scalar", F, [], float_data=[42.0]),
        tensor("empty", F, [0, 3]),
    ]
    out["good_typed_data"] = model(
        [N("Identity", ["x"], ["y"], name="id")],
        [vi("x", [3])], [vi("y", [3])], inits)

    out["good_cnn_classifier"] = model(
        [N("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1],
           strides=[2, 2]),
         N("Relu", ["c1"], ["r1"], name="relu1"),
         N("MaxPool", ["r1"], ["p1"], name="pool1", kernel_shape=[2, 2],
           strides=[2, 2]),
         N("Conv", ["p1", "w2"], ["c2"], name="conv2", group=2,
           kernel_shape=[1, 1]),
         N("GlobalAveragePool", ["c2"], ["g"], name="gap"),
         N("Flatten", ["g"], ["f"], name="flatten", axis=1),
         N("Gemm", ["f", "w3", "b3"], ["z"], name="fc", transB=1),
         N("Softmax", ["z"], ["y"], name="softmax", axis=1)],
        [vi("x", ["N", 3, 16, 16])], [vi("y", ["N", 5])],
        [init("w1", arr([8, 3, 3, 3])), init("b1", arr([8])),
         init("w2", arr([8, 4, 1, 1])), init("w3", arr([5, 8])),
         init("b3", arr([5]))])

    out["good_elementwise"] = model(
        [N("Add", ["x", "bias"], ["a"], name="add"),
         N("Mul", ["a", "scale"], ["b"], name="mul"),
         N("Sub", ["b", "x"], ["c"], name="sub"),
         N("Div", ["c", "scale"], ["d"], name="div"),
         N("Sigmoid", ["d"], ["e"], name="sigmoid"),
         N("Tanh", ["e"], ["f"], name="tanh"),
         N("LeakyRelu", ["f"], ["g"], name="leaky", alpha=0.1),
         N("Elu", ["g"], ["h"], name="elu"),
         N("HardSigmoid", ["h"], ["i"], name="hsig"),
         N("HardSwish", ["i"], ["j"], name="hswish"),
         N("PRelu", ["j", "slope"], ["k"], name="prelu"),
         N("Clip", ["k", "lo", "hi"], ["y"], name="clip")],
        [vi("x", [2, 3, 4])], [vi("y", [2, 3, 4])],
        [init("bias", arr([4])), init("scale", arr([3, 1], 1.0) + 10),
         init("slope", arr([3, 1])), init("lo", np.array(-1, np.float32)),
         init("hi", np.array(1, np.float32))], opset=14)

    out["good_shape_ops"] = model(
        [N("Transpose", ["x"], ["t"], name="transpose", perm=[0, 2, 3, 1]),
         N("Slice", ["t", "st", "en", "axs"], ["s"], name="slice"),
         N("Pad", ["s", "pads"], ["p"], name="pad", mode="constant"),
         N("Split", ["p", "parts"], ["p0", "p1"], name="split", axis=3),
         N("Concat", ["p1", "p0"], ["cc"], name="concat", axis=3),
         N("Unsqueeze", ["cc", "ax0"], ["u"], name="unsqueeze"),
         N("Squeeze", ["u", "ax0"], ["q"], name="squeeze"),
         N("Cast", ["q"], ["cf"], name="cast", to=F),
         N("Dropout", ["cf"], ["dr"], name="dropout"),
         N("AveragePool", ["dr"], ["ap"], name="avgpool",
           kernel_shape=[2, 2]),
         N("GlobalMaxPool", ["ap"], ["gm"], name="gmp"),
         N("Flatten", ["gm"], ["y"], name="flatten")],
        [vi("x", [1, 4, 6, 6])], [vi("y", [1, 4])],
        [i64("st", [1, 0]), i64("en", [5, 4]), i64("axs", [1, 3]),
         i64("pads", [0, 0, 1, 1, 0, 0, 1, 1]), i64("parts", [2, 4]),
         i64("ax0", [0])])

    # Opset 7: attributes that later became inputs.
    out["good_opset7_legacy"] = model(
        [N("Pad", ["x"], ["p"], name="pad", pads=[0, 0, 1, 1, 0, 0, 1, 1]),
         N("Squeeze", ["p"], ["s"], name="squeeze", axes=[0]),
         N("Unsqueeze", ["s"], ["u"], name="unsqueeze", axes=[0]),
         N("Upsample", ["u"], ["up"], name="upsample",
           scales=[1.0, 1.0, 2.0, 2.0]),
         N("Reshape", ["up", "shp"], ["y"], name="reshape")],
        [vi("x", [1, 2, 2, 2])], [vi("y", [1, -1])],
        [i64("shp", [1, -1])], opset=7, ir=3)

    # Opset 3: Add's legacy broadcast (axis), Reshape's shape attribute,
    # Pad-2, BatchNormalization with is_test, Concat without axis.
    out["good_opset3_legacy"] = model(
        [N("Add", ["x", "bias"], ["a"], name="add", broadcast=1, axis=1),
         N("BatchNormalization", ["a", "g", "b", "mu", "var"], ["n"],
           name="bn", is_test=1, consumed_inputs=[0, 0, 0, 1, 1]),
         N("Pad", ["n"], ["p"], name="pad", pads=[0, 0, 1, 1, 0, 0, 1, 1]),
         N("Concat", ["p", "p"], ["c"], name="concat"),
         N("Reshape", ["c"], ["y"], name="reshape", shape=[1, -1])],
        [vi("x", [1, 2, 2, 2])], [vi("y", [1, -1])],
        [init("bias", arr([2])), init("g", arr([2])), init("b", arr([2])),
         init("mu", arr([2])), init("var", arr([2]) + 2.0)], opset=3, ir=3)

    out["good_conv_bn_relu"] = model(
        [N("Conv", ["x", "w"], ["c"], name="conv", kernel_shape=[3, 3]),
         N("BatchNormalization", ["c", "g", "b", "mu", "var"], ["n"],
           name="bn", epsilon=1e-5),
         N("Relu", ["n"], ["r"], name="relu"),
         N("ReduceMean", ["r"], ["y"], name="mean", axes=[2, 3],
           keepdims=0)],
        [vi("x", [1, 2, 5, 5])], [vi("y", [1, 3])],
        [init("w", arr([3, 2, 3, 3])), init("g", arr([3]) + 1),
         init("b", arr([3])), init("mu", arr([3])),
         init("var", arr([3]) + 1)])

    out["good_matmul_softmax"] = model(
        [N("MatMul", ["x", "w"], ["m"], name="matmul"),
         N("LogSoftmax", ["m"], ["y"], name="logsoftmax", axis=-1)],
        [vi("x", [2, 3, 4])], [vi("y", [2, 3, 5])], [init("w", arr([4, 5]))])

    # Other domains, metadata and doc strings (kept by lr_model_save).
    m = model([N("Relu", ["x"], ["y"], name="relu", doc_string="node doc")],
              [vi("x", [1, 4])], [vi("y", [1, 4])],
              opsets=[H.make_opsetid("", 13),
                      H.make_opsetid("com.microsoft", 1),
                      H.make_opsetid("ai.onnx.ml", 3)],
              producer_name="make_onnx_corpus", producer_version="1",
              doc_string="model doc", model_version=7)
    m.graph.doc_string = "graph doc"
    H.set_model_props(m, {"author": "lowrank", "license": "MIT"})
    out["good_metadata_domains"] = m
    return out


def good_ir10_unknown_fields():
    """IR 10/11 fields our IR 8 onnx.proto does not know, as raw bytes:
    NodeProto.overload (8) and NodeProto.metadata_props (9), and
    ModelProto.configuration (27, DeviceConfigurationProto) plus field
    1000. The loader must accept the model, and protobuf-c must keep the
    bytes as unknown fields so that saving preserves them."""
    node = H.make_node("Relu", ["x"], ["y"], name="relu")
    raw = node.SerializeToString() + ld(8, "ovl") + ld(
        9, ld(1, "node-meta-key") + ld(2, "node-meta-value"))
    node2 = type(node)()
    node2.ParseFromString(raw)
    m = model([node2], [vi("x", [1, 4])], [vi("y", [1, 4])], ir=10,
              opset=21)
    return (m.SerializeToString()
            + ld(27, ld(1, "lowrank-device-config") + vint(2, 2))
            + vint(1000, 123456789))


# ---- malformed models ----------------------------------------------------

def bad_models():
    out = {}
    N = H.make_node
    x, y = [vi("x", [1, 4])], [vi("y", [1, 4])]

    def tensor_model(t, dims=(3,)):
        return model([N("Identity", ["x"], ["y"], name="id")],
                     [vi("x", list(dims))], [vi("y", list(dims))], [t])

    out["bad_negative_dim"] = tensor_model(
        tensor("w", F, [-1, 3], float_data=[1, 2, 3]))
    out["bad_dims_overflow"] = tensor_model(
        tensor("w", F, [2**40, 2**40], float_data=[1]))
    out["bad_raw_data_size"] = tensor_model(
        tensor("w", F, [2, 3], raw_data=bytes(20)))
    out["bad_typed_data_count"] = tensor_model(
        tensor("w", F, [2, 3], float_data=[1, 2, 3, 4, 5]))
    out["bad_unknown_data_type"] = tensor_model(
        tensor("w", 99, [2], int32_data=[1, 2]))
    out["bad_string_initializer"] = tensor_model(
        tensor("w", TensorProto.STRING, [2], string_data=[b"a", b"b"]))
    out["bad_rank9_initializer"] = tensor_model(
        tensor("w", F, [1] * 9, float_data=[1]))
    t = tensor("w", F, [2], float_data=[1, 2])
    t.segment.begin = 0
    t.segment.end = 2
    out["bad_segmented_initializer"] = tensor_model(t)
    out["bad_initializer_no_name"] = tensor_model(
        tensor("", F, [1], float_data=[1]))
    out["bad_duplicate_initializer"] = model(
        [N("Add", ["x", "w"], ["y"], name="add")], x, y,
        [init("w", arr([1, 4])), init("w", arr([1, 4]))])
    out["bad_duplicate_node_output"] = model(
        [N("Relu", ["x"], ["y"], name="first"),
         N("Sigmoid", ["x"], ["y"], name="second")], x, y)
    out["bad_output_is_initializer"] = model(
        [N("Relu", ["x"], ["w"], name="relu")], x, [vi("w", [1, 4])],
        [init("w", arr([1, 4]))])
    out["bad_graph_input_twice"] = model(
        [N("Relu", ["x"], ["y"], name="relu")], x + x, y)
    out["bad_dangling_input"] = model(
        [N("Add", ["x", "nowhere"], ["y"], name="add")], x, y)
    out["bad_dangling_output"] = model(
        [N("Relu", ["x"], ["y"], name="relu")], x, [vi("ghost", [1, 4])])
    out["bad_cycle"] = model(
        [N("Relu", ["x"], ["a"], name="entry"),
         N("Add", ["a", "c"], ["b"], name="loop_add"),
         N("Relu", ["b"], ["c"], name="loop_relu")], x, [vi("c", [1, 4])])
    out["bad_node_no_op_type"] = model([N("", ["x"], ["y"], name="blank")],
                                       x, y)
    out["bad_omitted_required_input"] = model(
        [N("Slice", ["", "st", "en"], ["y"], name="slice")], x, y,
        [i64("st", [0]), i64("en", [1])])
    out["bad_too_many_inputs"] = model(
        [N("Relu", ["x", "x"], ["y"], name="relu2")], x, y)
    out["bad_no_default_opset"] = relu_model(
        opsets=[H.make_opsetid("com.microsoft", 1)])
    m = relu_model()
    del m.opset_import[:]
    out["bad_no_opset_import"] = m
    out["bad_opset0"] = relu_model(opset=0)
    out["bad_opset99"] = relu_model(opset=99)
    out["bad_ir_version2"] = relu_model(ir=2)
    m = relu_model()
    m.ClearField("graph")
    out["bad_no_graph"] = m

    def ext_model(location):
        return tensor_model(tensor(
            "w", F, [3], data_location=TensorProto.EXTERNAL,
            external_data=[("location", location), ("offset", "0"),
                           ("length", "12")]))
    out["bad_extdata_absolute"] = ext_model("/etc/passwd")
    out["bad_extdata_dotdot"] = ext_model("../outside.bin")
    out["bad_extdata_missing"] = ext_model("missing_weights.bin")

    # Operators lowrank leaves out on purpose: random sampling has no place
    # in a deterministic engine; of the string operators only Cast from
    # strings and StringNormalizer run (TopK, LSTM, TfIdfVectorizer and
    # StringNormalizer, used here before, now run).
    out["unsup_ops"] = model(
        [N("RandomNormalLike", ["x"], ["v"], name="random"),
         N("RegexFullMatch", ["v"], ["e1"], name="regex_a"),
         N("RegexFullMatch", ["e1"], ["e2"], name="regex_b"),
         N("StringSplit", ["e2"], ["nz", "nl"], name="strsplit"),
         N("MyFancyOp", ["e2"], ["y"], name="custom",
           domain="com.example")],
        x, y,
        opsets=[H.make_opsetid("", 13), H.make_opsetid("com.example", 1)])
    out["unsup_random"] = model(
        [N("RandomUniformLike", ["x"], ["y"], name="random_like")],
        [vi("x", [1, 4])], [vi("y", [1, 4])])

    # A subgraph (If's then branch inside a Loop body) reading a name that
    # no enclosing scope defines.
    then_g = H.make_graph([N("Add", ["v", "nope"], ["t"], name="add_nope")],
                          "then_g", [], [vi("t", [1])])
    else_g = H.make_graph([N("Identity", ["v"], ["e"], name="ident")],
                          "else_g", [], [vi("e", [1])])
    body_g = H.make_graph(
        [N("Identity", ["cin"], ["cout"], name="pass_cond"),
         N("If", ["cin"], ["w"], name="branch", then_branch=then_g,
           else_branch=else_g)],
        "body_g",
        [vi("i", [], I64), vi("cin", [], TensorProto.BOOL), vi("v", [1])],
        [vi("cout", [], TensorProto.BOOL), vi("w", [1])])
    out["bad_subgraph_undefined_name"] = model(
        [N("Loop", ["m", "", "x"], ["y"], name="loop", body=body_g)],
        [vi("m", [], I64), vi("x", [1])], [vi("y", [1])])

    # Load fine, fail in the engine (shape errors).
    out["bad_run_conv_weight_shape"] = model(
        [N("Conv", ["x", "w"], ["y"], name="conv")],
        [vi("x", [1, 3, 8, 8])], [vi("y", [1, 4, 6, 6])],
        [init("w", arr([4, 2, 3, 3]))])
    out["bad_run_reshape_impossible"] = model(
        [N("Reshape", ["x", "shp"], ["y"], name="reshape")],
        [vi("x", [1, 3, 4, 4])], [vi("y", [5, 7])], [i64("shp", [5, 7])])
    out["bad_run_gather_out_of_range"] = model(
        [N("Shape", ["x"], ["s"], name="shape"),
         N("Gather", ["s", "idx"], ["g"], name="gather", axis=0),
         N("Reshape", ["x", "g"], ["y"], name="reshape")],
        [vi("x", [1, 3, 4, 4])], [vi("y", [48])], [i64("idx", [10])])
    # Shape arithmetic that would materialise 2**40 int64 values (8 TiB)
    # in a dry run: must fail with a limit, not try to allocate.
    out["bad_run_int64_blowup"] = model(
        [N("Shape", ["x"], ["s"], name="shape"),
         N("Pad", ["s", "pads"], ["y"], name="pad")],
        [vi("x", [1, 3, 4, 4])], [vi("y", [2**40 + 4], I64)],
        [i64("pads", [0, 2**40])])
    return out


def raw_files(good):
    """Malformed byte strings that no ONNX writer produces."""
    out = {}
    head = vint(1, 8) + ld(8, ld(1, "") + vint(2, 13))   # ir 8, opset 13
    rnd = bytearray()
    state = 12345
    for _ in range(512):                                 # an LCG: stable
        state = (state * 1103515245 + 12345) & 0x7FFFFFFF
        rnd.append(state >> 16 & 0xFF)
    out["bad_random_bytes"] = bytes(rnd)
    out["bad_empty"] = b""
    out["bad_text_file"] = b"this is not an onnx model\n"
    conv = good["good_conv_relu"].SerializeToString()
    out["bad_truncated"] = conv[:len(conv) // 2]
    out["bad_wire_type_graph_varint"] = head + vint(7, 5)
    out["bad_wire_type_group"] = head + key(7, 3) + b"\x00" * 4
    out["bad_wire_type_ir_fixed64"] = key(1, 1) + b"\x08" + b"\x00" * 7 + \
        ld(8, ld(1, "") + vint(2, 13))
    out["bad_field_number_zero"] = head + key(0, 0) + b"\x01"
    out["bad_unterminated_varint"] = head + b"\x08" + b"\xff" * 12
    # The graph field claims ~100k bytes (as if 100k nodes) in a tiny file.
    out["bad_length_lie_100k"] = head + key(7, 2) + varint(100000) + \
        ld(1, ld(4, "Relu"))
    # GraphProto -> NodeProto -> AttributeProto -> GraphProto ... 200 times.
    inner = b""
    for _ in range(200):
        attr = ld(1, "then_branch") + vint(20, 5) + ld(6, inner)
        inner = ld(1, ld(4, "If") + ld(5, attr))
    out["bad_deep_nesting"] = head + ld(7, inner)
    # 100001 empty nodes: over the default node limit, 200 kB file.
    out["bad_100k_empty_nodes"] = head + ld(7, ld(1, b"") * 100001)
    out["good_ir10_unknown_fields"] = good_ir10_unknown_fields()
    return out


def main():
    outdir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "onnx.in")
    os.makedirs(outdir, exist_ok=True)
    good = good_models()
    files = {k: v.SerializeToString() for k, v in good.items()}
    files.update({k: v.SerializeToString() for k, v in bad_models().items()})
    files.update(raw_files(good))
    for name in sorted(files):
        with open(os.path.join(outdir, name + ".onnx"), "wb") as f:
            f.write(files[name])
    return 0


if __name__ == "__main__":
    sys.exit(main())
