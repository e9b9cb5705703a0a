#!/usr/bin/python3
"""Writes the seed corpus tests/fuzz/npy.in/ for the fuzz_npy target.

Usage: tests/fuzz/make_npy_corpus.py [OUTDIR]   (default: npy.in next to
this script). The output is deterministic: headers are built here byte for
byte the way numpy writes them (version 1.0 pads to 64 bytes), and numpy is
used only to produce the little-endian data bytes, so the files do not
change with the numpy version. Existing files in OUTDIR with the same names
are overwritten; other files (e.g. inputs found by libFuzzer) are kept.

Each file is one seed: a valid file for every supported dtype and version,
and one malformation per reader rule (see model/npy.h).
"""
import os
import struct
import sys

import numpy as np

MAGIC = b"\x93NUMPY"


def dict_text(descr, fortran, shape):
    """The header dict as numpy writes it, e.g. {'descr': '<f4', ...}."""
    if isinstance(shape, str):
        s = shape
    elif len(shape) == 1:
        s = "(%d,)" % shape[0]
    else:
        s = "(" + ", ".join(str(d) for d in shape) + ")"
    return "{'descr': %s, 'fortran_order': %s, 'shape': %s, }" % (
        descr if descr.startswith(("[", "{")) else repr(descr),
        fortran, s)


def npy(header, data=b"", version=(1, 0), pad=True, hlen=None):
    """Prefix + header (padded with spaces and '\\n' when pad) + data."""
    h = header.encode("latin1") if isinstance(header, str) else header
    pre = 10 if version[0] == 1 else 12
    if pad:
        total = pre + len(h) + 1
        h += b" " * (-total % 64) + b"\n"
    n = len(h) if hlen is None else hlen
    if version[0] == 1:
        size = struct.pack("<H", n & 0xFFFF)
    else:
        size = struct.pack("<I", n & 0xFFFFFFFF)
    return MAGIC + bytes(version) + size + h + data


def arr(a, descr, fortran=False, version=(1, 0)):
    """A valid file holding numpy array `a` in `descr` layout."""
    a = np.asarray(a).astype(descr)
    data = (a.T if fortran else a).tobytes(order="C")
    return npy(dict_text(descr, fortran, a.shape), data, version)


def corpus():
    f4 = np.arange(6, dtype="<f4").reshape(2, 3) - 2.5
    hdr = dict_text("<f4", False, (2, 3))
    c = {}
    # Valid files, one per dtype, order, version and corner of the shape.
    c["ok_f4.npy"] = arr(f4, "<f4")
    c["ok_f4_fortran.npy"] = arr(f4, "<f4", fortran=True)
    c["ok_f4_fortran_3d.npy"] = arr(np.arange(24).reshape(2, 3, 4), "<f4",
                                    fortran=True)
    c["ok_f8.npy"] = arr([1 / 3, -0.0, 1e300, np.nan], "<f8")
    c["ok_f8_fortran.npy"] = arr(np.arange(6).reshape(3, 2) / 4, "<f8",
                                 fortran=True)
    c["ok_f2.npy"] = arr([1, -2.5, 65504, np.inf, -np.inf, np.nan,
                          2.0 ** -24, -0.0], "<f2")
    c["ok_u1.npy"] = arr(np.arange(0, 256, 51), "|u1")
    c["ok_i8.npy"] = arr([-2 ** 63, 2 ** 63 - 1, 0], "<i8")
    c["ok_i8_fortran.npy"] = arr(np.arange(6).reshape(2, 3), "<i8",
                                 fortran=True)
    c["ok_scalar.npy"] = arr(np.float32(3.25), "<f4")
    c["ok_empty.npy"] = arr(np.zeros((0, 3)), "<f4")
    c["ok_empty_huge_dim.npy"] = npy(
        dict_text("<f4", True, (0, 2 ** 62, 3)))
    # Found by libFuzzer: an f2 tensor is larger than the file holding it
    # (the harness once assumed otherwise).
    c["ok_f2_8d.npy"] = arr(np.arange(128).reshape(2, 2, 2, 2, 2, 2, 1, 2),
                            "<f2")
    c["ok_v2.npy"] = arr(f4, "<f4", version=(2, 0))
    c["ok_v3.npy"] = arr(f4, "<f4", version=(3, 0))
    c["ok_8d.npy"] = arr(np.arange(16).reshape(1, 2, 1, 2, 1, 2, 1, 2),
                         "<f4")
    c["ok_double_quotes.npy"] = npy(
        '{"shape": (2,), "fortran_order": False, "descr": "=f4"}',
        np.array([1, 2], "<f4").tobytes())
    c["ok_compact_long.npy"] = npy(
        "{'descr':'|u1','fortran_order':True,'shape':(3L,)}", b"\x00\x07\xff")
    c["ok_whitespace.npy"] = npy(
        "{\t'descr':\r\n '<f4' ,\n'fortran_order' : True ,"
        "\t'shape':( 2 ,\t3 , ) }", f4.T.tobytes())
    # Types only lr_npy_read_typed() takes (lowrank run's graph inputs);
    # the calibration reader refuses them.
    c["typed_b1.npy"] = arr([True, False, True], "|b1")
    c["typed_b1_byte2.npy"] = npy(dict_text("|b1", False, (3,)), b"\x00\x02\x01")
    c["typed_i1.npy"] = arr([-128, 0, 127], "|i1")
    c["typed_u2.npy"] = arr([0, 65535, 7], "<u2")
    c["typed_i2_fortran.npy"] = arr(np.arange(6).reshape(2, 3) - 3, "<i2",
                                    fortran=True)
    c["typed_u4.npy"] = arr([0, 2 ** 32 - 1], "<u4")
    c["typed_i4.npy"] = arr([-2 ** 31, 2 ** 31 - 1, 0], "<i4")
    c["typed_u8.npy"] = arr(np.array([2 ** 64 - 1, 2 ** 63, 1], dtype=np.uint64), "<u8")
    c["typed_i1_8d.npy"] = arr(np.arange(256).reshape(2, 2, 2, 2, 2, 2, 2, 2) - 128,
                               "|i1")

    # The prefix.
    c["bad_empty.npy"] = b""
    c["bad_magic.npy"] = b"\x93NUMPZ" + c["ok_f4.npy"][6:]
    c["bad_magic_only.npy"] = MAGIC
    c["bad_magic_major_only.npy"] = MAGIC + b"\x01"
    c["bad_v2_prefix_short.npy"] = MAGIC + b"\x02\x00\x10\x00"
    c["bad_version_4.npy"] = npy(hdr, f4.tobytes(), version=(4, 0))
    c["bad_version_1_1.npy"] = npy(hdr, f4.tobytes(), version=(1, 1))
    c["bad_hlen_huge_v2.npy"] = npy(hdr, f4.tobytes(), version=(2, 0),
                                    hlen=0xFFFFFFFF)
    c["bad_hlen_10001.npy"] = npy(hdr.ljust(10000) + "\n", f4.tobytes(),
                                  version=(2, 0), pad=False)
    c["bad_hlen_past_end.npy"] = npy("{}\n", pad=False, hlen=200)
    # The header dict.
    c["bad_no_newline.npy"] = npy(hdr + "   ", f4.tobytes(), pad=False)
    c["bad_missing_shape.npy"] = npy(
        "{'descr': '<f4', 'fortran_order': False, }", f4.tobytes())
    c["bad_missing_fortran.npy"] = npy(
        "{'descr': '<f4', 'shape': (2, 3), }", f4.tobytes())
    c["bad_empty_header.npy"] = npy(b"", f4.tobytes(), pad=False)
    c["bad_control_char.npy"] = npy(
        "{'descr': '<f4\x01', 'fortran_order': False, 'shape': (2, 3), }",
        f4.tobytes())
    c["bad_missing_descr.npy"] = npy(
        "{'fortran_order': False, 'shape': (2, 3), }", f4.tobytes())
    c["bad_duplicate_key.npy"] = npy(
        "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, "
        "'shape': (2, 3), }", f4.tobytes())
    c["bad_unknown_key.npy"] = npy(
        "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), "
        "'x': 1, }", f4.tobytes())
    c["bad_not_dict.npy"] = npy("[1, 2, 3]", f4.tobytes())
    c["bad_unterminated.npy"] = npy("{'descr': '<f4", f4.tobytes())
    c["bad_escape.npy"] = npy(dict_text("<f\\x34", False, (2, 3)),
                              f4.tobytes())
    c["bad_after_dict.npy"] = npy(hdr + " {}", f4.tobytes())
    c["bad_unquoted_key.npy"] = npy(
        "{descr: '<f4', 'fortran_order': False, 'shape': (2, 3), }",
        f4.tobytes())
    c["bad_missing_colon.npy"] = npy(
        "{'descr' '<f4', 'fortran_order': False, 'shape': (2, 3), }",
        f4.tobytes())
    c["bad_missing_comma.npy"] = npy(
        "{'descr': '<f4' 'fortran_order': False, 'shape': (2, 3), }",
        f4.tobytes())
    # The dtype.
    c["bad_object.npy"] = npy(dict_text("|O", False, (2,)), b"\0" * 16)
    c["bad_structured.npy"] = npy(
        dict_text("[('a', '<f4'), ('b', '<i8')]", False, (1,)), b"\0" * 12)
    c["bad_big_endian.npy"] = npy(dict_text(">f4", False, (2, 3)),
                                  f4.astype(">f4").tobytes())
    c["bad_network_order.npy"] = npy(dict_text("!f8", False, (1,)),
                                     b"\0" * 8)
    c["bad_big_endian_i8.npy"] = npy(dict_text(">i8", False, (1,)),
                                     b"\0" * 8)
    c["bad_unicode.npy"] = npy(dict_text("<U3", False, (1,)), b"\0" * 12)
    c["bad_void.npy"] = npy(dict_text("|V4", False, (1,)), b"\0" * 4)
    c["bad_bool.npy"] = npy(dict_text("|b1", False, (2,)), b"\1\0")
    c["bad_i4.npy"] = npy(dict_text("<i4", False, (1,)), b"\0" * 4)
    c["bad_pipe_f4.npy"] = npy(dict_text("|f4", False, (2, 3)),
                               f4.tobytes())
    # fortran_order and shape.
    c["bad_fortran_1.npy"] = npy(dict_text("<f4", 1, (2, 3)), f4.tobytes())
    c["bad_fortran_ident.npy"] = npy(dict_text("<f4", "False_", (2, 3)),
                                     f4.tobytes())
    c["bad_underscore_dim.npy"] = npy(dict_text("<f4", False, "(2_0,)"),
                                      b"\0" * 80)
    c["bad_negative_dim.npy"] = npy(dict_text("<f4", False, "(-2, 3)"),
                                    f4.tobytes())
    c["bad_float_dim.npy"] = npy(dict_text("<f4", False, "(2.0, 3)"),
                                 f4.tobytes())
    c["bad_none_dim.npy"] = npy(dict_text("<f4", False, "(None, 3)"),
                                f4.tobytes())
    c["bad_list_shape.npy"] = npy(dict_text("<f4", False, "[2, 3]"),
                                  f4.tobytes())
    c["bad_shape_no_comma.npy"] = npy(dict_text("<f4", False, "(2 3)"),
                                      f4.tobytes())
    c["bad_paren_int.npy"] = npy(dict_text("<f4", False, "(6)"),
                                 f4.tobytes())
    c["bad_9_dims.npy"] = npy(dict_text("<f4", False, (1,) * 9), b"\0" * 4)
    c["bad_dim_int64.npy"] = npy(dict_text("<f4", False, (2 ** 63,)))
    c["bad_overflow.npy"] = npy(dict_text("<f4", False, (2 ** 62, 8)))
    c["bad_overflow_bytes.npy"] = npy(dict_text("<f4", False, (2 ** 62,)))
    c["bad_huge_shape.npy"] = npy(dict_text("<f4", False, (10 ** 9, 1000)),
                                  b"\0" * 4)
    # The data length.
    c["bad_truncated.npy"] = c["ok_f4.npy"][:-1]
    c["bad_trailing.npy"] = c["ok_f4.npy"] + b"\0"
    c["bad_trailing_scalar.npy"] = c["ok_scalar.npy"] + b"\0" * 4
    return c


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "npy.in")
    os.makedirs(out, exist_ok=True)
    for name, data in sorted(corpus().items()):
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
    print("wrote %d files to %s" % (len(corpus()), out))


if __name__ == "__main__":
    main()
