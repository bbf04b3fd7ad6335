"""Our own ctypes declarations of librknnrt's C API (rknn_api.h), written from the layouts
and values in the team's facts file (RKNN-FACTS.md, "librknnrt's C API"), not copied from
the vendor's header. Sizes and offsets are the same on x86_64 and aarch64 (LP64);
`check_layouts()` asserts every one of them and can be run on any machine:

    python3 -c "from rkbench_device.backends.rknnrt_abi import check_layouts; check_layouts()"

Nothing here loads the library: `declare(lib)` sets the prototypes on a loaded CDLL
(ctypes.CDLL releases the GIL around each call, so several contexts can run in threads).
"""

from __future__ import annotations

import ctypes
from ctypes import (
    POINTER,
    Structure,
    c_char,
    c_float,
    c_int,
    c_int8,
    c_int32,
    c_int64,
    c_uint8,
    c_uint32,
    c_uint64,
    c_void_p,
    sizeof,
)
from typing import Any, Dict, List, Optional, Tuple

RKNN_MAX_DIMS = 16
RKNN_MAX_NAME_LEN = 256

#: rknn_context is a uint64 handle.
rknn_context = c_uint64

# -- query ids (rknn_query's cmd) ------------------------------------------------------
RKNN_QUERY_IN_OUT_NUM = 0
RKNN_QUERY_INPUT_ATTR = 1
RKNN_QUERY_OUTPUT_ATTR = 2
RKNN_QUERY_PERF_DETAIL = 3
RKNN_QUERY_PERF_RUN = 4
RKNN_QUERY_SDK_VERSION = 5
RKNN_QUERY_MEM_SIZE = 6
RKNN_QUERY_CUSTOM_STRING = 7
RKNN_QUERY_NATIVE_INPUT_ATTR = 8
RKNN_QUERY_NATIVE_OUTPUT_ATTR = 9
RKNN_QUERY_NATIVE_NHWC_INPUT_ATTR = 10
RKNN_QUERY_NATIVE_NHWC_OUTPUT_ATTR = 11
RKNN_QUERY_DEVICE_MEM_INFO = 12
RKNN_QUERY_INPUT_DYNAMIC_RANGE = 13
RKNN_QUERY_CURRENT_INPUT_ATTR = 14
RKNN_QUERY_CURRENT_OUTPUT_ATTR = 15
RKNN_QUERY_CURRENT_NATIVE_INPUT_ATTR = 16
RKNN_QUERY_CURRENT_NATIVE_OUTPUT_ATTR = 17

QUERY_NAMES = {value: name for name, value in globals().items() if name.startswith("RKNN_QUERY_")}

# -- rknn_init flags ---------------------------------------------------------------------
RKNN_FLAG_PRIOR_HIGH = 0x0
RKNN_FLAG_PRIOR_MEDIUM = 0x1
RKNN_FLAG_PRIOR_LOW = 0x2
RKNN_FLAG_ASYNC_MASK = 0x4
#: Needed for RKNN_QUERY_PERF_DETAIL; it slows every run, so never in a timed context.
RKNN_FLAG_COLLECT_PERF_MASK = 0x8
RKNN_FLAG_MEM_ALLOC_OUTSIDE = 0x10
RKNN_FLAG_SHARE_WEIGHT_MEM = 0x20
RKNN_FLAG_ENABLE_SRAM = 0x800
RKNN_FLAG_SHARE_SRAM = 0x1000

# -- tensor types, formats, quantization ---------------------------------------------------
RKNN_TENSOR_FLOAT32 = 0
RKNN_TENSOR_FLOAT16 = 1
RKNN_TENSOR_INT8 = 2
RKNN_TENSOR_UINT8 = 3
RKNN_TENSOR_INT16 = 4
RKNN_TENSOR_UINT16 = 5
RKNN_TENSOR_INT32 = 6
RKNN_TENSOR_UINT32 = 7
RKNN_TENSOR_INT64 = 8
RKNN_TENSOR_BOOL = 9
RKNN_TENSOR_INT4 = 10
RKNN_TENSOR_BFLOAT16 = 11

#: Tensor type -> (name, numpy dtype name or None when numpy has no such type).
TENSOR_TYPES: Dict[int, Tuple[str, Optional[str]]] = {
    RKNN_TENSOR_FLOAT32: ("float32", "float32"),
    RKNN_TENSOR_FLOAT16: ("float16", "float16"),
    RKNN_TENSOR_INT8: ("int8", "int8"),
    RKNN_TENSOR_UINT8: ("uint8", "uint8"),
    RKNN_TENSOR_INT16: ("int16", "int16"),
    RKNN_TENSOR_UINT16: ("uint16", "uint16"),
    RKNN_TENSOR_INT32: ("int32", "int32"),
    RKNN_TENSOR_UINT32: ("uint32", "uint32"),
    RKNN_TENSOR_INT64: ("int64", "int64"),
    RKNN_TENSOR_BOOL: ("bool", "bool"),
    RKNN_TENSOR_INT4: ("int4", None),
    RKNN_TENSOR_BFLOAT16: ("bfloat16", None),
}

RKNN_TENSOR_NCHW = 0
RKNN_TENSOR_NHWC = 1
RKNN_TENSOR_NC1HWC2 = 2
RKNN_TENSOR_UNDEFINED = 3
TENSOR_FORMATS = {
    RKNN_TENSOR_NCHW: "nchw",
    RKNN_TENSOR_NHWC: "nhwc",
    RKNN_TENSOR_NC1HWC2: "nc1hwc2",
    RKNN_TENSOR_UNDEFINED: "undefined",
}

RKNN_TENSOR_QNT_NONE = 0
RKNN_TENSOR_QNT_DFP = 1
RKNN_TENSOR_QNT_AFFINE_ASYMMETRIC = 2
QUANT_TYPES = {
    RKNN_TENSOR_QNT_NONE: "none",
    RKNN_TENSOR_QNT_DFP: "dfp",
    RKNN_TENSOR_QNT_AFFINE_ASYMMETRIC: "affine_asymmetric",
}

# -- NPU core masks (rknn_set_core_mask); multi-core masks only on RK3588/RK3576 --------------
RKNN_NPU_CORE_AUTO = 0
RKNN_NPU_CORE_0 = 1
RKNN_NPU_CORE_1 = 2
RKNN_NPU_CORE_2 = 4
RKNN_NPU_CORE_0_1 = 3
RKNN_NPU_CORE_0_1_2 = 7
RKNN_NPU_CORE_ALL = 0xFFFF
CORE_MASKS = {
    "auto": RKNN_NPU_CORE_AUTO,
    "0": RKNN_NPU_CORE_0,
    "1": RKNN_NPU_CORE_1,
    "2": RKNN_NPU_CORE_2,
    "0_1": RKNN_NPU_CORE_0_1,
    "0_1_2": RKNN_NPU_CORE_0_1_2,
}

# -- return codes: name and what to do about it --------------------------------------------
RKNN_SUCC = 0
ERRORS: Dict[int, Tuple[str, str]] = {
    -1: ("RKNN_ERR_FAIL", "the call failed; the runtime's own lines (below) say why"),
    -2: (
        "RKNN_ERR_TIMEOUT",
        "the NPU did not finish in time: check `dmesg` for rknpu resets, "
        "the NPU clock and other processes using the NPU",
    ),
    -3: (
        "RKNN_ERR_DEVICE_UNAVAILABLE",
        "the NPU device cannot be opened: is the rknpu driver loaded "
        "(/dev/rknpu or /dev/dri/renderD129) and may this user open it? "
        "(`rkbench doctor`)",
    ),
    -4: (
        "RKNN_ERR_MALLOC_FAIL",
        "the runtime could not allocate memory: free memory/CMA on the board or use a smaller model",
    ),
    -5: (
        "RKNN_ERR_PARAM_INVALID",
        "a parameter was refused (a bug in the caller, or a mask/flag this runtime does not take)",
    ),
    -6: (
        "RKNN_ERR_MODEL_INVALID",
        "the model is not valid for this runtime: rebuild it with a toolkit "
        "matching the board's librknnrt, and check the file is a complete .rknn",
    ),
    -7: ("RKNN_ERR_CTX_INVALID", "the context is invalid (a bug in the caller, or init did not finish)"),
    -8: ("RKNN_ERR_INPUT_INVALID", "an input was refused: its size, type or layout does not fit the model"),
    -9: ("RKNN_ERR_OUTPUT_INVALID", "an output was refused: its size or type does not fit the model"),
    -10: (
        "RKNN_ERR_DEVICE_UNMATCH",
        "runtime and NPU driver do not match: update librknnrt and the rknpu driver together (`rkbench doctor`)",
    ),
    -11: (
        "RKNN_ERR_INCOMPATILE_PRE_COMPILE_MODEL",
        "the model was pre-compiled for another driver: rebuild it without pre-compilation or for this driver",
    ),
    -12: (
        "RKNN_ERR_INCOMPATILE_OPTIMIZATION_LEVEL_VERSION",
        "the model's optimization level is not "
        "supported by this driver: rebuild it with "
        "another --optimization-level or update the driver",
    ),
    -13: (
        "RKNN_ERR_TARGET_PLATFORM_UNMATCH",
        "the model was built for another SoC: rebuild it with --target set to this board's SoC",
    ),
}


def error_name(code: int) -> str:
    entry = ERRORS.get(code)
    return entry[0] if entry else "RKNN error %d" % code


def error_meaning(code: int) -> str:
    entry = ERRORS.get(code)
    if entry:
        return entry[1]
    return "a code not in rkbench's table (a newer runtime?); the runtime's own lines say what it means"


def describe_error(call: str, code: int) -> str:
    """ "rknn_init returned -13 RKNN_ERR_TARGET_PLATFORM_UNMATCH: the model was built for ..."."""
    return "%s returned %d %s: %s" % (call, code, error_name(code), error_meaning(code))


# -- structures ------------------------------------------------------------------------------
class RknnInputOutputNum(Structure):
    _fields_ = [("n_input", c_uint32), ("n_output", c_uint32)]


class RknnTensorAttr(Structure):
    _fields_ = [
        ("index", c_uint32),
        ("n_dims", c_uint32),
        ("dims", c_uint32 * RKNN_MAX_DIMS),
        ("name", c_char * RKNN_MAX_NAME_LEN),
        ("n_elems", c_uint32),
        ("size", c_uint32),
        ("fmt", c_int),
        ("type", c_int),
        ("qnt_type", c_int),
        ("fl", c_int8),
        ("zp", c_int32),
        ("scale", c_float),
        ("w_stride", c_uint32),
        ("size_with_stride", c_uint32),
        ("pass_through", c_uint8),
        ("h_stride", c_uint32),
    ]


class RknnInput(Structure):
    _fields_ = [
        ("index", c_uint32),
        ("buf", c_void_p),
        ("size", c_uint32),
        ("pass_through", c_uint8),
        ("type", c_int),
        ("fmt", c_int),
    ]


class RknnOutput(Structure):
    _fields_ = [
        ("want_float", c_uint8),
        ("is_prealloc", c_uint8),
        ("index", c_uint32),
        ("buf", c_void_p),
        ("size", c_uint32),
    ]


class RknnPerfRun(Structure):
    #: microseconds of the last run
    _fields_ = [("run_duration", c_int64)]


class RknnPerfDetail(Structure):
    # perf_data is a char* owned by the runtime; read it with ctypes.string_at(ptr, data_len)
    _fields_ = [("perf_data", c_void_p), ("data_len", c_uint64)]


class RknnSdkVersion(Structure):
    _fields_ = [("api_version", c_char * 256), ("drv_version", c_char * 256)]


class RknnMemSize(Structure):
    _fields_ = [
        ("total_weight_size", c_uint32),
        ("total_internal_size", c_uint32),
        ("total_dma_allocated_size", c_uint64),
        ("total_sram_size", c_uint32),
        ("free_sram_size", c_uint32),
        ("reserved", c_uint32 * 10),
    ]


class RknnTensorMem(Structure):
    _fields_ = [
        ("virt_addr", c_void_p),
        ("phys_addr", c_uint64),
        ("fd", c_int32),
        ("offset", c_int32),
        ("size", c_uint32),
        ("flags", c_uint32),
        ("priv_data", c_void_p),
    ]


class RknnInitExtend(Structure):
    """The 2.3.2 header's rknn_init_extend (136 bytes). lite2 2.5.0 uses a 144-byte one
    (RknnInitExtendV25). rkbench passes NULL for it, which every runtime accepts."""

    _fields_ = [
        ("ctx", rknn_context),
        ("real_model_offset", c_int32),
        ("real_model_size", c_uint32),
        ("model_buffer_fd", c_int32),
        ("model_buffer_flags", c_uint32),
        ("reserved", c_uint8 * 112),
    ]


class RknnInitExtendV25(Structure):
    _fields_ = [
        ("ctx", rknn_context),
        ("real_model_offset", c_int32),
        ("real_model_size", c_uint32),
        ("model_buffer_fd", c_int32),
        ("model_buffer_flags", c_uint32),
        ("user_key", c_void_p),
        ("reserved", c_uint8 * 112),
    ]


#: (struct, size, {field: offset}) as in the facts; check_layouts() holds ctypes to them.
LAYOUTS: List[Tuple[Any, int, Dict[str, int]]] = [
    (RknnInputOutputNum, 8, {"n_input": 0, "n_output": 4}),
    (
        RknnTensorAttr,
        376,
        {
            "index": 0,
            "n_dims": 4,
            "dims": 8,
            "name": 72,
            "n_elems": 328,
            "size": 332,
            "fmt": 336,
            "type": 340,
            "qnt_type": 344,
            "fl": 348,
            "zp": 352,
            "scale": 356,
            "w_stride": 360,
            "size_with_stride": 364,
            "pass_through": 368,
            "h_stride": 372,
        },
    ),
    (RknnInput, 32, {"index": 0, "buf": 8, "size": 16, "pass_through": 20, "type": 24, "fmt": 28}),
    (RknnOutput, 24, {"want_float": 0, "is_prealloc": 1, "index": 4, "buf": 8, "size": 16}),
    (RknnPerfRun, 8, {"run_duration": 0}),
    (RknnPerfDetail, 16, {"perf_data": 0, "data_len": 8}),
    (RknnSdkVersion, 512, {"api_version": 0, "drv_version": 256}),
    (
        RknnMemSize,
        64,
        {
            "total_weight_size": 0,
            "total_internal_size": 4,
            "total_dma_allocated_size": 8,
            "total_sram_size": 16,
            "free_sram_size": 20,
            "reserved": 24,
        },
    ),
    (
        RknnTensorMem,
        40,
        {"virt_addr": 0, "phys_addr": 8, "fd": 16, "offset": 20, "size": 24, "flags": 28, "priv_data": 32},
    ),
    (
        RknnInitExtend,
        136,
        {
            "ctx": 0,
            "real_model_offset": 8,
            "real_model_size": 12,
            "model_buffer_fd": 16,
            "model_buffer_flags": 20,
            "reserved": 24,
        },
    ),
    (RknnInitExtendV25, 144, {"ctx": 0, "user_key": 24, "reserved": 32}),
]


def layout_mismatches() -> List[str]:
    """Every size or offset that differs from the facts, as readable lines (empty: all match)."""
    wrong = []
    if sizeof(rknn_context) != 8:
        wrong.append("rknn_context: %d bytes, expected 8" % sizeof(rknn_context))
    for struct, size, offsets in LAYOUTS:
        if sizeof(struct) != size:
            wrong.append("%s: %d bytes, expected %d" % (struct.__name__, sizeof(struct), size))
        for name, offset in offsets.items():
            actual = getattr(struct, name).offset
            if actual != offset:
                wrong.append("%s.%s: offset %d, expected %d" % (struct.__name__, name, actual, offset))
    return wrong


def check_layouts() -> int:
    """Raise AssertionError listing every mismatch; returns how many fields were checked."""
    wrong = layout_mismatches()
    if wrong:
        raise AssertionError("librknnrt ABI layouts differ from the facts on this machine:\n  " + "\n  ".join(wrong))
    return sum(len(offsets) + 1 for _, _, offsets in LAYOUTS) + 1


# -- prototypes ----------------------------------------------------------------------------------
#: symbol -> (restype, argtypes). Every runtime has these; a missing one means no runtime.
REQUIRED = {
    "rknn_init": (c_int, [POINTER(rknn_context), c_void_p, c_uint32, c_uint32, c_void_p]),
    "rknn_destroy": (c_int, [rknn_context]),
    "rknn_query": (c_int, [rknn_context, c_int, c_void_p, c_uint32]),
    "rknn_inputs_set": (c_int, [rknn_context, c_uint32, POINTER(RknnInput)]),
    "rknn_run": (c_int, [rknn_context, c_void_p]),
    "rknn_outputs_get": (c_int, [rknn_context, c_uint32, POINTER(RknnOutput), c_void_p]),
    "rknn_outputs_release": (c_int, [rknn_context, c_uint32, POINTER(RknnOutput)]),
}
#: Symbols older runtimes may lack; what is missing degrades (no zero-copy, no core masks).
OPTIONAL = {
    "rknn_set_core_mask": (c_int, [rknn_context, c_int]),
    "rknn_create_mem": (POINTER(RknnTensorMem), [rknn_context, c_uint32]),
    "rknn_destroy_mem": (c_int, [rknn_context, POINTER(RknnTensorMem)]),
    "rknn_set_io_mem": (c_int, [rknn_context, POINTER(RknnTensorMem), POINTER(RknnTensorAttr)]),
    "rknn_dup_context": (c_int, [POINTER(rknn_context), POINTER(rknn_context)]),
}


def declare(lib: ctypes.CDLL) -> Tuple[List[str], List[str]]:
    """Set restype/argtypes on the loaded library. Returns (missing required symbols,
    missing optional symbols)."""
    missing: Tuple[List[str], List[str]] = ([], [])
    for table, out in ((REQUIRED, missing[0]), (OPTIONAL, missing[1])):
        for symbol, (restype, argtypes) in table.items():
            try:
                function = getattr(lib, symbol)
            except AttributeError:
                out.append(symbol)
                continue
            function.restype = restype
            function.argtypes = argtypes
    return missing


def attr_dims(attr: RknnTensorAttr) -> List[int]:
    return [int(attr.dims[i]) for i in range(min(int(attr.n_dims), RKNN_MAX_DIMS))]


def attr_name(attr: RknnTensorAttr) -> str:
    return attr.name.decode("utf-8", "replace")


def attr_to_dict(attr: RknnTensorAttr) -> Dict[str, Any]:
    """The attr as plain data (names for the enums) for results and error messages."""
    return {
        "index": int(attr.index),
        "name": attr_name(attr),
        "dims": attr_dims(attr),
        "n_elems": int(attr.n_elems),
        "size": int(attr.size),
        "fmt": TENSOR_FORMATS.get(attr.fmt, str(attr.fmt)),
        "type": TENSOR_TYPES.get(attr.type, (str(attr.type), None))[0],
        "qnt_type": QUANT_TYPES.get(attr.qnt_type, str(attr.qnt_type)),
        "fl": int(attr.fl),
        "zp": int(attr.zp),
        "scale": float(attr.scale),
        "w_stride": int(attr.w_stride),
        "h_stride": int(attr.h_stride),
        "size_with_stride": int(attr.size_with_stride),
        "pass_through": int(attr.pass_through),
    }
