"""The run spec: what the host asks the runner to do, sent as ONE JSON line on stdin."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from . import _fields as f
from .constants import BACKENDS, CORE_MASKS, DATA_FORMATS, IO_MODES, MAX_THROUGHPUT_CONTEXTS, PROTOCOL_VERSION
from .errors import ProtocolError

DEFAULT_LOCK_PATH = "~/.cache/rkbench/board.lock"


def check_version(data: Dict[str, Any], what: str) -> None:
    """Raise ProtocolError unless `data["v"]` is the protocol version this code speaks."""
    if "v" not in data:
        raise ProtocolError("%s.v: missing (protocol version; this side speaks version %d)" % (what, PROTOCOL_VERSION))
    version = data["v"]
    if isinstance(version, bool) or not isinstance(version, int):
        raise ProtocolError("%s.v: expected an integer protocol version, got %r" % (what, version))
    if version != PROTOCOL_VERSION:
        raise ProtocolError(
            "%s.v: protocol version %d is not supported (this side speaks version %d); "
            "deploy the runner from the same rkbench release as the host" % (what, version, PROTOCOL_VERSION)
        )


def check_throughput(value: Any, where: str = "throughput") -> Dict[str, Any]:
    """The throughput section of a run spec, checked (see RunSpec)."""
    data = f.as_obj(value, where)
    unknown = sorted(set(data) - {"seconds", "configs"})
    if unknown:
        raise ProtocolError("%s: unknown field(s) %s" % (where, ", ".join(repr(k)[:60] for k in unknown)))
    seconds = f.as_float(f.get(data, "seconds", where), where + ".seconds", 0.0)
    configs = f.as_list(f.get(data, "configs", where), where + ".configs")
    if not configs:
        raise ProtocolError("%s.configs: needs at least one configuration" % where)
    out = []
    for i, config in enumerate(configs):
        at = "%s.configs[%d]" % (where, i)
        config = f.as_obj(config, at)
        assignment = f.as_nonempty_str(f.get(config, "assignment", at), at + ".assignment")
        masks = f.as_list(f.get(config, "core_masks", at), at + ".core_masks")
        if not 1 <= len(masks) <= MAX_THROUGHPUT_CONTEXTS:
            raise ProtocolError(
                "%s.core_masks: %d contexts (1 to %d, one core mask each)" % (at, len(masks), MAX_THROUGHPUT_CONTEXTS)
            )
        for k, mask in enumerate(masks):
            f.as_choice(mask, "%s.core_masks[%d]" % (at, k), CORE_MASKS)
        out.append({"assignment": assignment, "core_masks": list(masks)})
    return {"seconds": seconds, "configs": out}


@dataclass
class BuildRecipe:
    """How the simulator backend rebuilds the model from its ONNX (rknn-toolkit2 on x86).

    config: kwargs for RKNN.config (mean_values, std_values, target_platform, ...)
    load_kind: only "onnx"; load_kwargs: kwargs for RKNN.load_onnx besides `model`
    do_quantization / dataset: arguments of RKNN.build (dataset: calibration list file)
    """

    config: Dict[str, Any] = field(default_factory=dict)
    load_kind: str = "onnx"
    load_kwargs: Dict[str, Any] = field(default_factory=dict)
    do_quantization: bool = True
    dataset: Optional[str] = None

    def to_dict(self) -> Dict[str, Any]:
        return {
            "config": dict(self.config),
            "load": {"kind": self.load_kind, "kwargs": dict(self.load_kwargs)},
            "build": {"do_quantization": self.do_quantization, "dataset": self.dataset},
        }

    @classmethod
    def from_dict(cls, data: Any, where: str = "model.build_recipe") -> BuildRecipe:
        data = f.as_obj(data, where)
        config = f.as_obj(f.get(data, "config", where, {}), where + ".config")
        load = f.as_obj(f.get(data, "load", where, {"kind": "onnx", "kwargs": {}}), where + ".load")
        kind = f.as_choice(f.get(load, "kind", where + ".load", "onnx"), where + ".load.kind", ("onnx",))
        kwargs = f.as_obj(f.get(load, "kwargs", where + ".load", {}), where + ".load.kwargs")
        if "model" in kwargs:
            raise ProtocolError("%s.load.kwargs.model: must not be set (model.onnx is used)" % where)
        build = f.as_obj(f.get(data, "build", where, {}), where + ".build")
        do_q = f.as_bool(f.get(build, "do_quantization", where + ".build", True), where + ".build.do_quantization")
        dataset = f.as_opt_str(f.get(build, "dataset", where + ".build", None), where + ".build.dataset")
        if do_q and not dataset:
            raise ProtocolError(
                "%s.build.dataset: required when do_quantization is true (a calibration list file on the board)" % where
            )
        return cls(config=dict(config), load_kind=kind, load_kwargs=dict(kwargs), do_quantization=do_q, dataset=dataset)


@dataclass
class ModelRef:
    """Paths on the board: the .rknn (rknnrt, rknnlite), the source .onnx (onnxruntime, simulator)."""

    rknn: Optional[str] = None
    onnx: Optional[str] = None
    build_recipe: Optional[BuildRecipe] = None

    def to_dict(self) -> Dict[str, Any]:
        return {
            "rknn": self.rknn,
            "onnx": self.onnx,
            "build_recipe": None if self.build_recipe is None else self.build_recipe.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Any, where: str = "model") -> ModelRef:
        data = f.as_obj(data, where)
        rknn = f.as_opt_str(f.get(data, "rknn", where, None), where + ".rknn")
        onnx = f.as_opt_str(f.get(data, "onnx", where, None), where + ".onnx")
        recipe_data = f.get(data, "build_recipe", where, None)
        recipe = None if recipe_data is None else BuildRecipe.from_dict(recipe_data, where + ".build_recipe")
        if not rknn and not onnx:
            raise ProtocolError("%s: needs at least one of rknn or onnx (a path on the board)" % where)
        return cls(rknn=rknn or None, onnx=onnx or None, build_recipe=recipe)


@dataclass
class RunSpec:
    """One run: a model, its inputs, how long to measure, where to put outputs.

    io_mode: "copy" (default) or "zero_copy" (backend rknnrt only: NPU buffers from
      rknn_create_mem bound once; each timed iteration copies the input into its buffer).
    profile_layers: after the timed loop of each core mask, a separate profiling pass
      (a context inited with RKNN_FLAG_COLLECT_PERF_MASK, profile_runs runs) saves the
      runtime's per-layer table (PERF_DETAIL) in output_dir; never inside the timed loop.
    throughput: null (the ordinary run: one context per core mask, in turn) or
      {"seconds": s, "configs": [{"assignment": name, "core_masks": [mask per context]}]}:
      each configuration runs len(core_masks) contexts in parallel, one thread each, for
      `seconds`, and gives one `throughput` event. A configuration whose contexts do not fit
      in memory ends the list there (its event says so); what was measured is kept.
    """

    model: ModelRef
    inputs: List[List[str]]
    output_dir: str
    backend: str = "auto"
    core_masks: List[str] = field(default_factory=lambda: ["auto"])
    warmup: int = 3
    min_runs: int = 10
    min_seconds: float = 1.0
    max_runs: int = 1000000
    max_seconds: float = 60.0
    data_format: List[Optional[str]] = field(default_factory=list)
    save_outputs: bool = True
    telemetry_interval_s: float = 0.5
    temp_limit_c: float = 85.0
    lock_path: str = DEFAULT_LOCK_PATH
    lock_timeout_s: float = 30.0
    #: CPU threads for CPU backends (onnxruntime); 0 = the backend's default (all cores).
    #: A fixed count keeps a CPU baseline steady when the host shares the cores.
    cpu_threads: int = 0
    io_mode: str = "copy"
    profile_layers: bool = False
    profile_runs: int = 3
    throughput: Optional[Dict[str, Any]] = None

    def __post_init__(self) -> None:
        self.validate()

    # -- validation -----------------------------------------------------------------
    def validate(self) -> None:
        """Raise ProtocolError naming the first field that is wrong."""
        if not isinstance(self.model, ModelRef):
            raise ProtocolError("model: expected a ModelRef")
        f.as_choice(self.backend, "backend", BACKENDS)
        masks = f.as_list(self.core_masks, "core_masks")
        if not masks:
            raise ProtocolError('core_masks: must list at least one mask (e.g. ["auto"])')
        for i, mask in enumerate(masks):
            f.as_choice(mask, "core_masks[%d]" % i, CORE_MASKS)
        if len(set(masks)) != len(masks):
            raise ProtocolError("core_masks: contains duplicates: %r" % (masks,))
        f.as_int(self.warmup, "warmup", 0)
        f.as_int(self.min_runs, "min_runs", 1)
        f.as_int(self.max_runs, "max_runs", 1)
        if self.max_runs < self.min_runs:
            raise ProtocolError("max_runs: %d is below min_runs %d" % (self.max_runs, self.min_runs))
        f.as_float(self.min_seconds, "min_seconds", 0.0)
        f.as_float(self.max_seconds, "max_seconds", 0.0)
        if self.max_seconds < self.min_seconds:
            raise ProtocolError("max_seconds: %g is below min_seconds %g" % (self.max_seconds, self.min_seconds))
        samples = f.as_list(self.inputs, "inputs")
        if not samples:
            raise ProtocolError("inputs: needs at least one sample (a list of .npy paths, one per model input)")
        width = None
        for i, sample in enumerate(samples):
            paths = f.as_list(sample, "inputs[%d]" % i)
            if not paths:
                raise ProtocolError("inputs[%d]: empty sample (one .npy path per model input)" % i)
            for k, path in enumerate(paths):
                f.as_nonempty_str(path, "inputs[%d][%d]" % (i, k))
            if width is None:
                width = len(paths)
            elif len(paths) != width:
                raise ProtocolError(
                    "inputs[%d]: has %d paths, inputs[0] has %d (every sample "
                    "gives one .npy per model input)" % (i, len(paths), width or 0)
                )
        formats = f.as_list(self.data_format, "data_format")
        if formats and len(formats) != width:
            raise ProtocolError(
                "data_format: has %d entries for %d model inputs (give one per input, "
                "or an empty list)" % (len(formats), width or 0)
            )
        for k, fmt in enumerate(formats):
            if fmt is not None:
                f.as_choice(fmt, "data_format[%d]" % k, DATA_FORMATS)
        f.as_nonempty_str(self.output_dir, "output_dir")
        f.as_bool(self.save_outputs, "save_outputs")
        f.as_float(self.telemetry_interval_s, "telemetry_interval_s", 0.0)
        f.as_float(self.temp_limit_c, "temp_limit_c")
        f.as_nonempty_str(self.lock_path, "lock_path")
        f.as_float(self.lock_timeout_s, "lock_timeout_s", 0.0)
        f.as_int(self.cpu_threads, "cpu_threads", 0)
        f.as_choice(self.io_mode, "io_mode", IO_MODES)
        if self.io_mode == "zero_copy" and self.backend not in ("auto", "rknnrt"):
            raise ProtocolError("io_mode: 'zero_copy' needs backend 'rknnrt' (or 'auto'), not %r" % self.backend)
        f.as_bool(self.profile_layers, "profile_layers")
        f.as_int(self.profile_runs, "profile_runs", 1)
        if self.throughput is not None:
            self.throughput = check_throughput(self.throughput)
        if self.backend in ("rknnrt", "rknnlite") and not self.model.rknn:
            raise ProtocolError("model.rknn: required for backend %r" % self.backend)
        if self.backend == "onnxruntime" and not self.model.onnx:
            raise ProtocolError("model.onnx: required for backend 'onnxruntime'")
        if self.backend == "simulator" and not (self.model.onnx and self.model.build_recipe):
            raise ProtocolError("model.build_recipe: backend 'simulator' needs model.onnx and model.build_recipe")

    # -- (de)serialisation ------------------------------------------------------------
    def to_dict(self) -> Dict[str, Any]:
        return {
            "v": PROTOCOL_VERSION,
            "model": self.model.to_dict(),
            "inputs": [list(s) for s in self.inputs],
            "output_dir": self.output_dir,
            "backend": self.backend,
            "core_masks": list(self.core_masks),
            "warmup": self.warmup,
            "min_runs": self.min_runs,
            "min_seconds": self.min_seconds,
            "max_runs": self.max_runs,
            "max_seconds": self.max_seconds,
            "data_format": list(self.data_format),
            "save_outputs": self.save_outputs,
            "telemetry_interval_s": self.telemetry_interval_s,
            "temp_limit_c": self.temp_limit_c,
            "lock_path": self.lock_path,
            "lock_timeout_s": self.lock_timeout_s,
            "cpu_threads": self.cpu_threads,
            "io_mode": self.io_mode,
            "profile_layers": self.profile_layers,
            "profile_runs": self.profile_runs,
            "throughput": self.throughput,
        }

    def to_json(self) -> str:
        """One line of JSON (no newline inside; the caller adds the terminating "\\n")."""
        return json.dumps(self.to_dict(), separators=(",", ":"), allow_nan=False)

    @classmethod
    def from_dict(cls, data: Any) -> RunSpec:
        where = "run spec"
        if not isinstance(data, dict):
            raise ProtocolError("%s: expected a JSON object" % where)
        check_version(data, where)
        known = set(cls.__dataclass_fields__) | {"v"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ProtocolError(
                "%s: unknown field(s) %s (same protocol version but a newer host? "
                "redeploy the runner)" % (where, ", ".join(repr(name)[:60] for name in unknown[:10]))
            )
        kwargs: Dict[str, Any] = {
            "model": ModelRef.from_dict(f.get(data, "model", where)),
            "inputs": f.get(data, "inputs", where),
            "output_dir": f.get(data, "output_dir", where),
        }
        defaults = cls.__dataclass_fields__
        for name in defaults:
            if name in kwargs or name not in data:
                continue
            value = data[name]
            if name in ("min_seconds", "max_seconds", "telemetry_interval_s", "temp_limit_c", "lock_timeout_s"):
                value = f.as_float(value, name)
            kwargs[name] = value
        return cls(**kwargs)

    @classmethod
    def from_json(cls, line: Any) -> RunSpec:
        if isinstance(line, bytes):
            try:
                line = line.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ProtocolError("run spec: not UTF-8 text (%s)" % exc) from exc
        if not isinstance(line, str) or not line.strip():
            raise ProtocolError("run spec: empty; the host must send one JSON line on stdin")
        return cls.from_dict(f.loads(line, "run spec"))
