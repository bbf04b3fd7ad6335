"""The machine-readable report: every run as `RunResult.to_dict()` plus what the other
reports derive from it (verdict, breached thresholds, peak RSS, comparison with the
previous run), under a schema name and version. Raw latency samples only when asked
(`samples=True`); `read_json` gives the `RunResult`s back.

    {"schema": "rkbench.report", "schema_version": 2, "generated": "...Z",
     "rkbench_version": "0.1.0", "samples_included": false,
     "summary": {"runs": 3, "passed": 1, "failed": 1, "errors": 1},
     "runs": [{...RunResult fields..., "derived": {...}}, ...]}
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

from rkbench import __version__
from rkbench.report import common as c
from rkbench.results.model import LayerError, OutputError, RunResult, TelemetrySample, Threshold, stats_from_dict

SCHEMA = "rkbench.report"
#: 2: latency stats name their sample count `n` (the wire's field); 1 said `count` (still read).
SCHEMA_VERSION = 2
READABLE_VERSIONS = (1, 2)


class ReportFormatError(ValueError):
    """The file is not an rkbench JSON report this version can read."""


def derived(result: RunResult, history: c.History | None = None) -> dict:
    stats = c.latency_stats(result)
    prev = c.previous_run(result, history)
    out: dict[str, Any] = {
        "key": list(c.run_key(result)),
        "outcome": c.outcome(result),
        "passed": result.passed,
        "failed_thresholds": [t.name for t in c.failed_thresholds(result)],
        "peak_rss_mib": c.peak_rss_mb(result),
        "measurement_s": c.measurement_seconds(result),
        "cos_min_fp32": c.worst_cos(result, "fp32"),
        "cos_min_simulator": c.worst_cos(result, "simulator"),
        "departing_layers": [layer.index for layer in c.departures(result)],
        "stats_from_samples": result.stats is None and stats is not None,
    }
    split = c.npu_split(result)
    if split is not None:
        out["npu_split"] = _asdict(split)
    if result.stats is None and stats is not None:
        out["stats"] = _asdict(stats)
    if prev is not None and stats is not None:
        out["previous"] = {
            "run_id": prev.run_id,
            "started": prev.started,
            "p50_ms": prev.p50_ms,
            "p99_ms": prev.p99_ms,
            "p50_change_pct": c.pct_change(stats.p50_ms, prev.p50_ms),
            "p99_change_pct": c.pct_change(stats.p99_ms, prev.p99_ms),
        }
    return out


def report_dict(results: Sequence[RunResult], samples: bool = False, history: c.History | None = None) -> dict:
    tally = c.counts(results)
    runs = []
    for r in results:
        data = r.to_dict(samples=samples)
        data["derived"] = derived(r, history)
        runs.append(data)
    return {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "generated": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "rkbench_version": __version__,
        "samples_included": samples,
        "summary": {"runs": len(results), "passed": tally[c.PASS], "failed": tally[c.FAIL], "errors": tally[c.ERROR]},
        "runs": _finite(runs),
    }


def write_json(
    results: Sequence[RunResult], path: str | os.PathLike, samples: bool = False, history: c.History | None = None
) -> Path:
    """Write the report to `path` (atomically); returns the path. Non-finite floats
    (NaN, inf) are written as null: the file is strict JSON."""
    path = Path(path)
    text = json.dumps(report_dict(results, samples=samples, history=history), indent=1, allow_nan=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def read_json(path: str | os.PathLike) -> list[RunResult]:
    """The runs of a report written by `write_json` (without samples unless it had them)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ReportFormatError(f"{path}: cannot read the JSON report: {exc}") from exc
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise ReportFormatError(f'{path}: not an rkbench JSON report (no "schema": "{SCHEMA}")')
    version = data.get("schema_version")
    if version not in READABLE_VERSIONS:
        raise ReportFormatError(
            f"{path}: report schema version {version!r}, this rkbench reads version "
            f"{SCHEMA_VERSION}: use the rkbench that wrote it, or regenerate the report"
        )
    return [run_from_dict(run) for run in data.get("runs", [])]


def run_from_dict(data: dict) -> RunResult:
    known = {f.name for f in fields(RunResult)}
    kw = {k: v for k, v in data.items() if k in known}
    for key in ("stats", "npu_stats"):
        if kw.get(key) is not None:
            kw[key] = stats_from_dict(kw[key])
    kw["stage_stats"] = {stage: stats_from_dict(s) for stage, s in (kw.get("stage_stats") or {}).items()}
    kw["telemetry"] = [TelemetrySample(**t) for t in kw.get("telemetry", [])]
    kw["outputs"] = [OutputError(**o) for o in kw.get("outputs", [])]
    kw["layers"] = [LayerError(**layer) for layer in kw.get("layers", [])]
    kw["thresholds"] = [Threshold(**t) for t in kw.get("thresholds", [])]
    return RunResult(**kw)


def _asdict(obj) -> dict:
    return {f.name: getattr(obj, f.name) for f in fields(obj)}


def _finite(value):
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value
