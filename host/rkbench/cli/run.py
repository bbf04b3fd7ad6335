"""`rkbench run` (and `rkbench demo`, the same on the local board with a bundled model)."""

from __future__ import annotations

from pathlib import Path

import click

from rkbench.cli.boards import connection_options, labgrid_options
from rkbench.cli.model import build_options, config_from_options, example_config, model_options, progress_printer
from rkbench.errors import BoardError, ThresholdFailed, UsageError
from rkbench.lab.confirm import confirm_regression_threshold
from rkbench.model import examples
from rkbench.model.info import check_readable
from rkbench.report import group_history, summary, write_html, write_json, write_junit
from rkbench.results.store import Store
from rkbench.run.compare import Limits
from rkbench.run.pipeline import BoardOptions, RunRequest, run_model
from rkbench.run.plan import MeasureOptions

DEFAULTS = MeasureOptions()  # the one place measurement defaults live

BACKENDS = ("auto", "rknnrt", "rknnlite", "onnxruntime", "simulator")
IO_MODES = {"copy": "copy", "zero-copy": "zero_copy"}


def run_options(func):
    options = [
        click.option(
            "--board",
            default="local",
            show_default=True,
            help="192.168.1.20, user@host:port, ssh://..., adb:SERIAL, adb://host:5555, local.",
        ),
        click.option("--backend", type=click.Choice(BACKENDS), default="auto", show_default=True),
        click.option(
            "--core-mask",
            "core_masks",
            multiple=True,
            type=click.Choice(["auto", "0", "1", "2", "0_1", "0_1_2"]),
            help="NPU cores (repeat to measure several; multi-core masks on RK3588/RK3576 only).",
        ),
        click.option("--warmup", type=click.IntRange(0), default=DEFAULTS.warmup, show_default=True),
        click.option("--min-runs", type=click.IntRange(1), default=DEFAULTS.min_runs, show_default=True),
        click.option("--min-seconds", type=click.FloatRange(0), default=DEFAULTS.min_seconds, show_default=True),
        click.option("--max-seconds", type=click.FloatRange(0), default=DEFAULTS.max_seconds, show_default=True),
        click.option(
            "--inputs",
            type=click.Path(path_type=Path),
            help="Inputs to measure with (images/.npy folder or dataset.txt); default: a held-out slice of --dataset.",
        ),
        click.option("--input-count", type=click.IntRange(1), default=DEFAULTS.input_count, show_default=True),
        click.option(
            "--cpu-threads",
            type=click.IntRange(0),
            default=0,
            show_default=True,
            help="Threads of a CPU backend (onnxruntime); 0 = all cores.",
        ),
        click.option(
            "--per-layer",
            is_flag=True,
            help="Per-layer board error: debug builds exposing intermediate tensors, run on the board.",
        ),
        click.option("--min-cos", type=float, help="Threshold: output cosine against fp32 (worst output, mean)."),
        click.option("--max-p99-ms", type=float, help="Threshold: p99 latency in ms."),
        click.option("--max-peak-rss-mb", type=float, help="Threshold: the runner's peak RSS in MB."),
        click.option(
            "--max-npu-mem-mb",
            type=float,
            help="Threshold: the NPU memory the runtime allocated (RKNN_QUERY_MEM_SIZE total DMA) in MB.",
        ),
        click.option(
            "--io",
            "io_mode",
            type=click.Choice(sorted(IO_MODES)),
            default="copy",
            show_default=True,
            help="NPU backends: copy (rknn_inputs_set every run) or zero-copy (rknn_create_mem + rknn_set_io_mem).",
        ),
        click.option(
            "--profile-layers",
            is_flag=True,
            help="A separate per-layer NPU profiling pass (RKNN_FLAG_COLLECT_PERF_MASK) after the timed loop.",
        ),
        click.option(
            "--profile-runs",
            type=click.IntRange(1),
            default=DEFAULTS.profile_runs,
            show_default=True,
            help="Inferences of the profiling pass.",
        ),
        click.option(
            "--throughput",
            is_flag=True,
            help="Throughput mode: N contexts in parallel on the board, one thread each (--contexts, "
            "--core-mask per context); total FPS, per-context p50/p99, NPU load, memory.",
        ),
        click.option(
            "--sweep",
            is_flag=True,
            help="Throughput sweep: 1..2x cores contexts x core-mask assignments (per-core, all cores, auto); "
            "names the configuration with the most FPS and the best under --max-p99-ms.",
        ),
        click.option(
            "--contexts",
            type=click.IntRange(0, 64),
            default=DEFAULTS.contexts,
            show_default=True,
            help="Throughput: contexts of the configuration (0: one per NPU core); with --sweep: the most tried.",
        ),
        click.option(
            "--throughput-seconds",
            type=click.FloatRange(0.1),
            default=DEFAULTS.throughput_seconds,
            show_default=True,
            help="Throughput: how long each configuration runs.",
        ),
        click.option(
            "--max-regression",
            type=float,
            help="Threshold: latency regression against the accepted baseline (else the previous run) on "
            "this board (e.g. 0.05), decided by a rank test, not by means; a suspected run is confirmed by "
            "measuring the baseline's build and this one again, interleaved, before it fails.",
        ),
        click.option("--db", type=click.Path(path_type=Path), help="Results store (SQLite)."),
        click.option(
            "-o",
            "--out",
            "out_dir",
            type=click.Path(path_type=Path),
            help="Report folder (default rkbench-out/<run group>).",
        ),
        click.option("--junit", type=click.Path(path_type=Path), help="Also write JUnit XML here."),
        click.option("--json", "json_path", type=click.Path(path_type=Path), help="Also write a JSON report here."),
        click.option("--group", help="Name of this run group (default run-<date>-<time>)."),
        click.option("--inject-slowdown", type=float, default=0.0, hidden=True, help="Test only."),
        click.option("--inject-drift", type=float, default=0.0, hidden=True, help="Test only."),
        click.option(
            "--hybrid-cfg",
            type=click.Path(path_type=Path),
            help="Run the hybrid model this cfg describes (from `rkbench hybrid` or the vendor's).",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def request_from(model: Path | None, config, opts: dict) -> RunRequest:
    board = BoardOptions(
        board=opts["board"],
        trust_new=opts["trust_new"],
        known_hosts=opts.get("known_hosts"),
        identity=tuple(opts.get("identity") or ()),
        ssh_config=opts.get("ssh_config"),
        connect_timeout=opts["connect_timeout"],
        python=opts.get("python"),
        labgrid=labgrid_options(opts),
    )
    measure = MeasureOptions(
        backend=opts["backend"],
        core_masks=list(opts["core_masks"] or ["auto"]),
        warmup=opts["warmup"],
        min_runs=opts["min_runs"],
        min_seconds=opts["min_seconds"],
        max_seconds=opts["max_seconds"],
        inputs=opts.get("inputs"),
        input_count=opts["input_count"],
        per_layer=opts["per_layer"],
        cpu_threads=opts.get("cpu_threads") or 0,
        io_mode=IO_MODES[opts.get("io_mode") or "copy"],
        profile_layers=bool(opts.get("profile_layers")),
        profile_runs=opts.get("profile_runs") or DEFAULTS.profile_runs,
        throughput=bool(opts.get("throughput") or opts.get("sweep")),
        sweep=bool(opts.get("sweep")),
        contexts=opts.get("contexts") or 0,
        throughput_seconds=opts.get("throughput_seconds") or DEFAULTS.throughput_seconds,
        inject_slowdown=opts.get("inject_slowdown") or 0.0,
        inject_drift=opts.get("inject_drift") or 0.0,
    )
    if measure.throughput and (measure.per_layer or measure.profile_layers):
        raise UsageError("--throughput/--sweep measures many contexts at once: drop --per-layer and --profile-layers")
    if config is None and measure.backend in ("onnxruntime", "simulator"):
        raise UsageError(
            f"{model}: an already built .rknn runs only on the board's NPU (backend rknnlite); "
            f"--backend {measure.backend} needs the source model: give the .onnx/.tflite as --model"
        )
    if measure.per_layer and measure.backend == "onnxruntime":
        raise UsageError(
            "--per-layer compares the NPU (or its simulator) with the simulator: it does not "
            "apply to the onnxruntime backend"
        )
    limits = Limits(
        min_cos_fp32=opts.get("min_cos"),
        max_p99_ms=opts.get("max_p99_ms"),
        max_peak_rss_mb=opts.get("max_peak_rss_mb"),
        max_npu_mem_mb=opts.get("max_npu_mem_mb"),
        max_latency_regression=opts.get("max_regression"),
    )
    rknn = model if config is None else None
    return RunRequest(
        config=config,
        rknn=rknn,
        target=(opts.get("target") or "").lower() or None,
        board=board,
        measure=measure,
        limits=limits,
        group=opts.get("group"),
        hybrid_cfg=opts.get("hybrid_cfg"),
    )


def execute(request: RunRequest, opts: dict) -> None:
    say = progress_printer()
    with Store(opts.get("db")) as store:
        report = run_model(request, store, build_options(opts), say)
        if request.measure.throughput:
            return _throughput_report(request, report, opts, store)
        results = report.results
        lost = []
        for result in results:
            # --max-regression: a suspected run is confirmed (interleaved with the baseline's
            # build, on the board now) before it fails.
            checked = confirm_regression_threshold(request, result, store, build_options(opts), say)
            if checked is not None:
                say(f"max_latency_regression: {checked.text()}")
                if checked.board_lost:
                    lost.append(checked.error)
        history = group_history(
            store.history(model=results[0].model if results else None, board=request.board.board, limit=50)
        )
    out = opts.get("out_dir") or Path("rkbench-out") / results[0].group
    out.mkdir(parents=True, exist_ok=True)
    html = write_html(results, out / "report.html", history=history, title=f"rkbench {results[0].group}")
    write_json(results, opts.get("json_path") or out / "report.json", history=history)
    write_junit(results, opts.get("junit") or out / "junit.xml")
    click.echo(summary(results, history=history))
    timings = report.timings
    measuring = sum(r.settings.get("elapsed_s", 0.0) for r in results)
    click.echo(
        f"\nwall time {timings['total']:.1f} s: measuring {measuring:.1f} s "
        f"({measuring / timings['total']:.0%}), build {timings['build']:.1f} s, simulator "
        f"{timings['simulator']:.1f} s, board {timings['board_run'] - measuring:.1f} s around the "
        f"measurement" + (f", per-layer {timings['per_layer']:.1f} s" if timings.get("per_layer", 0) > 0.05 else "")
    )
    if report.outcome is not None:
        pushed = report.outcome.deploy
        click.echo(
            f"deploy: {pushed.bytes_pushed} bytes pushed ({pushed.blobs_pushed} file(s)), "
            f"{pushed.blobs_reused} file(s) already on the board"
        )
        if pushed.runner_repaired:
            which = "; ".join(pushed.runner_repaired[:3])
            click.echo(f"deploy: the runner on the board was damaged ({which}) and was deployed again")
    click.echo(f"run ids {', '.join(str(r.run_id) for r in results)} in {store.path}")
    click.echo(f"HTML report: {html.resolve()}")
    failed = [(r, t) for r in results for t in r.thresholds if not t.passed]
    if failed:
        names = ", ".join(f"{t.name} ({r.core_mask or r.backend})" for r, t in failed)
        raise ThresholdFailed(f"threshold(s) not met: {names}; report: {html.resolve()}")
    if lost:
        raise BoardError(f"{lost[0]}; the run's verdict is UNKNOWN (report: {html.resolve()})")


def _throughput_report(request: RunRequest, report, opts: dict, store: Store) -> None:
    from rkbench.report.throughput import throughput_table, write_throughput_html
    from rkbench.run.throughput import pick

    events = report.throughput
    group = report.group or request.group
    hello = report.outcome.hello if report.outcome else None
    out = opts.get("out_dir") or Path("rkbench-out") / (group or "throughput")
    out.mkdir(parents=True, exist_ok=True)
    chosen = pick(events, request.limits.max_p99_ms)
    title = (
        f"rkbench throughput {request.config.name if request.config else request.rknn.stem} on {request.board.board}"
    )
    html = write_throughput_html(
        events,
        chosen,
        out / "report.html",
        title=title,
        soc=hello.soc if hello else None,
        max_p99_ms=request.limits.max_p99_ms,
    )
    click.echo(
        throughput_table(events, chosen, request.limits.max_p99_ms, npu_cores=hello.npu_cores if hello else None)
    )
    click.echo(f"stored in {store.path}")
    click.echo(f"HTML report: {html.resolve()}")


@click.command("run")
@run_options
@connection_options
def run_command(**opts) -> None:
    """Build MODEL for the board's SoC, measure it on the board, compare with the simulator
    and fp32, store and report. Exit 1 when a threshold fails, 3 when the board fails."""
    model: Path = opts.pop("model")
    check_readable(model)
    config = None if model.suffix.lower() == ".rknn" else config_from_options(model, opts)
    execute(request_from(model, config, opts), opts)


run_command = model_options(run_command, positional=False)


@click.command("demo")
@click.option(
    "--example", type=click.Choice(sorted(examples.EXAMPLES)), default=examples.DEFAULT_EXAMPLE, show_default=True
)
@click.option("-o", "--out", "out_dir", type=click.Path(path_type=Path), default=Path("out/demo"), show_default=True)
@click.option("--db", type=click.Path(path_type=Path), help="Results store (default out/demo/results.db).")
@click.option("--toolkit-python", envvar="RKBENCH_TOOLKIT_PYTHON")
def demo_command(example: str, out_dir: Path, db: Path | None, toolkit_python: str | None) -> None:
    """`rkbench run --board local` on a bundled real model (PP-OCR from the rapidocr wheel):
    simulator backend on x86, rknnlite when run on a board itself."""
    chosen = examples.EXAMPLES[example]
    click.echo(f"example: {chosen.description}; board: local", err=True)
    out_dir = out_dir.resolve()
    config = example_config(chosen, out_dir, count=32)
    opts = {
        "board": "local",
        "trust_new": False,
        "connect_timeout": 10.0,
        "backend": "auto",
        "core_masks": (),
        "warmup": DEFAULTS.warmup,
        "min_runs": DEFAULTS.min_runs,
        "min_seconds": DEFAULTS.min_seconds,
        "max_seconds": DEFAULTS.max_seconds,
        "input_count": DEFAULTS.input_count,
        "per_layer": True,
        "min_cos": 0.98,
        "toolkit_python": toolkit_python,
        "db": db or out_dir / "results.db",
        "out_dir": out_dir,
        "timeout": 1800.0,
    }
    execute(request_from(config.model, config, opts), opts)


COMMANDS = [run_command, demo_command]
