"""Board against references: output agreement (runtime_error) and thresholds."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rkbench.accuracy.metrics import Agreement
from rkbench.results.model import OutputError, RunResult, Threshold
from rkbench.results.stats import compare_latency


def output_errors(board: list[list[Path]], reference: list[list], names: list[str], label: str) -> list[OutputError]:
    """Per output tensor over all measured inputs. `reference` holds arrays or .npy paths."""
    agreement = Agreement()
    for board_sample, ref_sample in zip(board, reference):
        for k, (measured_path, ref) in enumerate(zip(board_sample, ref_sample)):
            measured = np.load(measured_path)
            ref = np.load(ref) if isinstance(ref, (str, Path)) else np.asarray(ref)
            if measured.size == ref.size:
                agreement.add(k, ref, measured)
    return [
        OutputError(
            name=names[k] if k < len(names) else f"output{k}",
            reference=label,
            **{key: value for key, value in row.items() if key != "shape"},
        )
        for k, row in agreement.summary()
    ]


@dataclass(frozen=True)
class Limits:
    """What a run must meet; None: not checked."""

    min_cos_fp32: float | None = None
    max_p99_ms: float | None = None
    max_peak_rss_mb: float | None = None
    max_npu_mem_mb: float | None = None  # the runtime's DMA allocation (RKNN_QUERY_MEM_SIZE)
    max_latency_regression: float | None = None  # relative, against the baseline (else the previous run)


def peak_rss_mb(result: RunResult) -> float | None:
    peaks = [part.get("vm_hwm_kb") for part in result.memory.values() if isinstance(part, dict)]
    peaks = [p for p in peaks if p]
    return max(peaks) / 1024 if peaks else None


def check_thresholds(result: RunResult, limits: Limits, previous: RunResult | None) -> list[Threshold]:
    checks = []
    if limits.min_cos_fp32 is not None:
        fp32 = [o for o in result.outputs if o.reference == "fp32"]
        worst = min((o.cos_mean for o in fp32), default=None)
        checks.append(
            Threshold(
                "min_cos_fp32",
                limits.min_cos_fp32,
                worst,
                worst is not None and worst >= limits.min_cos_fp32,
                "worst output's mean cosine against fp32" if fp32 else "no fp32 reference",
            )
        )
    if limits.max_p99_ms is not None and result.stats is not None:
        value = result.stats.p99_ms
        checks.append(Threshold("max_p99_ms", limits.max_p99_ms, value, value <= limits.max_p99_ms))
    if limits.max_peak_rss_mb is not None:
        value = peak_rss_mb(result)
        checks.append(
            Threshold(
                "max_peak_rss_mb", limits.max_peak_rss_mb, value, value is not None and value <= limits.max_peak_rss_mb
            )
        )
    if limits.max_npu_mem_mb is not None:
        npu = result.npu_memory or {}
        value = npu["dma_bytes"] / 2**20 if "dma_bytes" in npu else None
        checks.append(
            Threshold(
                "max_npu_mem_mb",
                limits.max_npu_mem_mb,
                value,
                value is not None and value <= limits.max_npu_mem_mb,
                "NPU memory (total DMA)"
                if value is not None
                else f"the runtime did not report NPU memory ({npu.get('unsupported') or 'not an NPU backend'})",
            )
        )
    if limits.max_latency_regression is not None:
        if previous is None or not previous.latency_ns:
            checks.append(
                Threshold(
                    "max_latency_regression",
                    limits.max_latency_regression,
                    None,
                    True,
                    "no previous run on this board to compare with",
                )
            )
        else:
            verdict = compare_latency(previous.latency_ns, result.latency_ns, min_effect=limits.max_latency_regression)
            regressed = verdict.kind == "DIFFERENT" and verdict.direction == "regression"
            checks.append(
                Threshold(
                    "max_latency_regression",
                    limits.max_latency_regression,
                    verdict.effect,
                    not regressed,
                    f"{verdict.kind} vs run {previous.run_id}: median {verdict.effect:+.1%} "
                    f"[{verdict.ci_low:+.1%}, {verdict.ci_high:+.1%}], p={verdict.p_value:.2g}"
                    if verdict.effect is not None
                    else f"{verdict.kind} vs run {previous.run_id}: {verdict.reason}",
                )
            )
    return checks
