"""A minimal ctypes caller of the librknnrt C API, for the stand-in's own tests only.

Not a product module (the board-side backend lives in device/): it mirrors the layouts of
tests/standins/librknnrt/rknn_abi.h and returns raw return codes, so tests see exactly
what a C caller would.
"""

from __future__ import annotations

import ctypes as C
from pathlib import Path
from typing import Optional, Sequence, Tuple, Union

import numpy as np

QUERY = {
    "IN_OUT_NUM": 0, "INPUT_ATTR": 1, "OUTPUT_ATTR": 2, "PERF_DETAIL": 3, "PERF_RUN": 4,
    "SDK_VERSION": 5, "MEM_SIZE": 6, "CUSTOM_STRING": 7, "NATIVE_INPUT_ATTR": 8,
    "NATIVE_OUTPUT_ATTR": 9, "NATIVE_NHWC_INPUT_ATTR": 10, "NATIVE_NHWC_OUTPUT_ATTR": 11,
    "DEVICE_MEM_INFO": 12, "INPUT_DYNAMIC_RANGE": 13, "CURRENT_INPUT_ATTR": 14,
    "CURRENT_OUTPUT_ATTR": 15, "CURRENT_NATIVE_INPUT_ATTR": 16, "CURRENT_NATIVE_OUTPUT_ATTR": 17,
}
FLOAT32, FLOAT16, INT8, UINT8 = 0, 1, 2, 3
NCHW, NHWC, NC1HWC2, UNDEFINED = 0, 1, 2, 3
FLAG_COLLECT_PERF, FLAG_SHARE_WEIGHT_MEM, FLAG_ENABLE_SRAM = 0x8, 0x20, 0x800
SUCC, ERR_FAIL, ERR_DEVICE_UNAVAILABLE, ERR_PARAM_INVALID, ERR_MODEL_INVALID = 0, -1, -3, -5, -6
ERR_CTX_INVALID, ERR_INPUT_INVALID, ERR_OUTPUT_INVALID, ERR_TARGET_PLATFORM_UNMATCH = -7, -8, -9, -13


class TensorAttr(C.Structure):
    _fields_ = [("index", C.c_uint32), ("n_dims", C.c_uint32), ("dims", C.c_uint32 * 16),
                ("name", C.c_char * 256), ("n_elems", C.c_uint32), ("size", C.c_uint32), ("fmt", C.c_int),
                ("type", C.c_int), ("qnt_type", C.c_int), ("fl", C.c_int8), ("zp", C.c_int32),
                ("scale", C.c_float), ("w_stride", C.c_uint32), ("size_with_stride", C.c_uint32),
                ("pass_through", C.c_uint8), ("h_stride", C.c_uint32)]

    @property
    def shape(self) -> tuple:
        return tuple(self.dims[: self.n_dims])


class Input(C.Structure):
    _fields_ = [("index", C.c_uint32), ("buf", C.c_void_p), ("size", C.c_uint32), ("pass_through", C.c_uint8),
                ("type", C.c_int), ("fmt", C.c_int)]


class Output(C.Structure):
    _fields_ = [("want_float", C.c_uint8), ("is_prealloc", C.c_uint8), ("index", C.c_uint32),
                ("buf", C.c_void_p), ("size", C.c_uint32)]


class InOutNum(C.Structure):
    _fields_ = [("n_input", C.c_uint32), ("n_output", C.c_uint32)]


class PerfRun(C.Structure):
    _fields_ = [("run_duration", C.c_int64)]


class PerfDetail(C.Structure):
    _fields_ = [("perf_data", C.c_char_p), ("data_len", C.c_uint64)]


class SdkVersion(C.Structure):
    _fields_ = [("api_version", C.c_char * 256), ("drv_version", C.c_char * 256)]


class MemSize(C.Structure):
    _fields_ = [("total_weight_size", C.c_uint32), ("total_internal_size", C.c_uint32),
                ("total_dma_allocated_size", C.c_uint64), ("total_sram_size", C.c_uint32),
                ("free_sram_size", C.c_uint32), ("reserved", C.c_uint32 * 10)]


class TensorMem(C.Structure):
    _fields_ = [("virt_addr", C.c_void_p), ("phys_addr", C.c_uint64), ("fd", C.c_int32), ("offset", C.c_int32),
                ("size", C.c_uint32), ("flags", C.c_uint32), ("priv_data", C.c_void_p)]


class InitExtend(C.Structure):  # the 2.5.0 layout (144 bytes)
    _fields_ = [("ctx", C.c_uint64), ("real_model_offset", C.c_int32), ("real_model_size", C.c_uint32),
                ("model_buffer_fd", C.c_int32), ("model_buffer_flags", C.c_uint32), ("user_key", C.c_char_p),
                ("reserved", C.c_uint8 * 112)]


class Runtime:
    """One loaded librknnrt (ctypes keeps it loaded for the life of the process)."""

    def __init__(self, path: Union[str, Path]):
        self.path = Path(path)
        lib = self.lib = C.CDLL(str(path))
        u64, u32, vp = C.c_uint64, C.c_uint32, C.c_void_p
        for name, args in {
            "rknn_init": [C.POINTER(u64), vp, u32, u32, vp], "rknn_destroy": [u64],
            "rknn_query": [u64, C.c_int, vp, u32], "rknn_inputs_set": [u64, u32, vp], "rknn_run": [u64, vp],
            "rknn_outputs_get": [u64, u32, vp, vp], "rknn_outputs_release": [u64, u32, vp],
            "rknn_set_core_mask": [u64, C.c_int], "rknn_set_input_shapes": [u64, u32, vp],
        }.items():
            getattr(lib, name).argtypes = args
            getattr(lib, name).restype = C.c_int
        if self.has("rknn_create_mem"):
            lib.rknn_create_mem.argtypes = [u64, u32]
            lib.rknn_create_mem.restype = C.POINTER(TensorMem)
            lib.rknn_destroy_mem.argtypes = [u64, C.POINTER(TensorMem)]
            lib.rknn_set_io_mem.argtypes = [u64, C.POINTER(TensorMem), C.POINTER(TensorAttr)]
            lib.rknn_dup_context.argtypes = [C.POINTER(u64), C.POINTER(u64)]

    def has(self, symbol: str) -> bool:
        return hasattr(self.lib, symbol)

    # -- context --------------------------------------------------------------------------
    def init(self, model: Union[bytes, str, Path], flags: int = 0,
             extend: Optional[InitExtend] = None) -> Tuple[int, int]:
        ctx = C.c_uint64(0)
        if isinstance(model, bytes):
            buf = C.create_string_buffer(model, len(model))
            rc = self.lib.rknn_init(C.byref(ctx), buf, len(model), flags, C.byref(extend) if extend else None)
        else:
            path = C.create_string_buffer(str(model).encode())
            rc = self.lib.rknn_init(C.byref(ctx), path, 0, flags, C.byref(extend) if extend else None)
        return rc, ctx.value

    def dup(self, ctx: int) -> Tuple[int, int]:
        src, out = C.c_uint64(ctx), C.c_uint64(0)
        rc = self.lib.rknn_dup_context(C.byref(src), C.byref(out))
        return rc, out.value

    def destroy(self, ctx: int) -> int:
        return self.lib.rknn_destroy(ctx)

    # -- queries ---------------------------------------------------------------------------
    def query(self, ctx: int, cmd: Union[str, int], info: C.Structure, size: Optional[int] = None) -> int:
        cmd = QUERY[cmd] if isinstance(cmd, str) else cmd
        return self.lib.rknn_query(ctx, cmd, C.byref(info), C.sizeof(info) if size is None else size)

    def attr(self, ctx: int, cmd: str, index: int = 0) -> TensorAttr:
        a = TensorAttr()
        a.index = index
        rc = self.query(ctx, cmd, a)
        assert rc == SUCC, f"{cmd} {index}: {rc}"
        return a

    def io_num(self, ctx: int) -> Tuple[int, int]:
        io = InOutNum()
        assert self.query(ctx, "IN_OUT_NUM", io) == SUCC
        return io.n_input, io.n_output

    def perf_run_us(self, ctx: int) -> int:
        p = PerfRun()
        assert self.query(ctx, "PERF_RUN", p) == SUCC
        return p.run_duration

    def perf_detail(self, ctx: int) -> Tuple[int, str]:
        p = PerfDetail()
        rc = self.query(ctx, "PERF_DETAIL", p)
        return rc, (p.perf_data or b"").decode() if rc == SUCC else ""

    def mem_size(self, ctx: int) -> MemSize:
        m = MemSize()
        assert self.query(ctx, "MEM_SIZE", m) == SUCC
        return m

    # -- running ---------------------------------------------------------------------------
    def inputs_set(self, ctx: int, arrays: Sequence[np.ndarray], types: Sequence[int], fmts: Sequence[int],
                   pass_through: bool = False) -> int:
        arr = (Input * len(arrays))()
        held = [np.ascontiguousarray(a) for a in arrays]  # alive until the call has copied them
        for i, (a, t, f) in enumerate(zip(held, types, fmts)):
            arr[i] = Input(i, a.ctypes.data, a.nbytes, int(pass_through), t, f)
        return self.lib.rknn_inputs_set(ctx, len(arrays), arr)

    def run(self, ctx: int) -> int:
        return self.lib.rknn_run(ctx, None)

    def outputs(self, ctx: int, n: int, want_float: bool = True) -> Tuple[int, list]:
        """rknn_outputs_get + copy to numpy + rknn_outputs_release; the arrays are flat."""
        outs = (Output * n)()
        for i in range(n):
            outs[i].index = i
            outs[i].want_float = int(want_float)
        rc = self.lib.rknn_outputs_get(ctx, n, outs, None)
        if rc != SUCC:
            return rc, []
        got = [bytes(C.string_at(outs[i].buf, outs[i].size)) for i in range(n)]
        assert self.lib.rknn_outputs_release(ctx, n, outs) == SUCC
        return rc, got

    def set_core_mask(self, ctx: int, mask: int) -> int:
        return self.lib.rknn_set_core_mask(ctx, mask)

    # -- zero-copy -------------------------------------------------------------------------
    def create_mem(self, ctx: int, size: int):
        return self.lib.rknn_create_mem(ctx, size)

    def destroy_mem(self, ctx: int, mem) -> int:
        return self.lib.rknn_destroy_mem(ctx, mem)

    def set_io_mem(self, ctx: int, mem, attr: TensorAttr) -> int:
        return self.lib.rknn_set_io_mem(ctx, mem, C.byref(attr))


def mem_bytes(mem, size: Optional[int] = None) -> bytes:
    return C.string_at(mem.contents.virt_addr, size if size is not None else mem.contents.size)


def mem_write(mem, data: bytes) -> None:
    C.memmove(mem.contents.virt_addr, data, len(data))
