"""The runner's stdio: events on the original stdout, everything else on stderr,
the run spec from stdin, and a watcher that ends the process when the host goes away."""

from __future__ import annotations

import collections
import contextlib
import os
import select
import sys
import threading
from typing import Callable, Deque, Iterator, List, Optional, Tuple

from rkbench_wire import EXIT_HOST_GONE, Event, ProtocolError, encode_event
from rkbench_wire.constants import MAX_SPEC_BYTES


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
    the last lines, so error events can carry what a backend library printed.

    tail() must see every byte written before it was called (the runtime's last line is
    usually the one that says why): it writes a numbered marker into the pipe and waits
    until the copier has recorded everything before that marker, lines included.
    """

    _MARK = b"\0rkbench-tee-sync:"

    def __init__(self, keep_lines: int = 40) -> None:
        self._tail: Deque[str] = collections.deque(maxlen=keep_lines)
        self._partial = b""
        self._carry = b""
        self._cond = threading.Condition()
        self._asked = 0  # markers written (tail() calls)
        self._drained = 0  # highest marker the copier has passed, lines before it recorded
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
                data = b""
            if not data:
                self._consume(b"", final=True)
                return
            self._consume(data)

    def _consume(self, data: bytes, final: bool = False) -> None:
        """Split markers out of the stream (one may straddle two reads), record and copy
        the text, and only then tell waiting tail() calls how far the stream is drained."""
        buf = self._carry + data
        self._carry = b""
        text: List[bytes] = []
        drained = 0
        while True:
            at = buf.find(self._MARK)
            if at < 0:
                break
            end = buf.find(b"\0", at + len(self._MARK))
            if end < 0:
                break
            text.append(buf[:at])
            number = buf[at + len(self._MARK) : end]
            drained = max(drained, int(number) if number.isdigit() else 0)
            buf = buf[end + 1 :]
        if not final:
            # keep back a possible beginning of a marker until the next read completes it
            at = buf.find(self._MARK)
            if at < 0:
                at = buf.rfind(b"\0")
                if at >= 0 and not self._MARK.startswith(buf[at : at + len(self._MARK)]):
                    at = -1
            if at >= 0:
                buf, self._carry = buf[:at], buf[at:]
        text.append(buf)
        chunk = b"".join(text)
        if chunk:
            self._record(chunk)
            try:
                os.write(self._stderr_fd, chunk)
            except OSError:
                pass
        if drained or final:
            with self._cond:
                self._drained = max(self._drained, drained)
                if final:
                    self._drained = max(self._drained, self._asked)
                self._cond.notify_all()

    def _record(self, chunk: bytes) -> None:
        with self._cond:
            lines = (self._partial + chunk).split(b"\n")
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

    def tail(self, wait_s: float = 2.0) -> str:
        """The last lines written to stdout/stderr before this call, once the copier has
        recorded all of them (Python's and C stdio's buffers are flushed first)."""
        flush_all()
        if self._thread is not None and self._thread.is_alive():
            with self._cond:
                self._asked += 1
                number = self._asked
            try:
                os.write(2, self._MARK + str(number).encode("ascii") + b"\0")
            except OSError:
                number = 0
            with self._cond:
                self._cond.wait_for(lambda: self._drained >= number, wait_s)
        with self._cond:
            lines = list(self._tail)
            if self._partial.strip():
                lines.append(self._partial.decode("utf-8", "replace").split("\r")[-1])
        return "\n".join(lines)


def flush_all() -> None:
    """Flush Python's stdout/stderr and C stdio's buffers (a library's printf to a pipe
    sits in a full buffer until then)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):
            pass
    try:
        import ctypes

        ctypes.CDLL(None).fflush(None)
    except (ImportError, OSError, AttributeError):
        pass


@contextlib.contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """While inside: whatever writes to fd 1 (a library's printf too) goes to stderr, so
    stdout keeps only what the caller prints after."""
    flush_all()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        yield
    finally:
        flush_all()
        os.dup2(saved, 1)
        os.close(saved)


def read_spec_line(fd: int = 0, limit: int = MAX_SPEC_BYTES) -> Tuple[bytes, bytes]:
    """Read up to the first newline from fd without buffering past what the OS gave.
    Returns (line, bytes that came after it). A line longer than `limit` bytes is not
    read to its end: ProtocolError (the host sends far less)."""
    chunks: List[bytes] = []
    size = 0
    while True:
        data = os.read(fd, 65536)
        if not data:
            return b"".join(chunks), b""
        at = data.find(b"\n")
        if at >= 0:
            if size + at > limit:
                break
            chunks.append(data[:at])
            return b"".join(chunks), data[at + 1 :]
        chunks.append(data)
        size += len(data)
        if size > limit:
            break
    raise ProtocolError(
        "run spec: longer than %d bytes without a newline (the host sends one JSON line, far shorter)" % limit
    )


class HostWatch:
    """Reads stdin in a daemon thread after the spec: the host's heartbeat bytes, then EOF.

    EOF, or `silence_s` without a byte (when given: the host beats every second), means
    the host is gone: before finish() that ends the process at once (nobody reads our
    events; no orphan keeps the NPU; the kernel drops the board lock), after finish() it
    only wakes wait_closed()."""

    def __init__(self, on_gone: Callable[[str], None], fd: int = 0, silence_s: Optional[float] = None) -> None:
        self._on_gone = on_gone
        self._fd = fd
        self._silence_s = silence_s
        self.heartbeat = silence_s is not None  # the host beats and closes stdin once it has the outputs
        self._finished = threading.Event()
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="rkbench-stdin-watch", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        why = "stdin closed"
        while True:
            if self._silence_s is not None:
                try:
                    ready, _, _ = select.select([self._fd], [], [], self._silence_s)
                except (OSError, ValueError):
                    ready = [self._fd]
                if not ready:
                    why = "no heartbeat from the host for %g s" % self._silence_s
                    break
            try:
                data = os.read(self._fd, 4096)
            except OSError:
                data = b""
            if not data:
                break
        self._closed.set()
        if not self._finished.is_set():
            self._on_gone(why)

    def finish(self) -> None:
        """The run is over: the host going away no longer needs an abrupt exit."""
        self._finished.set()

    def wait_closed(self, timeout_s: float) -> bool:
        """After finish(): wait until the host has closed stdin (or went silent)."""
        return self._closed.wait(timeout_s)


def host_gone(stderr_fd: int = 2, why: str = "stdin closed") -> None:
    """The host is gone, so nobody reads our events. Leave now, without cleanup
    handlers, so no orphan keeps the NPU (the kernel drops our board lock)."""
    try:
        os.write(stderr_fd, ("rkbench-device: %s (host gone), exiting\n" % why).encode("utf-8"))
    except OSError:
        pass
    os._exit(EXIT_HOST_GONE)
