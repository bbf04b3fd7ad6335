"""Confirmation before blame: a suspected verdict, measured again, interleaved, on one board.

A stored baseline was measured on another day; the board may have drifted since (thermals,
DVFS, DDR clocks, other services, a runtime update), and a rank test between the two days
then calls DIFFERENT what is the board. So a suspected cell (DIFFERENT or UNKNOWN against its
stored baseline) is measured again: the baseline's build (A) and the candidate (B) on the
same board now, in alternating rounds A B A B, and the verdict is taken from those samples
(pooled per side, the same rank test and minimum effect as `compare_latency`). The baseline
build measured now against the baseline as stored is the board's drift, named with the
telemetry that changed.

The candidate's own measurement just before is not pooled in: it was taken before the
interleaving (tried: it shifted tests' verdicts by a few percent). Cost:
MeasureOptions.confirm_rounds rounds per side of confirm_fraction x min_seconds (default
3 x 0.4: 2.4x the cell's measuring in all, plus 6 runs' start-up).
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from dataclasses import dataclass, field, replace

from rkbench.errors import BoardError, RkbenchError
from rkbench.model.build import BuildOptions, Say
from rkbench.model.cache import file_sha256
from rkbench.results.model import RunResult, TelemetrySample
from rkbench.results.stats import DIFFERENT, MIN_SAMPLES, Verdict, compare_latency
from rkbench.results.store import Store
from rkbench.run.compare import Limits
from rkbench.run.pipeline import RunRequest, config_from_record, run_model


class ConfirmUnavailable(RkbenchError):
    """The baseline's build cannot be measured again (not cached, cannot be rebuilt)."""


@dataclass
class ConfirmResult:
    verdict: Verdict | None = None  # candidate (B) vs the baseline build (A), interleaved, now
    drift: Verdict | None = None  # the baseline build now vs the baseline as stored
    telemetry: dict[str, tuple[float, float]] = field(default_factory=dict)  # changed: stored, now
    rounds: int = 0  # rounds completed per side
    seconds: float = 0.0  # wall time of the confirmation
    measured_s: float = 0.0  # of which measuring (the runners' elapsed time)
    error: str = ""  # why there is no verdict
    board_lost: bool = False
    run_ids: list[int] = field(default_factory=list)
    why: str = ""  # why a cell that was SAME was confirmed anyway (its board is unstable)

    @property
    def drifted(self) -> bool:
        return self.drift is not None and self.drift.kind == DIFFERENT

    @property
    def kind(self) -> str | None:
        return self.verdict.kind if self.verdict is not None else None

    def drift_text(self) -> str:
        """'board drifted +18.2% since the baseline (cpu0 1800 -> 1416 MHz)', or ''."""
        if self.drift is None or self.drift.effect is None:
            return ""
        changed = ", ".join(f"{name} {a:g} -> {b:g}" for name, (a, b) in self.telemetry.items())
        head = "board drifted" if self.drifted else "no drift"
        return f"{head} {self.drift.effect:+.1%} since the baseline" + (f" ({changed})" if changed else "")

    def text(self) -> str:
        if self.error:
            return f"not confirmed: {self.error}"
        assert self.verdict is not None
        v = self.verdict
        change = f" {v.effect:+.1%} [{v.ci_low:+.1%}, {v.ci_high:+.1%}]" if v.effect is not None else ""
        kind = f"{v.kind} ({v.direction})" if v.direction else v.kind
        drift = self.drift_text()
        why = f" ({self.why})" if self.why else ""
        text = f"confirmed {kind}{change} in {self.rounds}x2 interleaved rounds{why}"
        return text + (f"; {drift}" if drift else "")


def _same_build(candidate: RunResult, stored: RunResult) -> bool:
    return stored.build_key is None or stored.build_key == candidate.build_key


def baseline_request(
    candidate: RunRequest, candidate_result: RunResult, stored: RunResult, build_options: BuildOptions
) -> RunRequest:
    """How to measure the stored baseline's build now, on the candidate's board: the
    candidate's own request when the build is the same (without the test-only slowdown, which
    stands for a change of the candidate), else the build from the cache, else rebuilt from
    the recipe the baseline recorded, with the toolkit it was built with. ConfirmUnavailable
    when none of these is possible."""
    measure = replace(candidate.measure, inject_slowdown=0.0)
    if _same_build(candidate_result, stored):
        return replace(candidate, measure=measure)
    return replace(request_for_run(stored, candidate, build_options), measure=measure)


def request_for_run(run: RunResult, template: RunRequest, build_options: BuildOptions) -> RunRequest:
    """A request measuring `run`'s build again, with the board and measurement of `template`."""
    recorded = (run.settings or {}).get("recipe")
    what = f"the build of run {run.run_id} ({(run.build_key or '-')[:12]})"
    if recorded is None:
        raise ConfirmUnavailable(
            f"{what}: the run recorded no build recipe (a hybrid or .rknn run, or from an older rkbench); "
            "accept a new baseline"
        )
    config = replace(config_from_record(recorded), target=run.target or recorded.get("target"))
    if run.build_key and build_options.cache.lookup(run.build_key) is not None:
        return replace(template, config=config, cached_build=run.build_key, hybrid_cfg=None, target=run.target)
    from rkbench.toolkit.worker import toolkit_version

    wanted, installed = (run.versions or {}).get("toolkit"), toolkit_version(build_options.worker.python)
    if wanted != installed:
        raise ConfirmUnavailable(
            f"{what} is no longer in the build cache {build_options.cache.root} and its toolkit "
            f"{wanted or 'version'} is not installed (this host has {installed}): accept a new baseline"
        )
    if not config.model.is_file() or file_sha256(config.model) != run.model_sha256:
        raise ConfirmUnavailable(
            f"{what} is no longer in the build cache and its model {config.model} is gone or has changed: "
            "accept a new baseline"
        )
    return replace(template, config=config, cached_build=None, hybrid_cfg=None, target=run.target)


def _means(samples: list[TelemetrySample]) -> dict[str, float]:
    values: dict[str, list[float]] = defaultdict(list)
    for s in samples:
        for policy, hz in s.cpu_freq_hz.items():
            values[f"cpu{policy} MHz"].append(hz / 1e6)
        for zone, celsius in s.temperatures_c.items():
            values[f"{zone} °C"].append(celsius)
        if s.npu_freq_hz:
            values["npu MHz"].append(s.npu_freq_hz / 1e6)
        if s.npu_load_pct:
            values["npu load %"].append(sum(s.npu_load_pct) / len(s.npu_load_pct))
    return {k: sum(v) / len(v) for k, v in values.items() if v}


def telemetry_changes(stored: list[TelemetrySample], now: list[TelemetrySample]) -> dict[str, tuple[float, float]]:
    """Telemetry that moved between the stored baseline and now (means): clocks by 2% or
    more, temperatures by 2 °C or more, load by 5 points or more."""
    before, after = _means(stored), _means(now)
    out = {}
    for name in sorted(before.keys() & after.keys()):
        a, b = before[name], after[name]
        if name.endswith("MHz"):
            moved = a > 0 and abs(b - a) / a >= 0.02
        elif name.endswith("°C"):
            moved = abs(b - a) >= 2.0
        else:
            moved = abs(b - a) >= 5.0
        if moved:
            out[name] = (round(a, 1), round(b, 1))
    return out


def confirm(
    candidate: RunRequest,
    baseline: RunRequest,
    stored: RunResult,
    store: Store,
    build_options: BuildOptions,
    min_effect: float,
    say: Say,
) -> ConfirmResult:
    """Measure `baseline` (A) and `candidate` (B) in alternating rounds on the candidate's
    board and decide on the pooled samples; `stored` is the baseline as stored (its samples
    and telemetry measure the drift). A board failure ends it with board_lost set."""
    started = time.monotonic()
    options = candidate.measure
    rounds = max(1, options.confirm_rounds)

    def short(request: RunRequest) -> RunRequest:
        m = request.measure
        seconds = m.min_seconds * options.confirm_fraction
        return replace(
            request,
            measure=replace(
                m,
                min_seconds=seconds,
                min_runs=max(MIN_SAMPLES, math.ceil(m.min_runs * options.confirm_fraction)),
                max_seconds=max(seconds, m.max_seconds * options.confirm_fraction),
                profile_layers=False,
                per_layer=False,
            ),
            limits=Limits(),
            group=f"{candidate.group or 'run'}/confirm",
        )

    sides = (("A", short(baseline)), ("B", short(candidate)))
    samples: dict[str, list[int]] = {"A": [], "B": []}
    now_telemetry: list[TelemetrySample] = []
    out = ConfirmResult()
    try:
        for number in range(rounds):
            for side, request in sides:
                report = run_model(request, store, build_options, lambda _: None)
                result = report.results[0]
                out.run_ids.append(result.run_id)
                if result.status != "ok":
                    raise RkbenchError(f"round {number + 1} ({side}) failed: {result.error}")
                samples[side].extend(result.latency_ns)
                out.measured_s += float(result.settings.get("elapsed_s") or 0.0)
                if side == "A":
                    now_telemetry += store.get_run(result.run_id).telemetry
            out.rounds = number + 1
            say(f"confirmation round {number + 1}/{rounds} done")
    except BoardError as err:
        out.error, out.board_lost = f"board lost during the confirmation (after {out.rounds} round(s)): {err}", True
    except RkbenchError as err:
        out.error = str(err)
    out.seconds = time.monotonic() - started
    if out.error:
        return out
    out.verdict = compare_latency(samples["A"], samples["B"], min_effect=min_effect)
    out.drift = compare_latency(stored.latency_ns, samples["A"], min_effect=min_effect)
    out.telemetry = telemetry_changes(stored.telemetry, now_telemetry)
    return out


def confirm_regression_threshold(
    request: RunRequest, result: RunResult, store: Store, build_options: BuildOptions, say: Say
) -> ConfirmResult | None:
    """`rkbench run --max-regression`: when the run is suspected (DIFFERENT or UNKNOWN against
    the accepted baseline, else the previous run), confirm before failing. The threshold then
    carries the confirmed decision, its detail both verdicts. None when nothing was suspected."""
    from rkbench.results.stats import REGRESSION, SAME
    from rkbench.run.pipeline import latency_reference

    limit = request.limits.max_latency_regression
    threshold = next((t for t in result.thresholds if t.name == "max_latency_regression"), None)
    if limit is None or threshold is None or not result.latency_ns:
        return None
    stored = latency_reference(store, result)
    if stored is None or not stored.latency_ns:
        return None
    suspected = compare_latency(stored.latency_ns, result.latency_ns, min_effect=limit)
    if suspected.kind == SAME:
        return None
    masks = [result.core_mask] if result.core_mask else request.measure.core_masks
    candidate = replace(request, measure=replace(request.measure, core_masks=masks), group=result.group)
    say(f"{suspected.kind} against run {stored.run_id}: confirming, interleaved on the board")
    try:
        checked = confirm(
            candidate,
            baseline_request(candidate, result, stored, build_options),
            stored,
            store,
            build_options,
            limit,
            say,
        )
    except ConfirmUnavailable as err:
        checked = ConfirmResult(error=str(err))
    verdict = checked.verdict
    threshold.passed = not (verdict is not None and verdict.kind == DIFFERENT and verdict.direction == REGRESSION)
    threshold.value = verdict.effect if verdict is not None else None
    threshold.detail = f"stored: {threshold.detail}; {checked.text()}"
    store.add_confirmation(
        result.run_id,
        stored.run_id,
        result.board,
        result.group,
        suspected.kind,
        checked.kind,
        checked.drift.effect if checked.drift else None,
        checked.drifted,
        checked.text(),
    )
    return checked
