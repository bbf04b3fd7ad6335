"""The `local` board: this machine, through subprocess. Same contract as ssh/adb.

Commands run directly from their argv list (no shell). A missing program gives
exit status 127 with a message on stderr, as a remote shell would. put/get are
file copies that count their bytes like a real push.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import threading
from collections.abc import Sequence
from pathlib import Path

from rkbench.boards.address import BoardAddress
from rkbench.boards.transport import register
from rkbench.boards.transport.base import (
    CompletedRun,
    LinePump,
    Progress,
    RemoteProcess,
    TailBuffer,
    Transport,
    TransportTimeout,
    megabytes,
    short_command,
)
from rkbench.errors import BoardError, DiskFullError

COPY_CHUNK = 1 << 20


def _kill_group(proc: subprocess.Popen) -> None:
    """Kill the process and anything it started (it runs in its own session)."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        try:
            proc.kill()
        except ProcessLookupError:
            pass


def _fd(pipe) -> int:
    """The file descriptor of a pipe Popen was asked to make (never None then)."""
    assert pipe is not None, "the process was started without this pipe"
    return pipe.fileno()


class PipedProcess(RemoteProcess):
    """What every RemoteProcess over a local client process (the command itself, or an
    `adb shell` client) does with its pipes. Subclasses set argv, _describe, _proc,
    _stdout (a LinePump) and _stdin_lock."""

    #: How a failed write explains itself.
    ENDED = "it has exited"
    argv: list[str]
    _describe: str
    _proc: subprocess.Popen
    _stdout: LinePump
    _stdin_lock: threading.Lock

    def readline(self, timeout: float | None = None) -> bytes:
        return self._stdout.readline(timeout, what=f"output from {self._describe}: {short_command(self.argv)}")

    def write_stdin(self, data: bytes) -> None:
        if isinstance(data, str):
            data = data.encode("utf-8")
        with self._stdin_lock:
            stdin = self._proc.stdin
            assert stdin is not None, "started with stdin=PIPE"
            try:
                stdin.write(data)
                stdin.flush()
            except (BrokenPipeError, ValueError, OSError) as exc:
                raise BoardError(
                    f"{self._describe}: cannot write to {short_command(self.argv)} ({self.ENDED}: "
                    f"{self.stderr_tail().strip()[-200:] or exc})"
                ) from None

    def close_stdin(self) -> None:
        with self._stdin_lock:
            try:
                if self._proc.stdin is not None:
                    self._proc.stdin.close()
            except (BrokenPipeError, OSError):
                pass

    def _close_pipes(self) -> None:
        for f in (self._proc.stdin, self._proc.stdout, self._proc.stderr):
            try:
                if f is not None:
                    f.close()
            except OSError:
                pass


class SubprocessProcess(PipedProcess):
    """A RemoteProcess over a local subprocess.Popen with three pipes."""

    def __init__(
        self, popen_argv: Sequence[str], argv: Sequence[str] | None = None, describe: str = "local", **popen_kw
    ):
        self.argv = list(argv if argv is not None else popen_argv)
        self._describe = describe
        self._proc = subprocess.Popen(
            list(popen_argv),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            **popen_kw,
        )
        out_fd = _fd(self._proc.stdout)
        err_fd = _fd(self._proc.stderr)
        self._stdout = LinePump(lambda n: os.read(out_fd, n), "stdout")
        self._stderr = TailBuffer(lambda n: os.read(err_fd, n))
        self._stdin_lock = threading.Lock()

    @property
    def pid(self) -> int:
        return self._proc.pid

    def wait(self, timeout: float | None = None) -> int:
        try:
            rc = self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise TransportTimeout(
                f"{self._describe}: {short_command(self.argv)} still running after {timeout:g} s"
            ) from None
        self._stdout.join(5)
        self._stderr.join(5)
        self._close_pipes()
        return rc

    def kill(self) -> None:
        _kill_group(self._proc)
        try:
            self._proc.wait(10)
        except subprocess.TimeoutExpired:
            pass
        self._stdout.close()
        self._stdout.join(2)
        self._stderr.join(2)
        self._close_pipes()

    @property
    def returncode(self) -> int | None:
        return self._proc.poll()

    def stderr_tail(self) -> str:
        return self._stderr.text()


@register("local")
class LocalTransport(Transport):
    kind = "local"

    def __init__(self, address: BoardAddress | None = None, home: str | None = None, env: dict | None = None):
        super().__init__(address or BoardAddress(kind="local", raw="local"))
        self._home_override = home
        self._env = env

    def describe(self) -> str:
        return "local"

    def _popen_kw(self) -> dict:
        return {"env": self._env} if self._env is not None else {}

    def run(
        self,
        argv: Sequence[str],
        stdin: bytes | None = None,
        timeout: float | None = None,
        check: bool = False,
    ) -> CompletedRun:
        argv = [str(a) for a in argv]
        if not argv:
            raise ValueError("empty argv")
        try:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
                **self._popen_kw(),
            )
        except FileNotFoundError:
            res = CompletedRun(argv, 127, b"", f"{argv[0]}: command not found\n".encode())
        except PermissionError:
            res = CompletedRun(argv, 126, b"", f"{argv[0]}: permission denied\n".encode())
        else:
            try:
                out, err = proc.communicate(stdin, timeout=timeout)
            except subprocess.TimeoutExpired:
                _kill_group(proc)
                proc.communicate()
                raise TransportTimeout(
                    f"local: {short_command(argv)} did not finish within {timeout:g} s (killed)"
                ) from None
            res = CompletedRun(argv, proc.returncode, out, err)
        if check:
            self.check_result(res)
        return res

    def start(self, argv: Sequence[str]) -> RemoteProcess:
        argv = [str(a) for a in argv]
        try:
            return SubprocessProcess(argv, describe="local", **self._popen_kw())
        except FileNotFoundError:
            raise BoardError(f"local: cannot start {short_command(argv)}: {argv[0]} not found") from None

    # -- files ---------------------------------------------------------------
    def _copy(self, src: str, dst: str, progress: Progress | None) -> int:
        total = os.path.getsize(src)
        done = 0
        try:
            with open(src, "rb") as fi, open(dst, "wb") as fo:
                while True:
                    chunk = fi.read(COPY_CHUNK)
                    if not chunk:
                        break
                    fo.write(chunk)
                    done += len(chunk)
                    if progress is not None:
                        progress(done, total)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                try:
                    os.unlink(dst)  # the partial copy held what little room there was
                except OSError:
                    pass
                free = self.free_bytes(os.path.dirname(dst) or ".")
                room = f" ({megabytes(free)} free, {megabytes(total)} needed)" if free is not None else ""
                raise DiskFullError(f"local: disk full writing {dst}{room}; free some space there and retry") from None
            raise
        return done

    def put(self, local_path, remote_path: str, progress: Progress | None = None) -> int:
        n = self._copy(os.fspath(local_path), remote_path, progress)
        self.stats.add_pushed(n, files=1)
        return n

    def get(self, remote_path: str, local_path) -> int:
        if not os.path.exists(remote_path):
            raise BoardError(f"local: {remote_path} does not exist")
        n = self._copy(remote_path, os.fspath(local_path), None)
        self.stats.add_pulled(n, files=1)
        return n

    def exists(self, remote: str) -> bool:
        return os.path.lexists(remote)

    def home(self) -> str:
        if self._home_override:
            return str(Path(self._home_override).resolve())
        return str(Path(os.path.expanduser("~")).resolve())

    def makedirs(self, remote: str) -> None:
        os.makedirs(remote, exist_ok=True)

    def free_bytes(self, remote: str) -> int | None:
        path = remote
        while not os.path.exists(path) and os.path.dirname(path) != path:
            path = os.path.dirname(path)
        try:
            st = os.statvfs(path)
        except OSError:
            return None
        return st.f_bavail * st.f_frsize

    def rename(self, src: str, dst: str) -> None:
        os.replace(src, dst)

    def remove(self, remote: str) -> None:
        try:
            os.unlink(remote)
        except FileNotFoundError:
            pass

    def sha256(self, remote: str) -> str | None:

        try:
            with open(remote, "rb") as f:
                return _sha_file(f)
        except FileNotFoundError:
            return None
        except IsADirectoryError:
            raise BoardError(f"local: cannot hash {remote}: not a regular file") from None


def _sha_file(f) -> str:
    import hashlib

    h = hashlib.sha256()
    for block in iter(lambda: f.read(COPY_CHUNK), b""):
        h.update(block)
    return h.hexdigest()
