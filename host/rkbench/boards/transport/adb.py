"""The adb transport: drives the real `adb` client (shell protocol v2, push, pull).

How a command runs: `adb [-P PORT] -s SERIAL shell -T -- LINE`. adbd hands LINE
to `/bin/sh -c` on the board; LINE is built from the argv list with
`quote_argv`, inside a small wrapper:

    printf '\\036rkbench-pid %s\\n' "$$" >&2; 'prog' 'arg 1' ...; __rkb_rc=$?;
    printf '\\n\\036rkbench-exit %s\\n' "$__rkb_rc" >&2; exit "$__rkb_rc"

- The first stderr line gives the PID of the shell adbd started. adbd makes it
  a session leader (setsid), so `kill -KILL -PID` ends the command and
  everything it started; that is how `kill()` and timeouts stop a command
  (adbd itself only sends SIGHUP to its direct child when the stream closes).
- The last stderr line carries the exit status. The shell protocol also
  carries it, but the adb 29 client (Debian's) exits 0 when the connection
  drops before the exit packet arrives (newer clients say 255): a lost board
  would look like success.
  No exit marker means the connection was lost (or adb itself failed), and
  that is reported as a BoardError, never as exit 0.
Both lines are removed before anyone sees stderr.

Streaming (`start`): the adb client forwards its stdin to the command (shell
v2 `stdin` packets) and, at EOF, sends `close_stdin`, so closing our pipe to
the client closes the command's stdin. The board runner exits on stdin EOF.

Files: `adb push` / `adb pull` (sync protocol). adbd creates missing parent
directories on push (feature fixed_push_mkdir). Progress comes from the "[ NN%]"
lines adb prints when its stdout is a terminal (a pseudo-terminal here).

adb failures (device not found, offline, unauthorized, several devices, server
not starting) become one-line BoardErrors naming the serial and what to do.
"""

from __future__ import annotations

import os
import re
import select
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from rkbench.boards.address import BoardAddress
from rkbench.boards.transport import register
from rkbench.boards.transport.base import (
    CompletedRun,
    LinePump,
    Progress,
    TailBuffer,
    Transport,
    TransportTimeout,
    megabytes,
    quote_argv,
    short_command,
)
from rkbench.boards.transport.local import PipedProcess, _fd
from rkbench.errors import BoardError, DiskFullError

PID_MARK = b"\x1erkbench-pid "
EXIT_MARK = b"\n\x1erkbench-exit "
_WRAP_HEAD = "printf '\\036rkbench-pid %s\\n' \"$$\" >&2; "
_WRAP_TAIL = '; __rkb_rc=$?; printf \'\\n\\036rkbench-exit %s\\n\' "$__rkb_rc" >&2; exit "$__rkb_rc"'
# Kill the command's process group (the shell adbd started is its leader), or
# the single process when it is not a group leader. `kill -KILL -PGID` first:
# dash (Debian's /bin/sh) refuses `kill -KILL -- -PGID`.
_KILL_SCRIPT = 'kill -KILL -"$1" 2>/dev/null || kill -KILL -- -"$1" 2>/dev/null || kill -KILL "$1" 2>/dev/null; exit 0'

ADB_ENV = "RKBENCH_ADB"  # path of the adb client, when not on PATH
DEFAULT_TIMEOUT = 30.0  # adb's own commands (connect, get-state, features)
_PERCENT_RE = re.compile(rb"\[\s*(\d{1,3})%\]")
_ANSI_RE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def remote_line(argv: Sequence[str]) -> str:
    """The shell line adbd runs for `argv`: quoted argv inside the pid/exit wrapper."""
    return _WRAP_HEAD + quote_argv(argv) + _WRAP_TAIL


def split_exit_marker(err: bytes) -> tuple[int | None, bytes]:
    """(exit status or None, stderr without the exit marker line)."""
    at = err.rfind(EXIT_MARK)
    if at < 0:
        return None, err
    start = at + len(EXIT_MARK)
    end = err.find(b"\n", start)
    digits = err[start : end if end >= 0 else len(err)]
    if not digits.isdigit():
        return None, err
    rest = err[end + 1 :] if end >= 0 else b""
    return int(digits), err[:at] + rest


def _is_daemon_notice(line: bytes) -> bool:
    """adb's "* daemon not running; starting now at tcp:5037" / "* daemon started successfully"."""
    return line.startswith(b"* daemon ") or line.startswith(b"* failed to start daemon")


def strip_pid_line(err: bytes) -> tuple[int | None, bytes]:
    """(pid or None, stderr without the leading pid marker and adb daemon notices)."""
    pid = None
    lines = err.splitlines(keepends=True)
    out = []
    looking = True
    for line in lines:
        if looking and _is_daemon_notice(line):
            continue
        if looking and line.startswith(PID_MARK):
            try:
                pid = int(line[len(PID_MARK) :].strip())
            except ValueError:
                pass
            looking = False
            continue
        looking = False
        out.append(line)
    return pid, b"".join(out)


class _StderrFilter:
    """Reads the adb client's stderr; removes daemon notices and the pid line
    at the start and remembers the pid (the exit marker is handled at the end)."""

    LOOKAHEAD = 4096

    def __init__(self, read: Callable[[int], bytes]):
        self._read = read
        self._done = False
        self.pid: int | None = None
        self.pid_event = threading.Event()

    def __call__(self, n: int) -> bytes:
        if self._done:
            return self._read(n)
        buf = b""
        while True:
            chunk = self._read(n)
            buf += chunk
            # examine complete lines at the start of the stream
            while True:
                nl = buf.find(b"\n")
                if nl < 0:
                    break
                line = buf[: nl + 1]
                if _is_daemon_notice(line):
                    buf = buf[nl + 1 :]
                    continue
                if line.startswith(PID_MARK):
                    try:
                        self.pid = int(line[len(PID_MARK) :].strip())
                    except ValueError:
                        pass
                    buf = buf[nl + 1 :]
                self._finish()
                return buf or self._read(n)
            if not chunk or len(buf) > self.LOOKAHEAD:
                self._finish()
                return buf

    def _finish(self) -> None:
        self._done = True
        self.pid_event.set()


def _clean_output(text: str) -> str:
    """adb progress output (from a terminal) as plain lines."""
    text = _ANSI_RE.sub("", text)
    lines = []
    for raw in text.replace("\r\n", "\n").split("\n"):
        part = raw.split("\r")[-1].strip()
        if part:
            lines.append(part)
    return "\n".join(lines)


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else ""


# =============================================================================
# streaming
# =============================================================================
class AdbProcess(PipedProcess):
    """A command started with `AdbTransport.start`: a local `adb shell` client."""

    ENDED = "the command or the adb connection ended"

    def __init__(self, transport: AdbTransport, argv: Sequence[str], popen: subprocess.Popen):
        self.argv = list(argv)
        self._t = transport
        self._describe = transport.describe()
        self._proc = popen
        out_fd = _fd(popen.stdout)
        err_fd = _fd(popen.stderr)
        self._filter = _StderrFilter(lambda n: os.read(err_fd, n))
        self._stdout = LinePump(lambda n: os.read(out_fd, n), "adb-stdout")
        self._stderr = TailBuffer(self._filter)
        self._stdin_lock = threading.Lock()
        self._rc: int | None = None
        self._note = ""
        self._killed = False

    @property
    def pid(self) -> int | None:
        """PID (on the board) of the shell running the command, once known."""
        return self._filter.pid

    def wait(self, timeout: float | None = None) -> int:
        try:
            self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise TransportTimeout(
                f"{self._describe}: {short_command(self.argv)} still running after {timeout:g} s"
            ) from None
        return self._finish()

    def _finish(self) -> int:
        if self._rc is not None:
            return self._rc
        self._stdout.join(10)
        self._stderr.join(10)
        self._close_pipes()
        raw = self._stderr.text().encode("utf-8", "surrogateescape")
        rc, _ = split_exit_marker(raw)
        if rc is None:
            if self._killed:
                rc = -9
            else:
                problem = self._t._adb_problem(raw.decode("utf-8", "replace"))
                self._note = problem or self._t._lost_message(self.argv)
                rc = self._proc.returncode if self._proc.returncode not in (0, None) else 255
        self._rc = rc
        return rc

    def kill(self) -> None:
        if self._proc.poll() is None:
            self._killed = True
            if self._filter.pid_event.wait(2) and self._filter.pid:
                self._t._kill_remote(self._filter.pid)
            try:
                self._proc.kill()
            except ProcessLookupError:
                pass
        try:
            self._proc.wait(10)
        except subprocess.TimeoutExpired:
            pass
        self._stdout.close()
        self._stdout.join(2)
        self._stderr.join(2)
        if self._rc is None:
            if self._killed:
                self._rc = -9
                self._close_pipes()
            else:
                self._finish()

    @property
    def returncode(self) -> int | None:
        if self._rc is not None:
            return self._rc
        if self._proc.poll() is None:
            return None
        return self._finish()

    @property
    def connection_lost(self) -> bool:
        """The client ended without the exit marker, and not because we killed it."""
        return self.returncode is not None and not self._killed and bool(self._note)

    def stderr_tail(self) -> str:
        raw = self._stderr.text().encode("utf-8", "surrogateescape")
        _, clean = split_exit_marker(raw)
        text = clean.decode("utf-8", "replace")
        if self._note:
            text = text + ("" if not text or text.endswith("\n") else "\n") + self._note + "\n"
        return text


# =============================================================================
# the transport
# =============================================================================
@register("adb")
class AdbTransport(Transport):
    """A board reached with the `adb` client.

    adb_path: the client (default: $RKBENCH_ADB, else `adb` on PATH).
    server_port: the adb server's port (`adb -P`; default: adb's own choice,
      $ANDROID_ADB_SERVER_PORT or 5037).
    env: extra environment for the adb client.
    disconnect_on_close: `adb disconnect` on close() when this transport made
      the TCP connection (default False: the connection is left for the next run).
    """

    kind = "adb"

    def __init__(
        self,
        address: BoardAddress,
        adb_path: str | None = None,
        server_port: int | None = None,
        env: dict | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        transfer_timeout: float | None = None,
        disconnect_on_close: bool = False,
        log: Callable[[str], None] | None = None,
    ):
        super().__init__(address)
        self.adb_path = self._find_adb(adb_path)
        self.server_port = int(server_port) if server_port else None
        self.timeout = timeout
        self.transfer_timeout = transfer_timeout
        self.disconnect_on_close = disconnect_on_close
        self._log = log
        self._env = dict(os.environ)
        self._env.pop("TERM", None)  # the client would pass it into the service string
        self._env.pop("ANDROID_SERIAL", None)  # we always give -s
        if env:
            self._env.update(env)
        self.serial: str | None = address.serial
        self._connected_by_us = False
        self.features: frozenset = frozenset()
        self._closed = False
        self._connect()

    # -- the adb client --------------------------------------------------------
    @staticmethod
    def _find_adb(adb_path: str | None) -> str:
        wanted = adb_path or os.environ.get(ADB_ENV) or "adb"
        found = shutil.which(wanted)
        if not found:
            raise BoardError(
                f"adb client not found ({wanted!r}); install it (Debian/Ubuntu: apt-get install adb) "
                f"or point {ADB_ENV} at it"
            )
        return found

    def _adb_argv(self, *args: str) -> list[str]:
        argv = [self.adb_path]
        if self.server_port:
            argv += ["-P", str(self.server_port)]
        return argv + list(args)

    def _serial_argv(self, *args: str) -> list[str]:
        return self._adb_argv("-s", self.serial or "", *args)

    def _adb(self, *args: str, timeout: float | None = None, serial: bool = True) -> tuple[int, str]:
        """Run an adb command that is not a shell; (exit status, stdout+stderr text)."""
        argv = self._serial_argv(*args) if serial else self._adb_argv(*args)
        try:
            res = subprocess.run(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=self._env,
                timeout=timeout if timeout is not None else self.timeout,
            )
        except subprocess.TimeoutExpired:
            raise BoardError(
                f"{self.describe()}: `adb {' '.join(args)}` did not answer in "
                f"{timeout if timeout is not None else self.timeout:g} s; the adb server may be stuck "
                f"(try `adb{self._port_opt()} kill-server`)"
            ) from None
        text = b"\n".join(ln for ln in res.stdout.splitlines() if not _is_daemon_notice(ln))
        return res.returncode, text.decode("utf-8", "replace")

    def _port_opt(self) -> str:
        return f" -P {self.server_port}" if self.server_port else ""

    def _notice(self, msg: str) -> None:
        if self._log is not None:
            self._log(msg)

    # -- errors ------------------------------------------------------------------
    def _who(self) -> str:
        return f"adb device {self.serial}" if self.serial else "adb"

    def _adb_problem(self, text: str) -> str | None:
        """A one-line message for an adb client failure in `text`, None if none is recognised.

        Only lines shaped like the adb client's own messages count ("error: ...",
        "adb: ...", "failed to ...", "cannot ...", "* ..."), so a remote command's
        stderr mentioning e.g. "unauthorized" is not taken for one."""
        low = "\n".join(
            ln.strip()
            for ln in text.lower().splitlines()
            if ln.strip().startswith(("error:", "adb:", "failed to", "cannot ", "* ", "unable to"))
        )
        devs = f"`adb{self._port_opt()} devices`"
        who = self._who()
        if "unauthorized" in low or "still authorizing" in low or "failed to authenticate" in low:
            return (
                f"{who} is unauthorized: accept the USB debugging (RSA key) prompt on the board, or add this "
                f"host's ~/.android/adbkey.pub to the board's adb_keys, then check {devs}"
            )
        if "offline" in low:
            return (
                f"{who} is offline: adbd on the board does not answer; check {devs}, reconnect the cable "
                f"or restart adbd on the board"
                + (f" (then `adb{self._port_opt()} disconnect {self.serial}` and retry)" if self.address.host else "")
            )
        if re.search(r"device '.*' not found|device not found", low):
            hint = (
                f"`adb{self._port_opt()} connect {self.serial}` for a network board"
                if not self.address.host
                else "is the board up and adbd listening there?"
            )
            return f"{who} not found: {devs} does not list it; check the serial, the cable, or {hint}"
        if "no devices/emulators found" in low or "no devices found" in low:
            return f"no adb device attached: {devs} lists none; plug the board in or use --board adb://HOST:PORT"
        if "more than one device" in low:
            return f"more than one adb device attached: choose one with --board adb:SERIAL (see {devs})"
        if (
            "cannot connect to daemon" in low
            or "failed to start daemon" in low
            or "could not install *smartsocket*" in low
        ):
            return (
                f"{who}: the adb server did not start ({_last_line(text)}); try `adb{self._port_opt()} kill-server` "
                "and check that the port is free"
            )
        if "error: closed" in low or "protocol fault" in low or "connection reset" in low:
            return f"{who}: the adb connection closed ({_last_line(text)}); check {devs} and the board's adbd"
        return None

    def _lost_message(self, argv: Sequence[str]) -> str:
        return (
            f"{self.describe()}: the adb connection was lost while running {short_command(argv, 80)} "
            f"(no exit status arrived); check `adb{self._port_opt()} devices` and the board"
        )

    def _raise_adb_problem(self, text: str, doing: str) -> None:
        problem = self._adb_problem(text)
        if problem:
            raise BoardError(problem)
        detail = _last_line(text) or "no message"
        raise BoardError(f"{self.describe()}: {doing} failed: {detail}")

    # -- connecting --------------------------------------------------------------
    def _connect(self) -> None:
        if self.address.host:
            rc, text = self._adb("connect", self.serial or "", serial=False)
            low = text.lower()
            if "already connected" in low:
                pass
            elif low.startswith("connected to") or "\nconnected to" in low:
                self._connected_by_us = True
                self._notice(f"adb: connected to {self.serial}")
            elif "authenticate" in low:
                self._raise_adb_problem(text, "adb connect")
            else:
                # refused / no handshake: leave no half-open entry behind
                self._adb("disconnect", self.serial or "", serial=False)
                reason = _last_line(text)
                hint = (
                    "is adbd listening on TCP on the board (`setprop service.adb.tcp.port 5555` and restart adbd, "
                    "or `adb tcpip 5555` over USB) and is the address right?"
                )
                if "failed to connect to" in low and "refused" not in low:
                    hint = "adbd there accepted the connection but did not answer the adb handshake; restart adbd on the board"
                raise BoardError(f"cannot connect to adb device {self.serial}: {reason}; {hint}")
        if not self.serial:
            self.serial = self._only_device()
        rc, text = self._adb("get-state")
        state = text.strip().splitlines()[-1].strip() if text.strip() else ""
        if rc != 0 or state != "device":
            self._raise_adb_problem(text, "adb get-state")
        rc, text = self._adb("features")
        self.features = frozenset(ln.strip() for ln in text.splitlines() if ln.strip()) if rc == 0 else frozenset()
        if "shell_v2" not in self.features:
            raise BoardError(
                f"{self._who()}: its adbd does not speak the shell protocol v2 (features: "
                f"{', '.join(sorted(self.features)) or 'none'}), so exit codes and stdin cannot be passed; "
                "update adbd on the board or use ssh (--board IP)"
            )

    def _only_device(self) -> str:
        rc, text = self._adb("devices", serial=False)
        if rc != 0:
            self._raise_adb_problem(text, "adb devices")
        devices = []
        for line in text.splitlines():
            parts = line.split()
            if len(parts) >= 2 and not line.startswith("List of") and not line.startswith("*"):
                devices.append((parts[0], parts[1]))
        if not devices:
            raise BoardError(self._adb_problem("error: no devices/emulators found") or "no adb device attached")
        online = [d for d in devices if d[1] == "device"]
        if len(devices) > 1 and len(online) == 1:
            return online[0][0]  # the others are offline/unauthorized leftovers
        if len(devices) > 1:
            names = ", ".join(f"{s} ({st})" for s, st in devices)
            raise BoardError(f"more than one adb device attached ({names}): choose one with --board adb:SERIAL")
        return devices[0][0]

    def describe(self) -> str:
        return f"adb {self.serial or '(only device)'}" + (
            f" (adb server port {self.server_port})" if self.server_port else ""
        )

    # -- commands ----------------------------------------------------------------
    def _shell_popen(self, argv: Sequence[str], stdin) -> subprocess.Popen:
        line = remote_line(argv)
        return subprocess.Popen(
            self._serial_argv("shell", "-T", "--", line),
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=self._env,
        )

    def _kill_remote(self, pid: int) -> None:
        """KILL the command's process group on the board (best effort)."""
        try:
            argv = self._serial_argv("shell", "-T", "--", quote_argv(["sh", "-c", _KILL_SCRIPT, "sh", str(pid)]))
            subprocess.run(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=self._env,
                timeout=10,
            )
        except (subprocess.TimeoutExpired, OSError):
            pass

    def run(
        self,
        argv: Sequence[str],
        stdin: bytes | None = None,
        timeout: float | None = None,
        check: bool = False,
    ) -> CompletedRun:
        argv = [str(a) for a in argv]
        if isinstance(stdin, str):
            stdin = stdin.encode("utf-8")
        proc = self._shell_popen(argv, subprocess.PIPE if stdin is not None else subprocess.DEVNULL)
        out_chunks: list[bytes] = []
        out_fd, err_fd = _fd(proc.stdout), _fd(proc.stderr)
        err_filter = _StderrFilter(lambda n: os.read(err_fd, n))
        err_chunks: list[bytes] = []

        def drain(read, sink):
            while True:
                try:
                    chunk = read(65536)
                except OSError:
                    return
                if not chunk:
                    return
                sink.append(chunk)

        readers = [
            threading.Thread(target=drain, args=(lambda n: os.read(out_fd, n), out_chunks), daemon=True),
            threading.Thread(target=drain, args=(err_filter, err_chunks), daemon=True),
        ]
        if stdin is not None:

            def feed():
                try:
                    proc.stdin.write(stdin)
                except (BrokenPipeError, OSError):
                    pass
                finally:
                    try:
                        proc.stdin.close()
                    except (BrokenPipeError, OSError):
                        pass

            readers.append(threading.Thread(target=feed, daemon=True))
        for t in readers:
            t.start()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            if err_filter.pid_event.wait(1) and err_filter.pid:
                self._kill_remote(err_filter.pid)
            proc.kill()
            proc.wait()
            for t in readers:
                t.join(5)
            raise TransportTimeout(
                f"{self.describe()}: {short_command(argv)} did not finish within {timeout:g} s (killed)"
            ) from None
        for t in readers:
            t.join(30)
        for f in (proc.stdout, proc.stderr):
            if f is not None:
                f.close()
        err = b"".join(err_chunks)
        rc, err = split_exit_marker(err)
        if rc is None:
            text = err.decode("utf-8", "replace")
            raise BoardError(self._adb_problem(text) or self._lost_message(argv))
        result = CompletedRun(argv, rc, b"".join(out_chunks), err)
        if check:
            self.check_result(result)
        return result

    def start(self, argv: Sequence[str]) -> AdbProcess:
        argv = [str(a) for a in argv]
        return AdbProcess(self, argv, self._shell_popen(argv, subprocess.PIPE))

    # -- files ---------------------------------------------------------------------
    def _transfer(self, args: Sequence[str], total: int, progress: Progress | None) -> tuple[int, str]:
        """Run adb push/pull; with `progress`, read adb's "[ NN%]" from a pseudo-terminal."""
        argv = self._serial_argv(*args)
        if progress is None:
            try:
                res = subprocess.run(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    env=self._env,
                    timeout=self.transfer_timeout,
                )
            except subprocess.TimeoutExpired:
                raise TransportTimeout(
                    f"{self.describe()}: adb {args[0]} did not finish within {self.transfer_timeout:g} s"
                ) from None
            return res.returncode, _clean_output(res.stdout.decode("utf-8", "replace"))
        import pty

        master, slave = pty.openpty()
        env = dict(self._env, TERM="xterm")  # adb shows progress on a non-dumb terminal only
        try:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, env=env)
        finally:
            os.close(slave)
        out = bytearray()
        last = -1
        deadline = None if self.transfer_timeout is None else time.monotonic() + self.transfer_timeout
        try:
            progress(0, total)
            while True:
                if deadline is not None and time.monotonic() > deadline:
                    raise TransportTimeout(
                        f"{self.describe()}: adb {args[0]} did not finish within {self.transfer_timeout:g} s"
                    )
                ready, _, _ = select.select([master], [], [], 0.5)
                if not ready:
                    continue
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: the client closed the terminal
                    break
                if not chunk:
                    break
                out += chunk
                found = _PERCENT_RE.findall(bytes(out[-4096:]))
                if found:
                    pct = min(100, int(found[-1]))
                    if pct != last and pct < 100:
                        last = pct
                        progress(total * pct // 100, total)
                if len(out) > 1 << 20:
                    del out[: len(out) - 65536]
            rc = proc.wait()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            os.close(master)
        return rc, _clean_output(out.decode("utf-8", "replace"))

    def _transfer_failed(self, text: str, doing: str, local: str, remote: str) -> None:
        problem = self._adb_problem(text)
        if problem:
            raise BoardError(problem)
        detail = _last_line(text).replace("adb: error: ", "") or "no message"
        low = detail.lower()
        if "no space left" in low:
            self._remove_partial(remote)
            free = self.free_bytes(os.path.dirname(remote) or "/")
            room = f" ({megabytes(free)} free)" if free is not None else ""
            raise DiskFullError(
                f"{self.describe()}: disk full on the board writing {remote}{room}; free some space there and retry"
            )
        raise BoardError(f"{self.describe()}: {doing} failed: {detail}")

    def _remove_partial(self, remote: str) -> None:
        try:
            self.run(["rm", "-f", "--", remote], timeout=30)
        except BoardError:
            pass  # the connection is gone: nothing to free

    def put(self, local_path, remote_path: str, progress: Progress | None = None) -> int:
        local = os.fspath(local_path)
        size = os.path.getsize(local)  # FileNotFoundError for a missing local file
        rc, text = self._transfer(["push", local, remote_path], size, progress)
        if rc != 0:
            self._transfer_failed(text, f"adb push {local} -> {remote_path}", local, remote_path)
        if progress is not None:
            progress(size, size)
        self.stats.add_pushed(size, files=1)
        return size

    def get(self, remote_path: str, local_path) -> int:
        local = Path(os.fspath(local_path))
        part = local.with_name(f".{local.name}.rkbench-part")
        try:
            rc, text = self._transfer(["pull", remote_path, str(part)], 0, None)
            if rc != 0:
                low = text.lower()
                if "does not exist" in low or "no such file" in low:
                    raise BoardError(f"{self.describe()}: {remote_path} does not exist on the board")
                self._transfer_failed(text, f"adb pull {remote_path} -> {local}", str(local), remote_path)
            if part.is_dir():
                shutil.rmtree(part, ignore_errors=True)
                raise BoardError(f"{self.describe()}: {remote_path} is a directory; get() copies single files")
            os.replace(part, local)
        finally:
            if part.exists() and not part.is_dir():
                part.unlink()
        n = local.stat().st_size
        self.stats.add_pulled(n, files=1)
        return n

    # -- the rest --------------------------------------------------------------------
    def home(self) -> str:
        """$HOME of the adb shell user; Android's shell user has HOME=/ (read-only),
        so /data/local/tmp is used there."""
        if self._home is None:
            res = self.run(["sh", "-c", 'printf %s "$HOME"'], timeout=60)
            self.check_result(res, "reading $HOME")
            home = res.stdout_text.strip().rstrip("/")
            if not home:
                if self.run(["test", "-d", "/data/local/tmp"], timeout=60).returncode == 0:
                    home = "/data/local/tmp"
                else:
                    raise BoardError(
                        f"{self.describe()}: $HOME is / or unset on the board and /data/local/tmp does not exist; "
                        "set HOME for adbd's shell user"
                    )
            if not home.startswith("/"):
                raise BoardError(
                    f"{self.describe()}: $HOME on the board is not absolute ({home!r}); set it for adbd's shell user"
                )
            self._home = home
        return self._home

    def _disconnect(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.disconnect_on_close and self._connected_by_us and self.serial:
            try:
                self._adb("disconnect", self.serial, serial=False, timeout=10)
            except BoardError:
                pass
