"""`rkbench nightly`: a suite over a lab of boards, with verdicts that separate regressions
from noise.

Each (model, config, SoC) is built once, builds in parallel worker processes; boards run
concurrently, one run at a time per board (the runner's board lock also serialises two
nightlies on the same board); transient board failures are retried, an offline board is
reported and the others go on. Latency is judged against the accepted baseline of the same
(model, build, board, core mask, backend) by a rank test plus a minimum effect; UNKNOWN and
throttled cells are measured again, a bounded number of times. A cell still suspected
(DIFFERENT or UNKNOWN against its stored baseline) is confirmed before it is blamed: the
baseline's build and the candidate measured again on the board now, interleaved
(lab/confirm.py); the verdict is the confirmation's, and the board's drift since the
baseline is named. A board that drifts night after night is listed as unstable.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

from rkbench.errors import BoardError, RkbenchError
from rkbench.lab.confirm import ConfirmResult, ConfirmUnavailable, baseline_request, confirm
from rkbench.lab.inventory import Board, Inventory
from rkbench.lab.suite import Cell, ModelSpec, Suite
from rkbench.model.build import BuildOptions, Say, build, prepare
from rkbench.model.config import BuildConfig, parse_numbers
from rkbench.model.info import framework_of
from rkbench.results.model import RunResult
from rkbench.results.stats import DIFFERENT, REGRESSION, SAME, UNKNOWN, Verdict, compare_latency
from rkbench.results.store import Store
from rkbench.run.compare import Limits
from rkbench.run.pipeline import Analyses, BoardOptions, RunRequest, measured_inputs, run_model
from rkbench.run.plan import MeasureOptions

DEFAULTS = MeasureOptions()

# Cell outcomes.
PASSED, REGRESSED, IMPROVED, FAILED, UNSTABLE, NO_BASELINE, OFFLINE, ERROR = (
    "pass",
    "regression",
    "improvement",
    "threshold-failed",
    "unstable",
    "no-baseline",
    "offline",
    "error",
)
# A suspected cell whose confirmation could not run (the baseline's build is gone): UNKNOWN,
# never a regression; one whose board went away during the confirmation.
UNCONFIRMED, LOST = "unconfirmed", "board-lost"
#: A board that drifted in this many of its last UNSTABLE_OF confirmed nightlies is unstable.
UNSTABLE_AFTER, UNSTABLE_OF = 2, 3


@dataclass
class CellResult:
    cell: Cell
    outcome: str
    result: RunResult | None = None
    verdict: Verdict | None = None
    baseline_run: int | None = None
    attempts: int = 0
    message: str = ""
    bytes_pushed: int = 0  # to the board, runner and blobs (0 when nothing changed)
    confirmation: ConfirmResult | None = None  # when the stored-baseline verdict was suspect
    measure_s: float = 0.0  # wall time of the cell's (last) measurement

    @property
    def key(self) -> str:
        return self.cell.key


@dataclass
class NightlyOptions:
    group: str
    retries: int = 2  # a transient board failure is retried this many times
    remeasure: int = 2  # an UNKNOWN or throttled cell is measured again this many times
    min_effect: float = 0.05  # default minimum latency change that counts
    parallel_builds: int = 2
    lock_timeout_s: float = 900.0  # another nightly on the same board: wait for it
    inject_slowdown: float = 0.0  # test-only: the candidate is this much slower
    inject_drift: float = 0.0  # test-only: the board is this much slower tonight (both builds)
    confirm: bool = True  # confirm suspected cells before blaming them
    backend: str = "auto"
    board_options: dict = field(default_factory=dict)  # ssh/labgrid options shared by all boards


@dataclass
class NightlyReport:
    group: str
    cells: list[CellResult]
    builds: int
    seconds: float
    unstable_boards: dict[str, str] = field(default_factory=dict)  # board -> its drift history

    @property
    def bytes_pushed(self) -> int:
        return sum(cell.bytes_pushed for cell in self.cells)

    @property
    def exit_code(self) -> int:
        """1 on a confirmed regression or failed threshold, 3 when boards failed or were
        offline (and nothing regressed), 0 otherwise. Noise (UNKNOWN) alone never fails."""
        outcomes = {c.outcome for c in self.cells}
        if outcomes & {REGRESSED, FAILED}:
            return 1
        if outcomes & {OFFLINE, ERROR, LOST}:
            return 3
        return 0


def build_config(model: ModelSpec, config, soc: str) -> BuildConfig:
    return BuildConfig(
        model=model.path,
        framework=framework_of(model.path),
        target=soc,
        quant=config.quant,
        algorithm=config.algorithm,
        method=config.method,
        mean=tuple(parse_numbers(m, "mean") for m in model.mean) or None,
        std=tuple(parse_numbers(s, "std") for s in model.std) or None,
        input_sizes=tuple(parse_numbers(s, "input_size", int) for s in model.input_size) or None,
        dataset=model.dataset,
        name=f"{model.name}/{config.name}",
    )


def _soc(cell: Cell) -> str:
    if cell.model.target:
        return cell.model.target
    if not cell.board.soc:
        raise RkbenchError(
            f"board '{cell.board.name}' has no soc in the inventory: add soc = \"rk3588\" "
            "(or the model's target in the suite)"
        )
    return cell.board.soc.lower()


def build_all(cells: list[Cell], options: BuildOptions, parallel: int, say: Say) -> int:
    """Build each (model, config, SoC) once and prepare its simulator analysis, in parallel
    (each build runs in its own toolkit process). Returns how many builds really ran."""
    wanted = {}
    for cell in cells:
        wanted.setdefault((cell.model.name, cell.config.name, _soc(cell)), cell)
    built = 0
    lock = threading.Lock()

    def one(key, cell) -> None:
        nonlocal built
        prepared = prepare(build_config(cell.model, cell.config, key[2]))
        result = build(prepared, options, lambda m: say(f"[build {key[0]}/{key[1]} {key[2]}] {m}"))
        measure = MeasureOptions(inputs=cell.model.inputs)
        Analyses(options).get(
            prepared,
            result.record["cache_key"],
            measured_inputs(prepared, measure),
            False,
            lambda m: say(f"[sim {key[0]}/{key[1]}] {m}"),
        )
        if not result.cached:
            with lock:
                built += 1

    with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        for future in [pool.submit(one, key, cell) for key, cell in wanted.items()]:
            future.result()
    return built


def transient(err: Exception) -> bool:
    """Board failures worth another try (a dropped link, a timeout); not a refused setting."""
    text = str(err).lower()
    return isinstance(err, BoardError) and any(
        word in text for word in ("timed out", "timeout", "connection", "reset", "lost", "busy", "refused")
    )


def unreachable(err: Exception) -> bool:
    text = str(err).lower()
    return isinstance(err, BoardError) and any(
        word in text for word in ("unreachable", "refused", "timed out", "no route", "not reachable", "cannot connect")
    )


class Nightly:
    def __init__(
        self,
        suite: Suite,
        inventory: Inventory,
        store: Store,
        build_options: BuildOptions,
        options: NightlyOptions,
        say: Say,
    ):
        self.suite, self.inventory, self.store = suite, inventory, store
        self.build_options, self.options, self.say = build_options, options, say

    def run(self) -> NightlyReport:
        started = time.monotonic()
        cells = self.suite.cells(self.inventory)
        builds = build_all(cells, self.build_options, self.options.parallel_builds, self.say)
        by_board: dict[str, list[Cell]] = defaultdict(list)
        for cell in cells:
            by_board[cell.board.name].append(cell)
        with ThreadPoolExecutor(max_workers=len(by_board) or 1) as pool:
            futures = [pool.submit(self._board, board_cells) for board_cells in by_board.values()]
            results = [r for future in futures for r in future.result()]
        order = {cell.key: i for i, cell in enumerate(cells)}
        results.sort(key=lambda r: order[r.key])
        report = NightlyReport(self.options.group, results, builds, time.monotonic() - started)
        report.unstable_boards = self._unstable(results)
        return report

    def _unstable(self, results: list[CellResult]) -> dict[str, str]:
        """Boards that drifted tonight and in enough of their previous confirmed nightlies."""
        out = {}
        for board in sorted({r.cell.board.name for r in results if r.confirmation and r.confirmation.drifted}):
            history = self.store.drift_history(board, UNSTABLE_OF)
            drifted = [d for _, was, d in history if was]
            if len(drifted) >= UNSTABLE_AFTER:
                out[board] = (
                    f"drifted in {len(drifted)} of its last {len(history)} confirmed nightlies "
                    f"(up to {', '.join(f'{d:.0%}' for d in drifted if d is not None)})"
                )
        return out

    def _board(self, cells: list[Cell]) -> list[CellResult]:
        """One board's cells, one at a time. If the board cannot be reached, its remaining
        cells are marked offline and the other boards go on."""
        out: list[CellResult] = []
        offline: str | None = None
        for cell in cells:
            if offline is not None:
                out.append(CellResult(cell, OFFLINE, message=offline))
                continue
            outcome = self._cell(cell)
            if self.suite.throughput is not None:  # FPS judged like latency, higher is better
                from rkbench.lab.throughput import throughput_cell

                outcome = throughput_cell(self, cell, outcome)
            if outcome.outcome == OFFLINE:
                offline = outcome.message
            out.append(outcome)
            self.say(
                f"[{cell.board.name}] {cell.key}: {outcome.outcome}"
                + (f" ({outcome.message})" if outcome.message else "")
            )
        return out

    def _request(self, cell: Cell) -> RunRequest:
        board: Board = cell.board
        measure = dict(self.suite.measure)
        extra = self.options.board_options
        return RunRequest(
            config=build_config(cell.model, cell.config, _soc(cell)),
            target=_soc(cell),
            board=BoardOptions(
                board=board.address,
                identity=(board.identity,) if board.identity else (),
                known_hosts=board.known_hosts or extra.get("known_hosts"),
                ssh_config=board.ssh_config or extra.get("ssh_config"),
                python=board.python if board.python != "python3" else extra.get("python"),
                connect_timeout=extra.get("connect_timeout", 10.0),
                labgrid=extra.get("labgrid") or {},
            ),
            measure=MeasureOptions(
                backend=measure.get("backend", self.options.backend),
                core_masks=[cell.core_mask],
                warmup=int(measure.get("warmup", DEFAULTS.warmup)),
                min_runs=int(measure.get("min_runs", DEFAULTS.min_runs)),
                min_seconds=float(measure.get("min_seconds", DEFAULTS.min_seconds)),
                max_seconds=float(measure.get("max_seconds", DEFAULTS.max_seconds)),
                inputs=cell.model.inputs,
                lock_timeout_s=self.options.lock_timeout_s,
                inject_slowdown=self.options.inject_slowdown,
                inject_drift=self.options.inject_drift,
                cpu_threads=int(measure.get("cpu_threads", DEFAULTS.cpu_threads)),
                io_mode={"zero-copy": "zero_copy"}.get(measure.get("io", "copy"), measure.get("io", "copy")),
                profile_layers=bool(measure.get("profile_layers", DEFAULTS.profile_layers)),
                profile_runs=int(measure.get("profile_runs", DEFAULTS.profile_runs)),
            ),
            limits=Limits(
                min_cos_fp32=cell.model.thresholds.min_cos_fp32,
                max_p99_ms=cell.model.thresholds.max_p99_ms,
                max_peak_rss_mb=cell.model.thresholds.max_peak_rss_mb,
                max_npu_mem_mb=cell.model.thresholds.max_npu_mem_mb,
            ),
            group=self.options.group,
            suite=self.suite.name,
            board_label=board.name,
            hybrid_cfg=cell.config.hybrid_cfg,
        )

    def _measure(self, cell: Cell) -> tuple[RunResult, int, int]:
        """One measurement with bounded retries of transient failures: (result, attempts,
        bytes pushed to the board)."""
        attempts, last = 0, ""
        while attempts <= self.options.retries:
            attempts += 1
            try:
                report = run_model(self._request(cell), self.store, self.build_options, lambda m: None)
                return report.results[0], attempts, report.outcome.deploy.bytes_pushed
            except BoardError as err:
                last = str(err)
                if not transient(err) or attempts > self.options.retries:
                    raise
                self.say(f"[{cell.board.name}] {cell.key}: {err}; trying again ({attempts}/{self.options.retries})")
                time.sleep(min(2.0 * attempts, 10.0))
        raise BoardError(last)

    def _cell(self, cell: Cell) -> CellResult:
        limit = cell.model.thresholds.max_latency_regression or self.options.min_effect
        attempts = pushed = 0
        verdict = baseline = result = reference = None
        measure_s = 0.0
        try:
            for _ in range(1 + self.options.remeasure):
                mark = time.monotonic()
                result, tries, sent = self._measure(cell)
                measure_s = time.monotonic() - mark
                attempts += tries
                pushed += sent
                if result.status != "ok":
                    return CellResult(cell, ERROR, result, attempts=attempts, message=result.error or "")
                baseline = self.store.baseline_for(result)
                if baseline is None:
                    break
                reference = self.store.get_run(baseline)
                verdict = compare_latency(reference.latency_ns, result.latency_ns, min_effect=limit)
                # An UNKNOWN goes to the confirmation (a better second look: both sides now) rather
                # than being measured again against the old baseline.
                if (verdict.kind != UNKNOWN or self.options.confirm) and not result.throttled:
                    break
                self.say(
                    f"[{cell.board.name}] {cell.key}: {'throttled' if result.throttled else 'UNKNOWN'}: measuring again"
                )
        except BoardError as err:
            return CellResult(
                cell, OFFLINE if unreachable(err) else ERROR, result, verdict, baseline, attempts, str(err)
            )
        except RkbenchError as err:
            return CellResult(cell, ERROR, result, verdict, baseline, attempts, str(err))
        failed = [t for t in result.thresholds if not t.passed]
        checked = None
        # On a board that drifted in enough of its last nightlies a SAME is suspect too: the
        # drift may hide a change as well as fake one.
        drifting = self._drifting(cell.board.name) if verdict is not None and verdict.kind == SAME else ""
        suspect = verdict is not None and (verdict.kind in (DIFFERENT, UNKNOWN) or bool(drifting))
        if suspect and not failed and not result.throttled and self.options.confirm:
            checked = self._confirm(cell, result, reference, baseline, verdict, limit, drifting)
        if checked is not None:
            outcome, message = _confirmed_outcome(checked, verdict, baseline)
            if measure_s > 0:
                message += (
                    f" (confirmation {checked.seconds:.1f} s: {checked.seconds / measure_s:.1f}x the cell's "
                    f"{measure_s:.1f} s measurement)"
                )
        elif failed:
            outcome = FAILED
            message = "; ".join(f"{t.name} {t.value} vs {t.limit}" for t in failed)
        elif baseline is None:
            outcome, message = NO_BASELINE, "no accepted baseline yet (rkbench baseline accept)"
        elif result.throttled:
            # A throttled run is never called a regression: it is reported as unstable.
            outcome, message = UNSTABLE, "throttled: " + ", ".join(result.throttle_reasons)
        elif verdict.kind == DIFFERENT:
            outcome = REGRESSED if verdict.direction == REGRESSION else IMPROVED
            message = _verdict_text(verdict, baseline)
        elif verdict.kind == SAME:
            outcome, message = PASSED, _verdict_text(verdict, baseline)
        else:
            outcome, message = UNSTABLE, "UNKNOWN after re-measuring: " + _verdict_text(verdict, baseline)
        return CellResult(cell, outcome, result, verdict, baseline, attempts, message, pushed, checked, measure_s)

    def _drifting(self, board: str) -> str:
        """'' for a stable board, else its drift history (from the store, before tonight)."""
        history = [h for h in self.store.drift_history(board, UNSTABLE_OF + 1) if h[0] != self.options.group]
        drifted = sum(was for _, was, _ in history[:UNSTABLE_OF])
        if drifted < UNSTABLE_AFTER:
            return ""
        return (
            f"the board is unstable (drifted in {drifted} of its last {len(history[:UNSTABLE_OF])} confirmed nightlies)"
        )

    def _confirm(
        self,
        cell: Cell,
        result: RunResult,
        stored: RunResult,
        baseline: int,
        verdict: Verdict,
        limit: float,
        drifting: str = "",
    ) -> ConfirmResult:
        name = cell.board.name
        why = f"{verdict.kind} vs the stored baseline" + (f", but {drifting}" if drifting else "")
        self.say(f"[{name}] {cell.key}: {why}: confirming, interleaved")
        request = self._request(cell)
        try:
            again = baseline_request(request, result, stored, self.build_options)
        except ConfirmUnavailable as err:
            checked = ConfirmResult(error=str(err))
        else:
            say = self.say
            checked = confirm(
                request,
                again,
                stored,
                self.store,
                self.build_options,
                limit,
                lambda m: say(f"[{name}] {cell.key}: {m}"),
            )
            if drifting:
                checked.why = drifting
        self.store.add_confirmation(
            result.run_id,
            baseline,
            name,
            self.options.group,
            verdict.kind,
            checked.kind,
            checked.drift.effect if checked.drift else None,
            checked.drifted,
            checked.text(),
        )
        return checked


def _confirmed_outcome(checked: ConfirmResult, stored: Verdict, baseline: int) -> tuple[str, str]:
    """A suspected cell's outcome: the interleaved verdict decides, the stored one is said."""
    said = f"stored baseline: {_verdict_text(stored, baseline)}; {checked.text()}"
    if checked.error:
        return (LOST if checked.board_lost else UNCONFIRMED), f"UNKNOWN ({said})"
    v = checked.verdict
    if v.kind == DIFFERENT:
        return (REGRESSED if v.direction == REGRESSION else IMPROVED), said
    if v.kind == SAME:
        return PASSED, said
    return UNSTABLE, said


def _verdict_text(verdict: Verdict, baseline: int) -> str:
    if verdict.effect is None:
        return f"{verdict.kind} vs baseline run {baseline}: {verdict.reason}"
    return (
        f"{verdict.kind} vs baseline run {baseline}: median {verdict.effect:+.1%} "
        f"[{verdict.ci_low:+.1%}, {verdict.ci_high:+.1%}]"
    )


def markdown_summary(report: NightlyReport, html: Path | None = None) -> str:
    counts = defaultdict(int)
    for cell in report.cells:
        counts[cell.outcome] += 1
    verdict = {0: "OK", 1: "REGRESSION", 3: "BOARD FAILURES"}[report.exit_code]
    lines = [
        f"### rkbench nightly `{report.group}`: {verdict}",
        "",
        " · ".join(f"{n} {name}" for name, n in sorted(counts.items()))
        + f" · {report.builds} build(s) · {report.bytes_pushed} bytes pushed · suite ran in {report.seconds:.1f} s",
        "",
    ]
    lines += [
        "| cell | outcome | p50 ms | vs stored baseline | confirmed (interleaved) | board drift | note |",
        "|---|---|---|---|---|---|---|",
    ]
    for cell in report.cells:
        p50 = f"{cell.result.stats.p50_ms:.3f}" if cell.result and cell.result.stats else "-"
        stored, confirmed, drift = cell_verdicts(cell)
        note = cell.message.replace("|", "/")[:240]
        lines.append(f"| `{cell.key}` | {cell.outcome} | {p50} | {stored} | {confirmed} | {drift} | {note} |")
    if report.unstable_boards:
        lines += ["", "Unstable boards (their speed drifts between nightlies; verdicts there rest on confirmations):"]
        lines += [f"- `{board}`: {text}" for board, text in report.unstable_boards.items()]
    if html is not None:
        lines += ["", f"Report: {html}"]
    return "\n".join(lines) + "\n"


def _change(verdict: Verdict | None) -> str:
    if verdict is None:
        return "-"
    return verdict.kind + (f" {verdict.effect:+.1%}" if verdict.effect is not None else "")


def cell_verdicts(cell: CellResult) -> tuple[str, str, str]:
    """The cell's stored-baseline verdict, its confirmation verdict and the board's drift,
    as short texts ("-" where there is none)."""
    checked = cell.confirmation
    if checked is None:
        return _change(cell.verdict), "-", "-"
    if checked.error:
        return _change(cell.verdict), "UNKNOWN (" + ("board lost" if checked.board_lost else "not confirmed") + ")", "-"
    drift = "-"
    if checked.drift is not None and checked.drift.effect is not None:
        drift = f"{'drifted' if checked.drifted else 'none'} {checked.drift.effect:+.1%}"
        if checked.telemetry:
            drift += " (" + ", ".join(f"{k} {a:g}->{b:g}" for k, (a, b) in checked.telemetry.items()) + ")"
    return _change(cell.verdict), _change(checked.verdict), drift


def cell_junit_results(report: NightlyReport) -> list[RunResult]:
    """RunResults for the JUnit/HTML writers; cells without a run become error entries, and
    verdicts become thresholds so a regression is a test failure."""
    from rkbench.results.model import Threshold

    out = []
    for cell in report.cells:
        if cell.result is None:
            out.append(
                RunResult(
                    group=report.group,
                    model=f"{cell.cell.model.name}/{cell.cell.config.name}",
                    model_sha256="",
                    board=cell.cell.board.name,
                    backend="-",
                    core_mask=cell.cell.core_mask,
                    status="failed" if cell.outcome == ERROR else "aborted",
                    error=cell.message or cell.outcome,
                )
            )
            continue
        result = replace(cell.result, thresholds=list(cell.result.thresholds))
        if cell.verdict is not None:
            stored, confirmed, drift = cell_verdicts(cell)
            result.settings = dict(
                result.settings, verdict_stored_baseline=stored, verdict_confirmed=confirmed, board_drift=drift
            )
            checked = cell.confirmation
            result.thresholds.append(
                Threshold(
                    "latency_vs_baseline",
                    cell.verdict.min_effect,
                    cell.verdict.effect,
                    cell.outcome != REGRESSED,
                    f"stored baseline: {stored}; confirmed: {confirmed}; drift: {drift}; {cell.message}",
                )
            )
            if checked is not None and checked.verdict is not None:
                result.thresholds.append(
                    Threshold(
                        "latency_confirmed",
                        checked.verdict.min_effect,
                        checked.verdict.effect,
                        cell.outcome != REGRESSED,
                        checked.text(),
                    )
                )
            if checked is not None and checked.drift is not None:
                # Informational: drift is the board's, never the cell's failure.
                result.thresholds.append(
                    Threshold("board_drift", checked.drift.min_effect, checked.drift.effect, True, drift)
                )
        out.append(result)
    return out
