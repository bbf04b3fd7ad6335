"""A suite's `[throughput]` in a nightly: after a cell's latency verdict, the same build is
measured in throughput mode on the same board and its FPS is judged against the FPS stored
with the cell's accepted baseline run (same group, model, board, backend, assignment and
contexts). FPS is compared like latency, the other way round: higher is better, a drop
larger than the minimum effect is a regression.

    [throughput]
    seconds = 3.0        # window of each configuration
    contexts = 0         # 0: one per NPU core
    sweep = false        # true: the bounded sweep (then every configuration is judged)
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from rkbench.errors import InputFileError, RkbenchError

KEYS = {"seconds", "contexts", "sweep"}


def check_section(data: dict, where: str) -> dict:
    unknown = set(data) - KEYS
    if unknown:
        raise InputFileError(f"{where}: unknown key(s) {', '.join(sorted(unknown))} (known: {', '.join(sorted(KEYS))})")
    if "seconds" in data and not (isinstance(data["seconds"], int | float) and data["seconds"] > 0):
        raise InputFileError(f"{where}: seconds must be a number above 0")
    if "contexts" in data and not (isinstance(data["contexts"], int) and 0 <= data["contexts"] <= 64):
        raise InputFileError(f"{where}: contexts must be a whole number from 0 to 64")
    if "sweep" in data and not isinstance(data["sweep"], bool):
        raise InputFileError(f"{where}: sweep must be true or false")
    return dict(data)


@dataclass
class FpsVerdict:
    kind: str  # "same" | "regression" | "improvement" | "no-baseline"
    effect: float | None  # relative FPS change (+0.10 = 10 % more FPS)
    text: str


def fps_verdict(current: float, reference: float | None, min_effect: float) -> FpsVerdict:
    """Higher is better: FPS down by more than min_effect is a regression."""
    if not reference:
        return FpsVerdict("no-baseline", None, "no stored FPS for the baseline run")
    effect = current / reference - 1.0
    if effect < -min_effect:
        kind = "regression"
    elif effect > min_effect:
        kind = "improvement"
    else:
        kind = "same"
    return FpsVerdict(kind, effect, f"FPS {current:.1f} vs {reference:.1f} ({effect:+.1%}, limit {min_effect:.0%})")


def throughput_cell(nightly, cell, outcome):
    """Measure `cell` in throughput mode and fold the FPS verdicts into its CellResult
    (a regression of FPS makes a passing cell a regression; nothing else is changed)."""
    from rkbench.lab import nightly as n
    from rkbench.run.pipeline import run_model

    section = nightly.suite.throughput
    if outcome.result is None or outcome.outcome in (n.OFFLINE, n.ERROR):
        return outcome
    request = nightly._request(cell)
    request = replace(
        request,
        measure=replace(
            request.measure,
            throughput=True,
            sweep=bool(section.get("sweep", False)),
            contexts=int(section.get("contexts", 0)),
            throughput_seconds=float(section.get("seconds", request.measure.throughput_seconds)),
            core_masks=[cell.core_mask],
        ),
    )
    try:
        report = run_model(request, nightly.store, nightly.build_options, lambda m: None)
    except RkbenchError as err:
        return replace(outcome, message=f"{outcome.message}; throughput not measured: {err}".lstrip("; "))
    limit = cell.model.thresholds.max_latency_regression or nightly.options.min_effect
    references = _baseline_fps(nightly.store, outcome)
    texts, regressed = [], False
    for event in report.throughput:
        if event.out_of_memory:
            texts.append(f"{len(event.core_masks)} ctx did not fit")
            continue
        verdict = fps_verdict(event.fps, references.get((event.assignment, len(event.core_masks))), limit)
        regressed = regressed or verdict.kind == "regression"
        texts.append(f"{len(event.core_masks)} ctx {event.assignment}: {verdict.kind}: {verdict.text}")
    message = "; ".join(t for t in [outcome.message, "throughput " + " | ".join(texts)] if t)
    if regressed and outcome.outcome in (n.PASSED, n.IMPROVED, n.NO_BASELINE):
        return replace(outcome, outcome=n.REGRESSED, message=message)
    return replace(outcome, message=message)


def _baseline_fps(store, outcome) -> dict:
    """(assignment, contexts) -> FPS stored in the group of the cell's accepted baseline run."""
    if outcome.baseline_run is None:
        return {}
    base = store.get_run(outcome.baseline_run, samples=False)
    rows = store.throughput_rows(model_sha256=base.model_sha256, board=base.board, group=base.group)
    return {(r["assignment"], r["contexts"]): r["fps"] for r in rows if r["fps"] is not None}
