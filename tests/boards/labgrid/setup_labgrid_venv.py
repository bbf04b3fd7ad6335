#!/usr/bin/env python3
"""Create (once) the separate venv with labgrid that the labgrid tests drive.

labgrid 26 needs protobuf>=5.29 and rknn-toolkit2 pins protobuf<=4.25.4, so
labgrid lives in its own venv, cached by version:

    ${RKBENCH_TEST_CACHE:-${XDG_CACHE_HOME:-~/.cache}/rkbench-test}/labgrid-venv/<version>/

A second run finds the ready venv and returns at once. Concurrent runs wait on
a lock file. CI pre-creates it with:

    .venv/bin/python tests/boards/labgrid/setup_labgrid_venv.py

Options: --version V (default $RKBENCH_TEST_LABGRID_VERSION or the pinned
LABGRID_VERSION), --print-bin (print the venv's bin directory). Exit 0 when the
venv is ready, 1 when it could not be made (the reason on stderr). Stdlib only.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

LABGRID_VERSION = "26.0.1"  # the latest release on PyPI when this was written
VERSION_ENV = "RKBENCH_TEST_LABGRID_VERSION"
CACHE_ENV = "RKBENCH_TEST_CACHE"
READY = ".rkbench-ready"
TOOLS = ("labgrid-client", "labgrid-coordinator", "labgrid-exporter")
PIP_TIMEOUT = 900


class LabgridVenvError(RuntimeError):
    """The labgrid venv could not be created (the message says why)."""


def wanted_version() -> str:
    return os.environ.get(VERSION_ENV) or LABGRID_VERSION


def cache_root() -> Path:
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "rkbench-test"


def venv_dir(version: str | None = None, root: Path | None = None) -> Path:
    return (root or cache_root()) / "labgrid-venv" / (version or wanted_version())


def _ready(venv: Path, version: str) -> bool:
    stamp = venv / READY
    try:
        if stamp.read_text().strip() != version:
            return False
    except OSError:
        return False
    return all(os.access(venv / "bin" / t, os.X_OK) for t in TOOLS)


def _run(argv, what: str, timeout: float) -> str:
    try:
        res = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise LabgridVenvError(f"{what}: no result after {timeout:g} s") from None
    except OSError as exc:
        raise LabgridVenvError(f"{what}: {exc}") from None
    if res.returncode != 0:
        tail = [ln for ln in (res.stderr or res.stdout).splitlines() if ln.strip() and "WARNING: Location" not in ln]
        raise LabgridVenvError(f"{what} failed (exit {res.returncode}): {' | '.join(tail[-3:])[-600:]}")
    return res.stdout


def ensure_labgrid_venv(
    version: str | None = None,
    python: str | None = None,
    root: Path | None = None,
    log: Callable[[str], None] = lambda msg: print(msg, file=sys.stderr),
) -> Path:
    """The bin directory of a venv with labgrid==version (created if needed)."""
    version = version or wanted_version()
    venv = venv_dir(version, root)
    if _ready(venv, version):
        return venv / "bin"
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / f"{version}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another run may be building it right now
        if _ready(venv, version):
            return venv / "bin"
        if venv.exists():
            shutil.rmtree(venv)  # a half-made venv from an interrupted run
        started = time.monotonic()
        log(f"creating labgrid {version} venv in {venv} (once; later runs reuse it)")
        try:
            _run([python or sys.executable, "-m", "venv", str(venv)], "python -m venv", 300)
            vpy = str(venv / "bin" / "python")
            _run(
                [vpy, "-m", "pip", "install", "-q", "--disable-pip-version-check", f"labgrid=={version}"],
                f"pip install labgrid=={version}",
                PIP_TIMEOUT,
            )
            # (`labgrid-client version` needs a running coordinator, so ask the package)
            probe = "import importlib.metadata as m, labgrid.remote.client; print(m.version('labgrid'))"
            got = _run([vpy, "-c", probe], "importing labgrid", 120).strip()
            if got.splitlines()[-1:] != [version]:
                raise LabgridVenvError(f"the venv has labgrid {got!r}, expected {version}")
        except BaseException:
            shutil.rmtree(venv, ignore_errors=True)
            raise
        (venv / READY).write_text(version + "\n")
        log(f"labgrid {version} ready in {time.monotonic() - started:.0f} s")
    return venv / "bin"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--version", default=None, help=f"labgrid version (default {wanted_version()})")
    ap.add_argument("--python", default=None, help="Python to create the venv with (default: this one)")
    ap.add_argument("--print-bin", action="store_true", help="print the venv's bin directory")
    args = ap.parse_args(argv)
    try:
        bin_dir = ensure_labgrid_venv(args.version, args.python)
    except LabgridVenvError as exc:
        print(f"setup_labgrid_venv: {exc}", file=sys.stderr)
        return 1
    if args.print_bin:
        print(bin_dir)
    else:
        print(f"labgrid {args.version or wanted_version()}: {bin_dir}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
