"""Backends behind one interface, and the choice among them.

Modules are imported lazily: only the chosen backend's module (and its library) loads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

from rkbench_wire import RunSpec
from rkbench_wire.constants import ERR_BACKEND_MISSING

from ..errors import RunnerError
from ..sysfs import soc_compatible
from ..versions import module_found
from .base import Backend, Prepared, TensorInfo

__all__ = [
    "Availability",
    "Backend",
    "Prepared",
    "TensorInfo",
    "RKNN_MODEL_BACKENDS",
    "availability",
    "backend_versions",
    "choose_backend",
    "create_backend",
]

#: Backends that run the .rknn (the others run the .onnx).
RKNN_MODEL_BACKENDS = ("rknnrt", "rknnlite")

_HINTS = {
    "rknnrt": "",  # its reasons carry the fix already
    "rknnlite": "run `rkbench provision` to install rknn-toolkit-lite2 and librknnrt on the board",
    "onnxruntime": "run `rkbench provision` to install onnxruntime on the board",
    "simulator": "install rknn-toolkit2 on this host (pip install 'rkbench[toolkit]')",
}


@dataclass
class Availability:
    name: str
    available: bool
    reason: str


def availability(root: str = "/") -> Dict[str, Availability]:
    """Which backends could run here, and why (or why not). No backend library is imported;
    librknnrt is loaded (dlopen, no model run) to tell whether the rknnrt backend can work."""
    from .rknnrt_lib import probe as probe_librknnrt

    out = {}
    loads, why = probe_librknnrt(root)
    out["rknnrt"] = Availability("rknnrt", loads, why)
    if not module_found("rknnlite"):
        out["rknnlite"] = Availability("rknnlite", False, "the rknnlite package (rknn-toolkit-lite2) is not installed")
    else:
        from .rknnlite_backend import NO_DEVICE_TREE, library_check

        lib, problem = library_check(root)
        if lib is None:
            out["rknnlite"] = Availability("rknnlite", False, "rknnlite is installed but " + problem)
        elif not soc_compatible(root):
            out["rknnlite"] = Availability("rknnlite", False, "rknnlite is installed but " + NO_DEVICE_TREE)
        else:
            out["rknnlite"] = Availability("rknnlite", True, "rknnlite is installed and %s is present" % lib)
    if module_found("rknn") and module_found("rknn.api"):
        out["simulator"] = Availability("simulator", True, "rknn-toolkit2 (rknn.api) is installed")
    else:
        out["simulator"] = Availability("simulator", False, "rknn-toolkit2 (rknn.api) is not installed")
    if module_found("onnxruntime"):
        out["onnxruntime"] = Availability("onnxruntime", True, "onnxruntime is installed")
    else:
        out["onnxruntime"] = Availability("onnxruntime", False, "onnxruntime is not installed")
    return out


def choose_backend(spec: RunSpec, root: str = "/") -> Tuple[str, str]:
    """(backend name, why). Auto: rknnrt if librknnrt loads and a .rknn is given; else
    rknnlite if importable with librknnrt present and a .rknn given; else the simulator
    if rknn.api is here and an .onnx + build recipe are given; else onnxruntime if
    importable and an .onnx is given."""
    avail = availability(root)
    model = spec.model
    if spec.backend != "auto":
        state = avail[spec.backend]
        if not state.available:
            hint = _HINTS[spec.backend] if "fix:" not in state.reason else ""
            raise RunnerError(
                ERR_BACKEND_MISSING,
                "backend %s was asked for but %s%s" % (spec.backend, state.reason, ": " + hint if hint else ""),
            )
        return spec.backend, "asked for by the run spec (%s)" % state.reason
    why_not: List[str] = []
    for name, needs, missing in (
        ("rknnrt", bool(model.rknn), "no model.rknn in the spec"),
        ("rknnlite", bool(model.rknn), "no model.rknn in the spec"),
        ("simulator", bool(model.onnx and model.build_recipe), "no model.onnx + build_recipe in the spec"),
        ("onnxruntime", bool(model.onnx), "no model.onnx in the spec"),
    ):
        state = avail[name]
        if state.available and needs:
            skipped = ("; not " + "; not ".join(why_not)) if why_not else ""
            chosen = (
                "the C API backend (NPU time, per-layer profile, NPU memory; "
                "--backend rknnlite measures the vendor's Python path): "
                if name == "rknnrt"
                else ""
            )
            return name, "auto: %s%s%s" % (chosen, state.reason, skipped)
        why_not.append("%s (%s)" % (name, state.reason if not state.available else missing))
    raise RunnerError(
        ERR_BACKEND_MISSING, "no backend can run this model here: %s. %s" % ("; ".join(why_not), _HINTS["rknnlite"])
    )


def create_backend(name: str) -> Backend:
    if name == "rknnrt":
        from .rknnrt_backend import RknnRtBackend

        return RknnRtBackend()
    if name == "rknnlite":
        from .rknnlite_backend import RknnLiteBackend

        return RknnLiteBackend()
    if name == "onnxruntime":
        from .ort_backend import OnnxRuntimeBackend

        return OnnxRuntimeBackend()
    if name == "simulator":
        from .simulator_backend import SimulatorBackend

        return SimulatorBackend()
    raise ValueError("unknown backend %r" % (name,))


def backend_versions(name: str, root: str = "/") -> Dict[str, Optional[str]]:
    """Versions that matter for the chosen backend, read without importing it."""
    if name == "rknnrt":
        from .rknnrt_lib import versions as rknnrt_versions

        return rknnrt_versions(root)
    if name == "rknnlite":
        from .rknnlite_backend import versions as rknnlite_versions

        return rknnlite_versions(root)
    if name == "onnxruntime":
        from .ort_backend import versions as ort_versions

        return ort_versions()
    if name == "simulator":
        from .simulator_backend import versions as sim_versions

        return sim_versions()
    return {}
