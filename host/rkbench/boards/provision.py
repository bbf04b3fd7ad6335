"""`rkbench provision BOARD`: install rknn-toolkit-lite2 (and numpy/pip when missing,
and librknnrt.so when given) on a board that has no internet.

The host asks the board for its Python version and machine, downloads the wheels
that fit it (`pip download --platform ... --python-version ...`, cached under
~/.cache/rkbench/wheels so a second provision works offline), pushes them as
content-addressed blobs with deploy/provision-board.sh, and runs that script on
the board: `pip install --no-index --find-links <pushed wheels>`.
"""

from __future__ import annotations

import email.parser
import json
import os
import re
import subprocess
import sys
import uuid
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rkbench.boards import deploy
from rkbench.boards.deploy import DeployStats
from rkbench.boards.transport.base import Transport
from rkbench.errors import BoardError, InputFileError, UsageError

LITE2 = "rknn-toolkit-lite2"
LIBRKNNRT_DEST = "/usr/lib/librknnrt.so"
SCRIPT_NAME = "provision-board.sh"
PREFIX = "rkbench-provision: "
#: manylinux tags pip may pick for each board machine. Only manylinux2014 (glibc
#: 2.17): vendor images ship old glibc (Debian 10/11, Ubuntu 20.04), newer tags
#: would not install there.
PLATFORMS = {
    "aarch64": ["manylinux_2_17_aarch64", "manylinux2014_aarch64"],
    "x86_64": ["manylinux_2_17_x86_64", "manylinux2014_x86_64"],
    "armv7l": ["manylinux_2_17_armv7l", "manylinux2014_armv7l"],
}
MACHINE_ALIASES = {"arm64": "aarch64", "amd64": "x86_64", "x64": "x86_64"}
SCRIPT_EXIT = {
    64: "the provisioning script was called wrongly (a bug in rkbench)",
    65: "the board's Python does not run or is older than 3.8",
    66: "pip is missing on the board",
    67: "pip install failed on the board",
    68: "numpy does not import on the board after the install",
    69: "librknnrt.so needs root to install",
    70: "librknnrt.so could not be written",
    71: "pip cannot run on the board's Python",
}
_WHEEL_NAME = re.compile(r"^[A-Za-z0-9_.+!-]+\.whl$")

# Runs on the board's Python (3.8+): pip version, installed versions of some
# distributions, and the uid, as one JSON line.
_PROBE = r"""
import json, os, sys
try:
    from importlib import metadata
except ImportError:
    metadata = None
out = {"python": sys.version.split()[0], "uid": os.getuid(), "pip": None, "dists": {}}
def version(name):
    if metadata is None:
        return None
    try:
        return metadata.version(name)
    except Exception:
        return None
out["pip"] = version("pip")
for name in sys.argv[1:]:
    out["dists"][name] = version(name)
print(json.dumps(out))
"""


@dataclass
class Wheel:
    path: Path
    name: str  # distribution name as the wheel spells it
    version: str
    reason: str  # why it is pushed
    requires: list[str] = field(default_factory=list)


@dataclass
class ProvisionReport:
    board: str
    python: str
    machine: str
    wheels: list[Wheel]
    installed: dict[str, str | None]  # distribution -> version on the board afterwards
    pip_command: str | None
    librknnrt: str | None  # where librknnrt.so went, when given
    pushed: DeployStats
    dry_run: bool
    log: list[str]


# ----------------------------------------------------------------------------------
# wheels on the host
# ----------------------------------------------------------------------------------
def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def board_machine(machine: str | None) -> str:
    m = (machine or "").lower()
    m = MACHINE_ALIASES.get(m, m)
    if m not in PLATFORMS:
        raise UsageError(
            f"no wheel platform known for a {machine or 'unknown'} board "
            f"(known: {', '.join(PLATFORMS)}); install the packages by hand or use --wheel"
        )
    return m


def python_xy(version: str | None) -> str:
    match = re.match(r"^(\d+)\.(\d+)", version or "")
    if not match:
        raise BoardError(f"cannot tell the board's Python version from {version!r}")
    return f"{match.group(1)}.{match.group(2)}"


def pip_download_argv(
    requirements: Sequence[str],
    python_version: str,
    machine: str,
    dest: str | Path,
    *,
    no_deps: bool = True,
    host_python: str = sys.executable,
) -> list[str]:
    """`pip download` of binary wheels for the board (not for this host)."""
    argv = [host_python, "-m", "pip", "download", *requirements]
    if no_deps:
        argv.append("--no-deps")
    argv.append("--only-binary=:all:")
    for platform in PLATFORMS[board_machine(machine)]:
        argv += ["--platform", platform]
    argv += [
        "--python-version",
        python_xy(python_version),
        "--implementation",
        "cp",
        "--disable-pip-version-check",
        "-d",
        str(dest),
    ]
    return argv


def default_lite2_requirement(toolkit_version: str | None) -> str:
    """rknn-toolkit-lite2 of the host toolkit's release (major.minor.patch), else the
    latest 2.x."""
    if toolkit_version:
        match = re.match(r"^(\d+)\.(\d+)\.(\d+)", toolkit_version)
        if match:
            return f"{LITE2}=={match.group(0)}"
    return f"{LITE2}>=2,<3"


def wheel_metadata(path: str | Path) -> tuple[str, str, list[str]]:
    """(name, version, Requires-Dist lines) read from the wheel's METADATA."""
    try:
        with zipfile.ZipFile(path) as zf:
            names = [n for n in zf.namelist() if n.count("/") == 1 and n.endswith(".dist-info/METADATA")]
            if not names:
                raise InputFileError(f"{path}: not a wheel (no *.dist-info/METADATA inside)")
            text = zf.read(names[0]).decode("utf-8", "replace")
    except (zipfile.BadZipFile, OSError) as exc:
        raise InputFileError(f"{path}: not a readable wheel ({exc})") from None
    msg = email.parser.Parser().parsestr(text, headersonly=True)
    name, version = msg.get("Name"), msg.get("Version")
    if not name or not version:
        raise InputFileError(f"{path}: the wheel's METADATA has no Name/Version")
    return str(name), str(version), [str(r) for r in (msg.get_all("Requires-Dist") or [])]


def wheel_tags_fit(filename: str, python_version: str, machine: str) -> bool:
    """Whether a wheel file name fits CPython X.Y on the board's machine."""
    from packaging.utils import InvalidWheelFilename, parse_wheel_filename

    try:
        _, _, _, tags = parse_wheel_filename(filename)
    except InvalidWheelFilename:
        return False
    xy = python_xy(python_version).replace(".", "")
    arch = MACHINE_ALIASES.get((machine or "").lower(), (machine or "").lower())
    platforms = set(PLATFORMS.get(arch, [])) | {"any"}
    for tag in tags:
        interp_ok = tag.interpreter in (f"cp{xy}", f"py{xy}", "py3", f"py{xy[0]}") or (
            tag.abi == "abi3" and tag.interpreter.startswith("cp3") and int(tag.interpreter[3:] or 0) <= int(xy[1:])
        )
        abi_ok = tag.abi in (f"cp{xy}", "abi3", "none")
        if interp_ok and abi_ok and tag.platform in platforms:
            return True
    return False


def find_cached_wheel(directory: Path, requirement: str, python_version: str, machine: str) -> Path | None:
    """The newest wheel already downloaded that satisfies `requirement` and fits the
    board, so a second provision needs no network."""
    from packaging.requirements import Requirement
    from packaging.utils import parse_wheel_filename

    req = Requirement(requirement)
    if not directory.is_dir():
        return None
    best: tuple[Any, Path] | None = None
    for path in sorted(directory.glob("*.whl")):
        try:
            name, version, _, _ = parse_wheel_filename(path.name)
        except Exception:
            continue
        if normalize(str(name)) != normalize(req.name) or not wheel_tags_fit(path.name, python_version, machine):
            continue
        if req.specifier and not req.specifier.contains(version, prereleases=True):
            continue
        if best is None or version > best[0]:
            best = (version, path)
    return best[1] if best else None


def _requirement_name(requirement: str) -> str:
    from packaging.requirements import Requirement

    return normalize(Requirement(requirement).name)


def download(
    requirements: Sequence[str],
    python_version: str,
    machine: str,
    dest: Path,
    *,
    no_deps: bool = True,
    timeout: float = 600.0,
    host_python: str = sys.executable,
) -> list[Path]:
    """Download wheels for the board into `dest`; the files pip saved or found there."""
    dest.mkdir(parents=True, exist_ok=True)
    argv = pip_download_argv(requirements, python_version, machine, dest, no_deps=no_deps, host_python=host_python)
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise UsageError(
            f"pip download of {' '.join(requirements)} did not finish within {timeout:g} s; "
            "check this host's internet access, or give the wheel with --wheel PATH"
        ) from None
    if done.returncode != 0:
        lines = [ln.strip() for ln in (done.stderr + done.stdout).splitlines() if ln.strip()]
        reason = next((ln for ln in reversed(lines) if ln.startswith("ERROR")), lines[-1] if lines else "")
        raise UsageError(
            f"pip download of {' '.join(requirements)} for Python {python_xy(python_version)} on {machine} failed: "
            f"{reason}; check this host's internet access and the version (--version), or give the wheel "
            "with --wheel PATH"
        )
    found: list[Path] = []
    for line in done.stdout.splitlines():
        match = re.search(r"(?:Saved|File was already downloaded) (.+\.whl)\s*$", line.strip())
        if match:
            path = Path(match.group(1))
            path = path if path.is_absolute() else dest / path.name
            if path not in found:
                found.append(path)
    if not found:
        raise UsageError(
            f"pip download of {' '.join(requirements)} saved no wheel (output: "
            f"{done.stdout.strip().splitlines()[-1:] or ['-']}); give the wheel with --wheel PATH"
        )
    return found


def wheel_cache(python_version: str, machine: str) -> Path:
    from rkbench.model.cache import cache_root

    return cache_root() / "wheels" / f"{board_machine(machine)}-cp{python_xy(python_version).replace('.', '')}"


def script_path() -> Path:
    """deploy/provision-board.sh of this checkout ($RKBENCH_PROVISION_SCRIPT overrides)."""
    env = os.environ.get("RKBENCH_PROVISION_SCRIPT")
    candidates = [Path(env)] if env else []
    import rkbench

    here = Path(rkbench.__file__).resolve().parent
    candidates += [here.parents[1] / "deploy" / SCRIPT_NAME, here / SCRIPT_NAME]
    for path in candidates:
        if path.is_file():
            return path
    raise UsageError(
        f"{SCRIPT_NAME} is not found beside this rkbench (looked in "
        f"{', '.join(str(c) for c in candidates)}); install rkbench from its source tree "
        "(make install) or set RKBENCH_PROVISION_SCRIPT"
    )


# ----------------------------------------------------------------------------------
# the board
# ----------------------------------------------------------------------------------
def probe(transport: Transport, python: str | Sequence[str], names: Sequence[str]) -> dict[str, Any]:
    """pip and distribution versions on the board's Python, and the login uid."""
    from rkbench.boards.runner_command import explain_start_failure, python_argv

    res = transport.run([*python_argv(python), "-c", _PROBE, *names], timeout=120)
    if res.returncode != 0:
        raise explain_start_failure(transport, python, res.returncode, res.stderr_text, what="the board's Python")
    lines = [ln for ln in res.stdout_text.splitlines() if ln.strip().startswith("{")]
    try:
        return json.loads(lines[-1])
    except (IndexError, ValueError):
        raise BoardError(
            f"{transport.describe()}: cannot read what is installed on the board "
            f"(got {res.stdout_text.strip()[:120]!r})"
        ) from None


def _marker_env(python_full: str, machine: str) -> dict[str, str]:
    return {
        "python_version": python_xy(python_full),
        "python_full_version": python_full,
        "platform_machine": machine,
        "platform_system": "Linux",
        "sys_platform": "linux",
        "os_name": "posix",
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
        "extra": "",
    }


def missing_requirements(
    requires: Sequence[str], installed: dict[str, str | None], python_full: str, machine: str
) -> list[str]:
    """Requires-Dist entries that apply to the board and that it does not satisfy."""
    from packaging.requirements import InvalidRequirement, Requirement

    env = _marker_env(python_full, machine)
    out = []
    for line in requires:
        try:
            req = Requirement(line)
        except InvalidRequirement:
            continue
        if req.marker is not None and not req.marker.evaluate(env):
            continue
        have = installed.get(normalize(req.name))
        if have is not None and (not req.specifier or req.specifier.contains(have, prereleases=True)):
            continue
        text = f"{req.name}{req.specifier}"
        if text not in out:
            out.append(text)
    return out


def _requirement_names(requires: Sequence[str]) -> list[str]:
    from packaging.requirements import InvalidRequirement, Requirement

    names = []
    for line in requires:
        try:
            names.append(normalize(Requirement(line).name))
        except InvalidRequirement:
            pass
    return names


def _say(log: Callable[[str], None] | None, message: str) -> None:
    if log is not None:
        log(message)


def provision(
    transport: Transport,
    *,
    version: str | None = None,
    wheel: str | Path | None = None,
    librknnrt: str | Path | None = None,
    python: str | Sequence[str] = "python3",
    cache: str | None = None,
    toolkit_version: str | None = None,
    wheel_dir: Path | None = None,
    dry_run: bool = False,
    librknnrt_dest: str = LIBRKNNRT_DEST,
    log: Callable[[str], None] | None = None,
    host_python: str = sys.executable,
) -> ProvisionReport:
    """Install rknn-toolkit-lite2 (or the wheel at `wheel`) on the board, with numpy
    and pip when the board lacks them, and librknnrt.so when given. The board needs
    no internet; the host needs it only for wheels it has not downloaded before.

    version: rknn-toolkit-lite2 version (default: the host toolkit's, else latest 2.x).
    wheel_dir: where downloaded wheels are kept (default ~/.cache/rkbench/wheels/...).
    dry_run: push everything and print the commands, install nothing."""
    from rkbench.boards.health import board_info
    from rkbench.boards.runner_command import python_argv

    board = transport.describe()
    if wheel is not None and version is not None:
        raise UsageError("give --version or --wheel, not both")
    lib_path = Path(librknnrt) if librknnrt is not None else None
    if lib_path is not None and not lib_path.is_file():
        raise InputFileError(f"--librknnrt {lib_path}: no such file")

    info = board_info(transport, python=python, cache=cache)
    py_full = str(info.get("python") or "")
    machine = str(info.get("machine") or "")
    _say(
        log,
        f"{board}: Python {py_full} on {machine}, numpy {info.get('numpy') or 'missing'}, "
        f"{LITE2} {info.get('rknn_toolkit_lite2') or 'missing'}",
    )

    wheels: list[Wheel] = []
    if wheel is not None:
        main_path = Path(wheel)
        if not main_path.is_file() or main_path.suffix != ".whl":
            raise InputFileError(f"--wheel {main_path}: not a .whl file")
        reason = "given with --wheel"
    else:
        arch = board_machine(machine)
        if arch != "aarch64":
            raise UsageError(
                f"{LITE2} has wheels for aarch64 boards only and {board} is {machine}; give a wheel with --wheel PATH"
            )
        requirement = f"{LITE2}=={version}" if version else default_lite2_requirement(toolkit_version)
        directory = wheel_dir or wheel_cache(py_full, arch)
        main_path = find_cached_wheel(directory, requirement, py_full, arch)
        if main_path is None:
            _say(log, f"downloading {requirement} for Python {python_xy(py_full)} on {arch} ...")
            main_path = download([requirement], py_full, arch, directory, no_deps=True, host_python=host_python)[0]
        reason = requirement
    name, wversion, requires = wheel_metadata(main_path)
    if not _WHEEL_NAME.match(main_path.name):
        raise InputFileError(f"{main_path}: not a wheel file name pip accepts")
    if not wheel_tags_fit(main_path.name, py_full, machine):
        _say(
            log,
            f"warning: {main_path.name} does not look built for Python {python_xy(py_full)} on {machine}; "
            "pip on the board will refuse it if it is not",
        )
    wheels.append(Wheel(main_path, name, wversion, reason, requires))

    # what the board has already
    names = sorted(set(_requirement_names(requires)) | {"numpy"})
    state = probe(transport, python, names)
    installed = {normalize(k): v for k, v in (state.get("dists") or {}).items()}
    need = missing_requirements(requires, installed, py_full, machine)
    if installed.get("numpy") is None and not any(normalize(r).startswith("numpy") for r in need):
        need.append("numpy")  # the runner needs it whatever the wheel says
    pip_missing = state.get("pip") is None
    if pip_missing:
        need.append("pip")
    if need:
        directory = wheel_dir or wheel_cache(py_full, machine)
        # from the host's wheel cache when everything (with its own needs) is there
        selected: dict[str, Path] = {}
        to_fetch: list[str] = []
        queue = list(need)
        while queue:
            requirement = queue.pop(0)
            key = _requirement_name(requirement)
            if key in selected or key == normalize(name):
                continue
            cached = find_cached_wheel(directory, requirement, py_full, machine)
            if cached is None:
                to_fetch.append(requirement)
                continue
            selected[key] = cached
            queue += missing_requirements(wheel_metadata(cached)[2], installed, py_full, machine)
        paths = list(selected.values())
        if to_fetch:
            _say(
                log,
                f"the board lacks {', '.join(to_fetch)}: downloading wheels for Python "
                f"{python_xy(py_full)} on {machine} ...",
            )
            paths += download(to_fetch, py_full, machine, directory, no_deps=False, host_python=host_python)
        direct = {_requirement_name(r) for r in need}
        for path in paths:
            dep_name, dep_version, dep_requires = wheel_metadata(path)
            key = normalize(dep_name)
            if key == normalize(name) or any(normalize(w.name) == key for w in wheels):
                continue
            if key not in direct and installed.get(key) is not None:
                continue  # a dependency of a dependency the board already has
            why = "missing on the board" if key in direct else "needed by a missing package"
            wheels.append(Wheel(path, dep_name, dep_version, why, dep_requires))

    # push the script, the wheels and the library
    stats = DeployStats()
    script_blob = deploy.ensure_blob(transport, script_path(), stats=stats, cache=cache)
    pairs = []
    for w in wheels:
        if not _WHEEL_NAME.match(w.path.name):
            raise InputFileError(f"{w.path}: not a wheel file name pip accepts")
        blob = deploy.ensure_blob(transport, w.path, stats=stats, cache=cache)
        pairs.append(f"{blob}={w.path.name}")
    lib_blob = deploy.ensure_blob(transport, lib_path, stats=stats, cache=cache) if lib_path else None
    _say(
        log,
        f"pushed {stats.blobs_pushed} file(s), {stats.bytes_pushed} bytes ({stats.blobs_reused} already on the board)",
    )

    house = f"{deploy.cache_dir(transport, cache)}/provision/{uuid.uuid4().hex[:12]}"
    argv = ["sh", script_blob, "--python", " ".join(python_argv(python)), "--wheelhouse", house]
    if dry_run:
        argv.append("--dry-run")
    install_names = [wheels[0].path.name]
    for w in wheels[1:]:
        if normalize(w.name) in ("numpy", "pip"):
            install_names.append(w.path.name)
        if normalize(w.name) == "pip":
            argv += ["--pip-wheel", w.path.name]
    for n in install_names:
        argv += ["--install", n]
    if lib_blob:
        argv += ["--librknnrt", lib_blob, "--librknnrt-dest", librknnrt_dest]
    argv += ["--", *pairs]
    res = transport.run(argv, timeout=900)
    lines = [ln for ln in res.stdout_text.splitlines()]
    said = [ln[len(PREFIX) :] for ln in lines if ln.startswith(PREFIX)]
    for line in said:
        _say(log, line)
    if res.returncode != 0:
        why = SCRIPT_EXIT.get(res.returncode, f"exit {res.returncode}")
        errors = [
            ln[len(PREFIX) + len("error: ") :]
            for ln in res.stderr_text.splitlines()
            if ln.startswith(PREFIX + "error: ")
        ]
        detail = errors[-1] if errors else (res.stderr_last_line() or "no message")
        raise BoardError(f"{board}: provisioning failed ({why}): {detail}")
    command = next((ln[len("command: ") :] for ln in said if ln.startswith("command: ")), None)

    after: dict[str, str | None] = {}
    if not dry_run:
        check = sorted({normalize(w.name) for w in wheels} | {"numpy"})
        final = probe(transport, python, check)
        after = {normalize(k): v for k, v in (final.get("dists") or {}).items()}
        if after.get(normalize(name)) != wversion:
            py = " ".join(python_argv(python))
            raise BoardError(
                f"{board}: pip said it installed {name} {wversion}, but the board's Python reports "
                f"{after.get(normalize(name)) or 'nothing'}; check {py} on the board (is it another "
                "Python than the one pip installed into?)"
            )
        if lib_blob:
            got = transport.sha256(librknnrt_dest)
            if got != deploy.sha256_file(lib_path):
                raise BoardError(f"{board}: {librknnrt_dest} does not hold the pushed library after the install")
    return ProvisionReport(
        board=board,
        python=py_full,
        machine=machine,
        wheels=wheels,
        installed=after,
        pip_command=command,
        librknnrt=librknnrt_dest if lib_blob else None,
        pushed=stats,
        dry_run=dry_run,
        log=said,
    )
