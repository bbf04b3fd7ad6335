"""rknnrt backend: the .rknn on the NPU through librknnrt's C API itself, with ctypes
(standard library), no rknn-toolkit-lite2. It sees what the runtime knows: the NPU's own
run time per iteration (RKNN_QUERY_PERF_RUN), the per-layer profile (PERF_DETAIL, in a
separate context), NPU memory (MEM_SIZE), API and driver versions (SDK_VERSION).

Every non-zero return becomes a RunnerError naming the call, the code's name and what it
means (rknnrt_abi.ERRORS); the runner attaches the runtime's own stderr lines. A symbol an
older runtime lacks degrades what it can (zero-copy, core masks, profile) and says so.
ctypes.CDLL releases the GIL around every call, so contexts may run in threads. Loading
the library and the context itself are in rknnrt_lib (no numpy there).
"""

from __future__ import annotations

import ctypes
import os
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from rkbench_wire import ModelRef
from rkbench_wire.constants import ERR_BACKEND_FAILED, ERR_BACKEND_MISSING, ERR_MODEL_MISSING

from ..errors import RunnerError
from . import rknnrt_abi as abi
from .base import Backend, Prepared, TensorInfo, bad_input
from .rknnrt_layout import NUMPY_TYPES, InputPlan, output_float, plan_input
from .rknnrt_lib import PROVISION_FIX, Context, ContextError, Runtime, open_runtime

STAGES_COPY = ("inputs_set", "run", "npu", "outputs_get")
STAGES_ZERO_COPY = ("inputs_set", "run", "npu")
ZERO_COPY_SYMBOLS = ("rknn_create_mem", "rknn_set_io_mem", "rknn_destroy_mem")


# -- the backend -------------------------------------------------------------------------------
class _Feed:
    """One prepared sample: the converted arrays (kept alive), the rknn_input array pointing
    at them (copy mode and the profile pass), and the memcpy list for zero-copy."""

    def __init__(self, plans: List[InputPlan]) -> None:
        self.plans = plans
        self.inputs = (abi.RknnInput * len(plans))()
        for k, plan in enumerate(plans):
            entry = self.inputs[k]
            entry.index = k
            entry.buf = plan.data.ctypes.data
            entry.size = plan.data.nbytes
            entry.pass_through = 1 if plan.pass_through else 0
            entry.type = _TYPE_CODES[plan.type]
            entry.fmt = _FORMAT_CODES[plan.fmt]
        self.copies: List[Tuple[int, int, int]] = []


class RknnRtBackend(Backend):
    name = "rknnrt"
    uses_core_mask = True
    supports_zero_copy = True

    def __init__(self) -> None:
        super().__init__()
        self._runtime: Optional[Runtime] = None
        self._ctx: Optional[Context] = None
        self._model_path: Optional[str] = None
        self._inputs: List[Dict[str, Any]] = []
        self._outputs: List[Dict[str, Any]] = []
        self._native_inputs: List[Optional[Dict[str, Any]]] = []
        self._native_outputs: List[Optional[Dict[str, Any]]] = []
        #: the structs themselves, by (query id, index): rknn_set_io_mem gets copies of them
        self._raw: Dict[Tuple[int, int], Any] = {}
        self._api: Optional[str] = None
        self._drv: Optional[str] = None
        self._mems: List[Any] = []
        self._in_mems: List[Any] = []
        self._out_mems: List[Any] = []
        self._io_plans: Optional[List[Tuple[str, str, bool]]] = None
        self._stages: Dict[str, List[int]] = {}
        self._notes: List[str] = []
        self._perf_run = None
        self._outputs_struct: Any = None

    # -- load --------------------------------------------------------------------------------
    def load(self, model: ModelRef, core_mask: Optional[str] = None, data_format: Sequence[Optional[str]] = ()) -> None:
        if not model.rknn:
            raise RunnerError(ERR_MODEL_MISSING, "backend rknnrt needs model.rknn in the run spec")
        if not os.path.isfile(model.rknn):
            raise RunnerError(ERR_MODEL_MISSING, "model not found on the board: %s" % model.rknn)
        mask = core_mask or "auto"
        self.core_mask = mask
        self.data_format = list(data_format)
        self._model_path = model.rknn
        runtime = self._runtime = open_runtime(self.root)
        if self.io_mode == "zero_copy":
            lacking = [s for s in ZERO_COPY_SYMBOLS if not runtime.has(s)]
            if lacking:
                raise RunnerError(
                    ERR_BACKEND_MISSING,
                    "io_mode zero_copy needs %s, which %s lacks (an older "
                    "runtime): run with --io copy, or update librknnrt (%s)"
                    % (", ".join(lacking), runtime.describe(), PROVISION_FIX),
                    core_mask=mask,
                )
        ctx = self._ctx = self._new_context(runtime, model.rknn)
        ctx.set_core_mask(mask, self.npu_cores)
        self._query_io(ctx)
        self._api, self._drv = ctx.sdk_version()
        self._perf_run = abi.RknnPerfRun()
        if ctx.query(abi.RKNN_QUERY_PERF_RUN, self._perf_run) != 0:
            self._perf_run = None
            self._notes.append(
                "npu: rknn_query(RKNN_QUERY_PERF_RUN) is refused by %s: no NPU time" % runtime.describe()
            )
        self._outputs_struct = (abi.RknnOutput * len(self._outputs))()
        for k, entry in enumerate(self._outputs_struct):
            entry.index = k
        stages = STAGES_ZERO_COPY if self.io_mode == "zero_copy" else STAGES_COPY
        self._stages = {name: [] for name in stages if name != "npu" or self._perf_run is not None}

    def _new_context(self, runtime: Runtime, path: str) -> Context:
        """The first context inits the model; a further one (share_with set, throughput mode)
        is rknn_dup_context'ed from it where the runtime has that, else inited with
        RKNN_FLAG_SHARE_WEIGHT_MEM, else inited separately (weights loaded again)."""
        parent = self.share_with
        parent_ctx = getattr(parent, "_ctx", None)
        if parent_ctx is None:
            self.creation = "init"
            return Context(runtime, path)
        if runtime.has("rknn_dup_context"):
            self.creation = "dup_context"
            return Context.dup(parent_ctx)
        try:
            ctx = Context(runtime, path, share_with=parent_ctx)
            self.creation = "share_weight"
            return ctx
        except ContextError as err:
            if err.out_of_memory:
                raise
            self._notes.append(
                "context: RKNN_FLAG_SHARE_WEIGHT_MEM refused (%s): inited separately, "
                "weights loaded again" % err.message
            )
        self.creation = "separate"
        return Context(runtime, path)

    def _query_io(self, ctx: Context) -> None:
        num = abi.RknnInputOutputNum()
        ctx.check(ctx.query(abi.RKNN_QUERY_IN_OUT_NUM, num), "rknn_query(RKNN_QUERY_IN_OUT_NUM)")
        for count, cmd, native_cmd, attrs, natives, what in (
            (
                num.n_input,
                abi.RKNN_QUERY_INPUT_ATTR,
                abi.RKNN_QUERY_NATIVE_INPUT_ATTR,
                self._inputs,
                self._native_inputs,
                "INPUT",
            ),
            (
                num.n_output,
                abi.RKNN_QUERY_OUTPUT_ATTR,
                abi.RKNN_QUERY_NATIVE_OUTPUT_ATTR,
                self._outputs,
                self._native_outputs,
                "OUTPUT",
            ),
        ):
            for index in range(count):
                ret, attr = ctx.attr(cmd, index)
                ctx.check(ret, "rknn_query(RKNN_QUERY_%s_ATTR, index %d)" % (what, index))
                attrs.append(abi.attr_to_dict(attr))
                self._raw[(cmd, index)] = attr
                ret, native = ctx.attr(native_cmd, index)
                natives.append(abi.attr_to_dict(native) if ret == 0 else None)
                if ret == 0:
                    self._raw[(native_cmd, index)] = native
                else:
                    self._notes.append(
                        "%s %d: rknn_query(RKNN_QUERY_NATIVE_%s_ATTR) returned %d %s: the "
                        "runtime converts it inside the timed call"
                        % (what.lower(), index, what, ret, abi.error_name(ret))
                    )

    def info(self) -> Dict[str, Any]:
        return {
            "inputs": [_tensor_info(a) for a in self._inputs],
            "outputs": [_tensor_info(a) for a in self._outputs],
            "versions": self._versions(),
            "attrs": {
                "inputs": self._inputs,
                "outputs": self._outputs,
                "native_inputs": self._native_inputs,
                "native_outputs": self._native_outputs,
            },
        }

    def _versions(self) -> Dict[str, Optional[str]]:
        runtime = self._runtime
        return {
            "librknnrt": runtime.version if runtime else None,
            "librknnrt_path": runtime.path if runtime else None,
            "api_version": self._api,
            "drv_version": self._drv,
            "sdk": "API %s, driver %s" % (self._api, self._drv) if self._api else None,
        }

    # -- inputs ------------------------------------------------------------------------------
    def prepare(self, arrays: Sequence[Any]) -> Prepared:
        """Each input converted once, before timing, to the native type and layout (fed with
        pass_through); what cannot be is handed to the runtime as it is, and a step says so."""
        if len(arrays) != len(self._inputs):
            raise bad_input(
                "the model has %d input(s) (%s) but each sample gives %d .npy file(s)"
                % (len(self._inputs), ", ".join(a["name"] for a in self._inputs), len(arrays))
            )
        plans = []
        for k, array in enumerate(arrays):
            fmt = self.data_format[k] if k < len(self.data_format) else None
            try:
                plans.append(
                    plan_input(
                        k,
                        array,
                        fmt,
                        self._inputs[k],
                        self._native_inputs[k],
                        "rknn_run" if self.io_mode == "zero_copy" else "rknn_inputs_set",
                    )
                )
            except ValueError as exc:
                raise bad_input("input %d (%s): %s (data_format %s)" % (k, self._inputs[k]["name"], exc, fmt)) from exc
        feed = _Feed(plans)
        if self.io_mode == "zero_copy":
            self._bind_zero_copy(feed)
        steps = [s for plan in plans for s in plan.steps]
        return Prepared(feed=feed, arrays=[p.data for p in plans], steps=steps)

    def _bind_zero_copy(self, feed: _Feed) -> None:
        """The first prepared sample creates the buffers and rknn_set_io_mem's them (once);
        every sample gets the memcpy list into them."""
        ctx = self._ctx
        assert ctx is not None
        shape = [(p.type, p.fmt, p.pass_through) for p in feed.plans]
        if self._io_plans is None:
            for k, plan in enumerate(feed.plans):
                native = self._native_inputs[k]
                attr = self._attr_copy(
                    abi.RKNN_QUERY_NATIVE_INPUT_ATTR if plan.pass_through else abi.RKNN_QUERY_INPUT_ATTR, k
                )
                attr.pass_through = 1 if plan.pass_through else 0
                if not plan.pass_through:  # the buffer holds the array as it is: say so
                    attr.type = _TYPE_CODES[plan.type]
                    attr.fmt = _FORMAT_CODES[plan.fmt]
                    attr.n_dims = plan.data.ndim
                    for i, dim in enumerate(plan.data.shape):
                        attr.dims[i] = dim
                    attr.n_elems = plan.data.size
                    attr.size = attr.size_with_stride = plan.data.nbytes
                size = max(plan.data.nbytes, int(native["size_with_stride"]) if native else 0)
                self._in_mems.append(self._create_mem(size, attr, "input %d" % k))
            for k, native in enumerate(self._native_outputs):
                if native is None:
                    raise RunnerError(
                        ERR_BACKEND_FAILED,
                        "io_mode zero_copy needs the native attr of output %d, "
                        "which %s refused: run with --io copy" % (k, self._runtime.describe()),
                    )
                self._out_mems.append(
                    self._create_mem(
                        int(native["size_with_stride"] or native["size"]),
                        self._attr_copy(abi.RKNN_QUERY_NATIVE_OUTPUT_ATTR, k),
                        "output %d" % k,
                    )
                )
            self._io_plans = shape
        elif shape != self._io_plans:
            raise bad_input(
                "zero-copy buffers were set up for %s but a later sample needs %s" % (self._io_plans, shape)
            )
        feed.copies = [
            (mem.contents.virt_addr, plan.data.ctypes.data, plan.data.nbytes)
            for mem, plan in zip(self._in_mems, feed.plans)
        ]

    def _attr_copy(self, cmd: int, index: int) -> Any:
        return abi.RknnTensorAttr.from_buffer_copy(self._raw[(cmd, index)])

    def _create_mem(self, size: int, attr: Any, what: str) -> Any:
        ctx = self._ctx
        mem = ctx.lib.rknn_create_mem(ctx.handle, size)
        if not mem:
            raise RunnerError(
                ERR_BACKEND_FAILED,
                "rknn_create_mem(%d bytes) for %s returned NULL (%s): NPU "
                "memory exhausted? free memory/CMA or run with --io copy" % (size, what, self._runtime.describe()),
            )
        self._mems.append(mem)
        ctx.check(ctx.lib.rknn_set_io_mem(ctx.handle, mem, ctypes.byref(attr)), "rknn_set_io_mem(%s)" % what)
        return mem

    # -- running -----------------------------------------------------------------------------
    def infer(self, feed: Any) -> List[Any]:
        """One run outside the timed loop; outputs as float32 in the model's layout, named
        from OUTPUT_ATTR (want_float=1 in copy mode; dequantized from the buffers in zero-copy)."""
        ctx = self._ctx
        assert ctx is not None
        lib, handle = ctx.lib, ctx.handle
        if self.io_mode == "zero_copy":
            for dst, src, size in feed.copies:
                ctypes.memmove(dst, src, size)
            ctx.check(lib.rknn_run(handle, None), "rknn_run", self.core_mask)
            return [self._read_mem(k) for k in range(len(self._outputs))]
        ctx.check(lib.rknn_inputs_set(handle, len(feed.plans), feed.inputs), "rknn_inputs_set", self.core_mask)
        ctx.check(lib.rknn_run(handle, None), "rknn_run", self.core_mask)
        outs = (abi.RknnOutput * len(self._outputs))()
        for k, entry in enumerate(outs):
            entry.index = k
            entry.want_float = 1
        ctx.check(lib.rknn_outputs_get(handle, len(outs), outs, None), "rknn_outputs_get(want_float=1)", self.core_mask)
        try:
            arrays = []
            for k, entry in enumerate(outs):
                raw = ctypes.string_at(entry.buf, entry.size)
                arrays.append(np.frombuffer(raw, dtype=np.float32).reshape(self._outputs[k]["dims"]).copy())
        finally:
            lib.rknn_outputs_release(handle, len(outs), outs)
        return arrays

    def _read_mem(self, k: int) -> Any:
        native = self._native_outputs[k]
        dtype = np.dtype(NUMPY_TYPES[native["type"]])
        size = int(native["size_with_stride"] or native["size"])
        raw = np.frombuffer(ctypes.string_at(self._out_mems[k].contents.virt_addr, size), dtype=dtype)
        return output_float(raw, native, self._outputs[k])

    def start_timing(self) -> None:
        for values in self._stages.values():  # in place: bound iterations append to these lists
            del values[:]

    def bind(self, feed: Any) -> Callable[[], Any]:
        """One timed iteration with its stage times (ns) appended to lists bound here: a few
        list appends and clock reads are all the Python between the C calls."""
        ctx = self._ctx
        assert ctx is not None
        lib, handle, check, mask = ctx.lib, ctx.handle, ctx.check, self.core_mask
        run = lib.rknn_run
        perf = time.perf_counter_ns
        stages = self._stages
        in_append = stages["inputs_set"].append
        run_append = stages["run"].append
        cmd = abi.RKNN_QUERY_PERF_RUN
        perf_size = ctypes.sizeof(abi.RknnPerfRun)
        if self._perf_run is not None:
            query = lib.rknn_query
            perf_run = self._perf_run
            npu_append = stages["npu"].append
        else:  # the runtime refused PERF_RUN at load: same loop shape, nothing recorded
            query = _no_query
            perf_run = abi.RknnPerfRun()
            npu_append = _discard
        perf_ref = ctypes.byref(perf_run)

        if self.io_mode == "zero_copy":
            memmove = ctypes.memmove
            copies = feed.copies

            def zero_copy_iteration() -> None:
                t0 = perf()
                for dst, src, size in copies:
                    memmove(dst, src, size)
                t1 = perf()
                ret = run(handle, None)
                t2 = perf()
                if ret != 0:
                    check(ret, "rknn_run", mask)
                ret = query(handle, cmd, perf_ref, perf_size)
                if ret != 0:
                    check(ret, "rknn_query(RKNN_QUERY_PERF_RUN)", mask)
                npu_append(perf_run.run_duration * 1000)
                in_append(t1 - t0)
                run_append(t2 - t1)

            return zero_copy_iteration

        inputs_set = lib.rknn_inputs_set
        outputs_get = lib.rknn_outputs_get
        release = lib.rknn_outputs_release
        n_in = len(feed.plans)
        inputs = feed.inputs
        n_out = len(self._outputs)
        outputs = self._outputs_struct  # want_float=0, is_prealloc=0: the runtime's buffers
        out_append = stages["outputs_get"].append

        def copy_iteration() -> None:
            t0 = perf()
            ret = inputs_set(handle, n_in, inputs)
            t1 = perf()
            if ret != 0:
                check(ret, "rknn_inputs_set", mask)
            ret = run(handle, None)
            t2 = perf()
            if ret != 0:
                check(ret, "rknn_run", mask)
            ret = outputs_get(handle, n_out, outputs, None)
            if ret != 0:
                check(ret, "rknn_outputs_get(want_float=0)", mask)
            release(handle, n_out, outputs)
            t3 = perf()
            ret = query(handle, cmd, perf_ref, perf_size)
            if ret != 0:
                check(ret, "rknn_query(RKNN_QUERY_PERF_RUN)", mask)
            npu_append(perf_run.run_duration * 1000)
            in_append(t1 - t0)
            run_append(t2 - t1)
            out_append(t3 - t2)

        return copy_iteration

    def stage_samples(self, start: int, end: int) -> Optional[Dict[str, List[int]]]:
        if not self._stages:
            return None
        return {name: values[start:end] for name, values in self._stages.items()}

    def perf(self) -> Optional[Dict[str, Any]]:
        npu = self._stages.get("npu")
        return {"npu_ns": list(npu), "source": "RKNN_QUERY_PERF_RUN"} if npu else None

    def timing_notes(self) -> List[str]:
        notes = list(self._notes)
        if self.io_mode == "zero_copy":
            notes.append(
                "zero-copy (rknn_create_mem + rknn_set_io_mem): inputs_set is the memcpy of the prepared "
                "input into its NPU buffer; outputs stay in their buffers and are read and converted "
                "after the timed loop (there is no outputs_get stage)"
            )
        else:
            notes.append(
                "copy: each timed iteration is rknn_inputs_set, rknn_run, rknn_outputs_get (want_float=0: "
                "no float conversion) and rknn_outputs_release (the outputs_get stage)"
            )
        if self._perf_run is not None:
            notes.append(
                "npu: RKNN_QUERY_PERF_RUN (the runtime's own figure, microsecond resolution), queried "
                "after each run: its cost is in the end-to-end latency but in no stage"
            )
        return notes

    # -- outside the timed loop ----------------------------------------------------------------------
    def memory(self) -> Optional[Dict[str, Any]]:
        ctx = self._ctx
        if ctx is None:
            return None
        mem = abi.RknnMemSize()
        ret = ctx.query(abi.RKNN_QUERY_MEM_SIZE, mem)
        if ret != 0:
            return {
                "unsupported": "%s (%s)"
                % (abi.describe_error("rknn_query(RKNN_QUERY_MEM_SIZE)", ret), self._runtime.describe())
            }
        return {
            "weight_bytes": int(mem.total_weight_size),
            "internal_bytes": int(mem.total_internal_size),
            "dma_bytes": int(mem.total_dma_allocated_size),
            "sram_total_bytes": int(mem.total_sram_size),
            "sram_free_bytes": int(mem.free_sram_size),
        }

    def profile(self, feed: Any, runs: int) -> Dict[str, Any]:
        """The per-layer table from a SEPARATE context inited with RKNN_FLAG_COLLECT_PERF_MASK
        (it slows every run), `runs` copy-mode runs, then RKNN_QUERY_PERF_DETAIL's raw text.
        Anything the runtime refuses gives {"unsupported": reason}; the run goes on."""
        runtime = self._runtime
        flags = abi.RKNN_FLAG_COLLECT_PERF_MASK
        started = time.perf_counter()
        try:
            ctx = Context(runtime, self._model_path, flags)
        except RunnerError as err:
            return {"unsupported": "a profiling context could not be created: %s" % err.message}
        try:
            ctx.set_core_mask(self.core_mask or "auto", self.npu_cores)
            outs = (abi.RknnOutput * len(self._outputs))()
            for k, entry in enumerate(outs):
                entry.index = k
            for _ in range(runs):
                ctx.check(
                    ctx.lib.rknn_inputs_set(ctx.handle, len(feed.plans), feed.inputs), "rknn_inputs_set [profile]"
                )
                ctx.check(ctx.lib.rknn_run(ctx.handle, None), "rknn_run [profile]")
                ctx.check(ctx.lib.rknn_outputs_get(ctx.handle, len(outs), outs, None), "rknn_outputs_get [profile]")
                ctx.lib.rknn_outputs_release(ctx.handle, len(outs), outs)
            detail = abi.RknnPerfDetail()
            ret = ctx.query(abi.RKNN_QUERY_PERF_DETAIL, detail)
            if ret != 0:
                return {
                    "unsupported": "%s (%s)"
                    % (abi.describe_error("rknn_query(RKNN_QUERY_PERF_DETAIL)", ret), runtime.describe())
                }
            if not detail.perf_data or not detail.data_len:
                return {"unsupported": "rknn_query(RKNN_QUERY_PERF_DETAIL) gave no table (%s)" % runtime.describe()}
            text = ctypes.string_at(detail.perf_data, detail.data_len).decode("utf-8", "replace").rstrip("\0")
        except RunnerError as err:
            return {"unsupported": "the profiling pass failed: %s" % err.message}
        finally:
            ctx.destroy()
        return {"text": text, "runs": runs, "seconds": time.perf_counter() - started, "flags": flags}

    def close(self) -> None:
        ctx, self._ctx = self._ctx, None
        if ctx is None:
            return
        mems, self._mems = self._mems, []
        for mem in mems:
            ctx.lib.rknn_destroy_mem(ctx.handle, mem)
        ctx.destroy()


def _no_query(*args: Any) -> int:
    return 0


def _discard(value: Any) -> None:
    return None


def _tensor_info(attr: Dict[str, Any]) -> TensorInfo:
    fmt = attr["fmt"] if attr["fmt"] in ("nhwc", "nchw") else None
    return TensorInfo(name=attr["name"], shape=list(attr["dims"]), dtype=attr["type"], data_format=fmt)


_TYPE_CODES = {name: code for code, (name, _) in abi.TENSOR_TYPES.items()}
_FORMAT_CODES = {name: code for code, name in abi.TENSOR_FORMATS.items()}
