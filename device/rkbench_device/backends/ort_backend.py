"""onnxruntime backend: the fp32 .onnx on the CPU (a CPU baseline, and what a board
without an NPU can still run)."""

from __future__ import annotations

import functools
import os
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np

from rkbench_wire import ModelRef
from rkbench_wire.constants import ERR_BACKEND_FAILED, ERR_BACKEND_MISSING, ERR_MODEL_MISSING

from ..errors import RunnerError
from ..versions import dist_version
from .base import Backend, Prepared, TensorInfo, bad_input

_ORT_TYPES = {
    "tensor(float)": "float32",
    "tensor(float16)": "float16",
    "tensor(double)": "float64",
    "tensor(uint8)": "uint8",
    "tensor(int8)": "int8",
    "tensor(uint16)": "uint16",
    "tensor(int16)": "int16",
    "tensor(int32)": "int32",
    "tensor(int64)": "int64",
    "tensor(bool)": "bool",
}


def versions() -> Dict[str, Optional[str]]:
    return {"onnxruntime": dist_version(["onnxruntime", "onnxruntime-gpu", "onnxruntime-openvino"])}


class OnnxRuntimeBackend(Backend):
    name = "onnxruntime"
    uses_core_mask = False

    def __init__(self) -> None:
        super().__init__()
        self._session: Any = None
        self._run: Any = None
        self._inputs: List[TensorInfo] = []
        self._outputs: List[TensorInfo] = []
        self._mean_std: Dict[int, Any] = {}

    def load(self, model: ModelRef, core_mask: Optional[str] = None, data_format: Sequence[Optional[str]] = ()) -> None:
        if not model.onnx:
            raise RunnerError(ERR_MODEL_MISSING, "backend onnxruntime needs model.onnx in the run spec")
        if not os.path.isfile(model.onnx):
            raise RunnerError(ERR_MODEL_MISSING, "model not found on the board: %s" % model.onnx)
        try:
            import onnxruntime as ort
        except Exception as exc:
            raise RunnerError(
                ERR_BACKEND_MISSING,
                "onnxruntime cannot be imported here (%s): run `rkbench provision` to install it" % exc,
            ) from exc
        self.data_format = list(data_format)
        options = ort.SessionOptions()
        options.log_severity_level = 3
        if self.cpu_threads:
            options.intra_op_num_threads = self.cpu_threads
            options.inter_op_num_threads = 1
        try:
            self._session = ort.InferenceSession(model.onnx, sess_options=options, providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise RunnerError(ERR_BACKEND_FAILED, "onnxruntime could not load %s: %s" % (model.onnx, exc)) from exc
        self._run = self._session.run
        self._inputs = [
            TensorInfo(
                name=i.name,
                shape=list(i.shape),
                dtype=_ORT_TYPES.get(i.type, i.type),
                data_format="nchw" if len(i.shape) == 4 else None,
            )
            for i in self._session.get_inputs()
        ]
        self._outputs = [
            TensorInfo(name=o.name, shape=list(o.shape), dtype=_ORT_TYPES.get(o.type, o.type))
            for o in self._session.get_outputs()
        ]
        recipe = model.build_recipe
        if recipe is not None:
            means = recipe.config.get("mean_values")
            stds = recipe.config.get("std_values")
            for k in range(len(self._inputs)):
                mean = _per_input(means, k)
                std = _per_input(stds, k)
                if mean is not None or std is not None:
                    self._mean_std[k] = (mean, std)

    def info(self) -> Dict[str, Any]:
        return {"inputs": list(self._inputs), "outputs": list(self._outputs), "versions": versions()}

    def prepare(self, arrays: Sequence[Any]) -> Prepared:
        """Fit each array to the model input: NHWC -> NCHW when data_format says nhwc, an
        integer image -> float with the build recipe's mean/std (what the RKNN model does
        inside), a dtype cast. Done once per sample, before the loop."""
        if len(arrays) != len(self._inputs):
            raise bad_input(
                "the model has %d input(s) (%s) but each sample gives %d .npy file(s)"
                % (len(self._inputs), ", ".join(str(t.name) for t in self._inputs), len(arrays))
            )
        feed = {}
        fed = []
        steps: List[str] = []
        for k, (array, spec) in enumerate(zip(arrays, self._inputs)):
            fmt = self.data_format[k] if k < len(self.data_format) else None
            arr = np.asarray(array)
            if fmt == "nhwc" and arr.ndim == 4 and not _shape_fits(arr.shape, spec.shape):
                transposed = arr.transpose(0, 3, 1, 2)
                if _shape_fits(transposed.shape, spec.shape):
                    arr = np.ascontiguousarray(transposed)
                    steps.append("input %d (%s): NHWC -> NCHW" % (k, spec.name))
            if not _shape_fits(arr.shape, spec.shape):
                raise bad_input(
                    "input %d (%s): shape %s does not fit the model's %s (data_format %s)"
                    % (k, spec.name, list(arr.shape), spec.shape, fmt)
                )
            want = spec.dtype
            if want and want in _ORT_TYPES.values() and str(arr.dtype) != want:
                source = str(arr.dtype)
                if k in self._mean_std and np.issubdtype(arr.dtype, np.integer) and want.startswith("float"):
                    arr = _normalize(arr, self._mean_std[k], want)
                    steps.append(
                        "input %d (%s): %s -> %s with mean/std of the build recipe" % (k, spec.name, source, want)
                    )
                else:
                    arr = arr.astype(want)
                    steps.append("input %d (%s): %s -> %s" % (k, spec.name, source, want))
            feed[spec.name] = arr
            fed.append(arr)
        return Prepared(feed=feed, arrays=fed, steps=steps)

    def infer(self, feed: Any) -> List[Any]:
        try:
            return self._run(None, feed)
        except Exception as exc:
            raise RunnerError(ERR_BACKEND_FAILED, "onnxruntime inference failed: %s" % exc) from exc

    def bind(self, feed: Any) -> Callable[[], Any]:
        return functools.partial(self._run, None, feed)

    def timing_notes(self) -> List[str]:
        return ["onnxruntime on the board's CPU: end-to-end latency of session.run only (no NPU time, no stage split)"]

    def close(self) -> None:
        self._session = None
        self._run = None


def _per_input(values: Any, k: int) -> Any:
    if values is None:
        return None
    if isinstance(values, (list, tuple)) and values and isinstance(values[0], (list, tuple)):
        return values[k] if k < len(values) else None
    return values


def _normalize(arr: Any, mean_std: Any, dtype: str) -> Any:
    mean, std = mean_std
    out = arr.astype(dtype)
    channels_axis = 1 if out.ndim == 4 else -1
    shape = [1] * out.ndim
    if out.ndim:
        shape[channels_axis] = -1
    if mean is not None:
        out = out - np.asarray(mean, dtype=dtype).reshape(shape)
    if std is not None:
        out = out / np.asarray(std, dtype=dtype).reshape(shape)
    return np.ascontiguousarray(out, dtype=dtype)


def _shape_fits(shape: Sequence[int], expected: Optional[Sequence[Any]]) -> bool:
    if expected is None:
        return True
    if len(shape) != len(expected):
        return False
    for have, want in zip(shape, expected):
        if isinstance(want, int) and want > 0 and have != want:
            return False
    return True
