/*
 * rknn_abi.h: OUR declarations of librknnrt's C ABI, written from the layouts and values in
 * the team's facts file (/work/shared/RKNN-FACTS.md, "librknnrt's C API"). This is not the
 * vendor's rknn_api.h and copies nothing from it: names follow the vendor's so that C code
 * written against the real API reads the same, and the static asserts at the end pin every
 * size and offset the facts list, on x86_64 and aarch64 alike.
 *
 * Used by the stand-in runtime (standin.c), the bare C benchmark (bare_loop.c) and the ABI
 * test (test_abi.py).
 */
#ifndef RKBENCH_RKNN_ABI_H
#define RKBENCH_RKNN_ABI_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef uint64_t rknn_context;

#define RKNN_MAX_DIMS 16
#define RKNN_MAX_NAME_LEN 256

/* ---- init flags ---- */
#define RKNN_FLAG_PRIOR_HIGH 0x0
#define RKNN_FLAG_PRIOR_MEDIUM 0x1
#define RKNN_FLAG_PRIOR_LOW 0x2
#define RKNN_FLAG_ASYNC_MASK 0x4
#define RKNN_FLAG_COLLECT_PERF_MASK 0x8 /* needed for RKNN_QUERY_PERF_DETAIL */
#define RKNN_FLAG_MEM_ALLOC_OUTSIDE 0x10
#define RKNN_FLAG_SHARE_WEIGHT_MEM 0x20
#define RKNN_FLAG_ENABLE_SRAM 0x800
#define RKNN_FLAG_SHARE_SRAM 0x1000

/* ---- return codes ---- */
#define RKNN_SUCC 0
#define RKNN_ERR_FAIL -1
#define RKNN_ERR_TIMEOUT -2
#define RKNN_ERR_DEVICE_UNAVAILABLE -3
#define RKNN_ERR_MALLOC_FAIL -4
#define RKNN_ERR_PARAM_INVALID -5
#define RKNN_ERR_MODEL_INVALID -6
#define RKNN_ERR_CTX_INVALID -7
#define RKNN_ERR_INPUT_INVALID -8
#define RKNN_ERR_OUTPUT_INVALID -9
#define RKNN_ERR_DEVICE_UNMATCH -10
#define RKNN_ERR_INCOMPATILE_PRE_COMPILE_MODEL -11
#define RKNN_ERR_INCOMPATILE_OPTIMIZATION_LEVEL_VERSION -12
#define RKNN_ERR_TARGET_PLATFORM_UNMATCH -13

/* ---- query ids ---- */
typedef enum {
    RKNN_QUERY_IN_OUT_NUM = 0,
    RKNN_QUERY_INPUT_ATTR = 1,
    RKNN_QUERY_OUTPUT_ATTR = 2,
    RKNN_QUERY_PERF_DETAIL = 3,
    RKNN_QUERY_PERF_RUN = 4,
    RKNN_QUERY_SDK_VERSION = 5,
    RKNN_QUERY_MEM_SIZE = 6,
    RKNN_QUERY_CUSTOM_STRING = 7,
    RKNN_QUERY_NATIVE_INPUT_ATTR = 8,
    RKNN_QUERY_NATIVE_OUTPUT_ATTR = 9,
    RKNN_QUERY_NATIVE_NHWC_INPUT_ATTR = 10,
    RKNN_QUERY_NATIVE_NHWC_OUTPUT_ATTR = 11,
    RKNN_QUERY_DEVICE_MEM_INFO = 12,
    RKNN_QUERY_INPUT_DYNAMIC_RANGE = 13,
    RKNN_QUERY_CURRENT_INPUT_ATTR = 14,
    RKNN_QUERY_CURRENT_OUTPUT_ATTR = 15,
    RKNN_QUERY_CURRENT_NATIVE_INPUT_ATTR = 16,
    RKNN_QUERY_CURRENT_NATIVE_OUTPUT_ATTR = 17,
} rknn_query_cmd;

/* ---- tensor enums ---- */
typedef enum {
    RKNN_TENSOR_FLOAT32 = 0,
    RKNN_TENSOR_FLOAT16 = 1,
    RKNN_TENSOR_INT8 = 2,
    RKNN_TENSOR_UINT8 = 3,
    RKNN_TENSOR_INT16 = 4,
    RKNN_TENSOR_UINT16 = 5,
    RKNN_TENSOR_INT32 = 6,
    RKNN_TENSOR_UINT32 = 7,
    RKNN_TENSOR_INT64 = 8,
    RKNN_TENSOR_BOOL = 9,
    RKNN_TENSOR_INT4 = 10,
    RKNN_TENSOR_BFLOAT16 = 11,
} rknn_tensor_type;

typedef enum {
    RKNN_TENSOR_NCHW = 0,
    RKNN_TENSOR_NHWC = 1,
    RKNN_TENSOR_NC1HWC2 = 2,
    RKNN_TENSOR_UNDEFINED = 3,
} rknn_tensor_format;

typedef enum {
    RKNN_TENSOR_QNT_NONE = 0,
    RKNN_TENSOR_QNT_DFP = 1,
    RKNN_TENSOR_QNT_AFFINE_ASYMMETRIC = 2,
} rknn_tensor_qnt_type;

/* ---- NPU core masks (the values lite2 passes through) ---- */
typedef enum {
    RKNN_NPU_CORE_AUTO = 0,
    RKNN_NPU_CORE_0 = 1,
    RKNN_NPU_CORE_1 = 2,
    RKNN_NPU_CORE_2 = 4,
    RKNN_NPU_CORE_0_1 = 3,
    RKNN_NPU_CORE_0_1_2 = 7,
    RKNN_NPU_CORE_ALL = 0xffff,
} rknn_core_mask;

/* ---- structs (sizes and offsets asserted below) ---- */
typedef struct {
    uint32_t n_input;
    uint32_t n_output;
} rknn_input_output_num;

typedef struct {
    uint32_t index;
    uint32_t n_dims;
    uint32_t dims[RKNN_MAX_DIMS];
    char name[RKNN_MAX_NAME_LEN];
    uint32_t n_elems;
    uint32_t size;
    rknn_tensor_format fmt;
    rknn_tensor_type type;
    rknn_tensor_qnt_type qnt_type;
    int8_t fl;
    int32_t zp;
    float scale;
    uint32_t w_stride;
    uint32_t size_with_stride;
    uint8_t pass_through;
    uint32_t h_stride;
} rknn_tensor_attr;

typedef struct {
    uint32_t index;
    void *buf;
    uint32_t size;
    uint8_t pass_through;
    rknn_tensor_type type;
    rknn_tensor_format fmt;
} rknn_input;

typedef struct {
    uint8_t want_float;
    uint8_t is_prealloc;
    uint32_t index;
    void *buf;
    uint32_t size;
} rknn_output;

typedef struct {
    int64_t run_duration; /* microseconds of the last run */
} rknn_perf_run;

typedef struct {
    char *perf_data; /* owned by the runtime: valid until the next query or rknn_destroy */
    uint64_t data_len;
} rknn_perf_detail;

typedef struct {
    char api_version[256];
    char drv_version[256];
} rknn_sdk_version;

typedef struct {
    uint32_t total_weight_size;
    uint32_t total_internal_size;
    uint64_t total_dma_allocated_size;
    uint32_t total_sram_size;
    uint32_t free_sram_size;
    uint32_t reserved[10];
} rknn_mem_size;

typedef struct {
    void *virt_addr;
    uint64_t phys_addr;
    int32_t fd;
    int32_t offset;
    uint32_t size;
    uint32_t flags;
    void *priv_data;
} rknn_tensor_mem;

/*
 * rknn_init_extend exists in two sizes (facts): 136 bytes in the 2.3.2 header, 144 in what
 * lite2 2.5.0 passes (a user_key pointer at @24 before reserved[112]). We declare the 2.5.0
 * one, since we stand in for 2.5.0 and a 2.5.0 caller may hand us all 144 bytes. The stand-in
 * reads only the first 24 bytes (ctx, real_model_offset, real_model_size), which both
 * layouts share, so a 2.3.2 caller's 136-byte struct is just as safe.
 */
typedef struct {
    rknn_context ctx; /* with RKNN_FLAG_SHARE_WEIGHT_MEM: the context whose weights to share */
    int32_t real_model_offset;
    uint32_t real_model_size;
    int32_t model_buffer_fd;
    uint32_t model_buffer_flags;
    char *user_key;
    uint8_t reserved[112];
} rknn_init_extend;

/* The 2.3.2 layout, for the ABI test only (the shared prefix is asserted below). */
typedef struct {
    rknn_context ctx;
    int32_t real_model_offset;
    uint32_t real_model_size;
    int32_t model_buffer_fd;
    uint32_t model_buffer_flags;
    uint8_t reserved[112];
} rknn_init_extend_v2_3_2;

/* Passed through and never read by the stand-in: their layouts are not in our facts. */
typedef struct rknn_run_extend rknn_run_extend;
typedef struct rknn_output_extend rknn_output_extend;

/* ---- functions ---- */
int rknn_init(rknn_context *context, void *model, uint32_t size, uint32_t flag,
              rknn_init_extend *extend);
int rknn_destroy(rknn_context context);
int rknn_query(rknn_context context, rknn_query_cmd cmd, void *info, uint32_t size);
int rknn_inputs_set(rknn_context context, uint32_t n_inputs, rknn_input inputs[]);
int rknn_run(rknn_context context, rknn_run_extend *extend);
int rknn_outputs_get(rknn_context context, uint32_t n_outputs, rknn_output outputs[],
                     rknn_output_extend *extend);
int rknn_outputs_release(rknn_context context, uint32_t n_outputs, rknn_output outputs[]);
int rknn_set_core_mask(rknn_context context, rknn_core_mask core_mask);
int rknn_set_input_shapes(rknn_context context, uint32_t n_inputs, rknn_tensor_attr attr[]);
int rknn_dup_context(rknn_context *context_in, rknn_context *context_out);
rknn_tensor_mem *rknn_create_mem(rknn_context context, uint32_t size);
int rknn_destroy_mem(rknn_context context, rknn_tensor_mem *mem);
int rknn_set_io_mem(rknn_context context, rknn_tensor_mem *mem, rknn_tensor_attr *attr);

/* ---- the layouts the facts give, pinned for both architectures ---- */
#define RKNN_ABI_CHECK(type, member, off) \
    _Static_assert(offsetof(type, member) == (off), #type "." #member " must be at " #off)
#define RKNN_ABI_SIZE(type, size) _Static_assert(sizeof(type) == (size), #type " must be " #size " bytes")

RKNN_ABI_SIZE(rknn_context, 8);
RKNN_ABI_SIZE(rknn_input_output_num, 8);
RKNN_ABI_CHECK(rknn_input_output_num, n_input, 0);
RKNN_ABI_CHECK(rknn_input_output_num, n_output, 4);

RKNN_ABI_SIZE(rknn_tensor_attr, 376);
RKNN_ABI_CHECK(rknn_tensor_attr, index, 0);
RKNN_ABI_CHECK(rknn_tensor_attr, n_dims, 4);
RKNN_ABI_CHECK(rknn_tensor_attr, dims, 8);
RKNN_ABI_CHECK(rknn_tensor_attr, name, 72);
RKNN_ABI_CHECK(rknn_tensor_attr, n_elems, 328);
RKNN_ABI_CHECK(rknn_tensor_attr, size, 332);
RKNN_ABI_CHECK(rknn_tensor_attr, fmt, 336);
RKNN_ABI_CHECK(rknn_tensor_attr, type, 340);
RKNN_ABI_CHECK(rknn_tensor_attr, qnt_type, 344);
RKNN_ABI_CHECK(rknn_tensor_attr, fl, 348);
RKNN_ABI_CHECK(rknn_tensor_attr, zp, 352);
RKNN_ABI_CHECK(rknn_tensor_attr, scale, 356);
RKNN_ABI_CHECK(rknn_tensor_attr, w_stride, 360);
RKNN_ABI_CHECK(rknn_tensor_attr, size_with_stride, 364);
RKNN_ABI_CHECK(rknn_tensor_attr, pass_through, 368);
RKNN_ABI_CHECK(rknn_tensor_attr, h_stride, 372);

RKNN_ABI_SIZE(rknn_input, 32);
RKNN_ABI_CHECK(rknn_input, index, 0);
RKNN_ABI_CHECK(rknn_input, buf, 8);
RKNN_ABI_CHECK(rknn_input, size, 16);
RKNN_ABI_CHECK(rknn_input, pass_through, 20);
RKNN_ABI_CHECK(rknn_input, type, 24);
RKNN_ABI_CHECK(rknn_input, fmt, 28);

RKNN_ABI_SIZE(rknn_output, 24);
RKNN_ABI_CHECK(rknn_output, want_float, 0);
RKNN_ABI_CHECK(rknn_output, is_prealloc, 1);
RKNN_ABI_CHECK(rknn_output, index, 4);
RKNN_ABI_CHECK(rknn_output, buf, 8);
RKNN_ABI_CHECK(rknn_output, size, 16);

RKNN_ABI_SIZE(rknn_perf_run, 8);
RKNN_ABI_CHECK(rknn_perf_run, run_duration, 0);

RKNN_ABI_SIZE(rknn_perf_detail, 16);
RKNN_ABI_CHECK(rknn_perf_detail, perf_data, 0);
RKNN_ABI_CHECK(rknn_perf_detail, data_len, 8);

RKNN_ABI_SIZE(rknn_sdk_version, 512);
RKNN_ABI_CHECK(rknn_sdk_version, api_version, 0);
RKNN_ABI_CHECK(rknn_sdk_version, drv_version, 256);

RKNN_ABI_SIZE(rknn_mem_size, 64);
RKNN_ABI_CHECK(rknn_mem_size, total_weight_size, 0);
RKNN_ABI_CHECK(rknn_mem_size, total_internal_size, 4);
RKNN_ABI_CHECK(rknn_mem_size, total_dma_allocated_size, 8);
RKNN_ABI_CHECK(rknn_mem_size, total_sram_size, 16);
RKNN_ABI_CHECK(rknn_mem_size, free_sram_size, 20);
RKNN_ABI_CHECK(rknn_mem_size, reserved, 24);

RKNN_ABI_SIZE(rknn_tensor_mem, 40);
RKNN_ABI_CHECK(rknn_tensor_mem, virt_addr, 0);
RKNN_ABI_CHECK(rknn_tensor_mem, phys_addr, 8);
RKNN_ABI_CHECK(rknn_tensor_mem, fd, 16);
RKNN_ABI_CHECK(rknn_tensor_mem, offset, 20);
RKNN_ABI_CHECK(rknn_tensor_mem, size, 24);
RKNN_ABI_CHECK(rknn_tensor_mem, flags, 28);
RKNN_ABI_CHECK(rknn_tensor_mem, priv_data, 32);

RKNN_ABI_SIZE(rknn_init_extend, 144);
RKNN_ABI_CHECK(rknn_init_extend, ctx, 0);
RKNN_ABI_CHECK(rknn_init_extend, real_model_offset, 8);
RKNN_ABI_CHECK(rknn_init_extend, real_model_size, 12);
RKNN_ABI_CHECK(rknn_init_extend, model_buffer_fd, 16);
RKNN_ABI_CHECK(rknn_init_extend, model_buffer_flags, 20);
RKNN_ABI_CHECK(rknn_init_extend, user_key, 24);
RKNN_ABI_CHECK(rknn_init_extend, reserved, 32);
RKNN_ABI_SIZE(rknn_init_extend_v2_3_2, 136);
RKNN_ABI_CHECK(rknn_init_extend_v2_3_2, reserved, 24);

#ifdef __cplusplus
}
#endif
#endif /* RKBENCH_RKNN_ABI_H */
