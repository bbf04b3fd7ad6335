"""The runner's stdio: events on the original stdout, everything else on stderr,
the run spec from stdin, and a watcher that ends the process when the host goes away."""

from __future__ import annotations

import collections
import os
import sys
import threading
from typing import Callable, Deque, List, Optional, Tuple

from rkbench_wire import EXIT_HOST_GONE, Event, encode_event


class EventWriter:
    """Writes one event per line to a file descriptor and flushes it; thread-safe.
    If the reader is gone (broken pipe) the process ends at once."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._lock = threading.Lock()
        self.count = 0

    def emit(self, event: Event) -> None:
        data = (encode_event(event) + "\n").encode("utf-8")
        with self._lock:
            try:
                view = memoryview(data)
                while view:
                    written = os.write(self._fd, view)
                    view = view[written:]
            except (BrokenPipeError, OSError):
                os._exit(EXIT_HOST_GONE)
            self.count += 1


class StderrTee:
    """fd 1 and fd 2 both go into a pipe; a thread copies it to the real stderr and keeps
    the last lines, so error events can carry what a backend library printed."""

    def __init__(self, keep_lines: int = 40) -> None:
        self._tail: Deque[str] = collections.deque(maxlen=keep_lines)
        self._partial = b""
        self._marker = b"\n\0rkbench-tee-sync\0\n"
        self._synced = threading.Event()
        self._lock = threading.Lock()
        self._thread: Optional[threading.Thread] = None
        self._stderr_fd = -1

    def start(self) -> int:
        """Redirect fds 1 and 2; returns a new fd that still points at the original stdout."""
        sys.stdout.flush()
        sys.stderr.flush()
        events_fd = os.dup(1)
        self._stderr_fd = os.dup(2)
        read_fd, write_fd = os.pipe()
        os.dup2(write_fd, 1)
        os.dup2(write_fd, 2)
        os.close(write_fd)
        self._thread = threading.Thread(target=self._pump, args=(read_fd,), name="rkbench-stderr", daemon=True)
        self._thread.start()
        return events_fd

    def _pump(self, read_fd: int) -> None:
        while True:
            try:
                data = os.read(read_fd, 65536)
            except OSError:
                return
            if not data:
                return
            if self._marker in data:
                data = data.replace(self._marker, b"")
                self._synced.set()
            try:
                if data:
                    os.write(self._stderr_fd, data)
            except OSError:
                pass
            with self._lock:
                lines = (self._partial + data).split(b"\n")
                self._partial = lines.pop()[-4096:]
                for line in lines:
                    text = line.decode("utf-8", "replace").rstrip("\r")
                    # progress bars redraw with \r: keep the last state of the line
                    text = text.split("\r")[-1]
                    if text.strip():
                        self._tail.append(text[-500:])

    @property
    def original_stderr_fd(self) -> int:
        """The real stderr (fd 2 itself now feeds the tee), or 2 before start()."""
        return self._stderr_fd if self._stderr_fd >= 0 else 2

    def tail(self, wait_s: float = 1.0) -> str:
        """The last lines written to stdout/stderr so far (after the copier caught up)."""
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        if self._thread is not None and self._thread.is_alive():
            self._synced.clear()
            try:
                os.write(2, self._marker)
                self._synced.wait(wait_s)
            except OSError:
                pass
        with self._lock:
            lines = list(self._tail)
            if self._partial.strip():
                lines.append(self._partial.decode("utf-8", "replace").split("\r")[-1])
        return "\n".join(lines)


def read_spec_line(fd: int = 0, limit: int = 16 * 1024 * 1024) -> Tuple[bytes, bytes]:
    """Read up to the first newline from fd without buffering past what the OS gave.
    Returns (line, bytes that came after it)."""
    chunks: List[bytes] = []
    size = 0
    while True:
        data = os.read(fd, 65536)
        if not data:
            return b"".join(chunks), b""
        at = data.find(b"\n")
        if at >= 0:
            chunks.append(data[:at])
            return b"".join(chunks), data[at + 1:]
        chunks.append(data)
        size += len(data)
        if size > limit:
            return b"".join(chunks), b""


def watch_stdin(on_eof: Callable[[], None], fd: int = 0) -> threading.Thread:
    """A daemon thread that reads stdin until EOF, then calls on_eof (which exits).
    Anything the host sends after the spec is ignored."""

    def watch() -> None:
        while True:
            try:
                data = os.read(fd, 4096)
            except OSError:
                data = b""
            if not data:
                on_eof()
                return

    thread = threading.Thread(target=watch, name="rkbench-stdin-watch", daemon=True)
    thread.start()
    return thread


def host_gone(stderr_fd: int = 2) -> None:
    """stdin closed: the host is gone, so nobody reads our events. Leave now, without
    cleanup handlers, so no orphan keeps the NPU (the kernel drops our board lock)."""
    try:
        os.write(stderr_fd, b"rkbench-device: stdin closed (host gone), exiting\n")
    except OSError:
        pass
    os._exit(EXIT_HOST_GONE)
