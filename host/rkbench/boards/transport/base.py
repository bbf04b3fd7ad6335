"""The Transport seam: how the host runs commands on a board and moves files.

Every transport (ssh, adb, local) implements `Transport`. Remote commands are
always given as an argv list; transports that go through a remote shell build
the command line with `quote_argv`, never by pasting strings.

Contract, shared by all transports:

- `run(argv, stdin=None, timeout=None, check=False) -> CompletedRun`
  Runs to completion. A timeout raises `TransportTimeout` (a BoardError) after
  the command was killed. `check=True` raises `CommandFailed` on a non-zero exit.
- `start(argv) -> RemoteProcess`
  Streams: iterate the process for stdout lines (bytes, each ending in b"\\n"
  except maybe the last) as they arrive; `readline(timeout)`;
  `write_stdin(data)`, `close_stdin()`, `wait(timeout) -> int`, `kill()`,
  `returncode` (None while running), `stderr_tail() -> str`.
- `put(local_path, remote_path, progress=None) -> int` bytes sent;
  `progress(done, total)` is called as bytes go out. The remote directory must
  exist (see `makedirs`). `get(remote_path, local_path) -> int` bytes received.
- `exists(remote) -> bool`, `sha256(remote) -> str | None` (None if missing),
  `home() -> str` (absolute), `makedirs(remote)`, `rename(src, dst)` (atomic
  replace on the same filesystem), `remove(remote)` (no error when missing),
  `free_bytes(remote) -> int | None` (free space where `remote` is).
- `describe() -> str` (e.g. "ssh root@192.168.1.20:22"), `close()`, and use as
  a context manager. `stats` counts bytes pushed/pulled over the transport's life.

The default implementations of exists/sha256/home/makedirs/rename/remove use
`run()` with POSIX tools on the board; a transport may override them with
something faster (ssh uses SFTP).
"""

from __future__ import annotations

import collections
import shlex
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rkbench.errors import BoardError

if TYPE_CHECKING:  # pragma: no cover
    from rkbench.boards.address import BoardAddress

Progress = Callable[[int, int], None]

# sha256 of "$1" on the board: exit 3 if missing; python3 (hashlib) for files over
# "$2" bytes when present, else sha256sum, else python3.
SHA256_PYTHON_ABOVE = 4_000_000
_PY_SHA = (
    "import hashlib,sys\n"
    "h=hashlib.sha256()\n"
    'f=open(sys.argv[1],"rb")\n'
    'for b in iter(lambda: f.read(1<<20), b""): h.update(b)\n'
    "print(h.hexdigest())\n"
)
SHA256_SCRIPT = (
    '[ -e "$1" ] || exit 3\n'
    '[ -f "$1" ] || { echo "not a regular file" >&2; exit 4; }\n'
    'if command -v python3 >/dev/null 2>&1 && [ "$(wc -c < "$1")" -gt "$2" ]; then\n'
    f"  exec python3 -c '{_PY_SHA}' \"$1\"\n"
    "fi\n"
    'if command -v sha256sum >/dev/null 2>&1; then exec sha256sum -- "$1"; fi\n'
    f"exec python3 -c '{_PY_SHA}' \"$1\"\n"
)

# How much of a command's stderr is kept for error messages.
STDERR_TAIL_BYTES = 8192
#: The longest stdout line a streamed command may write (the runner's biggest event, a
#: batch of raw latencies, is far below), and how much unread output the host holds.
MAX_LINE_BYTES = 8 << 20
MAX_QUEUED_BYTES = 32 << 20


class TransportTimeout(BoardError):
    """A remote command or stream read did not finish in time."""


class CommandFailed(BoardError):
    """`run(..., check=True)` saw a non-zero exit status."""

    def __init__(self, message: str, result: CompletedRun):
        super().__init__(message)
        self.result = result


def quote_argv(argv: Sequence[str]) -> str:
    """One shell command line from an argv list: every argument shlex-quoted."""
    if isinstance(argv, (str, bytes)):
        raise TypeError("quote_argv needs a list of arguments, not a string")
    if not argv:
        raise ValueError("empty argv")
    return " ".join(shlex.quote(str(a)) for a in argv)


def megabytes(n: int) -> str:
    """A byte count for a message: "1.6 MB" (one decimal below 10 MB, so 1.6 MB free is
    not rounded down to 0 or 1)."""
    mb = n / (1 << 20)
    return f"{mb:.1f} MB" if mb < 10 else f"{mb:.0f} MB"


def free_bytes_script(path: str) -> list[str]:
    """argv printing the free bytes of the filesystem holding `path` (or its nearest
    existing parent: the folder may not exist yet), for boards without Python."""
    script = 'd="$1"; while [ ! -e "$d" ] && [ "$d" != / ]; do d=$(dirname "$d"); done; df -Pk "$d"'
    return ["sh", "-c", script, "sh", path]


def parse_df_free(output: str) -> int | None:
    """Free bytes from `df -Pk` output (the last line's fourth column), None if unreadable."""
    lines = output.strip().splitlines()
    try:
        return int(lines[-1].split()[3]) * 1024
    except (IndexError, ValueError):
        return None


def short_command(argv: Sequence[str], limit: int = 120) -> str:
    """The command for an error message, shortened."""
    text = quote_argv(argv)
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass(frozen=True)
class CompletedRun:
    argv: list
    returncode: int
    stdout: bytes
    stderr: bytes

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def stdout_text(self) -> str:
        return self.stdout.decode("utf-8", "replace")

    @property
    def stderr_text(self) -> str:
        return self.stderr.decode("utf-8", "replace")

    def stderr_last_line(self) -> str:
        lines = [ln for ln in self.stderr_text.splitlines() if ln.strip()]
        return lines[-1].strip() if lines else ""


@dataclass
class TransferStats:
    """Bytes moved by one transport."""

    bytes_pushed: int = 0
    bytes_pulled: int = 0
    files_pushed: int = 0
    files_pulled: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add_pushed(self, n: int, files: int = 0) -> None:
        with self._lock:
            self.bytes_pushed += n
            self.files_pushed += files

    def add_pulled(self, n: int, files: int = 0) -> None:
        with self._lock:
            self.bytes_pulled += n
            self.files_pulled += files


class RemoteProcess(ABC):
    """A command started with `Transport.start`, streaming its stdout."""

    argv: list

    @abstractmethod
    def readline(self, timeout: float | None = None) -> bytes:
        """The next stdout line (with its b"\\n"), b"" at end of output.

        Raises TransportTimeout when no line arrives within `timeout` seconds."""

    def __iter__(self) -> Iterator[bytes]:
        while True:
            line = self.readline()
            if not line:
                return
            yield line

    @abstractmethod
    def write_stdin(self, data: bytes) -> None: ...

    @abstractmethod
    def close_stdin(self) -> None: ...

    @abstractmethod
    def wait(self, timeout: float | None = None) -> int:
        """Wait for exit; returns the exit status. TransportTimeout on timeout."""

    @abstractmethod
    def kill(self) -> None:
        """Stop the command (and release the channel). Safe to call twice."""

    @property
    @abstractmethod
    def returncode(self) -> int | None: ...

    @abstractmethod
    def stderr_tail(self) -> str:
        """The last few KB of stderr, decoded."""

    @property
    def connection_lost(self) -> bool:
        """True when the command ended with the connection to the board, not by itself:
        no exit status arrived (its returncode is then only a placeholder)."""
        return False

    def __enter__(self) -> RemoteProcess:
        return self

    def __exit__(self, *exc) -> None:
        if self.returncode is None:
            self.kill()


class LineTooLong(BoardError):
    """A streamed command wrote a line longer than the reader's bound (the rest of that
    line was dropped unread)."""

    def __init__(self, message: str, limit: int):
        super().__init__(message)
        self.limit = limit


class _TooLong:
    """Queue marker: a line went over the bound here."""


class LinePump:
    """Reads a byte stream in a thread and hands out lines through a queue.

    `read(n)` must return b"" at end of stream. Helper for RemoteProcess
    implementations (ssh, local, adb).

    Bounded: a line longer than `max_line` bytes is dropped as it arrives (readline
    raises LineTooLong in its place, then goes on with the next line), and the pump
    stops reading while more than `max_queued` bytes wait to be read, so a command
    that writes faster than the host reads is held back by the pipe or the SSH window
    instead of growing the host's memory. close() drops what is queued."""

    _EOF = object()

    def __init__(
        self,
        read: Callable[[int], bytes],
        name: str = "stdout",
        max_line: int | None = MAX_LINE_BYTES,
        max_queued: int = MAX_QUEUED_BYTES,
    ):
        self._read = read
        self._max_line = max_line
        self._max_queued = max_queued
        self._items: collections.deque[object] = collections.deque()
        self._queued = 0
        self._closed = False
        self._cond = threading.Condition()
        self._eof = False
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"rkbench-{name}", daemon=True)
        self._thread.start()

    def _put(self, item: object, size: int = 0) -> None:
        with self._cond:
            while self._queued > self._max_queued and not self._closed:
                self._cond.wait()
            if self._closed and item is not self._EOF:
                return
            self._items.append(item)
            self._queued += size
            self._cond.notify_all()

    def _run(self) -> None:
        parts: list[bytes] = []
        size = 0
        skipping = False  # inside a line that went over the bound: drop until its newline
        try:
            while True:
                chunk = self._read(65536)
                if not chunk:
                    break
                start = 0
                while True:
                    nl = chunk.find(b"\n", start)
                    piece = chunk[start:] if nl < 0 else chunk[start : nl + 1]
                    if not skipping:
                        parts.append(piece)
                        size += len(piece)
                        if self._max_line is not None and size > self._max_line:
                            self._put(_TooLong())
                            parts, size, skipping = [], 0, True
                        elif nl >= 0:
                            self._put(b"".join(parts), size)
                            parts, size = [], 0
                    elif nl >= 0:
                        skipping = False
                    if nl < 0:
                        break
                    start = nl + 1
        except BaseException as exc:  # surfaced as end of stream
            self.error = exc
        finally:
            if parts and not skipping:
                self._put(b"".join(parts), size)
            self._put(self._EOF)

    def readline(self, timeout: float | None = None, what: str = "output") -> bytes:
        if self._eof:
            return b""
        with self._cond:
            if not self._cond.wait_for(lambda: self._items, timeout):
                raise TransportTimeout(f"no {what} for {timeout:g} s")
            item = self._items.popleft()
            if isinstance(item, bytes):
                self._queued -= len(item)
            self._cond.notify_all()
        if item is self._EOF:
            self._eof = True
            return b""
        if isinstance(item, _TooLong):
            raise LineTooLong(
                f"{what}: a line longer than {self._max_line} bytes (dropped unread)", self._max_line or 0
            )
        return item  # type: ignore[return-value]

    def close(self) -> None:
        """Nobody reads any more: drop what is queued and let the pump run to its end."""
        with self._cond:
            self._closed = True
            self._items = collections.deque(item for item in self._items if item is self._EOF)
            self._queued = 0
            self._cond.notify_all()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)


class TailBuffer:
    """Keeps the last `limit` bytes of a stream read in a thread (stderr)."""

    def __init__(self, read: Callable[[int], bytes] | None = None, limit: int = STDERR_TAIL_BYTES):
        self._chunks: collections.deque[bytes] = collections.deque()
        self._size = 0
        self._limit = limit
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        if read is not None:
            self._thread = threading.Thread(target=self._run, args=(read,), name="rkbench-stderr", daemon=True)
            self._thread.start()

    def _run(self, read: Callable[[int], bytes]) -> None:
        try:
            while True:
                chunk = read(65536)
                if not chunk:
                    return
                self.feed(chunk)
        except BaseException:
            return

    def feed(self, chunk: bytes) -> None:
        with self._lock:
            self._chunks.append(chunk)
            self._size += len(chunk)
            while self._size - len(self._chunks[0]) >= self._limit and len(self._chunks) > 1:
                self._size -= len(self._chunks.popleft())

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def data(self) -> bytes:
        with self._lock:
            return b"".join(self._chunks)[-self._limit :]

    def text(self) -> str:
        return self.data().decode("utf-8", "replace")


class Transport(ABC):
    """How the host talks to one board. See the module docstring for the contract."""

    kind: str = "?"

    def __init__(self, address: BoardAddress):
        self.address = address
        self.stats = TransferStats()
        self._home: str | None = None
        self._on_close: list[Callable[[], None]] = []

    # -- the four things every transport must do --------------------------
    @abstractmethod
    def run(
        self,
        argv: Sequence[str],
        stdin: bytes | None = None,
        timeout: float | None = None,
        check: bool = False,
    ) -> CompletedRun: ...

    @abstractmethod
    def start(self, argv: Sequence[str]) -> RemoteProcess: ...

    @abstractmethod
    def put(self, local_path, remote_path: str, progress: Progress | None = None) -> int: ...

    @abstractmethod
    def get(self, remote_path: str, local_path) -> int: ...

    # -- defaults built on run() ------------------------------------------
    def describe(self) -> str:
        return f"{self.kind} {self.address.display}"

    def check_result(self, result: CompletedRun, what: str | None = None) -> CompletedRun:
        """Raise CommandFailed (one line) if `result` failed."""
        if result.returncode != 0:
            detail = result.stderr_last_line()
            msg = f"{self.describe()}: {what or short_command(result.argv)} failed (exit {result.returncode})" + (
                f": {detail}" if detail else ""
            )
            raise CommandFailed(msg, result)
        return result

    def exists(self, remote: str) -> bool:
        return self.run(["test", "-e", remote], timeout=60).returncode == 0

    def sha256(self, remote: str) -> str | None:
        """Hex sha256 of a remote file, None if the file does not exist.

        One round trip: sha256sum, or python3's hashlib for big files (OpenSSL
        uses the CPU's SHA instructions; coreutils usually does not)."""
        res = self.run(["sh", "-c", SHA256_SCRIPT, "sh", remote, str(SHA256_PYTHON_ABOVE)], timeout=600)
        if res.returncode == 3:
            return None
        if res.returncode == 0 and res.stdout.split():
            word = res.stdout.split(maxsplit=1)[0].decode("ascii", "replace").lstrip("\\")
            if len(word) == 64:
                return word.lower()
        detail = res.stderr_last_line()
        raise BoardError(
            f"{self.describe()}: cannot hash {remote} (exit {res.returncode}{': ' + detail if detail else ''}); "
            "the board needs sha256sum (coreutils/busybox) or python3"
        )

    def home(self) -> str:
        if self._home is None:
            res = self.run(["sh", "-c", 'printf %s "$HOME"'], timeout=60)
            self.check_result(res, "reading $HOME")
            home = res.stdout_text.strip()
            if not home.startswith("/"):
                raise BoardError(
                    f"{self.describe()}: $HOME is not set on the board ({home!r}); set it for the login user"
                )
            self._home = home.rstrip("/") or "/"
        return self._home

    def makedirs(self, remote: str) -> None:
        self.check_result(self.run(["mkdir", "-p", "--", remote], timeout=60), f"mkdir -p {remote}")

    def rename(self, src: str, dst: str) -> None:
        self.check_result(self.run(["mv", "-f", "--", src, dst], timeout=60), f"mv {src} {dst}")

    def remove(self, remote: str) -> None:
        self.check_result(self.run(["rm", "-f", "--", remote], timeout=60), f"rm {remote}")

    def free_bytes(self, remote: str) -> int | None:
        """Free space (bytes) of the filesystem holding `remote`; None when the board
        cannot tell (no df) or cannot be asked (the connection is gone)."""
        try:
            res = self.run(free_bytes_script(remote), timeout=30)
        except BoardError:
            return None
        return parse_df_free(res.stdout_text) if res.returncode == 0 else None

    # -- lifetime -----------------------------------------------------------
    def on_close(self, callback: Callable[[], None]) -> None:
        """Run `callback` when the transport is closed (after the connection is), e.g. to
        release the labgrid place the board was reached through. Last added runs first."""
        self._on_close.append(callback)

    def close(self) -> None:
        try:
            self._disconnect()
        finally:
            callbacks, self._on_close = self._on_close, []
            for callback in reversed(callbacks):
                callback()

    def _disconnect(self) -> None:  # noqa: B027 (a transport without a connection has nothing to do)
        """Close what the transport holds (connections, servers it started)."""

    def __enter__(self) -> Transport:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.describe()}>"
