"""simulator backend: rknn-toolkit2 on an x86 host, no NPU. The model is rebuilt from
its ONNX with the build recipe (config, load_onnx, build) and run with init_runtime()
without a target, which is the toolkit's simulator: real quantized outputs, but its
latency is that of the host CPU, not of an NPU.

This is the only device-side module that imports rknn.api.
"""

from __future__ import annotations

import functools
import os
from typing import Any, Callable, Dict, List, Optional, Sequence

from rkbench_wire import ModelRef
from rkbench_wire.constants import ERR_BACKEND_FAILED, ERR_BACKEND_MISSING, ERR_MODEL_MISSING

from ..errors import RunnerError
from ..versions import dist_version
from .base import Backend, Prepared, TensorInfo, check_outputs, onnx_io, rknn_data_format


def versions() -> Dict[str, Optional[str]]:
    return {"rknn_toolkit2": dist_version(["rknn-toolkit2", "rknn_toolkit2"])}


class SimulatorBackend(Backend):
    name = "simulator"
    uses_core_mask = False

    def __init__(self) -> None:
        super().__init__()
        self._rknn: Any = None
        self._infer: Any = None
        self._fmt: Optional[List[str]] = None
        self._io: Any = None
        self._outputs_wanted: Optional[List[str]] = None

    def load(self, model: ModelRef, core_mask: Optional[str] = None, data_format: Sequence[Optional[str]] = ()) -> None:
        recipe = model.build_recipe
        if not model.onnx or recipe is None:
            raise RunnerError(ERR_MODEL_MISSING, "backend simulator needs model.onnx and model.build_recipe")
        if not os.path.isfile(model.onnx):
            raise RunnerError(ERR_MODEL_MISSING, "model not found: %s" % model.onnx)
        if recipe.dataset and not os.path.isfile(recipe.dataset):
            raise RunnerError(ERR_MODEL_MISSING, "calibration list not found: %s" % recipe.dataset)
        try:
            from rknn.api import RKNN
        except Exception as exc:
            raise RunnerError(
                ERR_BACKEND_MISSING,
                "rknn-toolkit2 cannot be imported here (%s): install it on this host "
                "(pip install 'rkbench[toolkit]')" % exc,
            ) from exc
        self.data_format = list(data_format)
        self._rknn = RKNN(verbose=False)
        rknn = self._rknn
        _check(lambda: rknn.config(**recipe.config), "config(%s)" % _short(recipe.config))
        _check(lambda: rknn.load_onnx(model=model.onnx, **recipe.load_kwargs), "load_onnx(%s)" % model.onnx)
        _check(
            lambda: rknn.build(do_quantization=recipe.do_quantization, dataset=recipe.dataset),
            "build(do_quantization=%s)" % recipe.do_quantization,
        )
        _check(lambda: rknn.init_runtime(), "init_runtime() [simulator]")
        self._infer = rknn.inference
        self._io = onnx_io(model.onnx)
        wanted = recipe.load_kwargs.get("outputs")
        self._outputs_wanted = [str(n) for n in wanted] if isinstance(wanted, (list, tuple)) else None

    def info(self) -> Dict[str, Any]:
        inputs: List[TensorInfo] = []
        outputs: List[TensorInfo] = []
        if self._io is not None:
            inputs, outputs = self._io
        if self._outputs_wanted is not None:
            outputs = [TensorInfo(name=n) for n in self._outputs_wanted]
        return {"inputs": inputs, "outputs": outputs, "versions": versions()}

    def prepare(self, arrays: Sequence[Any]) -> Prepared:
        self._fmt = rknn_data_format(self.data_format, arrays)
        return Prepared(feed=list(arrays), arrays=list(arrays))

    def infer(self, feed: Any) -> List[Any]:
        try:
            outputs = self._infer(inputs=feed, data_format=self._fmt)
        except Exception as exc:
            raise RunnerError(ERR_BACKEND_FAILED, "RKNN.inference (simulator) failed: %s" % exc) from exc
        return check_outputs(outputs, "RKNN.inference (simulator)")

    def bind(self, feed: Any) -> Callable[[], Any]:
        return functools.partial(self._infer, inputs=feed, data_format=self._fmt)

    def timing_notes(self) -> List[str]:
        return ["simulator: rknn-toolkit2's simulator on the host CPU: its latency is the host's, not an NPU's"]

    def close(self) -> None:
        rknn, self._rknn, self._infer = self._rknn, None, None
        if rknn is not None:
            try:
                rknn.release()
            except Exception:
                pass


def _check(step: Callable[[], Any], what: str) -> None:
    try:
        ret = step()
    except Exception as exc:
        raise RunnerError(
            ERR_BACKEND_FAILED, "rknn-toolkit2 %s raised %s: %s" % (what, type(exc).__name__, exc)
        ) from exc
    if ret is not None and ret != 0:
        raise RunnerError(
            ERR_BACKEND_FAILED, "rknn-toolkit2 %s returned %r; the toolkit's messages on stderr say why" % (what, ret)
        )


def _short(config: Dict[str, Any]) -> str:
    text = ", ".join("%s=%r" % kv for kv in sorted(config.items()))
    return text if len(text) < 120 else text[:117] + "..."
