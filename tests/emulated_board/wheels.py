"""aarch64 wheels from PyPI for the board's Python, downloaded once into a cache and
installed into the board's root by this host's pip (for the board's tags, not this
host's)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Sequence

from rkbench.boards.provision import PLATFORMS, find_cached_wheel

PLATFORM_ARGS = [arg for tag in PLATFORMS["aarch64"] for arg in ("--platform", tag)]


class WheelError(RuntimeError):
    pass


def _pip(*args: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pip", *args, "--disable-pip-version-check", "-q"],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    if done.returncode != 0:
        errors = [ln for ln in done.stderr.splitlines() if ln.startswith("ERROR")]
        raise WheelError(f"pip {args[0]} for the emulated board failed: {(errors or [done.stderr[-800:]])[-1]}")


def board_wheels(requirements: Sequence[str], python: str, downloads: Path) -> list[Path]:
    """One wheel per pinned requirement for CPython `python` on aarch64 (manylinux2014),
    from `downloads`, fetching only the ones not there yet."""
    missing = [r for r in requirements if find_cached_wheel(downloads, r, python, "aarch64") is None]
    if missing:
        downloads.mkdir(parents=True, exist_ok=True)
        _pip(
            "download",
            "--no-deps",
            "--only-binary=:all:",
            *PLATFORM_ARGS,
            "--python-version",
            python,
            "--implementation",
            "cp",
            "-d",
            str(downloads),
            *missing,
        )
    found = [find_cached_wheel(downloads, r, python, "aarch64") for r in requirements]
    lost = [r for r, w in zip(requirements, found) if w is None]
    if lost:
        raise WheelError(f"no aarch64 wheel for Python {python} in {downloads} after pip download: {', '.join(lost)}")
    return found  # type: ignore[return-value]


def install(wheels: Sequence[Path], python: str, site_packages: Path) -> None:
    """pip install --target for the board's tags; no .pyc (the board's Python compiles)."""
    _pip(
        "install",
        "--no-deps",
        "--no-index",
        "--no-compile",
        "--only-binary=:all:",
        *PLATFORM_ARGS,
        "--python-version",
        python,
        "--implementation",
        "cp",
        "--target",
        str(site_packages),
        *map(str, wheels),
    )
