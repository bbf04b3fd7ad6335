"""A small adbd (device side of adb) for tests: the real `adb` client talks to it.

No adbd exists for Linux here, so the adb path is tested against this stand-in.
It speaks the adb wire protocol over the TCP transport (what `adb connect
127.0.0.1:PORT` uses) and runs commands on this machine:

- transport: 24-byte messages (command, arg0, arg1, data_length, data_check,
  magic = command ^ 0xffffffff), CNXN handshake (version 0x01000001, so no
  checksums are needed; a checksum is still sent to a peer announcing an older
  version), maxdata negotiation, OPEN/OKAY/WRTE/CLSE streams with one WRTE in
  flight per direction and stream (an OKAY acknowledges each WRTE).
  No AUTH unless asked for (`handshake="unauthorized"` answers CNXN with AUTH
  tokens and never accepts, so the adb server shows the device "unauthorized";
  `handshake="silent"` never answers, so it stays "offline").
- `shell,v2,...:CMD` (shell protocol v2: stdin=0, stdout=1, stderr=2, exit=3,
  close_stdin=4, window_size=5; `raw` runs on pipes, `pty` on a pseudo-terminal)
  and legacy `shell:CMD` (a pty, output only, no exit status). Commands run as
  `/bin/sh -c CMD` with cwd and HOME set to the stand-in's device root; closing
  the stream sends the command SIGHUP and closes its stdin, as adbd does.
- `sync:`: STAT, STA2, LST2, LIST, SEND (path,mode; DATA chunks; DONE with
  mtime -> OKAY/FAIL; parent directories are created, as adbd's
  fixed_push_mkdir), RECV (-> DATA chunks, DONE / FAIL), QUIT. Relative paths
  resolve against the device root; with `confine_sync=True` (default) sync
  refuses paths outside it.

The banner advertises only what is implemented (features=shell_v2,stat_v2,
fixed_push_mkdir) and marks the device as a stand-in:
ro.product.model=rkbench-adbd-standin.

Use (pytest: the fixtures `adb_server`, `adbd_standin`, `adbd_standin_factory`
at the end of this file; import them into a conftest.py):

    with AdbServer() as server, AdbdStandin(root=tmp_path) as dev:
        server.connect(dev.serial)
        server.adb("-s", dev.serial, "shell", "exit 3").returncode  # -> 3

`AdbServer` runs a private adb server on a free loopback port (`adb -P PORT
nodaemon server` as a child process; HOME points at a private directory so no
user key or server is touched) and ends it on close (kill-server, then the
process itself). Run `python tests/standins/adbd.py --root DIR` for a manual
stand-in.
"""

from __future__ import annotations

import collections
import errno as errno_mod
import fcntl
import os
import pty
import shutil
import signal
import socket
import stat as stat_mod
import struct
import subprocess
import tempfile
import termios
import threading
import time
from pathlib import Path

# -- wire constants (adb.h) ----------------------------------------------------
A_SYNC = 0x434E5953
A_CNXN = 0x4E584E43
A_AUTH = 0x48545541
A_OPEN = 0x4E45504F
A_OKAY = 0x59414B4F
A_CLSE = 0x45534C43
A_WRTE = 0x45545257
A_STLS = 0x534C5453

A_VERSION_MIN = 0x01000000
A_VERSION_SKIP_CHECKSUM = 0x01000001
A_VERSION = 0x01000001
MAX_PAYLOAD = 256 * 1024  # what we accept; the link uses min(ours, peer's)
MAX_PAYLOAD_V1 = 4 * 1024

ADB_AUTH_TOKEN = 1

_HEADER = struct.Struct("<6I")
_NAMES = {
    A_SYNC: "SYNC",
    A_CNXN: "CNXN",
    A_AUTH: "AUTH",
    A_OPEN: "OPEN",
    A_OKAY: "OKAY",
    A_CLSE: "CLSE",
    A_WRTE: "WRTE",
    A_STLS: "STLS",
}

# shell protocol v2 packet ids (shell_protocol.h)
SHELL_STDIN, SHELL_STDOUT, SHELL_STDERR, SHELL_EXIT, SHELL_CLOSE_STDIN, SHELL_WINSIZE = 0, 1, 2, 3, 4, 5
_SHELL_HDR = struct.Struct("<BI")


# sync ids (file_sync_protocol.h)
def _mkid(s: str) -> int:
    return struct.unpack("<I", s.encode("ascii"))[0]


ID_LSTAT_V1, ID_STAT_V2, ID_LSTAT_V2 = _mkid("STAT"), _mkid("STA2"), _mkid("LST2")
ID_LIST, ID_SEND, ID_RECV, ID_DENT = _mkid("LIST"), _mkid("SEND"), _mkid("RECV"), _mkid("DENT")
ID_DONE, ID_DATA, ID_OKAY, ID_FAIL, ID_QUIT = (_mkid(s) for s in ("DONE", "DATA", "OKAY", "FAIL", "QUIT"))
SYNC_DATA_MAX = 64 * 1024
SYNC_PATH_MAX = 1024

STANDIN_MODEL = "rkbench-adbd-standin"
FEATURES = ("shell_v2", "stat_v2", "fixed_push_mkdir")


class StreamClosed(Exception):
    """The peer closed the stream (or the connection went away)."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


# =============================================================================
# streams
# =============================================================================
class _Stream:
    """One adb stream (a local id on our side, a remote id on the host side)."""

    def __init__(self, conn: _Connection, local_id: int, remote_id: int, service: str):
        self.conn = conn
        self.local_id = local_id
        self.remote_id = remote_id
        self.service = service
        self._cond = threading.Condition()
        self._inbox: collections.deque[bytearray] = collections.deque()
        self._can_send = True  # after our OKAY to OPEN we may send one WRTE
        self._remote_closed = False
        self._local_closed = False
        self._send_lock = threading.Lock()

    # -- events from the connection's reader thread ------------------------
    def _on_data(self, data: bytes) -> None:
        with self._cond:
            if data:
                self._inbox.append(bytearray(data))
                self._cond.notify_all()
            else:  # an empty WRTE: acknowledge at once
                self._ack()

    def _on_okay(self) -> None:
        with self._cond:
            self._can_send = True
            self._cond.notify_all()

    def _on_close(self) -> None:
        with self._cond:
            self._remote_closed = True
            self._cond.notify_all()

    def _ack(self) -> None:
        if not self._local_closed and not self._remote_closed:
            self.conn.send(A_OKAY, self.local_id, self.remote_id)

    # -- used by service handlers ------------------------------------------
    @property
    def remote_closed(self) -> bool:
        return self._remote_closed

    def read(self, n: int) -> bytes:
        """Up to n bytes from the host; b"" once the host closed the stream.

        A WRTE is acknowledged (OKAY) once all its bytes were consumed, which is
        the flow control: the host sends the next one only then."""
        with self._cond:
            while not self._inbox and not self._remote_closed and not self._local_closed and not self.conn.closed:
                self._cond.wait()
            if not self._inbox or self._local_closed:
                return b""
            chunk = self._inbox[0]
            out = bytes(chunk[:n])
            del chunk[:n]
            if not chunk:
                self._inbox.popleft()
                self._ack()
            return out

    def read_exact(self, n: int) -> bytes:
        parts = []
        while n > 0:
            b = self.read(n)
            if not b:
                raise StreamClosed(self.service)
            parts.append(b)
            n -= len(b)
        return b"".join(parts)

    def send(self, data: bytes) -> None:
        """Write to the host as WRTE messages of at most maxdata bytes, waiting
        for the host's OKAY before each next one."""
        view = memoryview(data)
        with self._send_lock:
            while view:
                with self._cond:
                    while not self._can_send and not self._remote_closed and not self.conn.closed:
                        self._cond.wait()
                    if self._remote_closed or self._local_closed or self.conn.closed:
                        raise StreamClosed(self.service)
                    self._can_send = False
                piece = bytes(view[: self.conn.maxdata])
                view = view[len(piece) :]
                self.conn.send(A_WRTE, self.local_id, self.remote_id, piece)

    def close(self) -> None:
        """Send CLSE (once)."""
        with self._cond:
            if self._local_closed:
                return
            self._local_closed = True
            self._cond.notify_all()
        if not self.conn.closed:
            self.conn.send(A_CLSE, self.local_id, self.remote_id)
        self.conn._forget(self)


# =============================================================================
# services
# =============================================================================
def _parse_shell_service(service: str):
    """'shell[,arg...]:[command]' -> (args, command)."""
    head, _, command = service.partition(":")
    args = head.split(",")[1:]
    return args, command


class _ShellSession:
    """A command run for a shell stream, with or without the v2 protocol."""

    def __init__(self, device: AdbdStandin, stream: _Stream, command: str, protocol: bool, use_pty: bool, term: str):
        self.device = device
        self.stream = stream
        self.command = command
        self.protocol = protocol
        self.use_pty = use_pty
        self.term = term
        self.proc: subprocess.Popen | None = None
        self._master: int | None = None

    def _argv(self) -> list:
        if self.command:
            return ["/bin/sh", "-c", self.command]
        return ["/bin/sh", "-i"] if self.use_pty else ["/bin/sh"]

    def run(self) -> None:
        dev = self.device
        env = dict(dev.env)
        if self.term:
            env["TERM"] = self.term
        try:
            if self.use_pty:
                master, slave = pty.openpty()
                self._master = master
                self.proc = subprocess.Popen(
                    self._argv(),
                    stdin=slave,
                    stdout=slave,
                    stderr=slave,
                    cwd=str(dev.root),
                    env=env,
                    start_new_session=True,
                    close_fds=True,
                )
                os.close(slave)
                outputs = [(master, SHELL_STDOUT)]
            else:
                self.proc = subprocess.Popen(
                    self._argv(),
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    cwd=str(dev.root),
                    env=env,
                    start_new_session=True,
                    close_fds=True,
                )
                outputs = [(self.proc.stdout.fileno(), SHELL_STDOUT), (self.proc.stderr.fileno(), SHELL_STDERR)]
        except OSError as exc:
            self._send_output(SHELL_STDERR, f"/bin/sh: {exc}\n".encode())
            self._finish(127)
            return
        dev._register_proc(self.proc)
        pumps = [threading.Thread(target=self._pump_output, args=(fd, sid), daemon=True) for fd, sid in outputs]
        for t in pumps:
            t.start()
        threading.Thread(target=self._pump_input, daemon=True).start()
        rc = self.proc.wait()
        for t in pumps:
            t.join()
        dev._unregister_proc(self.proc)
        if rc < 0:  # killed by a signal: what a shell would report
            rc = 128 - rc
        self._finish(rc)

    def _finish(self, rc: int) -> None:
        try:
            if self.protocol:
                self.stream.send(_SHELL_HDR.pack(SHELL_EXIT, 1) + bytes([rc & 0xFF]))
        except StreamClosed:
            pass
        self.stream.close()
        if self._master is not None:
            try:
                os.close(self._master)
            except OSError:
                pass

    def _send_output(self, sid: int, data: bytes) -> None:
        if self.protocol:
            data = _SHELL_HDR.pack(sid, len(data)) + data
        self.stream.send(data)

    def _pump_output(self, fd: int, sid: int) -> None:
        limit = min(self.stream.conn.maxdata, 64 * 1024) - _SHELL_HDR.size
        while True:
            try:
                data = os.read(fd, limit)
            except OSError:  # EIO on a pty once the child is gone
                data = b""
            if not data:
                return
            try:
                self._send_output(sid, data)
            except StreamClosed:
                # keep draining so the command is never blocked on a full pipe
                continue

    def _write_stdin(self, data: bytes) -> None:
        try:
            if self.use_pty:
                os.write(self._master, data)
            elif self.proc.stdin is not None and not self.proc.stdin.closed:
                self.proc.stdin.write(data)
                self.proc.stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            pass

    def _close_stdin(self) -> None:
        if self.use_pty:
            self._write_stdin(b"\x04")  # EOF on a terminal
            return
        try:
            if self.proc.stdin is not None:
                self.proc.stdin.close()
        except (BrokenPipeError, OSError):
            pass

    def _pump_input(self) -> None:
        s = self.stream
        try:
            if not self.protocol:
                while True:
                    data = s.read(65536)
                    if not data:
                        break
                    self._write_stdin(data)
            while True:
                sid, length = _SHELL_HDR.unpack(s.read_exact(_SHELL_HDR.size))
                data = s.read_exact(length) if length else b""
                if sid == SHELL_STDIN:
                    self._write_stdin(data)
                elif sid == SHELL_CLOSE_STDIN:
                    self._close_stdin()
                elif sid == SHELL_WINSIZE and self.use_pty:
                    self._set_winsize(data)
        except StreamClosed:
            pass
        if s.remote_closed:
            self.kill()

    def _set_winsize(self, data: bytes) -> None:
        try:  # "rowsxcols,xpixelxypixel"
            text = data.rstrip(b"\0").decode()
            a, b = text.split(",")
            rows, cols = (int(x) for x in a.split("x"))
            xp, yp = (int(x) for x in b.split("x"))
            fcntl.ioctl(self._master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, xp, yp))
        except (ValueError, OSError):
            pass

    def kill(self) -> None:
        """The host closed the stream. Like adbd: SIGHUP to the command (the
        direct child, not its group) and end its stdin; its output is drained
        and dropped. `AdbdStandin.close()` kills whatever is left."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        try:
            os.kill(proc.pid, signal.SIGHUP)
        except (ProcessLookupError, PermissionError):
            pass
        self._close_stdin()


class _SyncSession:
    """The file sync service (SYNC.TXT)."""

    def __init__(self, device: AdbdStandin, stream: _Stream):
        self.device = device
        self.s = stream

    def _reply(self, data: bytes) -> None:
        self.s.send(data)

    def _fail(self, message: str) -> None:
        msg = message.encode("utf-8", "replace")
        self._reply(struct.pack("<II", ID_FAIL, len(msg)) + msg)

    def run(self) -> None:
        try:
            while True:
                rid, length = struct.unpack("<II", self.s.read_exact(8))
                if rid == ID_QUIT:
                    break
                if length > SYNC_PATH_MAX:
                    self._fail(f"path too long: {length}")
                    break
                arg = self.s.read_exact(length).decode("utf-8", "surrogateescape")
                if rid == ID_LSTAT_V1:
                    self._stat_v1(arg)
                elif rid in (ID_STAT_V2, ID_LSTAT_V2):
                    self._stat_v2(rid, arg)
                elif rid == ID_LIST:
                    self._list(arg)
                elif rid == ID_SEND:
                    self._send(arg)
                elif rid == ID_RECV:
                    self._recv(arg)
                else:
                    self._fail(f"unknown sync command {struct.pack('<I', rid)!r}")
                    break
        except StreamClosed:
            pass
        finally:
            self.s.close()

    def _path(self, path: str) -> Path:
        """Host path for a device path; PermissionError outside the root when confined."""
        dev = self.device
        p = Path(path)
        if not p.is_absolute():
            p = dev.root / p
        p = Path(os.path.normpath(p))
        if dev.confine_sync:
            root = Path(os.path.normpath(dev.root))
            if p != root and root not in p.parents:
                raise PermissionError(errno_mod.EACCES, "outside the stand-in's device root", path)
        return p

    def _stat_v1(self, path: str) -> None:
        try:
            st = os.lstat(self._path(path))
            mode, size, mtime = st.st_mode, st.st_size & 0xFFFFFFFF, int(st.st_mtime) & 0xFFFFFFFF
        except OSError:
            mode = size = mtime = 0
        self._reply(struct.pack("<IIII", ID_LSTAT_V1, mode, size, mtime))

    def _stat_v2(self, rid: int, path: str) -> None:
        try:
            p = self._path(path)
            st = os.stat(p) if rid == ID_STAT_V2 else os.lstat(p)
        except OSError as exc:
            self._reply(struct.pack("<II", rid, exc.errno or errno_mod.EIO) + bytes(16 + 16 + 8 + 24))
            return
        self._reply(
            struct.pack(
                "<IIQQIIIIQqqq",
                rid,
                0,
                st.st_dev,
                st.st_ino,
                st.st_mode,
                st.st_nlink,
                st.st_uid,
                st.st_gid,
                st.st_size,
                int(st.st_atime),
                int(st.st_mtime),
                int(st.st_ctime),
            )
        )

    def _list(self, path: str) -> None:
        out = []
        try:
            p = self._path(path)
            names = [".", ".."] + sorted(os.listdir(p))
        except OSError:
            names = []
            p = None
        for name in names:
            try:
                st = os.lstat(os.path.join(p, name))
            except OSError:
                continue
            raw = name.encode("utf-8", "surrogateescape")
            out.append(
                struct.pack(
                    "<IIIII", ID_DENT, st.st_mode, st.st_size & 0xFFFFFFFF, int(st.st_mtime) & 0xFFFFFFFF, len(raw)
                )
                + raw
            )
        out.append(struct.pack("<IIIII", ID_DONE, 0, 0, 0, 0))
        self._reply(b"".join(out))

    def _send(self, spec: str) -> None:
        path, _, mode_text = spec.rpartition(",")
        error: str | None = None
        f = None
        target = None
        link_target = bytearray()
        try:
            mode = int(mode_text)
        except ValueError:
            path, mode, error = spec, 0o644, f"bad mode in {spec!r}"
        is_link = stat_mod.S_ISLNK(mode)
        if error is None:
            try:
                target = self._path(path)
                target.parent.mkdir(parents=True, exist_ok=True)  # fixed_push_mkdir
                if not is_link:
                    if target.is_dir():
                        raise IsADirectoryError(errno_mod.EISDIR, "Is a directory", path)
                    f = open(target, "wb")
            except OSError as exc:
                error = f"couldn't create file: {exc.strerror or exc}"
        received = 0
        mtime = 0
        try:
            while True:
                did, size = struct.unpack("<II", self.s.read_exact(8))
                if did == ID_DATA:
                    if size > SYNC_DATA_MAX:
                        error = error or f"data chunk too large: {size}"
                    data = self.s.read_exact(size)
                    received += size
                    if f is not None and error is None:
                        f.write(data)
                    elif is_link:
                        link_target += data
                elif did == ID_DONE:
                    mtime = size
                    break
                else:
                    error = error or "invalid data message"
                    self._fail(error)
                    raise StreamClosed("sync")
        finally:
            if f is not None:
                f.close()
        if error is None:
            try:
                if is_link:
                    if os.path.lexists(target):
                        os.unlink(target)
                    os.symlink(bytes(link_target).rstrip(b"\0").decode("utf-8", "surrogateescape"), target)
                else:
                    os.chmod(target, stat_mod.S_IMODE(mode) or 0o644)
                    os.utime(target, (mtime, mtime))
            except OSError as exc:
                error = f"{exc.strerror or exc}"
        if error is not None:
            if f is not None and target is not None:
                try:
                    os.unlink(target)
                except OSError:
                    pass
            self._fail(error)
            return
        self.device.stats["bytes_pushed"] += received
        self.device.stats["files_pushed"] += 1
        self._reply(struct.pack("<II", ID_OKAY, 0))

    def _recv(self, path: str) -> None:
        try:
            f = open(self._path(path), "rb")
        except OSError as exc:
            self._fail(exc.strerror or str(exc))
            return
        sent = 0
        with f:
            while True:
                batch = []
                for _ in range(8):  # up to 512 KiB per send() call
                    data = f.read(SYNC_DATA_MAX)
                    if not data:
                        break
                    batch.append(struct.pack("<II", ID_DATA, len(data)) + data)
                    sent += len(data)
                if batch:
                    self._reply(b"".join(batch))
                if len(batch) < 8:
                    break
        self.device.stats["bytes_pulled"] += sent
        self.device.stats["files_pulled"] += 1
        self._reply(struct.pack("<II", ID_DONE, 0))


# =============================================================================
# connection
# =============================================================================
class _Connection:
    """One TCP connection from an adb server."""

    def __init__(self, device: AdbdStandin, sock: socket.socket):
        self.device = device
        self.sock = sock
        self.closed = False
        self.peer_version = A_VERSION_MIN
        self.maxdata = MAX_PAYLOAD_V1
        self._send_lock = threading.Lock()
        self._streams: dict = {}
        self._lock = threading.Lock()
        self._next_id = 1
        self._online = False

    # -- low level -----------------------------------------------------------
    def _recv_exact(self, n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("peer closed")
            buf += chunk
        return bytes(buf)

    def send(self, cmd: int, arg0: int, arg1: int, data: bytes = b"") -> None:
        check = 0
        if self.peer_version < A_VERSION_SKIP_CHECKSUM:
            check = sum(data) & 0xFFFFFFFF
        header = _HEADER.pack(cmd, arg0, arg1, len(data), check, cmd ^ 0xFFFFFFFF)
        with self._send_lock:
            if self.closed:
                return
            try:
                self.sock.sendall(header + data if len(data) < 65536 else header)
                if len(data) >= 65536:
                    self.sock.sendall(data)
            except OSError:
                self._shutdown()

    # -- streams ---------------------------------------------------------------
    def _forget(self, stream: _Stream) -> None:
        with self._lock:
            if self._streams.get(stream.local_id) is stream:
                del self._streams[stream.local_id]

    def _open(self, remote_id: int, service: str) -> None:
        dev = self.device
        dev.services_opened.append(service)
        if service.startswith("shell"):
            args, command = _parse_shell_service(service)
            protocol = "v2" in args
            term = next((a[5:] for a in args if a.startswith("TERM=")), "")
            if protocol:
                use_pty = "pty" in args or ("raw" not in args and not command)
            else:
                use_pty = True  # legacy shell: always a pty, as adbd does
            factory = lambda st: _ShellSession(dev, st, command, protocol, use_pty, term).run()  # noqa: E731
        elif service == "sync:":
            factory = lambda st: _SyncSession(dev, st).run()  # noqa: E731
        else:
            self.send(A_CLSE, 0, remote_id)  # unknown service: refused
            return
        with self._lock:
            local_id = self._next_id
            self._next_id += 1
            stream = _Stream(self, local_id, remote_id, service)
            self._streams[local_id] = stream
        self.send(A_OKAY, local_id, remote_id)
        threading.Thread(target=factory, args=(stream,), name=f"adbd-standin-{service[:20]}", daemon=True).start()

    # -- main loop -------------------------------------------------------------
    def serve(self) -> None:
        dev = self.device
        try:
            while not self.closed:
                cmd, arg0, arg1, length, _check, magic = _HEADER.unpack(self._recv_exact(_HEADER.size))
                if magic != cmd ^ 0xFFFFFFFF:
                    raise ConnectionError(f"bad magic on {cmd:#x}")
                if length > max(MAX_PAYLOAD, 1024 * 1024):
                    raise ConnectionError(f"message too long: {length}")
                data = self._recv_exact(length) if length else b""
                if cmd == A_CNXN:
                    self._on_cnxn(arg0, arg1, data)
                elif cmd == A_AUTH:
                    if dev.handshake == "unauthorized":
                        self._send_auth_token()  # never accept any key
                elif not self._online:
                    continue
                elif cmd == A_OPEN:
                    self._open(arg0, data.split(b"\0", 1)[0].decode("utf-8", "surrogateescape"))
                else:
                    with self._lock:
                        stream = self._streams.get(arg1)
                    if stream is None:
                        if cmd == A_WRTE:  # stream we do not know: tell the host it is gone
                            self.send(A_CLSE, 0, arg0)
                        continue
                    if cmd == A_OKAY:
                        stream._on_okay()
                    elif cmd == A_WRTE:
                        stream._on_data(data)
                    elif cmd == A_CLSE:
                        self._forget(stream)
                        stream._on_close()
        except (ConnectionError, OSError, struct.error):
            pass
        finally:
            self._shutdown()

    def _send_auth_token(self) -> None:
        self.send(A_AUTH, ADB_AUTH_TOKEN, 0, os.urandom(20))

    def _on_cnxn(self, version: int, maxdata: int, data: bytes) -> None:
        dev = self.device
        self.peer_version = min(version, A_VERSION)
        self.maxdata = max(MAX_PAYLOAD_V1, min(maxdata, dev.max_payload))
        dev.host_banners.append(data.rstrip(b"\0").decode("utf-8", "replace"))
        if dev.handshake == "silent":
            return
        if dev.handshake == "unauthorized":
            self._send_auth_token()
            return
        # A new CNXN resets the link: drop the streams of the old one.
        with self._lock:
            old = list(self._streams.values())
            self._streams.clear()
        for st in old:
            st._on_close()
        self._online = True
        self.send(A_CNXN, A_VERSION, dev.max_payload, dev.banner().encode() + b"\0")

    def _shutdown(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        with self._lock:
            streams = list(self._streams.values())
            self._streams.clear()
        for st in streams:
            st._on_close()


# =============================================================================
# the stand-in
# =============================================================================
class AdbdStandin:
    """An adbd on 127.0.0.1:PORT that runs commands in `root` on this machine.

    handshake: "device" (normal), "unauthorized" (AUTH forever), "silent" (no reply).
    """

    def __init__(
        self,
        root,
        host: str = "127.0.0.1",
        port: int = 0,
        product: str = "rkbench_standin",
        model: str = STANDIN_MODEL,
        device: str = "standin",
        features=FEATURES,
        handshake: str = "device",
        max_payload: int = MAX_PAYLOAD,
        confine_sync: bool = True,
        env: dict | None = None,
    ):
        if handshake not in ("device", "unauthorized", "silent"):
            raise ValueError(f"handshake {handshake!r}")
        if not host.startswith("127."):
            raise ValueError("the stand-in listens on loopback only")
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.host = host
        self.product, self.model, self.device = product, model, device
        self.features = tuple(features)
        self.handshake = handshake
        self.max_payload = max_payload
        self.confine_sync = confine_sync
        base_env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "HOME": str(self.root),
            "TMPDIR": os.environ.get("TMPDIR", "/tmp"),
            "RKBENCH_ADBD_STANDIN": "1",
        }
        base_env.update(env or {})
        self.env = base_env
        self.services_opened: list = []  # every OPEN's service string, in order
        self.host_banners: list = []  # the CNXN banners adb servers sent
        self.stats = collections.Counter()
        self._procs: set = set()
        self._procs_lock = threading.Lock()
        self._conns: list = []
        self._closed = False
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((host, port))
        self._listener.listen(16)
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._accept_loop, name=f"adbd-standin-{self.port}", daemon=True)
        self._thread.start()

    @property
    def serial(self) -> str:
        """What adb calls this device after `adb connect`: host:port."""
        return f"{self.host}:{self.port}"

    @property
    def board(self) -> str:
        """The rkbench --board string for this device."""
        return f"adb://{self.host}:{self.port}"

    def banner(self) -> str:
        props = f"ro.product.name={self.product};ro.product.model={self.model};ro.product.device={self.device};"
        return f"device::{props}features={','.join(self.features)}"

    def _accept_loop(self) -> None:
        while not self._closed:
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = _Connection(self, sock)
            self._conns.append(conn)
            threading.Thread(target=conn.serve, name=f"adbd-standin-conn-{self.port}", daemon=True).start()

    def _register_proc(self, proc) -> None:
        with self._procs_lock:
            self._procs.add(proc)

    def _unregister_proc(self, proc) -> None:
        with self._procs_lock:
            self._procs.discard(proc)

    def drop_connections(self) -> None:
        """Cut every TCP connection (the device 'disappears'); keep listening."""
        for conn in list(self._conns):
            conn._shutdown()
        self._conns.clear()

    def close(self) -> None:
        """Stop listening, cut connections, kill commands still running."""
        if self._closed:
            return
        self._closed = True
        try:  # shutdown() wakes the thread blocked in accept(); close() alone does not
            self._listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            self._listener.close()
        except OSError:
            pass
        self.drop_connections()
        with self._procs_lock:
            procs = list(self._procs)
        for proc in procs:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        self._thread.join(timeout=2)

    def __enter__(self) -> AdbdStandin:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<AdbdStandin {self.serial} root={self.root}>"


# =============================================================================
# a private adb server for tests
# =============================================================================
class AdbServer:
    """The real adb client with its own server on a free loopback port.

    HOME (where adb keeps ~/.android/adbkey) points at a private directory so
    the user's keys and their server on 5037 are never touched. The server is
    our child process (`nodaemon`); `close()` asks it to stop (`kill-server`)
    and then ends the process."""

    def __init__(self, adb_path: str | None = None, port: int | None = None, home=None):
        path = adb_path or shutil.which("adb")
        if not path:
            raise FileNotFoundError("adb client not found on PATH (Debian: apt-get install adb)")
        self.adb_path = path
        self.port = port or free_port()
        self._tmp = None
        if home is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="rkbench-adb-home-")
            home = self._tmp.name
        self.home = str(home)
        self.env = dict(os.environ)
        # ADB_EMU=0: no probing of loopback ports 5555-5585 for emulators, so the
        # server never latches onto another test's listener there.
        self.env.update({"HOME": self.home, "ANDROID_ADB_SERVER_PORT": str(self.port), "ADB_EMU": "0"})
        self.env.pop("ADB_VENDOR_KEYS", None)
        self.env.pop("ANDROID_SERIAL", None)
        self._started = False
        self.start()

    def adb(self, *args: str, input: bytes | None = None, timeout: float = 30.0) -> subprocess.CompletedProcess:
        """Run `adb -P PORT ARGS...` and capture its output."""
        return subprocess.run(
            [self.adb_path, "-P", str(self.port), *args],
            input=input,
            capture_output=True,
            timeout=timeout,
            env=self.env,
            stdin=None if input is not None else subprocess.DEVNULL,
        )

    def start(self) -> None:
        """Run `adb -P PORT nodaemon server` as our own child (so close() can
        always end it), with its log in the private HOME; wait until it answers."""
        self.log_path = os.path.join(self.home, "adb-server.log")
        self._log = open(self.log_path, "ab")
        self._proc = subprocess.Popen(
            [self.adb_path, "-P", str(self.port), "nodaemon", "server"],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=self.env,
            start_new_session=True,
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                break
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    self._started = True
                    return
            except OSError:
                time.sleep(0.02)
        self._stop_process()
        with open(self.log_path, "rb") as f:
            tail = f.read()[-500:].decode("utf-8", "replace").strip()
        raise RuntimeError(f"adb server on port {self.port} did not start: {tail}")

    def _stop_process(self) -> None:
        proc = getattr(self, "_proc", None)
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(3)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        self._log.close()

    def connect(self, serial: str, timeout: float = 10.0) -> str:
        """`adb connect SERIAL`, then wait until the device is listed (any state)."""
        res = self.adb("connect", serial)
        text = (res.stdout + res.stderr).decode("utf-8", "replace").strip()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.state(serial)
            if state == "device":
                return text
            time.sleep(0.05)
        return text

    def state(self, serial: str) -> str | None:
        """The state `adb devices` shows for serial, None if not listed."""
        res = self.adb("devices")
        for line in res.stdout.decode("utf-8", "replace").splitlines()[1:]:
            parts = line.split()
            if len(parts) >= 2 and parts[0] == serial:
                return parts[1]
        return None

    def disconnect(self, serial: str) -> None:
        self.adb("disconnect", serial)

    def transport_opts(self) -> dict:
        """Keyword arguments for AdbTransport / open_transport that use this server."""
        return {"adb_path": self.adb_path, "server_port": self.port, "env": {"HOME": self.home}}

    def close(self) -> None:
        if self._started:
            self._started = False
            try:  # the polite way first; an adb 29 server can hang in it
                self.adb("kill-server", timeout=3)
            except subprocess.TimeoutExpired:
                pass
        self._stop_process()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> AdbServer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# =============================================================================
# pytest fixtures (import them into a conftest.py:
#   from adbd_standin import adb_server, adbd_standin, adbd_standin_factory)
# =============================================================================
try:
    import pytest
except ImportError:  # pragma: no cover - running the stand-in by hand
    pytest = None

if pytest is not None:

    @pytest.fixture(scope="session")
    def adb_server():
        """A private adb server (real client) for the session; killed at the end."""
        if not shutil.which("adb"):
            pytest.skip("the adb client is not installed (Debian: apt-get install adb)")
        with AdbServer() as server:
            yield server

    @pytest.fixture
    def adbd_standin_factory(adb_server, tmp_path):
        """make(name="device", **AdbdStandin kwargs) -> a started stand-in whose
        device root is tmp_path/name; all are disconnected and closed afterwards."""
        made = []

        def make(name: str = "device", **kw) -> AdbdStandin:
            dev = AdbdStandin(tmp_path / name, **kw)
            made.append(dev)
            return dev

        yield make
        for dev in made:
            adb_server.disconnect(dev.serial)
            dev.close()

    @pytest.fixture
    def adbd_standin(adbd_standin_factory) -> AdbdStandin:
        """One stand-in (not yet connected: `adb_server.connect(dev.serial)` or
        open_transport(dev.board, **adb_server.transport_opts()) does that)."""
        return adbd_standin_factory()


def _main(argv=None) -> int:
    import argparse

    ap = argparse.ArgumentParser(description="adbd stand-in on loopback (for tests)")
    ap.add_argument("--root", required=True, help="device root directory (cwd and HOME of commands)")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--handshake", default="device", choices=["device", "unauthorized", "silent"])
    args = ap.parse_args(argv)
    with AdbdStandin(args.root, port=args.port, handshake=args.handshake) as dev:
        print(f"adbd stand-in on {dev.serial} (root {dev.root}); adb connect {dev.serial}", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
