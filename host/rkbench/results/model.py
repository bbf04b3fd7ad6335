"""What a measured run is, as plain data: the store keeps it, the reports show it.

One `RunResult` is one model on one board with one core mask (a `rkbench run` with
several core masks makes several, sharing a `group`). Raw latency samples are kept, not
only their summary, so later comparisons can use rank tests.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from rkbench_wire.stats import LatencyStats

__all__ = [
    "STATUSES",
    "LatencyStats",
    "LayerError",
    "OutputError",
    "RunResult",
    "TelemetrySample",
    "Threshold",
    "stats_from_dict",
]

STATUSES = ("running", "ok", "failed", "aborted")


def stats_from_dict(data: dict) -> LatencyStats:
    """Latency stats as stored or reported: the wire's fields (`n`); stores and reports
    written before the types were one spelled the sample count `count`."""
    data = dict(data)
    if "n" not in data and "count" in data:
        data["n"] = data.pop("count")
    return LatencyStats.from_dict(data)


@dataclass
class OutputError:
    """One output tensor of the board against a reference, over all measured inputs."""

    name: str
    reference: str  # "fp32" (onnxruntime on the source model) or "simulator"
    cos_mean: float
    cos_min: float
    euc_mean: float
    max_abs: float
    top1_agreement: float | None = None  # class outputs only


@dataclass
class LayerError:
    """Per-layer error as the vendor prints it, simulator and board side by side."""

    index: int
    op: str
    tensor: str
    sim_entire_cos: float | None  # simulator vs fp32, accumulated
    sim_single_cos: float | None  # simulator vs fp32, this layer alone
    rt_entire_cos: float | None = None  # board vs fp32, accumulated
    rt_single_sim_cos: float | None = None  # board vs simulator on the same layer
    board_departs: bool = False  # the board differs from the simulator: runtime/driver, not quantization


@dataclass
class TelemetrySample:
    t: float  # seconds since the measurement started
    npu_load_pct: list[float] | None = None
    npu_freq_hz: int | None = None
    cpu_freq_hz: dict[str, int] = field(default_factory=dict)
    temperatures_c: dict[str, float] = field(default_factory=dict)


@dataclass
class Threshold:
    name: str  # e.g. "min_cos_fp32", "max_p99_ms", "max_peak_rss_mb"
    limit: float
    value: float | None
    passed: bool
    detail: str = ""


@dataclass
class RunResult:
    group: str  # one `rkbench run` (or one nightly cell set)
    model: str  # display name
    model_sha256: str
    board: str  # display address, no secrets
    backend: str  # rknnlite | onnxruntime | simulator: who produced the numbers
    core_mask: str | None
    status: str = "running"
    started: str = ""  # ISO 8601, UTC
    finished: str | None = None
    run_id: int | None = None
    build_key: str | None = None
    target: str | None = None
    quant: str | None = None
    board_soc: str | None = None
    latency_ns: list[int] = field(default_factory=list)  # raw per-iteration samples, end to end
    stats: LatencyStats | None = None
    npu_stats: LatencyStats | None = None  # NPU-only time where the runtime exposes it (PERF_RUN)
    # where an iteration's time goes, per iteration (inputs_set, run, npu, outputs_get; the
    # stages the backend timed), aligned with latency_ns, and their summaries
    stages_ns: dict[str, list[int]] = field(default_factory=dict)
    stage_stats: dict[str, LatencyStats] = field(default_factory=dict)
    io_mode: str | None = None  # "copy" | "zero_copy" for the NPU backends
    timing_notes: list[str] = field(default_factory=list)  # what this backend's timing cannot show
    # the per-layer NPU profile (PERF_DETAIL), parsed; {"unsupported": why} when there is none
    npu_profile: dict | None = None
    memory: dict = field(default_factory=dict)  # e.g. {"after_load": {"VmHWM": kB, ...}, ...}
    telemetry: list[TelemetrySample] = field(default_factory=list)
    throttled: bool = False
    throttle_reasons: list[str] = field(default_factory=list)
    outputs: list[OutputError] = field(default_factory=list)
    layers: list[LayerError] = field(default_factory=list)
    thresholds: list[Threshold] = field(default_factory=list)
    versions: dict = field(default_factory=dict)  # toolkit, librknnrt, driver, runner, python
    settings: dict = field(default_factory=dict)  # warmup, min_runs, min_seconds, inputs, ...
    error: str | None = None  # what went wrong, for failed/aborted runs
    suite: str | None = None  # nightly suite name, when there is one

    @property
    def npu_memory(self) -> dict | None:
        """RKNN_QUERY_MEM_SIZE as the runner reported it (bytes), or {"unsupported": why}."""
        npu = self.memory.get("npu") if isinstance(self.memory, dict) else None
        return npu if isinstance(npu, dict) else None

    @property
    def passed(self) -> bool:
        return self.status == "ok" and all(t.passed for t in self.thresholds)

    def to_dict(self, samples: bool = True) -> dict:
        data = asdict(self)
        if not samples:
            data.pop("latency_ns")
            data.pop("stages_ns")
        return data


def npu_facts(result: RunResult) -> dict:
    """The NPU-side facts of a run as the store keeps them (one JSON column)."""
    return {
        "stage_stats": {stage: asdict(s) for stage, s in result.stage_stats.items()},
        "io_mode": result.io_mode,
        "timing_notes": list(result.timing_notes),
        "npu_profile": result.npu_profile,
    }


def npu_fields(data: dict) -> dict:
    """RunResult keyword arguments from what npu_facts() wrote (an empty dict for old rows)."""
    return {
        "stage_stats": {stage: stats_from_dict(s) for stage, s in (data.get("stage_stats") or {}).items()},
        "io_mode": data.get("io_mode"),
        "timing_notes": list(data.get("timing_notes") or []),
        "npu_profile": data.get("npu_profile"),
    }
