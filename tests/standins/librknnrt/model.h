/*
 * model.h: what the stand-in reads from a .rknn file (see FORMAT.md for the file layout).
 */
#ifndef RKBENCH_STANDIN_MODEL_H
#define RKBENCH_STANDIN_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "rknn_abi.h"

#define SM_MAX_TARGETS 4
#define SM_MAX_NODE_IO 8

/* An input or output of the model, as the runtime reports it. */
typedef struct {
    char name[RKNN_MAX_NAME_LEN];
    uint32_t n_dims;
    uint32_t dims[RKNN_MAX_DIMS];   /* the source model's shape (NCHW for an ONNX image input) */
    uint32_t n_native;               /* 0 when the file does not give a native shape */
    uint32_t native[RKNN_MAX_DIMS];  /* e.g. N,C1,H,W,C2 */
    rknn_tensor_type type;           /* the type the NPU graph takes or gives */
    int nhwc;                        /* the file says this tensor's layout is NHWC */
    rknn_tensor_qnt_type qnt_type;
    int32_t zp;
    float scale;
} sm_io;

/* Any tensor of the compiled graph (for the per-layer table). */
typedef struct {
    uint32_t n_dims;
    uint32_t dims[8];
    char dtype[16]; /* "int8", "float16", ... as the file spells it; "" when not given */
    uint32_t bytes; /* the size the file gives (aligned), 0 if none */
    int kind;       /* 1 input, 2 output, 3 intermediate, 4+ constants and command buffers */
} sm_tensor;

/* One operator of the compiled graph. */
typedef struct {
    char op[64];    /* e.g. ConvRelu */
    char name[256]; /* e.g. Conv:/model.0/conv/Conv */
    int on_npu;
    int n_in, n_out;
    int in[SM_MAX_NODE_IO], out[SM_MAX_NODE_IO]; /* indices into sm_model.tensors, -1 if unknown */
} sm_node;

typedef struct {
    uint64_t file_version;
    char targets[SM_MAX_TARGETS][32]; /* target_platform, lower case */
    int n_targets;
    char compiler[160];
    uint64_t payload_bytes; /* the compiled graph with its weights */
    uint64_t weight_digest; /* identifies the weights (SHARE_WEIGHT_MEM checks it) */
    uint32_t n_in, n_out;
    sm_io *in, *out;
    uint32_t n_tensors, n_nodes; /* 0 when the graph could not be read: a generic list is used */
    sm_tensor *tensors;
    sm_node *nodes;
    uint64_t internal_bytes; /* activations: intermediates + inputs + outputs */
} sm_model;

/* Parses a .rknn image. 0 on success; otherwise -1 with a one-line reason in err. */
int sm_parse(const uint8_t *buf, size_t len, sm_model *model, char *err, size_t err_len);
void sm_free(sm_model *model);

size_t sm_type_bytes(rknn_tensor_type type);
uint64_t sm_hash(const void *data, size_t n, uint64_t seed);
const char *sm_type_name(rknn_tensor_type type);

#endif
