"""rknnlite backend: the .rknn on the board's NPU through rknn-toolkit-lite2.

RKNNLite reports most failures by return value (-1 from load_rknn/init_runtime, None
from inference) after printing to stdout/stderr; each is turned into a RunnerError.

What it cannot tell: inference() does rknn_inputs_set, rknn_run and rknn_outputs_get in one
call, so there is no stage split. NPU time only through lite2's INTERNAL
`RKNNLite.rknn_runtime.get_run_perf()` (RKNN_QUERY_PERF_RUN in microseconds; not a public
API): used when it is there and answers with a number, else the notes say why not.
"""

from __future__ import annotations

import functools
import os
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from rkbench_wire import CORE_MASK_VALUES, ModelRef
from rkbench_wire.constants import ERR_BACKEND_FAILED, ERR_BACKEND_MISSING, ERR_MODEL_MISSING

from ..errors import RunnerError
from ..sysfs import librknnrt_version
from ..versions import dist_version
from .base import Backend, Prepared, TensorInfo, check_outputs, onnx_io, rknn_data_format

#: RKNNLite attribute for each core-mask name (values in rkbench_wire.CORE_MASK_VALUES).
CORE_MASK_ATTRS = {
    "auto": "NPU_CORE_AUTO",
    "0": "NPU_CORE_0",
    "1": "NPU_CORE_1",
    "2": "NPU_CORE_2",
    "0_1": "NPU_CORE_0_1",
    "0_1_2": "NPU_CORE_0_1_2",
}


def versions(root: str = "/") -> Dict[str, Optional[str]]:
    return {
        "rknn_toolkit_lite2": dist_version(["rknn-toolkit-lite2", "rknn_toolkit_lite2"]),
        "librknnrt": librknnrt_version(root),
    }


def core_mask_value(rknnlite_cls: Any, mask: str) -> int:
    """The integer init_runtime(core_mask=...) takes, from the class constant when the
    installed RKNNLite has it, else from the documented value."""
    value = getattr(rknnlite_cls, CORE_MASK_ATTRS[mask], None)
    if isinstance(value, int):
        return value
    return CORE_MASK_VALUES[mask]


class RknnLiteBackend(Backend):
    name = "rknnlite"
    uses_core_mask = True

    def __init__(self, npu_cores: Optional[int] = None) -> None:
        super().__init__()
        #: NPU cores of this SoC when known (the runner sets it from the device tree).
        self.npu_cores = npu_cores
        self._rknn: Any = None
        self._infer: Any = None
        self._fmt: Optional[List[str]] = None
        self._sdk: Optional[str] = None
        self._io: Any = None
        self._npu: List[int] = []
        self._run_perf: Optional[Tuple[Optional[Callable[[], Any]], str]] = None

    def load(self, model: ModelRef, core_mask: Optional[str] = None,
             data_format: Sequence[Optional[str]] = ()) -> None:
        if not model.rknn:
            raise RunnerError(ERR_MODEL_MISSING, "backend rknnlite needs model.rknn in the run spec")
        if not os.path.isfile(model.rknn):
            raise RunnerError(ERR_MODEL_MISSING, "model not found on the board: %s" % model.rknn)
        try:
            from rknnlite.api import RKNNLite
        except Exception as exc:
            raise RunnerError(ERR_BACKEND_MISSING,
                              "rknn-toolkit-lite2 cannot be imported here (%s): run `rkbench provision` "
                              "to install it (it also needs /usr/lib/librknnrt.so)" % exc)
        mask = core_mask or "auto"
        self.core_mask = mask
        self.data_format = list(data_format)
        try:
            self._rknn = RKNNLite(verbose=False)
        except Exception as exc:
            raise RunnerError(ERR_BACKEND_FAILED, "RKNNLite() failed: %s" % exc)
        ret = _call(self._rknn.load_rknn, "load_rknn(%s)" % model.rknn, model.rknn)
        if ret != 0:
            raise RunnerError(ERR_BACKEND_FAILED,
                              "load_rknn(%s) returned %r: the file is not a valid .rknn for this "
                              "runtime (built for another target_platform or a newer toolkit?)"
                              % (model.rknn, ret))
        value = core_mask_value(RKNNLite, mask)
        if self.npu_cores == 1:
            # Single-core SoCs (RK3566/RK3568/RK3562) refuse rknn_set_core_mask; core 0 is
            # the only core, so "auto" and "0" both mean the default init.
            value = 0
            ret = _call(self._rknn.init_runtime, "init_runtime() [single-core SoC]")
        else:
            ret = _call(self._rknn.init_runtime, "init_runtime(core_mask=%s)" % mask, core_mask=value)
        if ret != 0:
            raise RunnerError(ERR_BACKEND_FAILED,
                              "init_runtime(core_mask=%s [%d]) returned %r: the NPU runtime could not "
                              "start; check that librknnrt matches the toolkit that built the model "
                              "and that the rknpu driver is loaded (`rkbench doctor`)" % (mask, value, ret),
                              core_mask=mask)
        self._infer = self._rknn.inference
        try:
            self._sdk = str(self._rknn.get_sdk_version())
        except Exception:
            self._sdk = None
        self._io = onnx_io(model.onnx)

    def info(self) -> Dict[str, Any]:
        inputs: List[TensorInfo] = []
        outputs: List[TensorInfo] = []
        if self._io is not None:
            inputs, outputs = self._io
        out = {"inputs": inputs, "outputs": outputs, "versions": versions()}
        out["versions"]["sdk"] = self._sdk
        return out

    def prepare(self, arrays: Sequence[Any]) -> Prepared:
        self._fmt = rknn_data_format(self.data_format, arrays)
        return Prepared(feed=list(arrays), arrays=list(arrays))

    def infer(self, feed: Any) -> List[Any]:
        try:
            outputs = self._infer(inputs=feed, data_format=self._fmt)
        except Exception as exc:
            raise RunnerError(ERR_BACKEND_FAILED, "RKNNLite.inference failed: %s" % exc,
                              core_mask=self.core_mask)
        return check_outputs(outputs, "RKNNLite.inference")

    def bind(self, feed: Any) -> Callable[[], Any]:
        call = functools.partial(self._infer, inputs=feed, data_format=self._fmt)
        getter, _ = self._npu_time_source()
        if getter is None:
            return call
        append = self._npu.append

        def call_and_npu_time() -> Any:
            outputs = call()
            append(int(getter() * 1000))
            return outputs

        return call_and_npu_time

    def _npu_time_source(self) -> Tuple[Optional[Callable[[], Any]], str]:
        """lite2's internal get_run_perf() when it answers with a number (asked once, after
        the warm-up runs), else None and why not."""
        if self._run_perf is None:
            runtime = getattr(self._rknn, "rknn_runtime", None)
            getter = getattr(runtime, "get_run_perf", None)
            where = "rknn-toolkit-lite2 %s" % (versions()["rknn_toolkit_lite2"] or "(version unknown)")
            if getter is None:
                self._run_perf = (None, "no NPU time: %s has no internal RKNNLite.rknn_runtime.get_run_perf()" % where)
            else:
                try:
                    value = getter()
                except Exception as exc:
                    value = exc
                if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
                    self._run_perf = (getter, "npu: from %s's internal RKNNLite.rknn_runtime.get_run_perf() "
                                              "(RKNN_QUERY_PERF_RUN, microseconds; not a public API), queried "
                                              "inside each timed call, so its cost is in the latency" % where)
                else:
                    self._run_perf = (None, "no NPU time: %s's internal rknn_runtime.get_run_perf() gave %r, not "
                                            "a number of microseconds" % (where, value))
        return self._run_perf

    def start_timing(self) -> None:
        del self._npu[:]

    def stage_samples(self, start: int, end: int) -> Optional[Dict[str, List[int]]]:
        return {"npu": self._npu[start:end]} if self._npu else None

    def perf(self) -> Optional[Dict[str, Any]]:
        return {"npu_ns": list(self._npu), "source": "rknn_runtime.get_run_perf"} if self._npu else None

    def timing_notes(self) -> List[str]:
        notes = ["rknnlite: rknn_inputs_set, rknn_run and rknn_outputs_get all happen inside RKNNLite.inference(): "
                 "no stage split is possible, only end-to-end latency (use backend rknnrt for the split)",
                 "rknnlite: inference() always asks for float32 outputs (want_float=1): the output conversion "
                 "is inside the measured latency; it also ignores rknn_run's return code"]
        if "nchw" in (self._fmt or []):
            notes.append("rknnlite: data_format 'nchw' inputs are transposed to NHWC in Python inside inference(), "
                         "inside the measured latency")
        notes.append(self._npu_time_source()[1])
        return notes

    def close(self) -> None:
        rknn, self._rknn, self._infer = self._rknn, None, None
        if rknn is not None:
            try:
                rknn.release()
            except Exception:
                pass


def _call(method: Any, what: str, *args: Any, **kwargs: Any) -> Any:
    try:
        return method(*args, **kwargs)
    except Exception as exc:
        raise RunnerError(ERR_BACKEND_FAILED, "RKNNLite.%s raised %s: %s" % (what, type(exc).__name__, exc))
