"""The board lock: one measurement at a time per board (fcntl.flock on a file)."""

from __future__ import annotations

import fcntl
import os
import time
from typing import Callable, Optional

from rkbench_wire import EXIT_BOARD_BUSY
from rkbench_wire.constants import ERR_BOARD_BUSY

from .errors import RunnerError


class BoardLock:
    """flock-based; released by close() or by the kernel when the process ends."""

    def __init__(self, path: str) -> None:
        self.path = os.path.expanduser(path)
        self._fd: Optional[int] = None

    def acquire(self, timeout_s: float, on_wait: Optional[Callable[[str], None]] = None, poll_s: float = 0.1) -> None:
        directory = os.path.dirname(self.path)
        if directory:
            os.makedirs(directory, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + timeout_s
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except (BlockingIOError, PermissionError):
                pass
            holder = self.holder()
            if time.monotonic() >= deadline:
                os.close(fd)
                raise RunnerError(
                    ERR_BOARD_BUSY,
                    "the board is busy: another rkbench run (%s) holds %s; waited %.1f s"
                    % (holder or "unknown pid", self.path, timeout_s),
                    exit_code=EXIT_BOARD_BUSY,
                )
            if not told and on_wait is not None:
                on_wait(
                    "board busy: %s holds %s; waiting up to %.1f s" % (holder or "another run", self.path, timeout_s)
                )
                told = True
            time.sleep(poll_s)
        self._fd = fd
        try:  # who holds it, for a waiting run's message; the lock is held without it (disk full)
            os.ftruncate(fd, 0)
            os.write(fd, ("pid %d\n" % os.getpid()).encode("ascii"))
        except OSError:
            pass

    def holder(self) -> Optional[str]:
        try:
            with open(self.path) as fh:
                return fh.read().strip() or None
        except OSError:
            return None

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            try:
                os.ftruncate(fd, 0)
                fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)
