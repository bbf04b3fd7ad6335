"""Events the runner writes to stdout, one JSON object per line.

Every line carries `"v": PROTOCOL_VERSION` and `"type"`. Arrays never travel inside
JSON: outputs are .npy files on the board, named in the `result` event (as is the
per-layer profile's text file). Decoding is strict: a missing required field, a
field of the wrong type and an unknown field are all refused, naming the field.

Order of a run:  hello, progress*, (samples* telemetry* result)+ per core mask, done
Throughput run:  hello, progress*, (telemetry* throughput)+ per configuration, done
On failure:      [hello,] progress*, error, done
"""

from __future__ import annotations

import json
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, Callable, ClassVar, Dict, List, Optional, Type, Union

from . import _fields as f
from .constants import CONTEXT_CREATIONS, IO_MODES, PROTOCOL_VERSION, STAGES
from .errors import ProtocolError
from .spec import check_version
from .stats import LatencyStats

#: Keys of Result.memory["npu"] (RKNN_QUERY_MEM_SIZE) when the runtime answers.
NPU_MEMORY_KEYS = ("weight_bytes", "internal_bytes", "dma_bytes", "sram_total_bytes", "sram_free_bytes")


def _opt(check: Callable[[Any, str], Any]) -> Callable[[Any, str], Any]:
    def checker(value: Any, name: str) -> Any:
        return None if value is None else check(value, name)

    return checker


def _int_list(value: Any, name: str) -> List[int]:
    items = f.as_list(value, name)
    for i, item in enumerate(items):
        f.as_int(item, "%s[%d]" % (name, i))
    return items


def _opt_int_list(value: Any, name: str) -> Optional[List[int]]:
    return None if value is None else _int_list(value, name)


def _str_list(value: Any, name: str) -> List[str]:
    items = f.as_list(value, name)
    for i, item in enumerate(items):
        f.as_str(item, "%s[%d]" % (name, i))
    return items


def _obj_list(value: Any, name: str) -> List[Dict[str, Any]]:
    items = f.as_list(value, name)
    for i, item in enumerate(items):
        f.as_obj(item, "%s[%d]" % (name, i))
    return items


def _stats(value: Any, name: str) -> LatencyStats:
    if isinstance(value, LatencyStats):
        return value
    return LatencyStats.from_dict(value, name)


def _opt_stats(value: Any, name: str) -> Optional[LatencyStats]:
    return None if value is None else _stats(value, name)


def _stage_names(value: Any, name: str) -> Dict[str, Any]:
    data = f.as_obj(value, name)
    unknown = sorted(set(data) - set(STAGES))
    if unknown:
        raise ProtocolError("%s: unknown stage(s) %s (known: %s)" % (name, ", ".join(unknown), ", ".join(STAGES)))
    return data


def _stage_stats(value: Any, name: str) -> Dict[str, LatencyStats]:
    data = _stage_names(value, name)
    return {stage: _stats(stats, "%s.%s" % (name, stage)) for stage, stats in data.items()}


def _opt_stages_ns(value: Any, name: str) -> Optional[Dict[str, List[int]]]:
    if value is None:
        return None
    data = _stage_names(value, name)
    return {stage: _int_list(values, "%s.%s" % (name, stage)) for stage, values in data.items()}


def _opt_io_mode(value: Any, name: str) -> Optional[str]:
    return None if value is None else f.as_choice(value, name, IO_MODES)


def _int_dict(value: Any, name: str) -> Dict[str, int]:
    data = f.as_obj(value, name)
    for key, item in data.items():
        f.as_int(item, "%s.%s" % (name, key))
    return data


def _number_dict(value: Any, name: str) -> Dict[str, float]:
    data = f.as_obj(value, name)
    for key, item in data.items():
        f.as_float(item, "%s.%s" % (name, key))
    return data


def _cpu_list(value: Any, name: str) -> List[Dict[str, Any]]:
    items = _obj_list(value, name)
    for i, item in enumerate(items):
        f.as_opt_int(item.get("cur_khz"), "%s[%d].cur_khz" % (name, i))
    return items


def _npu_memory(value: Any, name: str) -> Dict[str, Any]:
    data = f.as_obj(value, name)
    for part in ("after_load", "after_runs"):  # process memory: {"vm_hwm_kb", "vm_rss_kb"} or null
        reading = data.get(part)
        if reading is not None:
            for key, item in f.as_obj(reading, "%s.%s" % (name, part)).items():
                f.as_opt_int(item, "%s.%s.%s" % (name, part, key))
    npu = data.get("npu")
    if npu is not None:
        npu = f.as_obj(npu, name + ".npu")
        if "unsupported" in npu:
            f.as_str(npu["unsupported"], name + ".npu.unsupported")
        else:
            for key in NPU_MEMORY_KEYS:
                f.as_int(f.get(npu, key, name + ".npu"), "%s.npu.%s" % (name, key), 0)
    return data


def _opt_profile(value: Any, name: str) -> Optional[Dict[str, Any]]:
    if value is None:
        return None
    data = f.as_obj(value, name)
    if "unsupported" in data:
        f.as_str(data["unsupported"], name + ".unsupported")
        return data
    f.as_nonempty_str(f.get(data, "file", name), name + ".file")
    f.as_int(f.get(data, "runs", name), name + ".runs", 1)
    f.as_float(f.get(data, "seconds", name), name + ".seconds", 0.0)
    f.as_int(f.get(data, "flags", name), name + ".flags", 0)
    return data


#: Keys of one entry of Throughput.contexts.
THROUGHPUT_CONTEXT_KEYS = ("core_mask", "creation", "runs", "fps", "p50_ms", "p99_ms", "mean_ms")
#: Keys of Throughput.memory (bytes from RKNN_QUERY_MEM_SIZE summed over the contexts; kB
#: from /proc/self/status), each null when unknown.
THROUGHPUT_MEMORY_KEYS = ("dma_bytes", "weight_bytes", "vm_hwm_kb", "vm_rss_kb")
#: Keys of Throughput.board (over the telemetry readings of the window), each null when unknown.
THROUGHPUT_BOARD_KEYS = ("temp_max_c", "npu_freq_hz_min", "npu_freq_hz_max", "cpu_khz_min", "cpu_khz_max")


def _number_or_null_dict(value: Any, name: str, keys: Any) -> Dict[str, Any]:
    data = f.as_obj(value, name)
    for key in keys:
        item = f.get(data, key, name, None)
        if item is not None:
            f.as_float(item, "%s.%s" % (name, key))
    unknown = sorted(set(data) - set(keys))
    if unknown:
        raise ProtocolError("%s: unknown field(s) %s" % (name, ", ".join(repr(k)[:60] for k in unknown)))
    return {key: data.get(key) for key in keys}


def _throughput_contexts(value: Any, name: str) -> List[Dict[str, Any]]:
    items = _obj_list(value, name)
    for i, item in enumerate(items):
        at = "%s[%d]" % (name, i)
        f.as_str(f.get(item, "core_mask", at), at + ".core_mask")
        f.as_choice(f.get(item, "creation", at), at + ".creation", CONTEXT_CREATIONS)
        f.as_int(f.get(item, "runs", at), at + ".runs", 0)
        f.as_float(f.get(item, "fps", at), at + ".fps", 0.0)
        for key in ("p50_ms", "p99_ms", "mean_ms"):
            if f.get(item, key, at, None) is not None:
                f.as_float(item[key], "%s.%s" % (at, key), 0.0)
    return items


def _opt_float_list(value: Any, name: str) -> Optional[List[float]]:
    if value is None:
        return None
    items = f.as_list(value, name)
    for i, item in enumerate(items):
        f.as_float(item, "%s[%d]" % (name, i))
    return items


class Event:
    """Base of all events. Subclasses are dataclasses with a `type` class attribute."""

    type: ClassVar[str] = ""
    _checks: ClassVar[Dict[str, Callable[[Any, str], Any]]] = {}

    def to_dict(self) -> Dict[str, Any]:
        out: Dict[str, Any] = {"v": PROTOCOL_VERSION, "type": self.type}
        for fld in fields(self):  # type: ignore[arg-type]
            value = getattr(self, fld.name)
            if isinstance(value, LatencyStats):
                value = value.to_dict()
            elif isinstance(value, dict) and any(isinstance(v, LatencyStats) for v in value.values()):
                value = {k: v.to_dict() if isinstance(v, LatencyStats) else v for k, v in value.items()}
            out[fld.name] = value
        return out

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> Event:
        known = {fld.name for fld in fields(cls)} | {"v", "type"}  # type: ignore[arg-type]
        unknown = sorted(set(data) - known)
        if unknown:
            raise ProtocolError(
                "%s: unknown field(s) %s (same protocol version but a newer runner? "
                "deploy the runner from the same rkbench release as the host)"
                % (cls.type, ", ".join(repr(name)[:60] for name in unknown[:10]))
            )
        kwargs: Dict[str, Any] = {}
        for fld in fields(cls):  # type: ignore[arg-type]
            name = "%s.%s" % (cls.type, fld.name)
            if fld.name in data:
                value = data[fld.name]
            elif fld.default is not MISSING:
                value = fld.default
            elif fld.default_factory is not MISSING:  # type: ignore[misc]
                value = fld.default_factory()  # type: ignore[misc]
            else:
                raise ProtocolError("%s: missing (required field)" % name)
            check = cls._checks.get(fld.name)
            if check is not None:
                value = check(value, name)
            kwargs[fld.name] = value
        return cls(**kwargs)  # type: ignore[call-arg]


@dataclass
class Hello(Event):
    """First line: who is speaking, on what, with which backend and why."""

    type: ClassVar[str] = "hello"
    runner_version: str
    python: str
    numpy: Optional[str]
    soc: Optional[str]
    backend: str
    backend_reason: str
    protocol_version: int = PROTOCOL_VERSION
    soc_compatible: List[str] = field(default_factory=list)
    npu_cores: Optional[int] = None
    backend_versions: Dict[str, Optional[str]] = field(default_factory=dict)
    pid: Optional[int] = None
    hostname: Optional[str] = None
    _checks: ClassVar[Dict[str, Callable[[Any, str], Any]]] = {
        "runner_version": f.as_str,
        "python": f.as_str,
        "numpy": f.as_opt_str,
        "soc": f.as_opt_str,
        "backend": f.as_str,
        "backend_reason": f.as_str,
        "protocol_version": f.as_int,
        "soc_compatible": _str_list,
        "npu_cores": f.as_opt_int,
        "backend_versions": f.as_obj,
        "pid": f.as_opt_int,
        "hostname": f.as_opt_str,
    }


@dataclass
class Progress(Event):
    """What the runner is doing now (stage: lock, load, warmup, measure, save, ...)."""

    type: ClassVar[str] = "progress"
    stage: str
    message: str
    _checks: ClassVar[Dict[str, Callable[[Any, str], Any]]] = {"stage": f.as_str, "message": f.as_str}


@dataclass
class Samples(Event):
    """A batch of raw per-iteration latencies in ns. `offset` is the index of the first
    one within this core mask's run, so a receiver can tell a batch went missing.

    stages_ns: null, or per-iteration stage times in ns for the same iterations, each
      list aligned with latencies_ns (same length): {"inputs_set", "run", "npu",
      "outputs_get"} or the subset the backend times (see constants.STAGES)."""

    type: ClassVar[str] = "samples"
    core_mask: Optional[str]
    offset: int
    latencies_ns: List[int]
    stages_ns: Optional[Dict[str, List[int]]] = None
    _checks: ClassVar[Dict[str, Callable[[Any, str], Any]]] = {
        "core_mask": f.as_opt_str,
        "offset": f.as_int,
        "latencies_ns": _int_list,
        "stages_ns": _opt_stages_ns,
    }

    def __post_init__(self) -> None:
        for stage, values in (self.stages_ns or {}).items():
            if len(values) != len(self.latencies_ns):
                raise ProtocolError(
                    "samples.stages_ns.%s: %d values for %d latencies (each stage list is "
                    "aligned with latencies_ns)" % (stage, len(values), len(self.latencies_ns))
                )


@dataclass
class Telemetry(Event):
    """One reading of the board: NPU load per core (%), NPU clock (Hz) and governor,
    CPU clocks per cpufreq policy (kHz), temperatures per thermal zone (deg C).
    Anything the board does not expose (or needs root for) is null/empty."""

    type: ClassVar[str] = "telemetry"
    timestamp: float
    npu_load_pct: Optional[List[int]] = None
    npu_freq_hz: Optional[int] = None
    npu_governor: Optional[str] = None
    cpu: List[Dict[str, Any]] = field(default_factory=list)
    temperatures_c: Dict[str, float] = field(default_factory=dict)
    _checks: ClassVar[Dict[str, Callable[[Any, str], Any]]] = {
        "timestamp": f.as_float,
        "npu_load_pct": _opt_int_list,
        "npu_freq_hz": f.as_opt_int,
        "npu_governor": f.as_opt_str,
        "cpu": _cpu_list,
        "temperatures_c": _number_dict,
    }


@dataclass
class Result(Event):
    """The outcome for one core mask.

    core_mask: the mask used, or null when the backend has no notion of it
      (onnxruntime, simulator); core_mask_applicable says which.
    counts: {"warmup": n, "runs": n, "distinct_inputs": n}; warmup is at least the number
      of distinct inputs: each is run once (and checked) before timing.
    elapsed_s: wall time of the timed loop; load_s: time to load/init the model.
    stats: latency of the timed loop (ms), end to end. npu_stats: NPU-only time where the
      backend exposes it (rknnrt: RKNN_QUERY_PERF_RUN per iteration), else null.
    stage_stats: {stage: stats} for the stages the backend timed per iteration (see
      constants.STAGES; the raw values came in Samples.stages_ns), else {}.
    io_mode: "copy" | "zero_copy" for the NPU backends, null where it does not apply.
    timing_notes: what the figures include and what cannot be known with this backend.
    memory: {"after_load": {"vm_hwm_kb", "vm_rss_kb"}, "after_runs": {...}, "npu": NPU}
      NPU = null (no NPU backend) | {"weight_bytes", "internal_bytes", "dma_bytes",
      "sram_total_bytes", "sram_free_bytes"} (RKNN_QUERY_MEM_SIZE, queried outside the
      timed loop) | {"unsupported": reason}
    profile: null (not asked) | {"file": path on the board of the raw PERF_DETAIL text,
      "runs": n, "seconds": s, "flags": rknn_init flags} | {"unsupported": reason}
    versions: what the backend reported once loaded (rknnrt: "api_version" and
      "drv_version" from RKNN_QUERY_SDK_VERSION, "librknnrt" from the .so file,
      "librknnrt_path"; rknnlite: "sdk"), {} when it tells nothing more than hello did
    outputs: [{"sample": i, "files": [{"path", "name", "shape", "dtype"}]}]
    inputs: [{"name", "shape", "dtype", "data_format"}] as fed to the backend
    input_conversion: {"seconds": s, "steps": [...]} when inputs had to be converted
      once before the loop (never inside it), else null.
    stopped_by: "min_reached" | "max_runs" | "max_seconds"
    """

    type: ClassVar[str] = "result"
    core_mask: Optional[str]
    backend: str
    counts: Dict[str, int]
    stats: LatencyStats
    core_mask_applicable: bool = False
    elapsed_s: float = 0.0
    load_s: Optional[float] = None
    stopped_by: str = "min_reached"
    npu_stats: Optional[LatencyStats] = None
    memory: Dict[str, Any] = field(default_factory=dict)
    throttled: bool = False
    throttle_reasons: List[str] = field(default_factory=list)
    outputs: List[Dict[str, Any]] = field(default_factory=list)
    inputs: List[Dict[str, Any]] = field(default_factory=list)
    input_conversion: Optional[Dict[str, Any]] = None
    stage_stats: Dict[str, LatencyStats] = field(default_factory=dict)
    io_mode: Optional[str] = None
    timing_notes: List[str] = field(default_factory=list)
    profile: Optional[Dict[str, Any]] = None
    versions: Dict[str, Optional[str]] = field(default_factory=dict)
    _checks: ClassVar[Dict[str, Callable[[Any, str], Any]]] = {
        "core_mask": f.as_opt_str,
        "backend": f.as_str,
        "counts": _int_dict,
        "stats": _stats,
        "core_mask_applicable": f.as_bool,
        "elapsed_s": f.as_float,
        "load_s": f.as_opt_float,
        "stopped_by": f.as_str,
        "npu_stats": _opt_stats,
        "memory": _npu_memory,
        "throttled": f.as_bool,
        "throttle_reasons": _str_list,
        "outputs": _obj_list,
        "inputs": _obj_list,
        "input_conversion": f.as_opt_obj,
        "stage_stats": _stage_stats,
        "io_mode": _opt_io_mode,
        "timing_notes": _str_list,
        "profile": _opt_profile,
        "versions": f.as_obj,
    }


@dataclass
class Throughput(Event):
    """The outcome of one throughput configuration: len(core_masks) contexts run in
    parallel, one thread each, for the same window.

    index: the configuration's place in the spec's list; assignment: its name (the host's:
      "per-core", "0_1_2", "auto", ...); core_masks: one per context.
    runs: every timed run of every context; elapsed_s: the window (all threads start
      together and stop at the same deadline); fps = runs / elapsed_s.
    stats: latency over all the contexts' runs pooled (null when nothing ran);
      contexts: per context {"core_mask", "creation", "runs", "fps", "p50_ms", "p99_ms", "mean_ms"}.
    npu_load_pct: mean NPU load per core over the window (sysfs), null where unreadable.
    memory: {"dma_bytes", "weight_bytes"} (RKNN_QUERY_MEM_SIZE summed over the contexts; weights
      shared by dup_context/SHARE_WEIGHT count once) and {"vm_hwm_kb", "vm_rss_kb"} of the runner.
    board: {"temp_max_c", "npu_freq_hz_min", "npu_freq_hz_max", "cpu_khz_min", "cpu_khz_max"}.
    out_of_memory: null, or why the contexts did not fit (then nothing ran in this
      configuration, contexts lists those that were created, and the run ends here).
    """

    type: ClassVar[str] = "throughput"
    index: int
    assignment: str
    core_masks: List[str]
    backend: str
    runs: int = 0
    elapsed_s: float = 0.0
    fps: float = 0.0
    stats: Optional[LatencyStats] = None
    contexts: List[Dict[str, Any]] = field(default_factory=list)
    npu_load_pct: Optional[List[float]] = None
    memory: Dict[str, Any] = field(default_factory=lambda: dict.fromkeys(THROUGHPUT_MEMORY_KEYS))
    board: Dict[str, Any] = field(default_factory=lambda: dict.fromkeys(THROUGHPUT_BOARD_KEYS))
    throttled: bool = False
    throttle_reasons: List[str] = field(default_factory=list)
    out_of_memory: Optional[str] = None
    notes: List[str] = field(default_factory=list)
    _checks: ClassVar[Dict[str, Callable[[Any, str], Any]]] = {
        "index": f.as_int,
        "assignment": f.as_str,
        "core_masks": _str_list,
        "backend": f.as_str,
        "runs": f.as_int,
        "elapsed_s": f.as_float,
        "fps": f.as_float,
        "stats": _opt_stats,
        "contexts": _throughput_contexts,
        "npu_load_pct": _opt_float_list,
        "memory": lambda v, n: _number_or_null_dict(v, n, THROUGHPUT_MEMORY_KEYS),
        "board": lambda v, n: _number_or_null_dict(v, n, THROUGHPUT_BOARD_KEYS),
        "throttled": f.as_bool,
        "throttle_reasons": _str_list,
        "out_of_memory": f.as_opt_str,
        "notes": _str_list,
    }


@dataclass
class Error(Event):
    """A failure the user can act on: `kind` (see constants.ERROR_KINDS), a message
    that says what to do, and the tail of a traceback/stderr when there is one."""

    type: ClassVar[str] = "error"
    kind: str
    message: str
    detail: Optional[str] = None
    core_mask: Optional[str] = None
    _checks: ClassVar[Dict[str, Callable[[Any, str], Any]]] = {
        "kind": f.as_str,
        "message": f.as_str,
        "detail": f.as_opt_str,
        "core_mask": f.as_opt_str,
    }


@dataclass
class Done(Event):
    """Last line. exit_code is the runner's exit status."""

    type: ClassVar[str] = "done"
    ok: bool
    exit_code: int
    results: int = 0
    _checks: ClassVar[Dict[str, Callable[[Any, str], Any]]] = {
        "ok": f.as_bool,
        "exit_code": f.as_int,
        "results": f.as_int,
    }


EVENT_TYPES: Dict[str, Type[Event]] = {
    cls.type: cls for cls in (Hello, Progress, Samples, Telemetry, Result, Throughput, Error, Done)
}

AnyEvent = Union[Hello, Progress, Samples, Telemetry, Result, Throughput, Error, Done]


def encode_event(event: Event) -> str:
    """One JSON line (without the trailing newline)."""
    return json.dumps(event.to_dict(), separators=(",", ":"), allow_nan=False)


def decode_event(line: Union[str, bytes]) -> Event:
    """Parse one line from the runner. Raises ProtocolError for anything that is not a
    known event of this protocol version (the message says what and where)."""
    if isinstance(line, bytes):
        try:
            line = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ProtocolError("event: not UTF-8 text (%s)" % exc) from exc
    text = line.strip()
    if not text:
        raise ProtocolError("event: empty line")
    data = f.loads(text, "event", snippet=True)
    if not isinstance(data, dict):
        raise ProtocolError("event: expected a JSON object, got %r" % (text[:120],))
    check_version(data, "event")
    kind = data.get("type")
    cls = EVENT_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise ProtocolError("event.type: unknown event type %r (known: %s)" % (kind, ", ".join(sorted(EVENT_TYPES))))
    return cls.from_dict(data)
