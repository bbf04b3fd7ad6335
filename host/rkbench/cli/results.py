"""Commands over stored runs: history, show, compare, export."""

from __future__ import annotations

import csv
import io
import json
import math
from datetime import datetime
from pathlib import Path

import click

from rkbench.errors import BoardError, ThresholdFailed
from rkbench.report.common import STAGE_ORDER, npu_memory_text, npu_split, runtime_text, stage_table
from rkbench.results.model import LayerError, RunResult
from rkbench.results.stats import DIFFERENT, REGRESSION, SAME, compare_latency
from rkbench.results.store import RunSummary, Store, UnknownRun, default_db_path


def db_option(func):
    return click.option(
        "--db",
        type=click.Path(path_type=Path, dir_okay=False),
        help="Results store (default: $RKBENCH_DB, else $XDG_DATA_HOME/rkbench/results.db, "
        "else ~/.local/share/rkbench/results.db).",
    )(func)


def _path(db: Path | None) -> Path:
    return db if db is not None else default_db_path()


def _open(db: Path | None, run_text: str | None = None) -> Store:
    """The store, which must exist when a run is asked for (reading never creates one)."""
    path = _path(db)
    if not path.exists():
        what = f"no run {run_text}" if run_text else "no results store"
        raise UnknownRun(
            f"{what}: the results store {path} does not exist yet (`rkbench run` fills it; --db picks another file)"
        )
    return Store(path, read_only=None)  # a store on read-only media can still be read


def _run_id(store: Store, text: str) -> int:
    if text.lower() == "latest":
        latest = store.latest_run_id()
        if latest is None:
            raise UnknownRun(f"no runs in the results store {store.path} yet")
        return latest
    try:
        value = int(text)
    except ValueError:
        raise UnknownRun(
            f"no run '{text}' in the results store {store.path}: run ids are numbers "
            "(or 'latest'); `rkbench history` lists them"
        ) from None
    return value


# --------------------------------------------------------------------------- formatting


def _when(iso: str | None) -> str:
    if not iso:
        return "-"
    try:
        return datetime.fromisoformat(iso).astimezone().strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return iso[:16]


def _f(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}"


def _cell(value) -> str:
    return "-" if value is None else str(value)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:+.1f}%"


def _cut(text: str | None, width: int) -> str:
    text = text or "-"
    return text if len(text) <= width else text[: width - 1] + "~"


def format_history(rows: list[RunSummary]) -> str:
    head = (
        f"{'id':>5}  {'when':<16}  {'model':<20} {'board':<24} {'backend':<11} {'cores':<6} "
        f"{'status':<8} {'p50 ms':>8} {'p99 ms':>8} {'cos fp32':>8}  throttled"
    )
    lines = [head]
    for r in rows:
        lines.append(
            f"{r.run_id:>5}  {_when(r.started):<16}  {_cut(r.model, 20):<20} "
            f"{_cut(r.board, 24):<24} {_cut(r.backend, 11):<11} {_cut(r.core_mask, 6):<6} "
            f"{r.status:<8} {_f(r.p50_ms):>8} {_f(r.p99_ms):>8} {_f(r.cos_fp32, 4):>8}  "
            f"{'yes' if r.throttled else ''}"
        )
    return "\n".join(lines)


def flatten(data, prefix: str = "") -> dict:
    """Nested dicts as dotted keys: {"after_load": {"VmHWM": 1}} -> {"after_load.VmHWM": 1}."""
    out = {}
    if isinstance(data, dict):
        for key, value in data.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            if isinstance(value, dict):
                out.update(flatten(value, name))
            else:
                out[name] = value
    return out


def _layer_badness(layer: LayerError) -> float:
    values = [v for v in (layer.sim_single_cos, layer.rt_single_sim_cos) if v is not None]
    if not values:
        values = [v for v in (layer.sim_entire_cos, layer.rt_entire_cos) if v is not None]
    return min(values) if values else math.inf


def worst_layers(layers: list[LayerError], count: int) -> list[LayerError]:
    """Layers where the board departs from the simulator first, then the lowest own cosine."""
    return sorted(layers, key=lambda layer: (not layer.board_departs, _layer_badness(layer)))[:count]


def format_show(run: RunResult, previous: list[RunSummary], layer_count: int) -> str:
    lines = [
        f"Run {run.run_id}  {run.status.upper()}  group {run.group}" + (f"  suite {run.suite}" if run.suite else "")
    ]
    lines.append(f"  model      {run.model}  sha256 {run.model_sha256[:16]}")
    lines.append(
        f"  board      {run.board}  soc {run.board_soc or '-'}  backend {run.backend}  core mask {run.core_mask or '-'}"
    )
    if run.build_key or run.target or run.quant:
        lines.append(f"  build      key {run.build_key or '-'}  target {run.target or '-'}  quant {run.quant or '-'}")
    lines.append(f"  started    {_when(run.started)}   finished {_when(run.finished)}")
    if run.error:
        lines.append(f"  error      {run.error}")
    if run.stats:
        s = run.stats
        lines.append("")
        lines.append(
            f"Latency, {s.n} samples (ms): p50 {_f(s.p50_ms)}  p90 {_f(s.p90_ms)}  "
            f"p99 {_f(s.p99_ms)}  mean {_f(s.mean_ms)} ± {_f(s.std_ms)}  "
            f"min {_f(s.min_ms)}  max {_f(s.max_ms)}"
        )
    elif run.latency_ns:
        lines.append(f"\nLatency: {len(run.latency_ns)} samples, no summary")
    if run.npu_stats:
        s = run.npu_stats
        lines.append(f"NPU time (ms): p50 {_f(s.p50_ms)}  p99 {_f(s.p99_ms)}  mean {_f(s.mean_ms)}")
        split = npu_split(run)
        if split is not None:
            lines.append(
                f"  host share {_f(split.host_ms)} ms of {_f(split.end_to_end_ms)} ms end to end, "
                f"NPU utilisation {split.utilisation:.0%}"
            )
    for stage, s in stage_table(run):
        lines.append(f"  {stage:<12} p50 {_f(s.p50_ms)}  p99 {_f(s.p99_ms)} ms")
    if run.io_mode:
        lines.append(f"  io mode      {run.io_mode}")
    for note in run.timing_notes:
        lines.append(f"  timing: {note}")
    for label, text in (("NPU memory", npu_memory_text(run)), ("runtime", runtime_text(run))):
        if text:
            lines.append(f"{label}: {text}")
    if run.throttled:
        lines.append(f"THROTTLED: {', '.join(run.throttle_reasons) or 'yes'}  (latency not comparable)")
    if previous:
        lines.append("")
        lines.append("Previous runs on this board (same model, core mask, backend):")
        current = run.stats.p50_ms if run.stats else None
        for p in previous:
            delta = _pct(current / p.p50_ms - 1.0) if current and p.p50_ms else "-"
            lines.append(
                f"  {p.run_id:>5}  {_when(p.started)}  p50 {_f(p.p50_ms):>8}  "
                f"p99 {_f(p.p99_ms):>8}  this run {delta}{'  throttled' if p.throttled else ''}"
            )
    memory = flatten(run.memory)
    if memory:
        lines.append("")
        lines.append("Memory:")
        for key, value in memory.items():
            lines.append(f"  {key:<40} {value}")
    if run.outputs:
        lines.append("")
        lines.append("Outputs:")
        lines.append(
            f"  {'output':<28} {'vs':<10} {'cos mean':>9} {'cos min':>9} {'euc mean':>9} {'max abs':>9}  top-1"
        )
        for o in run.outputs:
            top = "-" if o.top1_agreement is None else f"{o.top1_agreement:.1%}"
            lines.append(
                f"  {_cut(o.name, 28):<28} {o.reference:<10} {_f(o.cos_mean, 5):>9} "
                f"{_f(o.cos_min, 5):>9} {_f(o.euc_mean, 4):>9} {_f(o.max_abs, 4):>9}  {top}"
            )
    if run.layers:
        lines.append("")
        lines.append(
            f"Worst layers ({min(layer_count, len(run.layers))} of {len(run.layers)}; "
            "'departs': the board differs from the simulator):"
        )
        lines.append(
            f"  {'#':>4} {'op':<14} {'tensor':<32} {'sim single':>10} {'sim entire':>10} "
            f"{'rt entire':>10} {'rt vs sim':>10}"
        )
        for layer in worst_layers(run.layers, layer_count):
            lines.append(
                f"  {layer.index:>4} {_cut(layer.op, 14):<14} {_cut(layer.tensor, 32):<32} "
                f"{_f(layer.sim_single_cos, 5):>10} {_f(layer.sim_entire_cos, 5):>10} "
                f"{_f(layer.rt_entire_cos, 5):>10} {_f(layer.rt_single_sim_cos, 5):>10}"
                f"{'  departs' if layer.board_departs else ''}"
            )
    if run.thresholds:
        lines.append("")
        lines.append("Thresholds:")
        for t in run.thresholds:
            lines.append(
                f"  {'pass' if t.passed else 'FAIL'}  {t.name:<24} limit {t.limit:g}  "
                f"value {'-' if t.value is None else f'{t.value:g}'}" + (f"  {t.detail}" if t.detail else "")
            )
    for title, data in (("Versions", run.versions), ("Settings", run.settings)):
        flat = flatten(data)
        if flat:
            lines.append("")
            lines.append(f"{title}:")
            for key, value in flat.items():
                lines.append(f"  {key:<28} {value}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- commands


@click.command("history")
@click.option("--model", help="Model display name or sha256 (a prefix of 6+ hex digits will do).")
@click.option("--board", help="Board address as stored, or a SoC (rk3588) for all its boards.")
@click.option("--status", type=click.Choice(["running", "ok", "failed", "aborted"]))
@click.option("-n", "--limit", type=click.IntRange(1, None), default=50, show_default=True)
@db_option
@click.option("--json", "as_json", is_flag=True, help="Print the runs as JSON.")
def history_command(
    model: str | None, board: str | None, status: str | None, limit: int, db: Path | None, as_json: bool
) -> None:
    """Stored runs, newest first."""
    path = _path(db)
    rows: list[RunSummary] = []
    if path.exists():
        with Store(path, read_only=None) as store:
            rows = store.history(model=model, board=board, limit=limit, status=status)
    if as_json:
        click.echo(json.dumps([r.to_dict() for r in rows], indent=2))
    elif not rows:
        click.echo(f"No runs{' match' if model or board or status else ''} in {path}.")
    else:
        click.echo(format_history(rows))


@click.command("show")
@click.argument("run")
@click.option(
    "--layers",
    "layer_count",
    type=click.IntRange(0, None),
    default=10,
    show_default=True,
    help="How many of the worst layers to list.",
)
@db_option
@click.option(
    "--json", "as_json", is_flag=True, help="Print the run as JSON (without raw samples; `rkbench export` writes them)."
)
def show_command(run: str, layer_count: int, db: Path | None, as_json: bool) -> None:
    """Everything about one stored RUN (an id from `rkbench history`, or 'latest')."""
    with _open(db, run) as store:
        result = store.get_run(_run_id(store, run), samples=False)
        previous = store.previous_runs(
            result.model_sha256,
            result.board,
            result.core_mask,
            before_run_id=result.run_id,
            limit=5,
            backend=result.backend,
        )
    if as_json:
        data = result.to_dict(samples=False)
        data["previous_runs"] = [p.to_dict() for p in previous]
        click.echo(json.dumps(data, indent=2))
    else:
        click.echo(format_show(result, previous, layer_count))


def _stat_rows(a: RunResult, b: RunResult) -> list[dict]:
    rows = []
    for name in ("n", "p50_ms", "p90_ms", "p99_ms", "mean_ms", "std_ms", "min_ms", "max_ms"):
        va = getattr(a.stats, name) if a.stats else None
        vb = getattr(b.stats, name) if b.stats else None
        rel = (vb / va - 1.0) if (va and vb is not None and name != "n") else None
        rows.append({"stat": name, "a": va, "b": vb, "relative": rel})
    return rows


def _output_rows(a: RunResult, b: RunResult) -> list[dict]:
    rows = []
    b_by_key = {(o.name, o.reference): o for o in b.outputs}
    seen = set()
    for oa in a.outputs:
        key = (oa.name, oa.reference)
        seen.add(key)
        ob = b_by_key.get(key)
        row = {"name": oa.name, "reference": oa.reference}
        for field in ("cos_mean", "cos_min", "euc_mean", "max_abs", "top1_agreement"):
            va = getattr(oa, field)
            vb = getattr(ob, field) if ob else None
            row[field] = {"a": va, "b": vb, "delta": (vb - va) if va is not None and vb is not None else None}
        rows.append(row)
    for ob in b.outputs:
        if (ob.name, ob.reference) not in seen:
            row = {"name": ob.name, "reference": ob.reference}
            for field in ("cos_mean", "cos_min", "euc_mean", "max_abs", "top1_agreement"):
                row[field] = {"a": None, "b": getattr(ob, field), "delta": None}
            rows.append(row)
    return rows


def _number(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _memory_rows(a: RunResult, b: RunResult) -> list[dict]:
    fa, fb = flatten(a.memory), flatten(b.memory)
    rows = []
    for key in list(fa) + [k for k in fb if k not in fa]:
        va, vb = _number(fa.get(key)), _number(fb.get(key))
        rows.append(
            {
                "key": key,
                "a": fa.get(key),
                "b": fb.get(key),
                "delta": (vb - va) if va is not None and vb is not None else None,
                "relative": (vb / va - 1.0) if va and vb is not None else None,
            }
        )
    return rows


def _warnings(a: RunResult, b: RunResult) -> list[str]:
    out = []
    for field, what in (
        ("model_sha256", "models"),
        ("board", "boards"),
        ("backend", "backends"),
        ("core_mask", "core masks"),
        ("build_key", "builds"),
    ):
        if getattr(a, field) != getattr(b, field):
            out.append(f"the runs differ in {what} ({getattr(a, field)} vs {getattr(b, field)})")
    for run in (a, b):
        if run.throttled:
            out.append(
                f"run {run.run_id} was throttled ({', '.join(run.throttle_reasons) or 'yes'}): "
                "its latency is not representative"
            )
        if run.status != "ok":
            out.append(f"run {run.run_id} is {run.status}")
    return out


def _label(run: RunResult) -> str:
    return (
        f"run {run.run_id}: {run.model} on {run.board} ({run.backend}, core mask "
        f"{run.core_mask or '-'}, {_when(run.started)})"
    )


@click.command("compare")
@click.argument("run_a")
@click.argument("run_b")
@click.option(
    "--min-effect",
    type=click.FloatRange(0.0, 10.0),
    default=0.05,
    show_default=True,
    help="Smallest relative change of the median latency that counts (0.05 = 5%).",
)
@click.option(
    "--alpha",
    type=click.FloatRange(1e-9, 0.5),
    default=0.01,
    show_default=True,
    help="Significance level of the rank test (the interval is at 1 - alpha).",
)
@click.option(
    "--fail-on-regression", is_flag=True, help="Exit 1 when RUN_B is slower than RUN_A beyond the minimum effect."
)
@click.option(
    "--confirm",
    "confirm_board",
    metavar="BOARD",
    help="Measure both runs' builds again on BOARD (an address, or local), interleaved A B A B, and take "
    "the latency verdict from that; also says how far RUN_A's board speed drifted since it was stored.",
)
@click.option("--known-hosts", type=click.Path(dir_okay=False), help="With --confirm: the board's known_hosts.")
@click.option("--ssh-config", type=click.Path(dir_okay=False), help="With --confirm: an ssh_config.")
@click.option("--identity", multiple=True, help="With --confirm: an SSH identity file.")
@click.option("--python", "python", envvar="RKBENCH_BOARD_PYTHON", help="With --confirm: the board's Python.")
@click.option("--toolkit-python", envvar="RKBENCH_TOOLKIT_PYTHON")
@db_option
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON.")
def compare_command(
    run_a: str,
    run_b: str,
    min_effect: float,
    alpha: float,
    fail_on_regression: bool,
    db: Path | None,
    as_json: bool,
    confirm_board: str | None,
    **connection,
) -> None:
    """RUN_B against RUN_A: latency verdict (rank test + minimum effect), accuracy, memory.
    With --confirm BOARD the latency verdict is the one measured again, interleaved, on BOARD."""
    checked = None
    with _open(db, run_a) as store:
        a = store.get_run(_run_id(store, run_a))
        b = store.get_run(_run_id(store, run_b))
        if confirm_board:
            checked = _confirm_on(store, a, b, confirm_board, min_effect, connection)
    verdict = compare_latency(a.latency_ns, b.latency_ns, min_effect=min_effect, alpha=alpha)
    if not a.latency_ns or not b.latency_ns:
        missing = a if not a.latency_ns else b
        verdict.reason = f"run {missing.run_id} has no latency samples ({missing.status})"
    stats_rows, output_rows, memory_rows = _stat_rows(a, b), _output_rows(a, b), _memory_rows(a, b)
    warnings = _warnings(a, b)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "a": a.to_dict(samples=False),
                    "b": b.to_dict(samples=False),
                    "latency": verdict.to_dict(),
                    "stats": stats_rows,
                    "outputs": output_rows,
                    "memory": memory_rows,
                    "warnings": warnings,
                    "confirmation": None if checked is None else _confirm_dict(checked),
                },
                indent=2,
            )
        )
    else:
        lines = [f"A  {_label(a)}", f"B  {_label(b)}"]
        lines += [f"warning: {w}" for w in warnings]
        lines.append("")
        if verdict.kind == DIFFERENT:
            head = f"Latency: {verdict.direction.upper()}"
        elif verdict.kind == SAME:
            head = "Latency: SAME"
        else:
            head = "Latency: UNKNOWN"
        lines.append(f"{head} - {verdict.reason}")
        if checked is not None:
            lines.append(f"Confirmed on {confirm_board}: {checked.text()}")
        lines.append(
            f"  {verdict.n_a} vs {verdict.n_b} samples, minimum effect {min_effect:.0%}, "
            f"alpha {alpha:g}, variance x{verdict.inflation:.1f} for autocorrelation"
        )
        lines.append(f"  {'':<8} {'A':>10} {'B':>10} {'B vs A':>8}")
        for row in stats_rows:
            digits = 0 if row["stat"] == "n" else 3
            lines.append(
                f"  {row['stat'].replace('_ms', ''):<8} {_f(row['a'], digits):>10} "
                f"{_f(row['b'], digits):>10} {_pct(row['relative']):>8}"
            )
        if output_rows:
            lines.append("")
            lines.append("Accuracy (per output, A -> B):")
            for row in output_rows:
                parts = []
                for field, label, digits in (
                    ("cos_mean", "cos mean", 5),
                    ("cos_min", "cos min", 5),
                    ("max_abs", "max abs", 4),
                    ("top1_agreement", "top-1", 4),
                ):
                    cell = row[field]
                    if cell["a"] is None and cell["b"] is None:
                        continue
                    delta = "" if cell["delta"] is None else f" ({cell['delta']:+.{digits}f})"
                    parts.append(f"{label} {_f(cell['a'], digits)} -> {_f(cell['b'], digits)}{delta}")
                lines.append(f"  {_cut(row['name'], 24):<24} vs {row['reference']:<9} " + "  ".join(parts))
        if memory_rows:
            lines.append("")
            lines.append("Memory (A -> B):")
            for row in memory_rows:
                delta = "" if row["delta"] is None else f"  {row['delta']:+g} ({_pct(row['relative'])})"
                lines.append(f"  {row['key']:<40} {_cell(row['a'])} -> {_cell(row['b'])}{delta}")
        click.echo("\n".join(lines))
    decided = verdict if checked is None else checked.verdict
    if fail_on_regression and decided is not None and decided.kind == DIFFERENT and decided.direction == REGRESSION:
        raise ThresholdFailed(f"run {b.run_id} is slower than run {a.run_id}: {decided.reason}")
    if checked is not None and checked.board_lost:
        raise BoardError(checked.error)


def _confirm_on(store: Store, a: RunResult, b: RunResult, board: str, min_effect: float, connection: dict):
    """Both runs' builds measured again on `board`, interleaved (lab/confirm.py)."""
    from rkbench.cli.model import build_options, progress_printer
    from rkbench.lab.confirm import ConfirmResult, ConfirmUnavailable, confirm, request_for_run
    from rkbench.run.pipeline import BoardOptions, RunRequest
    from rkbench.run.plan import MeasureOptions

    settings = b.settings or {}
    defaults = MeasureOptions()
    template = RunRequest(
        config=None,
        board=BoardOptions(
            board=board,
            known_hosts=connection.get("known_hosts"),
            ssh_config=connection.get("ssh_config"),
            identity=tuple(connection.get("identity") or ()),
            python=connection.get("python"),
        ),
        measure=MeasureOptions(
            backend=b.backend,
            core_masks=[b.core_mask] if b.core_mask else ["auto"],
            warmup=int(settings.get("warmup", defaults.warmup)),
            min_runs=int(settings.get("min_runs", defaults.min_runs)),
            min_seconds=float(settings.get("min_seconds", defaults.min_seconds)),
            cpu_threads=int(settings.get("cpu_threads") or 0),
            io_mode=settings.get("io_mode") or defaults.io_mode,
            inputs=Path(settings["inputs_path"]) if settings.get("inputs_path") else None,
        ),
        group=f"compare-{a.run_id}-{b.run_id}",
        board_label=board,
    )
    options = build_options({"toolkit_python": connection.get("toolkit_python")})
    say = progress_printer()
    try:
        candidate = request_for_run(b, template, options)
        baseline = request_for_run(a, template, options)
    except ConfirmUnavailable as err:
        return ConfirmResult(error=str(err))
    checked = confirm(candidate, baseline, a, store, options, min_effect, say)
    store.add_confirmation(
        b.run_id,
        a.run_id,
        board,
        template.group,
        compare_latency(a.latency_ns, b.latency_ns, min_effect=min_effect).kind,
        checked.kind,
        checked.drift.effect if checked.drift else None,
        checked.drifted,
        checked.text(),
    )
    return checked


def _confirm_dict(checked) -> dict:
    return {
        "verdict": None if checked.verdict is None else checked.verdict.to_dict(),
        "drift": None if checked.drift is None else checked.drift.to_dict(),
        "drifted": checked.drifted,
        "telemetry": {k: list(v) for k, v in checked.telemetry.items()},
        "rounds": checked.rounds,
        "seconds": checked.seconds,
        "error": checked.error or None,
        "board_lost": checked.board_lost,
        "text": checked.text(),
    }


@click.command("export")
@click.argument("run")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["json", "csv"]),
    default="json",
    show_default=True,
    help="json: the whole run with raw samples; csv: one row per raw sample.",
)
@click.option(
    "-o",
    "--out",
    "out_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write to this file instead of standard output.",
)
@db_option
def export_command(run: str, fmt: str, out_file: Path | None, db: Path | None) -> None:
    """Write one stored RUN with its raw latency samples as JSON or CSV."""
    with _open(db, run) as store:
        result = store.get_run(_run_id(store, run), samples=fmt == "json")
        rows = store.get_samples(result.run_id) if fmt == "csv" else []
        stages = store.get_run(result.run_id).stages_ns if fmt == "csv" else {}
    count = len(result.latency_ns) if fmt == "json" else len(rows)
    if fmt == "json":
        text = json.dumps(result.to_dict(samples=True), indent=2) + "\n"
    else:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        names = [stage for stage in STAGE_ORDER if stage in stages]
        writer.writerow(["run_id", "seq", "latency_ns", "core_mask", *(f"{stage}_ns" for stage in names)])
        for i, (seq, value) in enumerate(rows):
            writer.writerow([result.run_id, seq, value, result.core_mask or "", *(stages[s][i] for s in names)])
        text = buf.getvalue()
    if out_file is None:
        click.echo(text, nl=False)
    else:
        out_file.parent.mkdir(parents=True, exist_ok=True)
        out_file.write_text(text)
        click.echo(f"run {result.run_id}: {count} samples written to {out_file}", err=True)


COMMANDS = [history_command, show_command, compare_command, export_command]
