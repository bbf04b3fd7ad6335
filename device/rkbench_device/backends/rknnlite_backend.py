"""rknnlite backend: the .rknn on the board's NPU through rknn-toolkit-lite2.

RKNNLite reports most failures by return value (-1 from load_rknn/init_runtime, None
from inference) after printing to stderr; each is turned into a RunnerError.

What the real 2.5.0 wheel does (run on the emulated board, see rknnlite_internals.py)
and how this backend deals with it:
- inference() does rknn_inputs_set, rknn_run and rknn_outputs_get in one call: no stage
  split. It always asks for float32 outputs (want_float=1), so the dequantization is in
  the latency whatever we do; the timing notes say so, per output.
- data_format 'nchw' makes it transpose the input to NHWC in Python inside the call, and
  it writes the format's enum back into the caller's list, so the same list given twice
  fails ("Unsupport data format: 1") and returns None. NCHW inputs are therefore
  transposed here once, before timing, and inference() gets no data_format at all.
- It drops rknn_run's return code: a failing run still returns (stale) outputs. The
  checked runs (warm-up, saved outputs) go through lite2's internal steps to see it.
- NPU time only through the INTERNAL rknn_runtime.get_run_perf() (microseconds as a
  string), queried inside each timed call when it answers with a number.
"""

from __future__ import annotations

import functools
import os
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from rkbench_wire import CORE_MASK_VALUES, ModelRef
from rkbench_wire.constants import ERR_BACKEND_FAILED, ERR_BACKEND_MISSING, ERR_MODEL_MISSING

from ..errors import RunnerError
from ..sysfs import librknnrt_path, librknnrt_version, soc_compatible
from ..versions import dist_version
from . import rknnlite_internals as internals
from .base import Backend, Prepared, TensorInfo, bad_input, check_outputs, onnx_io

#: RKNNLite attribute for each core-mask name (values in rkbench_wire.CORE_MASK_VALUES).
CORE_MASK_ATTRS = {
    "auto": "NPU_CORE_AUTO",
    "0": "NPU_CORE_0",
    "1": "NPU_CORE_1",
    "2": "NPU_CORE_2",
    "0_1": "NPU_CORE_0_1",
    "0_1_2": "NPU_CORE_0_1_2",
}


#: Where rknn-toolkit-lite2 2.5.0 looks for the runtime, in its order (the absolute path is
#: loaded: LD_LIBRARY_PATH plays no part).
LITE2_LIBRARY_PATHS = ("usr/lib/librknn_runtime.so", "usr/lib64/librknn_runtime.so", "usr/lib/librknnrt.so")
PROVISION_FIX = "fix: rkbench provision BOARD --librknnrt PATH/TO/librknnrt.so (the %s build)"
#: The numpy dtypes inference() maps to an rknn tensor type (others it refuses).
LITE2_TYPES = ("float32", "float16", "int8", "uint8")
NO_DEVICE_TREE = (
    "this board has no /proc/device-tree/compatible: rknn-toolkit-lite2 reads the SoC from it and "
    "cannot start without it (its init_runtime fails); fix: boot the board's Rockchip kernel with "
    "its device tree (`rkbench doctor` checks the SoC)"
)


def library_check(root: str = "/") -> Tuple[Optional[str], str]:
    """(the runtime lite2 will load, None) or (None, why it cannot, with the fix). A file
    that is not ELF passes (test fixtures carry only a version string); an ELF library of
    another architecture does not."""
    import platform

    from .rknnrt_lib import _ELF_MACHINES, _HOST_MACHINES, elf_kind

    machine = platform.machine()
    fix = PROVISION_FIX % machine
    for rel in LITE2_LIBRARY_PATHS:
        found = os.path.join(root, rel)
        if os.path.isfile(found):
            kind = elf_kind(found)
            want = _HOST_MACHINES.get(machine.lower())
            if kind is not None and want is not None and kind[1] != want:
                return None, (
                    "%s is built for %s, but this board is %s: rknn-toolkit-lite2 cannot load it "
                    "(wrong architecture); %s"
                    % (found, _ELF_MACHINES.get(kind[1], "machine %d" % kind[1]), machine, fix)
                )
            return found, ""
    elsewhere = librknnrt_path(root)
    if elsewhere is not None:
        return None, (
            "librknnrt.so is at %s, but rknn-toolkit-lite2 loads only /usr/lib/librknnrt.so: copy it "
            "there, or %s" % (elsewhere, fix)
        )
    return None, (
        "librknnrt.so is missing from /usr/lib (rknn-toolkit-lite2 loads /usr/lib/librknnrt.so at "
        "init_runtime); %s" % fix
    )


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
        self._api: Optional[str] = None
        self._drv: Optional[str] = None
        self._io: Any = None
        #: The runtime's own input/output attrs (lite2 internals), or None.
        self._attrs: Optional[Tuple[List[Dict[str, Any]], List[Dict[str, Any]]]] = None
        self._fed: List[str] = []  # "float32 NHWC" per input, as inference() gets it
        self._npu: List[int] = []
        self._run_perf: Optional[Tuple[Optional[Callable[[], Optional[int]]], str]] = None

    def load(self, model: ModelRef, core_mask: Optional[str] = None, data_format: Sequence[Optional[str]] = ()) -> None:
        if not model.rknn:
            raise RunnerError(ERR_MODEL_MISSING, "backend rknnlite needs model.rknn in the run spec")
        if not os.path.isfile(model.rknn):
            raise RunnerError(ERR_MODEL_MISSING, "model not found on the board: %s" % model.rknn)
        try:
            from rknnlite.api import RKNNLite
        except Exception as exc:
            raise RunnerError(
                ERR_BACKEND_MISSING,
                "rknn-toolkit-lite2 cannot be imported here (%s): run `rkbench provision` "
                "to install it (it also needs /usr/lib/librknnrt.so)" % exc,
            ) from exc
        mask = core_mask or "auto"
        self.core_mask = mask
        self.data_format = list(data_format)
        # RKNNLite has no dup_context/SHARE_WEIGHT: every context loads the model again
        self.creation = "init" if self.share_with is None else "separate"
        if not soc_compatible(self.root):
            raise RunnerError(ERR_BACKEND_FAILED, NO_DEVICE_TREE, core_mask=mask)
        try:
            self._rknn = RKNNLite(verbose=False)
        except Exception as exc:
            raise RunnerError(ERR_BACKEND_FAILED, "RKNNLite() failed: %s" % exc) from exc
        ret = _call(self._rknn.load_rknn, "load_rknn(%s)" % model.rknn, model.rknn)
        if ret != 0:
            raise RunnerError(
                ERR_BACKEND_FAILED,
                "load_rknn(%s) returned %r: the file is not a valid .rknn for this "
                "runtime (built for another target_platform or a newer toolkit?)" % (model.rknn, ret),
            )
        value = core_mask_value(RKNNLite, mask)
        if self.npu_cores == 1:
            # Single-core SoCs (RK3566/RK3568/RK3562) refuse rknn_set_core_mask; core 0 is
            # the only core, so "auto" and "0" both mean the default init.
            value = 0
            ret = _call(self._rknn.init_runtime, "init_runtime() [single-core SoC]")
        else:
            ret = _call(self._rknn.init_runtime, "init_runtime(core_mask=%s)" % mask, core_mask=value)
        if ret != 0:
            raise RunnerError(
                ERR_BACKEND_FAILED,
                "init_runtime(core_mask=%s [%d]) returned %r: the NPU runtime could not "
                "start; check that librknnrt matches the toolkit that built the model "
                "and that the rknpu driver is loaded (`rkbench doctor`)" % (mask, value, ret),
                core_mask=mask,
            )
        self._infer = self._rknn.inference
        try:
            self._api, self._drv = internals.sdk_versions(self._rknn.get_sdk_version())
        except Exception:
            self._api = self._drv = None
        self._attrs = internals.tensor_attrs(self._rknn)
        self._io = onnx_io(model.onnx)

    def info(self) -> Dict[str, Any]:
        inputs: List[TensorInfo] = []
        outputs: List[TensorInfo] = []
        if self._io is not None:
            inputs, outputs = self._io
        elif self._attrs is not None:
            inputs, outputs = (
                [TensorInfo(a["name"], a["dims"], a["type"], a["fmt"]) for a in attrs] for attrs in self._attrs
            )
        out = {"inputs": inputs, "outputs": outputs, "versions": versions()}
        out["versions"].update(
            api_version=self._api,
            drv_version=self._drv,
            sdk="API %s, driver %s" % (self._api, self._drv) if self._api else None,
        )
        return out

    def prepare(self, arrays: Sequence[Any]) -> Prepared:
        """Once, before timing: NCHW inputs transposed to NHWC (lite2's layout), float64
        made float32 (lite2 refuses it), and float inputs of a quantized input quantized
        with its zp/scale (as librknnrt would inside rknn_inputs_set), so that inference()
        hands the runtime the model's own type. The rknnrt backend feeds the same bytes."""
        import numpy as np

        from .rknnrt_layout import NUMPY_TYPES, array_format, quantize

        feed, steps, fed = [], [], []
        attrs = self._attrs[0] if self._attrs is not None else None
        if attrs is not None and len(arrays) != len(attrs):
            raise bad_input(
                "the model has %d input(s) (%s) but each sample gives %d .npy file(s)"
                % (len(attrs), ", ".join(a["name"] for a in attrs), len(arrays))
            )
        for k, array in enumerate(arrays):
            arr = np.asarray(array)
            given = self.data_format[k] if k < len(self.data_format) else None
            label = "input %d (%s)" % (k, attrs[k]["name"]) if attrs else "input %d" % k
            if arr.dtype == np.float64:
                arr = arr.astype(np.float32)
                steps.append("%s: float64 -> float32 (lite2 refuses float64)" % label)
            fmt = given
            if attrs is not None:
                try:
                    fmt = array_format(arr, given, attrs[k])
                except ValueError as exc:
                    raise bad_input("%s: %s (data_format %s)" % (label, exc, given)) from exc
            if fmt == "nchw" and arr.ndim == 4:
                arr = np.ascontiguousarray(arr.transpose(0, 2, 3, 1))
                steps.append(
                    "%s: NCHW -> NHWC (lite2 would transpose it in Python inside every inference() call)" % label
                )
            attr = attrs[k] if attrs is not None else None
            target = NUMPY_TYPES.get(attr["type"]) if attr is not None else None
            if target in LITE2_TYPES and arr.dtype != np.dtype(target) and np.issubdtype(arr.dtype, np.floating):
                if attr["qnt_type"] != "none" and np.issubdtype(np.dtype(target), np.integer):
                    arr = quantize(arr, attr)
                    steps.append(
                        "%s: %s -> %s, quantized with the input's %s (librknnrt would do it inside "
                        "rknn_inputs_set)"
                        % (
                            label,
                            np.asarray(array).dtype,
                            target,
                            "zp %d, scale %g" % (attr["zp"], attr["scale"])
                            if attr["qnt_type"] == "affine_asymmetric"
                            else "fl %d" % attr["fl"],
                        )
                    )
                elif not np.issubdtype(np.dtype(target), np.integer):
                    arr = arr.astype(target)
                    steps.append("%s: %s -> %s" % (label, np.asarray(array).dtype, target))
            feed.append(arr)
            fed.append("%s %s" % (arr.dtype, "NHWC" if arr.ndim == 4 else "%d-D" % arr.ndim))
        self._fed = fed
        return Prepared(feed=feed, arrays=list(feed), steps=steps)

    def infer(self, feed: Any) -> List[Any]:
        """One checked run (warm-up, saved outputs): lite2's own steps where they can be
        reached, so that a failing rknn_run is seen; else inference() itself."""
        steps = internals.checked_steps(self._rknn)
        if steps is None:
            try:
                outputs = self._infer(inputs=feed)
            except Exception as exc:
                raise RunnerError(
                    ERR_BACKEND_FAILED, "RKNNLite.inference failed: %s" % exc, core_mask=self.core_mask
                ) from exc
            return check_outputs(outputs, "RKNNLite.inference")
        set_inputs, run, get_outputs = steps
        try:
            set_inputs(feed, None, None)
        except Exception as exc:
            raise RunnerError(
                ERR_BACKEND_FAILED,
                "RKNNLite.inference refuses the inputs (%s): %s; check "
                "the .npy shapes/dtypes against the model" % (", ".join(self._fed), exc),
                core_mask=self.core_mask,
            ) from exc
        ret = run(False)
        if ret not in (0, None):
            raise RunnerError(
                ERR_BACKEND_FAILED,
                "rknn_run returned %s under RKNNLite (which ignores it and "
                "would return stale outputs): the NPU runtime failed; see its stderr lines "
                "above" % ret,
                core_mask=self.core_mask,
            )
        return check_outputs(get_outputs(False), "RKNNLite.inference")

    def bind(self, feed: Any) -> Callable[[], Any]:
        # no data_format: the inputs are NHWC already (and lite2 rewrites a list given to it)
        call = functools.partial(self._infer, inputs=feed)
        getter, _ = self._npu_time_source()
        if getter is None:
            return call
        append = self._npu.append

        def call_and_npu_time() -> Any:
            outputs = call()
            append((getter() or 0) * 1000)
            return outputs

        return call_and_npu_time

    def _npu_time_source(self) -> Tuple[Optional[Callable[[], Optional[int]]], str]:
        """lite2's internal get_run_perf() when it answers with a number (asked once, after
        the warm-up runs), else None and why not."""
        if self._run_perf is None:
            where = "rknn-toolkit-lite2 %s" % (versions()["rknn_toolkit_lite2"] or "(version unknown)")
            getter, answer = internals.run_perf_getter(self._rknn)
            if getter is None and answer is None:
                self._run_perf = (None, "no NPU time: %s has no internal RKNNLite.rknn_runtime.get_run_perf()" % where)
            elif getter is not None:
                self._run_perf = (
                    getter,
                    "npu: from %s's internal RKNNLite.rknn_runtime.get_run_perf() "
                    "(RKNN_QUERY_PERF_RUN, microseconds; not a public API), queried "
                    "inside each timed call, so its cost is in the latency" % where,
                )
            else:
                self._run_perf = (
                    None,
                    "no NPU time: %s's internal rknn_runtime.get_run_perf() gave %r, not "
                    "a number of microseconds" % (where, answer),
                )
        return self._run_perf

    def start_timing(self) -> None:
        del self._npu[:]

    def stage_samples(self, start: int, end: int) -> Optional[Dict[str, List[int]]]:
        return {"npu": self._npu[start:end]} if self._npu else None

    def perf(self) -> Optional[Dict[str, Any]]:
        return {"npu_ns": list(self._npu), "source": "rknn_runtime.get_run_perf"} if self._npu else None

    def memory(self) -> Optional[Dict[str, Any]]:
        return {"unsupported": "rknn-toolkit-lite2 has no NPU memory query on the board (use backend rknnrt)"}

    def timing_notes(self) -> List[str]:
        notes = [
            "rknnlite: rknn_inputs_set, rknn_run and rknn_outputs_get all happen inside RKNNLite.inference(): "
            "no stage split is possible, only end-to-end latency (use backend rknnrt for the split)"
        ]
        ins, outs = self._attrs if self._attrs is not None else (None, None)
        for k, fed in enumerate(self._fed):
            if ins is None:
                notes.append(
                    "rknnlite: input %d goes in as %s; whether librknnrt converts it inside "
                    "rknn_inputs_set cannot be told (lite2 did not show the input's attr)" % (k, fed)
                )
                continue
            native = "%s %s" % (ins[k]["type"], ins[k]["fmt"].upper())
            if fed.lower() == native.lower():
                notes.append(
                    "rknnlite: input %d (%s) goes in as %s, the model's own type: no conversion inside"
                    % (k, ins[k]["name"], fed)
                )
            else:
                notes.append(
                    "rknnlite: input %d (%s) goes in as %s; librknnrt converts it to %s inside "
                    "rknn_inputs_set, inside the latency" % (k, ins[k]["name"], fed, native)
                )
        if outs is None:
            notes.append(
                "rknnlite: inference() always asks for float32 outputs (want_float=1): their "
                "conversion is inside the latency"
            )
        for k, attr in enumerate(outs or []):
            if attr["type"] != "float32":
                notes.append(
                    "rknnlite: output %d (%s) is %s on the NPU; inference() always asks for float32 "
                    "(want_float=1), so librknnrt converts it inside rknn_outputs_get, inside the "
                    "latency" % (k, attr["name"], attr["type"])
                )
        notes.append(
            "rknnlite: inference() ignores rknn_run's return code, so a run failing inside the timed "
            "loop is not seen there (the checked runs before it stop on one)"
        )
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
        raise RunnerError(ERR_BACKEND_FAILED, "RKNNLite.%s raised %s: %s" % (what, type(exc).__name__, exc)) from exc
