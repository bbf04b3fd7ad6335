"""The interface every backend implements, and helpers they share."""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from rkbench_wire import ModelRef
from rkbench_wire.constants import ERR_BACKEND_FAILED, ERR_BAD_INPUT

from ..errors import RunnerError


@dataclass
class TensorInfo:
    """What a backend knows about one model input or output (None where it cannot tell)."""

    name: Optional[str]
    shape: Optional[List[Any]] = None
    dtype: Optional[str] = None
    data_format: Optional[str] = None

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


@dataclass
class Prepared:
    """Inputs for one sample in the form the backend feeds directly, plus what was done
    to get them there (conversion happens once, before the timed loop)."""

    feed: Any
    arrays: List[Any]
    steps: List[str] = field(default_factory=list)


class Backend:
    """load(model, core_mask) / info() / prepare(arrays) / infer(feed) -> outputs /
    bind(feed) -> call / perf() / memory() / close(), plus, for the timed loop's
    accounting: start_timing() / stage_samples(start, end) / timing_notes(), and
    profile(feed, runs) for a per-layer pass outside the timed loop.

    `bind` returns a zero-argument callable that runs one inference on a prepared
    feed with as little Python in between as possible: the timed loop calls it.
    The runner sets `root`, `npu_cores`, `cpu_threads` and `io_mode` before load().
    """

    name = ""
    #: Whether NPU core masks mean anything for this backend.
    uses_core_mask = False
    #: Whether io_mode "zero_copy" (NPU buffers bound once, rknn_set_io_mem) is possible.
    supports_zero_copy = False

    def __init__(self) -> None:
        self.core_mask: Optional[str] = None
        #: NPU cores of the SoC when known; the NPU backends skip core masks on single-core SoCs.
        self.npu_cores: Optional[int] = None
        self.data_format: List[Optional[str]] = []
        #: CPU threads for CPU backends; 0 = the backend's default.
        self.cpu_threads = 0
        #: Root of the board's file tree (the runner's --root), where libraries are looked for.
        self.root = "/"
        #: "copy" (the default) or "zero_copy" (only where supports_zero_copy).
        self.io_mode = "copy"
        #: Throughput mode: a loaded backend of the same model this one's context is made
        #: from (rknn_dup_context, SHARE_WEIGHT_MEM) where the backend can; None = its own init.
        self.share_with: Optional[Backend] = None
        #: How load() made the context (constants.CONTEXT_CREATIONS).
        self.creation = "init"

    def load(self, model: ModelRef, core_mask: Optional[str] = None, data_format: Sequence[Optional[str]] = ()) -> None:
        raise NotImplementedError

    def info(self) -> Dict[str, Any]:
        """{"inputs": [TensorInfo], "outputs": [TensorInfo], "versions": {...}}"""
        raise NotImplementedError

    def prepare(self, arrays: Sequence[Any]) -> Prepared:
        return Prepared(feed=list(arrays), arrays=list(arrays))

    def infer(self, feed: Any) -> List[Any]:
        raise NotImplementedError

    def bind(self, feed: Any) -> Callable[[], Any]:
        return functools.partial(self.infer, feed)

    def start_timing(self) -> None:
        """Called right before the timed loop: per-iteration records start from zero here."""

    def stage_samples(self, start: int, end: int) -> Optional[Dict[str, List[int]]]:
        """Per-iteration stage times in ns for timed iterations [start, end), aligned with the
        loop's latencies ({"inputs_set": [...], "run": [...], "npu": [...], ...}), or None."""
        return None

    def timing_notes(self) -> List[str]:
        """What the figures of this backend include, and what cannot be known with it."""
        return []

    def perf(self) -> Optional[Dict[str, Any]]:
        """{"npu_ns": [...]}: NPU-only time per timed iteration where the backend exposes it."""
        return None

    def memory(self) -> Optional[Dict[str, Any]]:
        """NPU memory ({"weight_bytes", ...}) or {"unsupported": reason}; None without an NPU."""
        return None

    def profile(self, feed: Any, runs: int) -> Dict[str, Any]:
        """A per-layer profile pass, never inside the timed loop: {"text", "runs", "seconds",
        "flags"} or {"unsupported": reason}."""
        return {"unsupported": "backend %s has no per-layer NPU profile (use backend rknnrt)" % self.name}

    def close(self) -> None:
        pass

    def output_names(self, count: int) -> List[str]:
        infos = self.info().get("outputs") or []
        names = [t.name for t in infos if isinstance(t, TensorInfo)]
        if len(names) == count and all(names):
            return [str(n) for n in names]
        return ["output%d" % k for k in range(count)]


def onnx_io(onnx_path: Optional[str]) -> Optional[Tuple[List[TensorInfo], List[TensorInfo]]]:
    """Input/output names and shapes from an .onnx file when the `onnx` package is here
    (on the host, rarely on a board); None otherwise."""
    if not onnx_path:
        return None
    try:
        import onnx  # noqa: WPS433 (lazy: not on every board)
        from onnx import helper
    except Exception:
        return None
    try:
        model = onnx.load(onnx_path, load_external_data=False)
    except Exception:
        return None
    initializers = {init.name for init in model.graph.initializer}

    def describe(value: Any) -> TensorInfo:
        tensor = value.type.tensor_type
        dims: List[Any] = []
        for dim in tensor.shape.dim:
            if dim.HasField("dim_value"):
                dims.append(int(dim.dim_value))
            else:
                dims.append(dim.dim_param or None)
        try:
            dtype = str(helper.tensor_dtype_to_np_dtype(tensor.elem_type))
        except Exception:
            dtype = None
        return TensorInfo(name=value.name, shape=dims, dtype=dtype)

    inputs = [describe(v) for v in model.graph.input if v.name not in initializers]
    outputs = [describe(v) for v in model.graph.output]
    return inputs, outputs


def rknn_data_format(formats: Sequence[Optional[str]], arrays: Sequence[Any]) -> Optional[List[str]]:
    """The data_format argument for RKNN/RKNNLite.inference: None when nothing is set,
    else one entry per input ('nhwc', the runtime's default, where unset)."""
    if not formats or all(f is None for f in formats):
        return None
    return [f if f is not None else "nhwc" for f in formats]


def check_outputs(outputs: Any, what: str) -> List[Any]:
    """RKNN/RKNNLite.inference returns None on failure: turn that into an error."""
    if outputs is None:
        raise RunnerError(
            ERR_BACKEND_FAILED,
            "%s returned no outputs (None): the runtime refused the inputs or failed; "
            "check the input shapes/dtypes and data_format against the model, and the stderr "
            "lines above" % what,
        )
    return list(outputs)


def bad_input(message: str) -> RunnerError:
    return RunnerError(ERR_BAD_INPUT, message)
