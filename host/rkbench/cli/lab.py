"""Lab commands: `boards list|check`, `nightly`, `baseline accept`."""

from __future__ import annotations

import datetime
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import click

from rkbench.cli.boards import labgrid_options
from rkbench.cli.model import build_options, progress_printer
from rkbench.errors import BoardError, RkbenchError, ThresholdFailed
from rkbench.lab.inventory import load_inventory
from rkbench.lab.nightly import Nightly, NightlyOptions, cell_junit_results, markdown_summary
from rkbench.lab.suite import load_suite
from rkbench.report import group_history, write_html, write_junit
from rkbench.results.store import Store


def inventory_option(func):
    return click.option(
        "--boards",
        "boards_file",
        type=click.Path(path_type=Path),
        required=True,
        envvar="RKBENCH_BOARDS",
        help="The lab's boards.toml.",
    )(func)


@click.group("boards")
def boards_group() -> None:
    """The boards of a lab inventory (boards.toml)."""


@boards_group.command("list")
@inventory_option
@click.option("--json", "as_json", is_flag=True)
def boards_list(boards_file: Path, as_json: bool) -> None:
    inventory = load_inventory(boards_file)
    if as_json:
        click.echo(json.dumps([vars(b) for b in inventory.boards.values()], indent=2, default=list))
        return
    click.echo(f"{'board':<20} {'soc':<8} {'address':<32} tags")
    for board in inventory.boards.values():
        click.echo(f"{board.name:<20} {board.soc or '-':<8} {board.address:<32} {', '.join(board.tags)}")


@boards_group.command("check")
@inventory_option
@click.option("--select", "selectors", multiple=True, help="Only boards matching these names/tags.")
@click.option("--json", "as_json", is_flag=True)
def boards_check(boards_file: Path, selectors: tuple[str, ...], as_json: bool) -> None:
    """Health of every board, checked in parallel (the doctor's checks)."""
    from rkbench.boards.connect import board_python, open_board
    from rkbench.boards.health import FAIL, doctor, host_toolkit_version, worst

    inventory = load_inventory(boards_file)
    boards = inventory.select(list(selectors)) if selectors else list(inventory.boards.values())
    toolkit, _ = host_toolkit_version()

    def check(board):
        try:
            with open_board(
                board.address,
                known_hosts=board.known_hosts,
                ssh_config=board.ssh_config,
                identity_files=[board.identity] if board.identity else [],
            ) as transport:
                checks = doctor(
                    transport,
                    toolkit,
                    python=board_python(board.address, board.python if board.python != "python3" else None),
                )
            return board, checks, None
        except RkbenchError as err:
            return board, [], str(err)

    with ThreadPoolExecutor(max_workers=min(16, len(boards) or 1)) as pool:
        rows = list(pool.map(check, boards))
    if as_json:
        click.echo(
            json.dumps(
                [{"board": b.name, "error": e, "checks": [c.to_dict() for c in checks]} for b, checks, e in rows],
                indent=2,
            )
        )
    else:
        click.echo(f"{'board':<20} {'soc':<8} {'status':<8} problems")
        for board, checks, error in rows:
            status = "OFFLINE" if error else worst(checks).upper()
            problems = error or "; ".join(f"{c.name}: {c.detail}" for c in checks if c.status != "pass")
            click.echo(f"{board.name:<20} {board.soc or '-':<8} {status:<8} {problems[:120]}")
    if any(error for _, _, error in rows):
        raise BoardError("some boards could not be reached (see the table)")
    if any(worst(checks) == FAIL for _, checks, _ in rows):
        raise ThresholdFailed("some boards failed a health check (see the table)")


@click.command("nightly")
@click.option("--suite", "suite_file", type=click.Path(path_type=Path), required=True)
@inventory_option
@click.option("--db", type=click.Path(path_type=Path), help="Results store (SQLite).")
@click.option(
    "-o", "--out", "out_dir", type=click.Path(path_type=Path), help="Report folder (default rkbench-out/<group>)."
)
@click.option("--group", help="Run group name (default nightly-<date>-<time>).")
@click.option(
    "--retries",
    type=click.IntRange(0, 10),
    default=2,
    show_default=True,
    help="Retries of a transient board failure per cell.",
)
@click.option(
    "--remeasure",
    type=click.IntRange(0, 10),
    default=2,
    show_default=True,
    help="Re-measurements of a cell whose run was throttled (and, with --no-confirm, whose verdict is UNKNOWN).",
)
@click.option(
    "--min-effect",
    type=float,
    default=0.05,
    show_default=True,
    help="Smallest latency change that counts (a model's max_latency_regression overrides).",
)
@click.option("--parallel-builds", type=click.IntRange(1, 16), default=2, show_default=True)
@click.option("--accept", is_flag=True, help="Accept this group as the new baseline when it passes.")
@click.option("--junit", type=click.Path(path_type=Path))
@click.option("--markdown", type=click.Path(path_type=Path))
@click.option("--known-hosts", type=click.Path(dir_okay=False))
@click.option("--ssh-config", type=click.Path(dir_okay=False))
@click.option("--python", "python", envvar="RKBENCH_BOARD_PYTHON")
@click.option("--labgrid-client", envvar="RKBENCH_LABGRID_CLIENT")
@click.option("--lg-coordinator", envvar="LG_COORDINATOR")
@click.option("--labgrid-wait", type=float, default=0.0)
@click.option("--toolkit-python", envvar="RKBENCH_TOOLKIT_PYTHON")
@click.option(
    "--inject-slowdown",
    type=float,
    default=0.0,
    hidden=True,
    help="Test only: make the runner this fraction slower (regression-detection benchmarks).",
)
@click.option(
    "--inject-drift",
    type=float,
    default=0.0,
    hidden=True,
    help="Test only: the boards are this fraction slower tonight, for every build (drift benchmarks).",
)
@click.option(
    "--confirm/--no-confirm",
    default=True,
    show_default=True,
    help="Confirm a cell suspected against its stored baseline by measuring the baseline's build and "
    "the candidate again, interleaved, on the board (the verdict is the confirmation's).",
)
def nightly_command(
    suite_file: Path,
    boards_file: Path,
    db: Path | None,
    out_dir: Path | None,
    group: str | None,
    retries: int,
    remeasure: int,
    min_effect: float,
    parallel_builds: int,
    accept: bool,
    junit: Path | None,
    markdown: Path | None,
    inject_slowdown: float,
    inject_drift: float,
    confirm: bool,
    **opts,
) -> None:
    """Run a suite on a lab: exit 1 on a confirmed regression or failed threshold, 3 when
    boards failed or were offline, 0 otherwise (noise never fails the job)."""
    say = progress_printer()
    suite = load_suite(suite_file)
    inventory = load_inventory(boards_file)
    group = group or f"nightly-{datetime.datetime.now():%Y%m%d-%H%M%S}"
    options = NightlyOptions(
        group=group,
        retries=retries,
        remeasure=remeasure,
        min_effect=min_effect,
        parallel_builds=parallel_builds,
        inject_slowdown=inject_slowdown,
        inject_drift=inject_drift,
        confirm=confirm,
        board_options={
            "known_hosts": opts.get("known_hosts"),
            "ssh_config": opts.get("ssh_config"),
            "python": opts.get("python"),
            "labgrid": labgrid_options(opts),
        },
    )
    with Store(db) as store:
        report = Nightly(
            suite, inventory, store, build_options({"toolkit_python": opts.get("toolkit_python")}), options, say
        ).run()
        results = cell_junit_results(report)
        history = {}
        for model in {r.model for r in results}:
            history.update(group_history(store.history(model=model, limit=200)))
        if accept and report.exit_code == 0:
            accepted = store.accept_baseline(group)
            say(f"accepted {len(accepted)} run(s) of {group} as the baseline")
    out = out_dir or Path("rkbench-out") / group
    out.mkdir(parents=True, exist_ok=True)
    html = write_html(results, out / "report.html", history=history, title=f"rkbench {group}")
    write_junit(results, junit or out / "junit.xml", suite_name=f"rkbench.{suite.name}")
    text = markdown_summary(report, html.resolve())
    (markdown or out / "summary.md").write_text(text)
    click.echo(text)
    if report.exit_code == 1:
        raise ThresholdFailed(f"{group}: confirmed regression or failed threshold (see {out / 'summary.md'})")
    if report.exit_code == 3:
        raise BoardError(f"{group}: some boards failed or were offline; the others finished (see {out / 'summary.md'})")


@click.group("baseline")
def baseline_group() -> None:
    """Baselines that nightly verdicts compare against."""


@baseline_group.command("accept")
@click.argument("run_or_group")
@click.option("--db", type=click.Path(path_type=Path))
def baseline_accept(run_or_group: str, db: Path | None) -> None:
    """Accept a run (by id) or a whole run group as the baseline of its cells."""
    with Store(db) as store:
        target = int(run_or_group) if run_or_group.isdigit() else run_or_group
        accepted = store.accept_baseline(target)
    click.echo(f"accepted {len(accepted)} run(s) as baseline: {', '.join(map(str, accepted))}")


COMMANDS = [boards_group, nightly_command, baseline_group]
