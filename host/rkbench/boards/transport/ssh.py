"""SSH transport (paramiko): strict host keys, keys/agent/env-password auth,
~/.ssh/config (HostName, User, Port, IdentityFile, ProxyJump), exec channels
for commands, SFTP (pipelined) for files.

Every failure a user can meet is one BoardError line that names the board and
says what to do next; nothing secret goes into a message or a log.
"""

from __future__ import annotations

import errno
import os
import re
import socket
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import paramiko
from paramiko.common import cMSG_CHANNEL_REQUEST
from paramiko.hostkeys import HostKeyEntry, HostKeys

from rkbench.boards.address import DEFAULT_SSH_PORT, DEFAULT_SSH_USER, BoardAddress, parse_board
from rkbench.boards.transport import register
from rkbench.boards.transport.base import (
    MAX_LINE_BYTES,
    STDERR_TAIL_BYTES,
    CompletedRun,
    LinePump,
    Progress,
    RemoteProcess,
    TailBuffer,
    Transport,
    TransportTimeout,
    megabytes,
    quote_argv,
    short_command,
)
from rkbench.errors import BoardError, DiskFullError, UsageError

PASSWORD_ENV = "RKBENCH_SSH_PASSWORD"
DEFAULT_IDENTITIES = ("~/.ssh/id_ed25519", "~/.ssh/id_ecdsa", "~/.ssh/id_rsa")
TRUST_FLAG = "--trust-new-board"
RUN_STDERR_LIMIT = 16 << 20  # run() keeps stderr whole up to this size


def fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH-style 'SHA256:...' fingerprint."""
    return key.fingerprint


def hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def known_hosts_name(host: str, port: int) -> str:
    """The name a host is filed under in known_hosts ([host]:port when not 22)."""
    return host if port == DEFAULT_SSH_PORT else f"[{host}]:{port}"


# --------------------------------------------------------------------------
# known_hosts with line numbers (paramiko.HostKeys forgets them)
# --------------------------------------------------------------------------
@dataclass
class KnownKey:
    lineno: int
    key: paramiko.PKey


class KnownHostsFile:
    """One OpenSSH known_hosts file: look a host up (hashed or plain names,
    patterns, negations) and append new entries."""

    def __init__(self, path):
        self.path = Path(os.path.expanduser(str(path)))

    @staticmethod
    def _name_matches(pattern: str, name: str) -> bool:
        if pattern.startswith("|1|"):
            return HostKeys.hash_host(name, pattern) == pattern
        # OpenSSH patterns know only * and ?; '[' is literal ([host]:port).
        regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern.lower())
        return re.fullmatch(regex, name.lower()) is not None

    def lookup(self, name: str) -> list[KnownKey]:
        found: list[KnownKey] = []
        try:
            text = self.path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return found
        except OSError as exc:
            raise BoardError(f"cannot read known hosts file {self.path}: {exc.strerror}") from None
        for lineno, line in enumerate(text.splitlines(), 1):
            line = line.strip()
            if not line or line.startswith("#") or line.startswith("@"):
                continue
            try:
                entry = HostKeyEntry.from_line(line, lineno)
            except Exception:  # a malformed line is skipped, as ssh does
                continue
            if entry is None:
                continue
            positive = False
            negated = False
            for pat in entry.hostnames:
                if pat.startswith("!"):
                    if self._name_matches(pat[1:], name):
                        negated = True
                elif self._name_matches(pat, name):
                    positive = True
            if positive and not negated:
                found.append(KnownKey(lineno, entry.key))
        return found

    def add(self, name: str, key: paramiko.PKey, hashed: bool = False) -> None:
        host_field = HostKeys.hash_host(name) if hashed else name
        line = f"{host_field} {key.get_name()} {key.get_base64()}\n"
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            prefix = ""
            if self.path.exists() and self.path.stat().st_size > 0:
                with open(self.path, "rb") as f:
                    f.seek(-1, os.SEEK_END)
                    if f.read(1) != b"\n":
                        prefix = "\n"
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            with os.fdopen(fd, "a", encoding="utf-8") as f:
                f.write(prefix + line)
        except OSError as exc:
            raise BoardError(f"cannot record the host key in {self.path}: {exc.strerror}") from None


# --------------------------------------------------------------------------
# ~/.ssh/config resolution
# --------------------------------------------------------------------------
@dataclass
class SshTarget:
    """One hop, resolved through ~/.ssh/config."""

    alias: str  # what was asked for
    hostname: str  # what we connect to
    port: int
    user: str
    identity_files: list[str] = field(default_factory=list)
    proxy_jump: str | None = None
    host_key_alias: str | None = None
    hash_known_hosts: bool = False

    @property
    def display(self) -> str:
        host = f"[{self.hostname}]" if ":" in self.hostname else self.hostname
        return f"{self.user}@{host}:{self.port}"

    @property
    def known_hosts_name(self) -> str:
        return self.host_key_alias or known_hosts_name(self.hostname, self.port)


def _load_ssh_config(path: str | None) -> paramiko.SSHConfig | None:
    p = Path(os.path.expanduser(path or "~/.ssh/config"))
    if not p.is_file():
        if path:  # asked for explicitly
            raise UsageError(f"ssh config file {p} does not exist")
        return None
    try:
        return paramiko.SSHConfig.from_path(str(p))
    except Exception as exc:
        raise UsageError(f"cannot parse ssh config {p}: {exc}; fix that file") from None


def resolve_target(
    host: str,
    config: paramiko.SSHConfig | None,
    user: str | None = None,
    port: int | None = None,
) -> SshTarget:
    """Apply ~/.ssh/config to a host; explicit user/port win over the config."""
    opts = config.lookup(host) if config is not None else {}
    if opts.get("proxycommand") and str(opts.get("proxycommand")).lower() != "none":
        raise UsageError(
            f"~/.ssh/config sets ProxyCommand for {host}; rkbench supports ProxyJump only, use that instead"
        )
    cfg_port = opts.get("port")
    try:
        cfg_port_i = int(cfg_port) if cfg_port else None
    except ValueError:
        raise UsageError(f"~/.ssh/config: bad Port {cfg_port!r} for {host}") from None
    jump = opts.get("proxyjump")
    if jump and jump.strip().lower() == "none":
        jump = None
    return SshTarget(
        alias=host,
        hostname=opts.get("hostname") or host,
        port=port or cfg_port_i or DEFAULT_SSH_PORT,
        user=user or opts.get("user") or DEFAULT_SSH_USER,
        identity_files=[os.path.expanduser(p) for p in (opts.get("identityfile") or [])],
        proxy_jump=jump,
        host_key_alias=opts.get("hostkeyalias"),
        hash_known_hosts=str(opts.get("hashknownhosts", "no")).lower() == "yes",
    )


# --------------------------------------------------------------------------
# streaming process over an exec channel
# --------------------------------------------------------------------------
# Every command runs as `sh -c WRAPPER sh argv...`: the wrapper tells us the
# command's PID (first line on stderr, stripped before anyone sees it) and execs
# the argv unchanged. sshd ignores 'signal' requests for root logins (no
# privilege separation after auth), so killing needs the PID.
PID_MARKER = b"\x1erkbench-pid "
PID_WRAPPER = 'printf "\\036rkbench-pid %s\\n" "$$" >&2; exec "$@"'


def wrap_argv(argv: Sequence[str]) -> list[str]:
    return ["sh", "-c", PID_WRAPPER, "sh"] + list(argv)


class _PidStrippingReader:
    """Wraps the channel's stderr: finds the PID line, passes everything else."""

    LOOKAHEAD = 65536

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
            at = buf.find(PID_MARKER)
            if at >= 0:
                end = buf.find(b"\n", at)
                if end >= 0:
                    try:
                        self.pid = int(buf[at + len(PID_MARKER) : end])
                    except ValueError:
                        pass
                    self._finish()
                    return buf[:at] + buf[end + 1 :] or self._read(n)
            if not chunk or len(buf) > self.LOOKAHEAD:
                self._finish()
                return buf

    def _finish(self) -> None:
        self._done = True
        self.pid_event.set()


class SshProcess(RemoteProcess):
    def __init__(
        self,
        chan: paramiko.Channel,
        argv: Sequence[str],
        describe: str,
        stderr_limit: int = STDERR_TAIL_BYTES,
        killer: Callable[[int], None] | None = None,
        max_line: int | None = MAX_LINE_BYTES,
    ):
        self._chan = chan
        self.argv = list(argv)
        self._describe = describe
        self._killed = False
        self._killer = killer
        self._stdin_lock = threading.Lock()
        self._pid_reader = _PidStrippingReader(chan.recv_stderr)
        self._stdout = LinePump(chan.recv, "ssh-stdout", max_line=max_line)
        self._stderr = TailBuffer(self._pid_reader, limit=stderr_limit)

    @property
    def pid(self) -> int | None:
        """The command's PID on the board (once known)."""
        return self._pid_reader.pid

    def readline(self, timeout: float | None = None) -> bytes:
        return self._stdout.readline(timeout, what=f"output from {self._describe}: {short_command(self.argv)}")

    def write_stdin(self, data: bytes) -> None:
        with self._stdin_lock:
            try:
                self._chan.sendall(data)
            except (OSError, EOFError, paramiko.SSHException) as exc:
                raise BoardError(
                    f"{self._describe}: cannot write to {short_command(self.argv)} "
                    f"(the command or the connection ended: {self.stderr_tail().strip()[-200:] or exc})"
                ) from None

    def close_stdin(self) -> None:
        with self._stdin_lock:
            try:
                self._chan.shutdown_write()
            except (OSError, EOFError, paramiko.SSHException):
                pass

    def wait(self, timeout: float | None = None) -> int:
        if not self._chan.status_event.wait(timeout):
            raise TransportTimeout(f"{self._describe}: {short_command(self.argv)} still running after {timeout:g} s")
        self._stdout.join(10)
        self._stderr.join(10)
        rc = self.returncode
        return -9 if rc is None else rc

    def _send_signal(self, name: str) -> None:
        """RFC 4254 'signal' request (OpenSSH sshd delivers it to the command)."""
        try:
            m = paramiko.Message()
            m.add_byte(cMSG_CHANNEL_REQUEST)
            m.add_int(self._chan.remote_chanid)
            m.add_string("signal")
            m.add_boolean(False)
            m.add_string(name)
            self._chan.transport._send_user_message(m)
        except Exception:
            pass

    def kill(self) -> None:
        if self._chan.closed:
            return
        self._killed = True
        if not self._chan.exit_status_ready():
            self._send_signal("KILL")
            self._pid_reader.pid_event.wait(2)
            if self._killer is not None and self._pid_reader.pid:
                try:
                    self._killer(self._pid_reader.pid)
                except Exception:
                    pass
        try:
            self._chan.close()
        except Exception:
            pass
        self._stdout.close()
        self._stdout.join(2)
        self._stderr.join(2)

    @property
    def returncode(self) -> int | None:
        if self._chan.exit_status_ready():
            rc = self._chan.exit_status
            # -1: no exit status (sshd sent exit-signal, which paramiko drops, or the
            # connection went away: see connection_lost)
            return -9 if rc == -1 else rc
        if self._killed or self._chan.closed:
            return -9
        return None

    @property
    def connection_lost(self) -> bool:
        """The channel closed without an exit status and without the end of output that
        sshd sends before it: the connection died (sshd killed, network or board gone).
        Our commands run under a shell that turns a death by signal into an exit status,
        so a missing one is not a signal."""
        chan = self._chan
        if self._killed or not chan.closed or chan.exit_status != -1:
            return False
        return not chan.eof_received or not chan.get_transport().is_active()

    def stderr_tail(self) -> str:
        return self._stderr.text()[-STDERR_TAIL_BYTES:]

    def stderr_bytes(self) -> bytes:
        return self._stderr.data()


# --------------------------------------------------------------------------
# the transport
# --------------------------------------------------------------------------
@register("ssh")
class SshTransport(Transport):
    kind = "ssh"

    def __init__(
        self,
        address: BoardAddress,
        *,
        known_hosts: str | None = None,
        trust_new: bool = False,
        identity_files: Sequence[str] = (),
        ssh_config: str | None = None,
        proxy_jump: str | None = None,
        connect_timeout: float = 10.0,
        password_env: str = PASSWORD_ENV,
        allow_agent: bool = True,
        hash_known_hosts: bool | None = None,
        keepalive: int = 15,
        log: Callable[[str], None] | None = None,
    ):
        super().__init__(address)
        if address.kind != "ssh":
            raise ValueError(f"not an ssh address: {address.display}")
        self.trust_new = trust_new
        self._identity_opts = [os.path.expanduser(str(p)) for p in identity_files]
        self._connect_timeout = connect_timeout
        self._password_env = password_env
        self._allow_agent = allow_agent
        self._hash_known_hosts = hash_known_hosts
        self._keepalive = keepalive
        self._log = log or (lambda msg: print(msg, file=sys.stderr))
        self.notices: list[str] = []
        self._jumps: list[paramiko.Transport] = []
        self._t: paramiko.Transport | None = None
        self._sftp_client: paramiko.SFTPClient | None = None
        self._sftp_lock = threading.RLock()  # one SFTP operation at a time

        config = _load_ssh_config(ssh_config)
        if known_hosts is None and config is not None:
            # ~/.ssh/config UserKnownHostsFile (first file) when no option is given
            cfg_kh = (config.lookup(address.host).get("userknownhostsfile") or "").split()
            known_hosts = cfg_kh[0] if cfg_kh else None
        self.known_hosts = KnownHostsFile(known_hosts or "~/.ssh/known_hosts")
        self.target = resolve_target(
            address.host or "",
            config,
            user=address.user if address.explicit_user else None,
            port=address.port if address.explicit_port else None,
        )
        jump_spec = proxy_jump if proxy_jump is not None else self.target.proxy_jump
        hops = [self._resolve_hop(spec, config) for spec in (jump_spec or "").split(",") if spec.strip()]
        self._connect(hops + [self.target])

    # -- connecting ---------------------------------------------------------
    def describe(self) -> str:
        return f"ssh {self.target.display}" if hasattr(self, "target") else f"ssh {self.address.display}"

    def _notice(self, msg: str) -> None:
        self.notices.append(msg)
        self._log(msg)

    @staticmethod
    def _resolve_hop(spec: str, config) -> SshTarget:
        spec = spec.strip()
        try:
            addr = parse_board(spec)
        except UsageError:
            raise UsageError(f"ProxyJump {spec!r} is not user@host:port") from None
        if addr.kind != "ssh":
            raise UsageError(f"ProxyJump {spec!r} must be an ssh host")
        return resolve_target(
            addr.host or "",
            config,
            user=addr.user if addr.explicit_user else None,
            port=addr.port if addr.explicit_port else None,
        )

    def _tcp_connect(self, target: SshTarget) -> socket.socket:
        hp = hostport(target.hostname, target.port)
        t = self._connect_timeout
        try:
            sock = socket.create_connection((target.hostname, target.port), timeout=t)
        except socket.gaierror as exc:
            raise BoardError(
                f"cannot resolve host name {target.hostname!r} ({exc.strerror}); check --board or ~/.ssh/config"
            ) from None
        except TimeoutError:
            raise BoardError(
                f"cannot reach {hp}: no answer after {t:g} s (board off, wrong address, or a firewall); check --board"
            ) from None
        except ConnectionRefusedError:
            raise BoardError(
                f"cannot reach {hp}: connection refused (nothing listens there; is sshd running on the board, is the port right?)"
            ) from None
        except OSError as exc:
            raise BoardError(f"cannot reach {hp}: {exc.strerror or exc}; check the network and --board") from None
        sock.settimeout(None)
        # many small request/reply packets (exec, SFTP stat, rename): without this,
        # Nagle + delayed ACK add ~40 ms to every channel open
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if hasattr(socket, "TCP_USER_TIMEOUT"):  # Linux
            # A board that vanishes (power, cable, a link down) sends no FIN, and TCP alone
            # would retry for 15 minutes. Data unacknowledged for longer than this ends the
            # connection instead: a lost board is known within the connect timeout. The
            # session's heartbeat (every second while a runner runs) and the SSH keepalives
            # give TCP something to be acknowledged; 1.5 s is left for the heartbeat's interval
            # and for stopping cleanly.
            lost_after_ms = int(max(1.0, self._connect_timeout - 1.5) * 1000)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, lost_after_ms)
        return sock

    def _connect(self, hops: list[SshTarget]) -> None:
        prev: paramiko.Transport | None = None
        try:
            for i, hop in enumerate(hops):
                if prev is None:
                    sock = self._tcp_connect(hop)
                else:
                    sock = self._jump_channel(prev, hops[i - 1], hop)
                try:
                    t = self._handshake(hop, sock)
                except BoardError as exc:
                    if i < len(hops) - 1:  # say which hop failed
                        raise type(exc)(f"jump host {exc}") from None
                    raise
                if i < len(hops) - 1:
                    self._jumps.append(t)
                else:
                    self._t = t
                prev = t
        except BaseException:
            self.close()
            raise
        if self._keepalive:
            for t in [self._t, *self._jumps]:
                if t is not None:
                    t.set_keepalive(self._keepalive)

    def _jump_channel(self, jump: paramiko.Transport, jump_target: SshTarget, hop: SshTarget):
        try:
            return jump.open_channel(
                "direct-tcpip",
                (hop.hostname, hop.port),
                ("127.0.0.1", 0),
                timeout=self._connect_timeout,
            )
        except paramiko.ChannelException as exc:
            raise BoardError(
                f"jump host {jump_target.display} could not connect to {hostport(hop.hostname, hop.port)}: "
                f"{exc.text or exc} (code {exc.code}); check the address and that the jump host may forward"
            ) from None
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise BoardError(
                f"jump host {jump_target.display}: cannot open a channel to {hostport(hop.hostname, hop.port)}: {exc}"
            ) from None

    def _handshake(self, hop: SshTarget, sock) -> paramiko.Transport:
        t = paramiko.Transport(sock)
        t.banner_timeout = self._connect_timeout
        t.auth_timeout = max(self._connect_timeout, 15.0)
        name = hop.known_hosts_name
        known = self.known_hosts.lookup(name)
        if known:  # ask the server for the key type we already know
            opts = t.get_security_options()
            want: list[str] = []
            for k in known:
                kt = k.key.get_name()
                want += ["rsa-sha2-512", "rsa-sha2-256"] if kt == "ssh-rsa" else [kt]
            available = list(opts.key_types)
            first = [k for k in dict.fromkeys(want) if k in available]
            opts.key_types = tuple(first + [k for k in available if k not in first])
        try:
            t.start_client(timeout=self._connect_timeout)
        except (paramiko.SSHException, EOFError, OSError) as exc:
            t.close()
            raise BoardError(
                f"{hop.display}: SSH handshake failed ({exc or type(exc).__name__}); is an SSH server listening on that port?"
            ) from None
        try:
            server_key = t.get_remote_server_key()
        except paramiko.SSHException:
            t.close()
            raise BoardError(
                f"{hop.display}: SSH handshake failed (no answer within {self._connect_timeout:g} s); "
                "is an SSH server listening on that port?"
            ) from None
        try:
            self._check_host_key(hop, server_key, known)
            self._authenticate(t, hop)
        except BaseException:
            t.close()
            raise
        return t

    def _check_host_key(self, hop: SshTarget, key: paramiko.PKey, known: list[KnownKey]) -> None:
        name = hop.known_hosts_name
        ktype, fp = key.get_name(), fingerprint(key)
        path = self.known_hosts.path
        if any(k.key.get_name() == ktype and k.key.asbytes() == key.asbytes() for k in known):
            return
        same_type = [k for k in known if k.key.get_name() == ktype]
        if same_type:
            line = same_type[0].lineno
            raise BoardError(
                f"{hop.display}: HOST KEY CHANGED: the board now shows {ktype} {fp}, but {path}:{line} "
                f"holds another key for {name}; refusing to connect (someone may be intercepting). If the board "
                f"was reinstalled, remove line {line} of {path} (ssh-keygen -R '{name}' -f {path}) and re-run with {TRUST_FLAG}"
            )
        if known:
            types = ", ".join(sorted({k.key.get_name() for k in known}))
            line = known[0].lineno
            raise BoardError(
                f"{hop.display}: HOST KEY CHANGED: the board shows {ktype} {fp}, but {path}:{line} knows it with "
                f"another key type ({types}); refusing to connect. If the board was reinstalled, remove its lines "
                f"from {path} (ssh-keygen -R '{name}' -f {path}) and re-run with {TRUST_FLAG}"
            )
        if not self.trust_new:
            raise BoardError(
                f"{hop.display}: unknown host key {ktype} {fp} (not in {path}); "
                f"if that is the board's key, re-run with {TRUST_FLAG} to record it"
            )
        hashed = self._hash_known_hosts if self._hash_known_hosts is not None else hop.hash_known_hosts
        self.known_hosts.add(name, key, hashed=hashed)
        self._notice(f"{hop.display}: trusting new host key {ktype} {fp}; recorded in {path}")

    def _identity_candidates(self, hop: SshTarget) -> list[tuple[str, bool]]:
        """(path, explicit) pairs: options first, then IdentityFile, else the defaults."""
        out: list[tuple[str, bool]] = [(p, True) for p in self._identity_opts]
        if hop.identity_files:
            out += [(p, True) for p in hop.identity_files]
        else:
            out += [(os.path.expanduser(p), False) for p in DEFAULT_IDENTITIES]
        seen, uniq = set(), []
        for p, explicit in out:
            if p not in seen:
                seen.add(p)
                uniq.append((p, explicit))
        return uniq

    def _authenticate(self, t: paramiko.Transport, hop: SshTarget) -> None:
        user = hop.user
        tried: list[str] = []
        methods_ok = None  # what the server allows, once it told us

        def allowed(method: str) -> bool:
            return methods_ok is None or method in methods_ok

        def try_key(key: paramiko.PKey) -> bool:
            nonlocal methods_ok
            try:
                t.auth_publickey(user, key)
            except paramiko.BadAuthenticationType as exc:
                methods_ok = set(exc.allowed_types)
                return False
            except paramiko.AuthenticationException:
                return False
            return t.is_authenticated()

        for path, explicit in self._identity_candidates(hop):
            if not allowed("publickey"):
                break
            if not os.path.isfile(path):
                if explicit:
                    tried.append(f"key {path} (missing)")
                continue
            try:
                key = paramiko.PKey.from_path(path)
            except paramiko.PasswordRequiredException:
                tried.append(f"key {path} (passphrase-protected: load it into ssh-agent)")
                continue
            except TypeError as exc:  # cryptography: "Password was not given but private key is encrypted"
                note = (
                    "passphrase-protected: load it into ssh-agent"
                    if re.search("encrypt|password", str(exc), re.I)
                    else "unreadable"
                )
                tried.append(f"key {path} ({note})")
                continue
            except Exception as exc:
                tried.append(f"key {path} (unreadable: {type(exc).__name__})")
                continue
            tried.append(f"key {path}")
            if try_key(key):
                return

        if self._allow_agent and allowed("publickey") and os.environ.get("SSH_AUTH_SOCK"):
            try:
                agent_keys = paramiko.Agent().get_keys()
            except Exception:
                agent_keys = ()
            if agent_keys:
                tried.append(f"{len(agent_keys)} ssh-agent key(s)")
            for key in agent_keys:
                if try_key(key):
                    return

        password = os.environ.get(self._password_env) if self._password_env else None
        if password:
            tried.append(f"password from ${self._password_env}")
            if allowed("password"):
                try:
                    t.auth_password(user, password)
                    if t.is_authenticated():
                        return
                except paramiko.BadAuthenticationType as exc:
                    methods_ok = set(exc.allowed_types)
                except paramiko.AuthenticationException:
                    pass
            if allowed("keyboard-interactive") and not t.is_authenticated():
                try:
                    t.auth_interactive(user, lambda title, instr, prompts: [password for _ in prompts])
                    if t.is_authenticated():
                        return
                except (paramiko.BadAuthenticationType, paramiko.AuthenticationException):
                    pass
        if not t.is_active():
            raise BoardError(f"{hop.display}: the connection closed during authentication; check sshd on the board")
        what = ", ".join(tried) if tried else f"nothing (no key in ~/.ssh, no ssh-agent, ${self._password_env} unset)"
        allowed_txt = f"; the board accepts: {', '.join(sorted(methods_ok))}" if methods_ok else ""
        raise BoardError(
            f"authentication failed for {hop.display} (tried: {what}){allowed_txt}; "
            f"install your public key on the board (ssh-copy-id -p {hop.port} {user}@{hop.hostname}) "
            f"or set ${self._password_env}"
        )

    # -- commands -----------------------------------------------------------
    def _open_session(self) -> paramiko.Channel:
        if self._t is None or not self._t.is_active():
            raise BoardError(
                f"{self.describe()}: the SSH connection is closed (board rebooted or network lost?); reconnect"
            )
        try:
            return self._t.open_session(timeout=self._connect_timeout)
        except (paramiko.SSHException, EOFError, OSError) as exc:
            raise BoardError(f"{self.describe()}: cannot open a session ({exc}); check the board and retry") from None

    def start(
        self, argv: Sequence[str], stderr_limit: int = STDERR_TAIL_BYTES, max_line: int | None = MAX_LINE_BYTES
    ) -> SshProcess:
        argv = [str(a) for a in argv]
        command = quote_argv(wrap_argv(argv))
        chan = self._open_session()
        try:
            chan.exec_command(command)
        except (paramiko.SSHException, EOFError, OSError) as exc:
            chan.close()
            raise BoardError(f"{self.describe()}: cannot start {short_command(argv)}: {exc}") from None
        return SshProcess(chan, argv, self.describe(), stderr_limit, killer=self._kill_remote, max_line=max_line)

    def _kill_remote(self, pid: int) -> None:
        """SIGKILL a command (its process group when it leads one) by PID."""
        script = 'kill -9 "-$1" 2>/dev/null || kill -9 "$1" 2>/dev/null; exit 0'
        chan = self._open_session()
        try:
            chan.settimeout(10)
            chan.exec_command(quote_argv(["sh", "-c", script, "sh", str(pid)]))
            chan.recv_exit_status()
        finally:
            chan.close()

    def run(
        self,
        argv: Sequence[str],
        stdin: bytes | None = None,
        timeout: float | None = None,
        check: bool = False,
    ) -> CompletedRun:
        proc = self.start(argv, stderr_limit=RUN_STDERR_LIMIT, max_line=None)  # run() keeps it all
        deadline = None if timeout is None else time.monotonic() + timeout
        writer = None
        if stdin:

            def feed():
                try:
                    proc.write_stdin(stdin)
                except BoardError:
                    pass
                proc.close_stdin()

            writer = threading.Thread(target=feed, name="rkbench-ssh-stdin", daemon=True)
            writer.start()
        else:
            proc.close_stdin()
        chunks: list[bytes] = []
        try:
            while True:
                left = None if deadline is None else max(0.0, deadline - time.monotonic())
                line = proc.readline(left)
                if not line:
                    break
                chunks.append(line)
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            rc = proc.wait(left)
        except TransportTimeout:
            proc.kill()
            raise TransportTimeout(
                f"{self.describe()}: {short_command(argv)} did not finish within {timeout:g} s (stopped)"
            ) from None
        except BaseException:
            proc.kill()
            raise
        if writer is not None:
            writer.join(5)
        res = CompletedRun(list(argv), rc, b"".join(chunks), proc.stderr_bytes())
        if check:
            self.check_result(res)
        return res

    # -- files ----------------------------------------------------------------
    def _sftp(self) -> paramiko.SFTPClient:
        with self._sftp_lock:
            if self._sftp_client is None:
                if self._t is None or not self._t.is_active():
                    raise BoardError(f"{self.describe()}: the SSH connection is closed; reconnect")
                try:
                    self._sftp_client = paramiko.SFTPClient.from_transport(self._t)
                except (paramiko.SSHException, EOFError, OSError) as exc:
                    raise BoardError(
                        f"{self.describe()}: the board has no SFTP server ({exc}); enable 'Subsystem sftp' in its sshd_config"
                    ) from None
            return self._sftp_client

    def _upload_failed(self, exc: BaseException, local: str, remote: str, size: int):
        code = getattr(exc, "errno", None)
        text = str(exc)
        remote_dir = os.path.dirname(remote) or "."
        if isinstance(exc, FileNotFoundError) or code == errno.ENOENT:
            return BoardError(f"{self.describe()}: cannot upload to {remote}: {remote_dir} does not exist on the board")
        if isinstance(exc, PermissionError) or code == errno.EACCES:
            return BoardError(f"{self.describe()}: permission denied writing {remote}; use a writable cache directory")
        # sftp-server reports ENOSPC as a bare "Failure": ask the board how much room is left,
        # after the partial file is gone (it held what little there was)
        free = self.free_bytes(remote_dir)
        if code in (errno.ENOSPC, errno.EDQUOT) or "no space" in text.lower() or (free is not None and free < size):
            free_txt = f" ({megabytes(free)} free, {megabytes(size)} needed)" if free is not None else ""
            return DiskFullError(
                f"{self.describe()}: disk full while uploading {os.path.basename(local)} to {remote}{free_txt}; "
                f"free space in {remote_dir} on the board and retry"
            )
        return BoardError(f"{self.describe()}: upload of {local} to {remote} failed: {text or type(exc).__name__}")

    def put(self, local_path, remote_path: str, progress: Progress | None = None) -> int:
        local = os.fspath(local_path)
        try:
            size = os.path.getsize(local)
        except OSError as exc:
            raise UsageError(f"cannot read {local}: {exc.strerror}") from None
        sftp = self._sftp()
        try:
            with self._sftp_lock:
                attrs = sftp.put(local, remote_path, callback=progress, confirm=True)
        except (OSError, paramiko.SFTPError) as exc:
            self._remove_partial(remote_path)
            raise self._upload_failed(exc, local, remote_path, size) from None
        except (paramiko.SSHException, EOFError) as exc:
            raise BoardError(f"{self.describe()}: connection lost while uploading {local}: {exc}") from None
        sent = int(attrs.st_size or size)
        self.stats.add_pushed(sent, files=1)
        return sent

    def _remove_partial(self, remote: str) -> None:
        try:
            with self._sftp_lock:
                self._sftp().remove(remote)
        except (OSError, paramiko.SSHException, EOFError, BoardError):
            pass  # not there, or the connection is gone: nothing to free

    def get(self, remote_path: str, local_path) -> int:
        local = os.fspath(local_path)
        sftp = self._sftp()
        try:
            with self._sftp_lock:
                sftp.get(remote_path, local)
        except FileNotFoundError:
            raise BoardError(f"{self.describe()}: {remote_path} does not exist on the board") from None
        except (OSError, paramiko.SFTPError) as exc:
            if getattr(exc, "errno", None) in (errno.ENOSPC, errno.EDQUOT):
                raise DiskFullError(f"disk full on this machine writing {local}; free space and retry") from None
            raise BoardError(f"{self.describe()}: download of {remote_path} failed: {exc}") from None
        except (paramiko.SSHException, EOFError) as exc:
            raise BoardError(f"{self.describe()}: connection lost while downloading {remote_path}: {exc}") from None
        n = os.path.getsize(local)
        self.stats.add_pulled(n, files=1)
        return n

    def exists(self, remote: str) -> bool:
        try:
            with self._sftp_lock:
                self._sftp().lstat(remote)
            return True
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise BoardError(f"{self.describe()}: cannot stat {remote}: {exc}") from None

    def rename(self, src: str, dst: str) -> None:
        try:
            with self._sftp_lock:
                self._sftp().posix_rename(src, dst)
        except (OSError, paramiko.SSHException):
            super().rename(src, dst)

    def remove(self, remote: str) -> None:
        try:
            with self._sftp_lock:
                self._sftp().remove(remote)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise BoardError(f"{self.describe()}: cannot remove {remote}: {exc}") from None

    # -- lifetime -------------------------------------------------------------
    def _disconnect(self) -> None:
        if self._sftp_client is not None:
            try:
                self._sftp_client.close()
            except Exception:
                pass
            self._sftp_client = None
        for t in [self._t] + list(reversed(self._jumps)):
            if t is not None:
                try:
                    t.close()
                except Exception:
                    pass
        self._t = None
        self._jumps = []
