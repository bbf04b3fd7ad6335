"""Board commands: `board info`, `doctor`, `provision`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from rkbench.boards.connect import board_python
from rkbench.boards.health import (
    FAIL,
    PASS,
    WARN,
    Check,
    board_info,
    board_soc,
    doctor,
    host_toolkit_version,
    worst,
)
from rkbench.errors import ThresholdFailed

STATUS_MARK = {PASS: "pass", WARN: "WARN", FAIL: "FAIL"}


def _notice(message: str) -> None:
    click.echo(f"rkbench: {message}", err=True)


def connection_options(func):
    """How to reach a board (every command that talks to one takes these)."""
    options = [
        click.option(
            "--trust-new-board",
            "trust_new",
            is_flag=True,
            help="Accept an SSH host key seen for the first time: shows its fingerprint and records "
            "it in the known hosts file.",
        ),
        click.option(
            "--known-hosts",
            type=click.Path(dir_okay=False),
            help="Known hosts file (default ~/.ssh/known_hosts, or UserKnownHostsFile of ~/.ssh/config).",
        ),
        click.option(
            "--identity",
            "identity",
            multiple=True,
            type=click.Path(dir_okay=False),
            help="SSH private key to try first (repeatable).",
        ),
        click.option("--ssh-config", type=click.Path(dir_okay=False), help="SSH config file (default ~/.ssh/config)."),
        click.option(
            "--connect-timeout",
            type=click.FloatRange(min=0.1),
            default=10.0,
            show_default=True,
            help="Seconds to wait for the board to answer.",
        ),
        click.option(
            "--labgrid-client",
            envvar="RKBENCH_LABGRID_CLIENT",
            help="labgrid-client of labgrid's own environment (for --board labgrid:PLACE).",
        ),
        click.option("--lg-coordinator", envvar="LG_COORDINATOR", help="labgrid coordinator HOST:PORT."),
        click.option(
            "--labgrid-wait",
            type=click.FloatRange(min=0),
            default=0.0,
            show_default=True,
            help="Seconds to wait for a labgrid place someone else holds.",
        ),
        click.option(
            "--python",
            "python",
            envvar="RKBENCH_BOARD_PYTHON",
            help="The board's Python (default python3 on the login PATH; this interpreter on the local board).",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def board_options(func):
    """BOARD and the options every board command takes."""
    return click.argument("board")(connection_options(func))


def _open(opts: dict[str, Any]):
    from rkbench.boards.connect import open_board

    return open_board(
        opts["board"],
        trust_new=opts["trust_new"],
        known_hosts=opts.get("known_hosts"),
        identity_files=list(opts.get("identity") or ()),
        ssh_config=opts.get("ssh_config"),
        connect_timeout=opts["connect_timeout"],
        log=_notice,
        labgrid=labgrid_options(opts),
    )


def labgrid_options(opts: dict[str, Any]) -> dict[str, Any]:
    return {
        "client": opts.get("labgrid_client"),
        "coordinator": opts.get("lg_coordinator"),
        "acquire_timeout": opts.get("labgrid_wait") or 0.0,
    }


# ----------------------------------------------------------------------------------
# board info
# ----------------------------------------------------------------------------------
def _mhz(value: int | None, per: int) -> str:
    return "?" if value is None else f"{value / per:.0f} MHz"


def _size(n: int | None) -> str:
    if n is None:
        return "?"
    return f"{n / (1 << 30):.1f} GB" if n >= 1 << 30 else f"{n / (1 << 20):.0f} MB"


def _cpus(cpus: list[int]) -> str:
    if not cpus:
        return "?"
    if cpus == list(range(cpus[0], cpus[-1] + 1)) and len(cpus) > 1:
        return f"{cpus[0]}-{cpus[-1]}"
    return ",".join(str(c) for c in cpus)


def _probe(transport, python: str, opts: dict[str, Any]) -> Path | None:
    """The probe model for the board's SoC (built once with the host's toolkit, then cached),
    or None where there is no NPU runtime to ask or no toolkit to build it with."""
    soc = board_soc(transport, python)
    if soc is None:
        return None
    from rkbench.cli.model import build_options
    from rkbench.errors import RkbenchError
    from rkbench.model.probe import probe_model

    try:
        return probe_model(soc, build_options({"toolkit_python": opts.get("toolkit_python")}))
    except RkbenchError as err:  # no toolkit here: the versions come from the .so alone, and say so
        _notice(f"no probe model for {soc} ({err}): the runtime's versions come from its .so file only")
        return None


def format_info(info: dict[str, Any]) -> str:
    host = info.get("host") or {}
    rows = []
    board = host.get("describe") or "?"
    if host.get("ssh_server_version"):
        board += f"  ({host['ssh_server_version']})"
    rows.append(("Board", board))
    soc = info.get("soc")
    if soc:
        cores = info.get("npu_cores")
        rows.append(("SoC", f"{soc}" + (f", {cores} NPU core(s)" if cores else "")))
    else:
        compat = ", ".join(info.get("soc_compatible") or []) or "no device-tree compatible"
        rows.append(("SoC", f"not a Rockchip SoC ({compat})"))
    rows.append(("Kernel", f"{info.get('kernel') or '?'}  {info.get('machine') or ''}".rstrip()))
    os_info = info.get("os") or {}
    rows.append(("OS", os_info.get("PRETTY_NAME") or os_info.get("NAME") or "?"))
    exe = info.get("python_executable") or host.get("python_command")
    rows.append(("Python", f"{info.get('python') or '?'}  ({exe})"))
    rows.append(("numpy", info.get("numpy") or "missing"))
    rows.append(("rknn-toolkit-lite2", info.get("rknn_toolkit_lite2") or "missing"))
    rt = info.get("librknnrt")
    rows.append(
        (
            "librknnrt",
            f"{rt}  ({info.get('librknnrt_path')})"
            if rt
            else (f"unknown version ({info.get('librknnrt_path')})" if info.get("librknnrt_path") else "missing"),
        )
    )
    probe = info.get("runtime_probe") or {}
    if probe.get("api_version"):
        rows.append(
            ("NPU runtime", f"api {probe['api_version']}, driver {probe.get('drv_version') or '?'}  (rknn_query)")
        )
    elif probe.get("error"):
        rows.append(("NPU runtime", f"could not initialise a model: {probe['error']}"))
    elif info.get("librknnrt_path"):
        rows.append(("NPU runtime", f"not asked ({probe.get('source') or 'no probe model'})"))
    rows.append(("onnxruntime", info.get("onnxruntime") or "missing"))
    rows.append(("NPU driver", info.get("npu_driver") or "not readable (needs root and debugfs) or absent"))
    dev = info.get("npu_devfreq")
    if dev:
        avail = dev.get("available_frequencies_hz") or []
        span = f", {min(avail) / 1e6:.0f}-{max(avail) / 1e6:.0f} MHz" if avail else ""
        rows.append(
            (
                "NPU clock",
                f"{_mhz(dev.get('cur_freq_hz'), 1_000_000)}, governor {dev.get('governor') or '?'}"
                f"{span}  ({dev.get('device')})",
            )
        )
    else:
        rows.append(("NPU clock", "not visible"))
    load = info.get("npu_load_pct")
    if load:
        rows.append(("NPU load", ", ".join(f"core{i} {pct}%" for i, pct in enumerate(load))))
    cpus = info.get("cpufreq") or []
    if cpus:
        rows.append(
            (
                "CPU clocks",
                "; ".join(
                    f"cpu {_cpus(p.get('cpus') or [])}: {_mhz(p.get('cur_khz'), 1000)} {p.get('governor') or '?'}"
                    for p in cpus
                ),
            )
        )
    else:
        rows.append(("CPU clocks", "not visible (no cpufreq)"))
    temps = info.get("temperatures_c") or {}
    rows.append(("Temperatures", ", ".join(f"{k} {v:.1f} C" for k, v in temps.items()) or "not readable"))
    mem = info.get("memory") or {}
    if mem:
        cma = f", CMA {_size(mem['CmaFree'] * 1024)} free" if mem.get("CmaFree") is not None else ""
        rows.append(
            (
                "Memory",
                f"{_size((mem.get('MemAvailable') or 0) * 1024)} available of "
                f"{_size((mem.get('MemTotal') or 0) * 1024)}{cma}",
            )
        )
    rows.append(("Free disk", f"{_size(info.get('disk_free_bytes'))} in {info.get('cache_dir')}"))
    backends = info.get("backends") or {}
    for name in sorted(backends):
        b = backends[name] or {}
        rows.append((f"backend {name}", f"{'yes' if b.get('available') else 'no'}: {b.get('reason')}"))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


@click.group("board")
def board_group() -> None:
    """Look at a board."""


@board_group.command("info")
@board_options
@click.option("--json", "as_json", is_flag=True, help="Print the board facts as JSON.")
def info_command(as_json: bool, **opts) -> None:
    """What BOARD is: SoC, kernel, OS, Python, NPU runtime and driver, clocks, temperatures, memory, disk.

    BOARD: IP or host (ssh, user root), user@host:port, ssh://user@host:port, adb:SERIAL,
    adb://host:port, adb, or local."""
    python = board_python(opts["board"], opts["python"])
    with _open(opts) as transport:
        info = board_info(transport, python=python, probe_model=_probe(transport, python, opts))
    if as_json:
        click.echo(json.dumps(info, indent=2, sort_keys=True))
    else:
        click.echo(format_info(info))


# ----------------------------------------------------------------------------------
# doctor
# ----------------------------------------------------------------------------------
def format_checks(checks: list[Check]) -> str:
    lines = []
    width = max(len(c.name) for c in checks)
    for c in checks:
        lines.append(f"{STATUS_MARK.get(c.status, c.status):<4}  {c.name:<{width}}  {c.detail}")
        if c.status != PASS and c.fix:
            lines.append(f"{'':<4}  {'':<{width}}  fix: {c.fix}")
    counts = {s: sum(1 for c in checks if c.status == s) for s in (PASS, WARN, FAIL)}
    lines.append("")
    lines.append(f"{counts[PASS]} passed, {counts[WARN]} warning(s), {counts[FAIL]} failed")
    return "\n".join(lines)


@click.command("doctor")
@board_options
@click.option(
    "--toolkit-python",
    envvar="RKBENCH_TOOLKIT_PYTHON",
    help="Interpreter that has rknn-toolkit2, to compare its version with the board's runtime (default: this one).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the checks as JSON.")
def doctor_command(toolkit_python: str | None, as_json: bool, **opts) -> None:
    """Is BOARD fit to measure on? Runtime versions against the host's toolkit, clocks, heat, disk, memory.

    Exit status 1 when a check fails, 0 otherwise (warnings included)."""
    toolkit, note = host_toolkit_version(toolkit_python)
    python = board_python(opts["board"], opts["python"])
    with _open(opts) as transport:
        checks = doctor(
            transport, toolkit, python=python, toolkit_note=note, probe_model=_probe(transport, python, opts)
        )
    if as_json:
        click.echo(
            json.dumps(
                {
                    "board": opts["board"],
                    "toolkit": toolkit,
                    "status": worst(checks),
                    "checks": [c.to_dict() for c in checks],
                },
                indent=2,
            )
        )
    else:
        click.echo(format_checks(checks))
    failed = [c.name for c in checks if c.status == FAIL]
    if failed:
        # exit status 1 ("a threshold failed"), with a one-line summary on stderr
        raise ThresholdFailed(f"{opts['board']}: {len(failed)} check(s) failed: {', '.join(failed)}")


# ----------------------------------------------------------------------------------
# provision
# ----------------------------------------------------------------------------------
@click.command("provision")
@board_options
@click.option(
    "--version", "version", help="rknn-toolkit-lite2 version (default: the host toolkit's, else the latest 2.x)."
)
@click.option(
    "--wheel", type=click.Path(dir_okay=False), help="Install this wheel instead of downloading rknn-toolkit-lite2."
)
@click.option(
    "--librknnrt",
    type=click.Path(dir_okay=False),
    help="Also install this librknnrt.so as /usr/lib/librknnrt.so (needs root on the board).",
)
@click.option(
    "--toolkit-python",
    envvar="RKBENCH_TOOLKIT_PYTHON",
    help="Interpreter that has rknn-toolkit2 (its version picks the lite2 version).",
)
@click.option("--dry-run", is_flag=True, help="Push everything and show the commands; install nothing.")
def provision_command(
    version: str | None, wheel: str | None, librknnrt: str | None, toolkit_python: str | None, dry_run: bool, **opts
) -> None:
    """Install rknn-toolkit-lite2 on BOARD (numpy and pip too when missing), without internet on the board.

    The wheels that fit the board's Python and CPU are downloaded on this host (kept in
    ~/.cache/rkbench/wheels), pushed, and installed with pip --no-index."""
    from rkbench.boards.provision import provision

    toolkit = None
    if version is None and wheel is None:
        toolkit, _ = host_toolkit_version(toolkit_python)
    with _open(opts) as transport:
        report = provision(
            transport,
            version=version,
            wheel=wheel,
            librknnrt=librknnrt,
            python=board_python(opts["board"], opts["python"]),
            toolkit_version=toolkit,
            dry_run=dry_run,
            log=_notice,
        )
    for w in report.wheels:
        click.echo(f"{w.name} {w.version}  ({w.reason})  {w.path.name}")
    if report.pip_command:
        click.echo(f"on the board: {report.pip_command}")
    if dry_run:
        click.echo("dry run: nothing was installed")
    else:
        installed = ", ".join(f"{k} {v}" for k, v in sorted(report.installed.items()) if v)
        click.echo(f"installed on {report.board}: {installed}")
        if report.librknnrt:
            click.echo(f"librknnrt.so installed as {report.librknnrt}")


COMMANDS = [board_group, doctor_command, provision_command]
