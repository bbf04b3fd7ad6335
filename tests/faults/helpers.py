"""What every fault case checks afterwards: nothing left running or locked on the board,
and what the store holds."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.run.helpers import alive, children, processes_mentioning

LONG = ["--min-seconds", "30", "--max-seconds", "60"]
#: checks a lock file with flock, on the board (the file may be on a mount only the board sees)
_LOCK_FREE = (
    "import fcntl, sys\n"
    "try:\n"
    "    f = open(sys.argv[1], 'a')\n"
    "except FileNotFoundError:\n"
    "    sys.exit(0)\n"
    "try:\n"
    "    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)\n"
    "except OSError:\n"
    "    sys.exit(1)\n"
)


def runner_marker(board_home: Path) -> str:
    """On the command line of every runner started for this board (and of nothing else)."""
    return str(board_home / ".cache" / "rkbench" / "runner")


def wait_until(check, timeout: float, step: float = 0.05) -> float | None:
    """Seconds until check() held, None if it did not within timeout."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if check():
            return time.monotonic() - started
        time.sleep(step)
    return None


def assert_board_clean(board_home: Path, transport=None, runs_may_remain: bool = False, timeout: float = 5.0):
    """No runner of this board alive, its lock free, and (unless said) no run folder left."""
    marker = runner_marker(board_home)
    assert wait_until(lambda: not processes_mentioning(marker), timeout) is not None, processes_mentioning(marker)
    lock = board_home / ".cache" / "rkbench" / "board.lock"
    if transport is not None:
        res = transport.run([sys.executable, "-c", _LOCK_FREE, str(lock)], timeout=30)
        assert res.returncode == 0, "the board lock is still held"
    else:
        done = subprocess.run([sys.executable, "-c", _LOCK_FREE, str(lock)])
        assert done.returncode == 0, "the board lock is still held"
    runs = board_home / ".cache" / "rkbench" / "runs"
    if not runs_may_remain and transport is None:
        assert not list(runs.glob("*")) if runs.exists() else True, list(runs.iterdir())


def wait_for_samples(rk, db: Path, proc: subprocess.Popen, timeout: float = 90.0) -> dict:
    """The running run's row once samples are in the store."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"rkbench ended before the fault: exit {proc.returncode}\n{out}\n{err}")
        rows = rk.history(db) if db.exists() else []
        if rows and rows[0]["status"] == "running" and rows[0]["sample_count"] > 0:
            return rows[0]
        time.sleep(0.2)
    proc.kill()
    pytest.fail("no running run with samples appeared in the store")


def finish(proc: subprocess.Popen, timeout: float = 60.0) -> tuple[int, str, str, float]:
    """(exit code, stdout, stderr, seconds it took to end from now)."""
    started = time.monotonic()
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    return proc.returncode, out, err, time.monotonic() - started


def descendants_gone(pid: int) -> bool:
    return not [p for p in children(pid) if alive(p)]
