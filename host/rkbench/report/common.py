"""What every report needs from a `RunResult`: its key in the history, the previous run
to compare with, its verdict and the numbers derived from the raw data (stats, peak RSS,
measurement time), each worked out once here so the four reports never disagree."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from rkbench.results.model import LatencyStats, LayerError, OutputError, RunResult, Threshold

PASS, FAIL, ERROR = "PASS", "FAIL", "ERROR"


class RunKey(NamedTuple):
    """What makes two runs comparable over time: the same model on the same board with
    the same backend and core mask. `history` dicts are keyed by it (see `run_key`)."""

    model: str
    board: str
    backend: str
    core_mask: str | None


def run_key(result: RunResult) -> RunKey:
    return RunKey(result.model, result.board, result.backend, result.core_mask)


@dataclass
class HistoryPoint:
    """One previous run of the same model on the same board, as much as the reports need
    ("latency next to previous runs"). The store builds these; `from_result` makes one
    from a full `RunResult`."""

    run_id: int | None
    started: str  # ISO 8601, UTC
    p50_ms: float | None
    p99_ms: float | None
    mean_ms: float | None = None
    status: str = "ok"
    passed: bool | None = None
    cos_min_fp32: float | None = None
    peak_rss_mb: float | None = None
    throttled: bool = False
    group: str | None = None

    @classmethod
    def from_result(cls, result: RunResult) -> HistoryPoint:
        stats = latency_stats(result)
        return cls(
            run_id=result.run_id,
            started=result.started,
            p50_ms=stats.p50_ms if stats else None,
            p99_ms=stats.p99_ms if stats else None,
            mean_ms=stats.mean_ms if stats else None,
            status=result.status,
            passed=result.passed,
            cos_min_fp32=worst_cos(result, "fp32"),
            peak_rss_mb=peak_rss_mb(result),
            throttled=result.throttled,
            group=result.group,
        )

    @classmethod
    def from_summary(cls, row: object) -> HistoryPoint:
        """From any object with the same attribute names (the store's `RunSummary` rows
        of `rkbench history`); missing ones take their defaults."""
        if isinstance(row, HistoryPoint):
            return row
        return cls(
            run_id=getattr(row, "run_id", None),
            started=getattr(row, "started", "") or "",
            p50_ms=getattr(row, "p50_ms", None),
            p99_ms=getattr(row, "p99_ms", None),
            mean_ms=getattr(row, "mean_ms", None),
            status=getattr(row, "status", "ok"),
            passed=getattr(row, "passed", None),
            cos_min_fp32=getattr(row, "cos_min_fp32", None),
            peak_rss_mb=getattr(row, "peak_rss_mb", None),
            throttled=bool(getattr(row, "throttled", False)),
            group=getattr(row, "group", None),
        )

    def label(self) -> str:
        """How a person refers to it: "run 41", or its start time without an id."""
        if self.run_id is not None:
            return f"run {self.run_id}"
        return self.started[:16].replace("T", " ") or "previous run"


History = Mapping[RunKey, Sequence[HistoryPoint]]


def group_history(rows: Iterable[object]) -> dict[RunKey, list[HistoryPoint]]:
    """A `history` dict from store rows (anything with model, board, backend, core_mask
    and the HistoryPoint fields, e.g. the store's RunSummary)."""
    out: dict[RunKey, list[HistoryPoint]] = {}
    for row in rows:
        key = RunKey(row.model, row.board, row.backend, row.core_mask)
        out.setdefault(key, []).append(HistoryPoint.from_summary(row))
    return out


def history_for(result: RunResult, history: History | None) -> list[HistoryPoint]:
    """Previous runs of this run's key, oldest first, without the run itself. Points may
    be HistoryPoints or rows with the same attribute names."""
    if not history:
        return []
    points = [HistoryPoint.from_summary(p) for p in history.get(run_key(result), ())]
    points = [p for p in points if result.run_id is None or p.run_id != result.run_id]
    return sorted(points, key=lambda p: (p.started or "", p.run_id if p.run_id is not None else -1))


def previous_run(result: RunResult, history: History | None) -> HistoryPoint | None:
    """The latest earlier run that finished and has a p50 to compare with."""
    for point in reversed(history_for(result, history)):
        if point.status == "ok" and point.p50_ms is not None:
            return point
    return None


def pct_change(new: float | None, old: float | None) -> float | None:
    if new is None or old is None or old == 0 or not (math.isfinite(new) and math.isfinite(old)):
        return None
    return (new - old) / old * 100.0


# -- verdicts --------------------------------------------------------------------------


def outcome(result: RunResult) -> str:
    """ERROR: the run did not finish (failed, aborted, still running); FAIL: a threshold
    was breached; PASS otherwise."""
    if result.status != "ok":
        return ERROR
    return PASS if result.passed else FAIL


def failed_thresholds(result: RunResult) -> list[Threshold]:
    return [t for t in result.thresholds if not t.passed]


def error_text(result: RunResult) -> str:
    if result.error:
        return result.error
    if result.status == "running":
        return "the run did not finish (no result was recorded)"
    return f"the run ended with status {result.status!r} and no error message"


_UNITS = (("_ms", " ms"), ("_mb", " MB"), ("_mib", " MiB"), ("_pct", "%"), ("_c", " C"), ("_s", " s"))


def _unit(name: str) -> str:
    for suffix, unit in _UNITS:
        if name.endswith(suffix):
            return unit
    return ""


def fmt_value(x: float | None, name: str = "") -> str:
    """A threshold-like value: cos with 5 decimals, the rest with 4 significant digits."""
    if x is None:
        return "n/a"
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    if "cos" in name or "top1" in name:
        return f"{x:.5f}"
    return f"{x:.4g}{_unit(name)}"


def threshold_text(t: Threshold) -> str:
    """'max_p99_ms: 14.2 ms > limit 12 ms' (the comparison that broke, or held)."""
    value, limit = fmt_value(t.value, t.name), fmt_value(t.limit, t.name)
    if t.value is None:
        text = f"{t.name}: no value measured (limit {limit})"
    elif t.name.startswith("min_"):
        text = f"{t.name}: {value} {'>=' if t.passed else '<'} limit {limit}"
    elif t.name.startswith("max_"):
        text = f"{t.name}: {value} {'<=' if t.passed else '>'} limit {limit}"
    else:
        text = f"{t.name}: {value} vs limit {limit}"
    return f"{text} ({t.detail})" if t.detail else text


# -- derived numbers -------------------------------------------------------------------


def latency_stats(result: RunResult) -> LatencyStats | None:
    """The recorded stats, or stats worked out from the raw samples when none were."""
    if result.stats is not None:
        return result.stats
    if not result.latency_ns:
        return None
    from rkbench_wire.stats import summarize_ns

    return summarize_ns(result.latency_ns)


_PEAK_KEYS = ("vm_hwm_kb", "VmHWM", "peak_rss_kb")


def peak_rss_mb(result: RunResult) -> float | None:
    """Peak resident memory of the runner process (VmHWM, the largest of the readings
    after load and after the runs), in MiB."""
    best = None
    for reading in [result.memory, *[v for v in result.memory.values() if isinstance(v, dict)]]:
        for key in _PEAK_KEYS:
            value = reading.get(key)
            if isinstance(value, (int, float)) and (best is None or value > best):
                best = value
    return None if best is None else best / 1024.0


def measurement_seconds(result: RunResult) -> float | None:
    """Wall time of the timed loop when recorded (settings["elapsed_s"]), else the sum
    of the latencies."""
    for key in ("elapsed_s", "measure_s", "measurement_s"):
        value = result.settings.get(key)
        if isinstance(value, (int, float)):
            return float(value)
    if result.latency_ns:
        return sum(result.latency_ns) / 1e9
    stats = latency_stats(result)
    if stats is not None:
        return stats.mean_ms * stats.n / 1000.0
    return None


def outputs_vs(result: RunResult, reference: str) -> list[OutputError]:
    return [o for o in result.outputs if o.reference == reference]


def worst_cos(result: RunResult, reference: str) -> float | None:
    values = [o.cos_min for o in outputs_vs(result, reference) if o.cos_min is not None]
    return min(values) if values else None


def mean_cos(result: RunResult, reference: str) -> float | None:
    values = [o.cos_mean for o in outputs_vs(result, reference) if o.cos_mean is not None]
    return sum(values) / len(values) if values else None


def top1(result: RunResult, reference: str) -> float | None:
    values = [o.top1_agreement for o in outputs_vs(result, reference) if o.top1_agreement is not None]
    return min(values) if values else None


def departures(result: RunResult) -> list[LayerError]:
    """Layers where the board departs from the simulator, worst (lowest board vs
    simulator cos) first."""
    departing = [layer for layer in result.layers if layer.board_departs]
    return sorted(departing, key=lambda layer: (_or_inf(layer.rt_single_sim_cos), layer.index))


def _or_inf(x: float | None) -> float:
    return math.inf if x is None else x


def soc_of(result: RunResult) -> str:
    return result.board_soc or result.target or "SoC unknown"


def core_mask_text(result: RunResult) -> str:
    return result.core_mask if result.core_mask else "n/a"


def cells(results: Iterable[RunResult]) -> list[tuple[tuple[str, str, str, str], list[RunResult]]]:
    """Runs grouped by (group, model, board, backend), in first-seen order: the core masks
    of one model on one board are shown together."""
    order: dict[tuple[str, str, str, str], list[RunResult]] = {}
    for r in results:
        order.setdefault((r.group, r.model, r.board, r.backend), []).append(r)
    return list(order.items())


def counts(results: Sequence[RunResult]) -> dict[str, int]:
    tally = {PASS: 0, FAIL: 0, ERROR: 0}
    for r in results:
        tally[outcome(r)] += 1
    return tally


# --------------------------------------------------------------------------- the NPU's view


@dataclass(frozen=True)
class NpuSplit:
    """Where an iteration's time goes: the NPU's own run time against end to end (medians,
    ms), the host's share (their difference) and the NPU's utilisation (NPU time / wall)."""

    end_to_end_ms: float
    npu_ms: float
    host_ms: float
    utilisation: float


def npu_split(result: RunResult) -> NpuSplit | None:
    """From the per-iteration samples when both are there (the host share is then the median
    of each iteration's own difference), else from the two summaries."""
    npu = result.stages_ns.get("npu")
    if npu and len(npu) == len(result.latency_ns):
        wall = np.asarray(result.latency_ns, dtype=np.float64)
        core = np.asarray(npu, dtype=np.float64)
        return NpuSplit(
            float(np.median(wall)) / 1e6,
            float(np.median(core)) / 1e6,
            float(np.median(wall - core)) / 1e6,
            float(core.sum() / wall.sum()) if wall.sum() else 0.0,
        )
    stats = latency_stats(result)
    if stats is None or result.npu_stats is None or not stats.p50_ms:
        return None
    host = stats.p50_ms - result.npu_stats.p50_ms
    return NpuSplit(stats.p50_ms, result.npu_stats.p50_ms, host, result.npu_stats.mean_ms / stats.mean_ms)


#: The per-iteration stages in the order an iteration goes through them.
STAGE_ORDER = ("inputs_set", "run", "npu", "outputs_get")


def stage_table(result: RunResult) -> list[tuple[str, LatencyStats]]:
    """(stage, stats) for the stages the backend timed, in iteration order."""
    return [(stage, result.stage_stats[stage]) for stage in STAGE_ORDER if stage in result.stage_stats]


def _mib(value: int | float) -> str:
    return f"{value / 2**20:.1f} MiB"


def npu_memory_text(result: RunResult) -> str | None:
    """RKNN_QUERY_MEM_SIZE in words, or why the runtime did not say; None for CPU backends."""
    npu = result.npu_memory
    if npu is None:
        return None
    if "unsupported" in npu:
        return f"not reported: {npu['unsupported']}"
    parts = [
        f"DMA {_mib(npu.get('dma_bytes', 0))}",
        f"weights {_mib(npu.get('weight_bytes', 0))}",
        f"internal {_mib(npu.get('internal_bytes', 0))}",
    ]
    if npu.get("sram_total_bytes"):
        parts.append(f"SRAM {_mib(npu['sram_total_bytes'])} ({_mib(npu.get('sram_free_bytes', 0))} free)")
    return ", ".join(parts)


def runtime_text(result: RunResult) -> str | None:
    """The NPU runtime as it named itself (api and driver versions from RKNN_QUERY_SDK_VERSION)."""
    v = result.versions or {}
    parts = []
    if v.get("api_version"):
        parts.append(f"librknnrt {v['api_version']}")
    elif v.get("librknnrt"):
        parts.append(f"librknnrt {v['librknnrt']}")
    if v.get("drv_version"):
        parts.append(f"driver {v['drv_version']}")
    elif v.get("npu_driver"):
        parts.append(f"driver {v['npu_driver']}")
    return ", ".join(parts) or None


def npu_profile(result: RunResult):
    """The per-layer NPU profile's summary (results.npu_profile.ProfileSummary), None when the
    run has none; a profile the runtime could not give is in result.npu_profile["unsupported"]."""
    data = (result.npu_profile or {}).get("profile")
    if not data:
        return None
    from rkbench.results.npu_profile import NpuProfile, summarize

    return summarize(NpuProfile.from_dict(data), result.core_mask)
