/*
 * onnx.h - loading, validating and saving ONNX models.
 *
 * DESIGN. The model file is parsed by protobuf-c code generated at build
 * time from the onnx.proto that Debian's libonnx-dev installs. The parsed
 * ModelProto stays alive inside lr_model: it is the single source of truth
 * for attributes, names and metadata, and saving is packing it again, so
 * every field we do not touch, including fields newer than our onnx.proto
 * (protobuf-c keeps unknown fields and re-packs them), survives a round
 * trip. On top of the proto the loader builds an index: one lr_value per
 * tensor name (graph inputs, initializers, node outputs), and the nodes in
 * a topological order with their inputs and outputs resolved to value
 * indices. Weights are converted to lr_tensor once; initializers whose
 * raw bytes are aligned borrow the proto's buffers instead of being copied.
 *
 * Untrusted bytes: before protobuf-c sees the file, a schema-driven scan
 * walks the wire format iteratively and refuses nesting deeper than
 * LR_ONNX_MAX_DEPTH, so a hostile file cannot exhaust the stack. All
 * protobuf allocations go through a budgeted allocator. After parsing,
 * every tensor is validated (data type known, dims >= 0, no overflow,
 * raw_data size exact) and the graph is checked (duplicate or dangling
 * names, cycles, unsupported operators) before anything runs. External
 * data is read only from files inside the model's own directory.
 */
#ifndef LR_ONNX_H
#define LR_ONNX_H

#include <stddef.h>
#include <stdint.h>

#include "model/lr.h"
#include "model/onnx.pb-c.h"
#include "model/tensor.h"

#define LR_ONNX_MAX_DEPTH 64          /* nested protobuf messages */
#define LR_ONNX_MIN_OPSET 1           /* default-domain opsets we run */
#define LR_ONNX_MAX_OPSET 21

struct lr_op_def;

/* One named tensor of the graph. */
typedef struct lr_value {
	const char *name;      /* borrowed from the proto */
	lr_tensor *init;       /* initializer data, or NULL */
	int producer;          /* index into lr_model.nodes, or -1 */
	int nconsumers;        /* how many node inputs read this value */
	int graph_input;       /* 1 when a (non-initializer) graph input */
	int graph_output;      /* 1 when a graph output */
	int elem_type;         /* ONNX elem type from the graph, 0 if unknown */
	int ndim;              /* declared rank, -1 if unknown */
	int64_t dims[LR_MAX_DIMS]; /* declared dims, -1 where symbolic */
} lr_value;

/* One operator application, resolved against the value table. */
typedef struct lr_node {
	Onnx__NodeProto *proto;        /* attributes live here */
	const char *name;              /* node name, or "<op_type>#<index>" */
	const char *op_type;           /* borrowed from the proto */
	int nin;                       /* number of inputs (incl. omitted) */
	int nout;                      /* number of outputs */
	int *in;                       /* value index per input, -1 = omitted */
	int *out;                      /* value index per output, -1 = omitted */
	const struct lr_op_def *op;    /* kernel, set at load time */
	int proto_index;               /* position in graph->node */
	char name_buf[96];             /* storage for synthesized names */
	int nhidden;                   /* the last nhidden of in[]: outer values
					* its subgraphs read (not in the proto) */
	struct lr_model **sub;         /* its subgraphs (If's branches, Loop's
					* and Scan's body), nsub of them */
	int nsub;
} lr_node;

typedef struct lr_model {
	Onnx__ModelProto *proto;   /* the parsed model; owned */
	int64_t ir_version;        /* ModelProto.ir_version */
	int64_t opset;             /* default-domain opset version */
	lr_value *values;          /* nvalues entries */
	int nvalues;
	lr_node *nodes;            /* nnodes entries, topological order */
	int nnodes;
	int *inputs;               /* value indices of graph inputs (no initializers) */
	int ninputs;
	int *outputs;              /* value indices of graph outputs */
	int noutputs;
	void *priv;                /* loader internals (allocator, name index) */
	/*
	 * Subgraphs (a node's GRAPH attribute) are models too, sharing the
	 * enclosing model's proto. Names a subgraph reads but does not define
	 * come from the enclosing scopes: each becomes one of its last
	 * `nouter` graph inputs, fed from its node's hidden input
	 * outer_from[j] (an index into the hidden inputs).
	 */
	const Onnx__GraphProto *graph; /* the graph indexed here */
	struct lr_model *parent;   /* the enclosing model, or NULL (top level) */
	const char *graph_attr;    /* a subgraph's attribute name ("body") */
	int nouter;
	int *outer_from;
} lr_model;

/* The subgraph of node n held in its GRAPH attribute `attr`, or NULL. */
const lr_model *lr_node_subgraph(const lr_node *n, const char *attr);

/* Limits applied while loading; zero fields take the defaults. */
typedef struct lr_load_opts {
	size_t budget_bytes;   /* all parse + weight memory; default 4 GiB or 4x file, larger */
	int max_nodes;         /* default 100000 */
	int skip_op_check;     /* 1: load even with unsupported operators */
} lr_load_opts;

/*
 * Loads and validates the model at `path`. External data is resolved
 * relative to the model's directory and must stay inside it. On success
 * *out is owned by the caller (lr_model_free()). Errors: LR_EIO (cannot
 * read), LR_EMODEL (malformed, message names the node or tensor),
 * LR_EUNSUPPORTED (valid but not runnable: lists every unsupported
 * operator and its nodes), LR_ENOMEM / LR_ELIMIT (budget).
 */
int lr_model_load(const char *path, const lr_load_opts *opts, lr_model **out,
		  lr_msg *msg);

/*
 * Like lr_model_load() from memory. `name` appears in messages. External
 * data is refused (there is no directory to read it from).
 */
int lr_model_load_mem(const void *buf, size_t len, const char *name,
		      const lr_load_opts *opts, lr_model **out, lr_msg *msg);

/* Frees a model and everything it owns. NULL is a no-op. */
void lr_model_free(lr_model *m);

/*
 * Serialises m->proto to `path` atomically (temporary file in the same
 * directory, fsync, rename). Returns 0, LR_EIO or LR_ENOMEM.
 */
int lr_model_save(const lr_model *m, const char *path, lr_msg *msg);

/* Serialises m->proto into a malloc'd buffer the caller frees. */
int lr_model_pack(const lr_model *m, uint8_t **buf, size_t *len);

/* Index of the value named `name`, or -1. */
int lr_model_find_value(const lr_model *m, const char *name);

/* Attribute lookup on a node; NULL when absent. */
const Onnx__AttributeProto *lr_node_attr(const lr_node *n, const char *name);

/* Typed attribute getters returning `def` when the attribute is absent. */
int64_t lr_node_attr_int(const lr_node *n, const char *name, int64_t def);
float lr_node_attr_float(const lr_node *n, const char *name, float def);
/* Returns the string attribute (NUL-terminated copy in buf) or def. */
const char *lr_node_attr_str(const lr_node *n, const char *name,
			     const char *def, char *buf, size_t len);
/*
 * Copies an ints attribute into buf (at most `max`), sets *count and
 * returns 0; returns 1 when absent; LR_EMODEL when longer than max.
 */
int lr_node_attr_ints(const lr_node *n, const char *name, int64_t *buf,
		      int max, int *count);

/*
 * Converts a TensorProto to an lr_tensor of its own element type (see
 * tensor.h; bfloat16 becomes float32), validating it. Types lowrank does
 * not hold give LR_EUNSUPPORTED naming the tensor and type. `dir` is the model directory for external data (NULL to
 * refuse external data). The result may borrow the proto's buffers, so it
 * must not outlive the proto. Errors name the tensor.
 */
int lr_tensor_from_proto(const Onnx__TensorProto *tp, const char *dir,
			 lr_tensor **out, lr_msg *msg);

/* Lower-case name of ONNX TensorProto.DataType code `dt` ("int32", "string"). */
const char *lr_onnx_type_name(int dt);

#endif /* LR_ONNX_H */
