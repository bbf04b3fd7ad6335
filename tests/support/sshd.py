"""Real OpenSSH servers on loopback for tests (reusable from any test module).

    from tests.support.sshd import start_sshd, make_client_key   # plain helpers

The fixtures below are registered for every test by tests/conftest.py.

Fixtures
  ssh_client_key  (session) an ed25519 key pair (Path of the private key; .pub beside it)
  ssh_home        HOME moved to a tmp dir (so ~/.ssh/config, ~/.ssh/known_hosts and
                  ~/.cache are test-local), SSH_AUTH_SOCK and RKBENCH_SSH_PASSWORD unset
  sshd_factory    sshd_factory(host="127.0.0.1", trusted=True, **kw) -> SshServer; as many
                  as you like (use 127.0.0.2, .3 ... for several "boards"); all stopped at
                  the end. trusted=True writes the server's key into ~/.ssh/known_hosts
                  and copies the client key to ~/.ssh/id_ed25519, so
                  `open_transport(server.board)` just works.
  sshd            one trusted server on 127.0.0.1

Each server has its own "board home" (SetEnv HOME=<workdir>/home), so the remote
~/.cache/rkbench lives in the test's tmp dir. Logs: <workdir>/sshd.log.
Only loopback addresses are used.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
SSH_KEYGEN = shutil.which("ssh-keygen") or "/usr/bin/ssh-keygen"


def have_sshd() -> bool:
    return os.path.exists(SSHD) and os.path.exists(SSH_KEYGEN)


def make_client_key(directory: Path, name: str = "id_ed25519", kind: str = "ed25519") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    key = directory / name
    if not key.exists():
        subprocess.run(
            [SSH_KEYGEN, "-q", "-t", kind, "-N", "", "-C", "rkbench-test", "-f", str(key)],
            check=True,
            stdin=subprocess.DEVNULL,
        )
    return key


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _wait_banner(host: str, port: int, proc: subprocess.Popen, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection((host, port), timeout=1) as s:
                if s.recv(8).startswith(b"SSH-"):
                    return True
        except OSError:
            time.sleep(0.01)
    return False


@dataclass
class SshServer:
    workdir: Path
    host: str
    client_pubkeys: list[Path]
    password_auth: bool = False
    extra_config: str = ""
    port: int = 0
    user: str = field(default_factory=lambda: _current_user())
    proc: subprocess.Popen | None = None
    host_key: Path = None  # type: ignore[assignment]
    tmpfs: tuple | None = None  # (path, size) mounted privately for this sshd (needs root)
    _generation: int = 0

    # -- what tests use ---------------------------------------------------
    @property
    def board(self) -> str:
        """--board string: user@host:port."""
        return f"{self.user}@{self.host}:{self.port}"

    def board_for(self, user: str) -> str:
        return f"{user}@{self.host}:{self.port}"

    @property
    def home(self) -> Path:
        """The board's $HOME for sessions on this server."""
        return self.workdir / "home"

    @property
    def known_hosts_name(self) -> str:
        return self.host if self.port == 22 else f"[{self.host}]:{self.port}"

    def host_pubkey(self) -> str:
        """'ssh-ed25519 AAAA...' of the current host key."""
        return " ".join(Path(str(self.host_key) + ".pub").read_text().split()[:2])

    def known_hosts_line(self) -> str:
        return f"{self.known_hosts_name} {self.host_pubkey()}\n"

    def fingerprint(self) -> str:
        out = subprocess.run(
            [SSH_KEYGEN, "-l", "-E", "sha256", "-f", str(self.host_key) + ".pub"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        return out.split()[1]

    def trust(self, known_hosts: Path) -> None:
        known_hosts.parent.mkdir(parents=True, exist_ok=True)
        with open(known_hosts, "a") as f:
            f.write(self.known_hosts_line())

    @property
    def log(self) -> str:
        p = self.workdir / "sshd.log"
        return p.read_text(errors="replace") if p.exists() else ""

    # -- lifecycle ------------------------------------------------------------
    def _new_host_key(self) -> None:
        self._generation += 1
        key = self.workdir / f"ssh_host_ed25519_key.{self._generation}"
        subprocess.run(
            [SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True, stdin=subprocess.DEVNULL
        )
        self.host_key = key

    def _write_config(self) -> Path:
        auth = self.workdir / "authorized_keys"
        auth.write_text("".join(Path(str(p) + ".pub").read_text() for p in self.client_pubkeys))
        self.home.mkdir(parents=True, exist_ok=True)
        cfg = self.workdir / "sshd_config"
        cfg.write_text(
            f"""# extra settings first: for sshd the first value of a keyword wins
{self.extra_config}
Port {self.port}
ListenAddress {self.host}
HostKey {self.host_key}
PidFile {self.workdir}/sshd.pid
AuthorizedKeysFile {auth}
StrictModes no
UsePAM no
Subsystem sftp internal-sftp
PubkeyAuthentication yes
PasswordAuthentication {"yes" if self.password_auth else "no"}
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
PermitEmptyPasswords no
AllowTcpForwarding yes
MaxStartups 100:30:200
MaxSessions 50
PrintMotd no
PrintLastLog no
LogLevel VERBOSE
SetEnv HOME={self.home}
"""
        )
        return cfg

    def _launch(self) -> bool:
        cfg = self._write_config()
        argv = [SSHD, "-D", "-e", "-f", str(cfg)]
        if self.tmpfs:
            # a private mount namespace where `path` is a tiny tmpfs (disk-full tests)
            path, size = self.tmpfs
            Path(path).mkdir(parents=True, exist_ok=True)
            script = 'mount -t tmpfs -o "size=$1" tmpfs "$2" && shift 2 && exec "$@"'
            argv = ["unshare", "-m", "sh", "-c", script, "sh", str(size), str(path)] + argv
        log = open(self.workdir / "sshd.log", "ab")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        log.close()
        if _wait_banner(self.host, self.port, self.proc):
            return True
        self.stop()
        return False

    def start(self) -> SshServer:
        if self.host_key is None:
            self._new_host_key()
        for _attempt in range(5):
            if not self.port:
                self.port = _free_port(self.host)
            if self._launch():
                return self
            self.port = 0  # port taken: try another
        raise RuntimeError(f"sshd did not start on {self.host}; log:\n{self.log[-2000:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def restart(self, new_host_key: bool = False) -> SshServer:
        """Restart on the same port (optionally with a freshly generated host key)."""
        self.stop()
        if new_host_key:
            self._new_host_key()
        for _ in range(50):  # the port may linger briefly
            if self._launch():
                return self
            time.sleep(0.05)
        raise RuntimeError(f"sshd could not restart on {self.host}:{self.port}; log:\n{self.log[-2000:]}")


def _current_user() -> str:
    import pwd

    return pwd.getpwuid(os.getuid()).pw_name


def start_sshd(
    workdir: Path,
    client_keys: list[Path],
    host: str = "127.0.0.1",
    password_auth: bool = False,
    extra_config: str = "",
    tmpfs: tuple | None = None,
) -> SshServer:
    """Start one sshd (sshd -D -e -f cfg) on a free port of `host` (loopback only)."""
    if not host.startswith("127."):
        raise ValueError("test sshd servers listen on loopback only")
    if os.getuid() == 0:
        os.makedirs("/run/sshd", exist_ok=True)
    workdir.mkdir(parents=True, exist_ok=True)
    return SshServer(
        workdir=workdir,
        host=host,
        client_pubkeys=list(client_keys),
        password_auth=password_auth,
        extra_config=extra_config,
        tmpfs=tmpfs,
    ).start()


# ---------------------------------------------------------------------------
# pytest fixtures
# ---------------------------------------------------------------------------
@pytest.fixture(scope="session")
def ssh_client_key(tmp_path_factory) -> Path:
    if not have_sshd():
        pytest.skip("OpenSSH server not installed (apt-get install openssh-server)")
    return make_client_key(tmp_path_factory.mktemp("sshkey"))


@pytest.fixture
def ssh_home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True, mode=0o700)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    monkeypatch.delenv("RKBENCH_SSH_PASSWORD", raising=False)
    return home


@pytest.fixture
def sshd_factory(tmp_path, ssh_client_key, ssh_home):
    servers: list[SshServer] = []

    def make(host: str = "127.0.0.1", trusted: bool = True, **kw) -> SshServer:
        server = start_sshd(tmp_path / f"sshd{len(servers)}", [ssh_client_key], host=host, **kw)
        servers.append(server)
        if trusted:
            server.trust(ssh_home / ".ssh" / "known_hosts")
            dst = ssh_home / ".ssh" / "id_ed25519"
            if not dst.exists():
                shutil.copy(ssh_client_key, dst)
                shutil.copy(str(ssh_client_key) + ".pub", str(dst) + ".pub")
                os.chmod(dst, 0o600)
        return server

    yield make
    for s in servers:
        s.stop()


@pytest.fixture
def sshd(sshd_factory) -> SshServer:
    return sshd_factory()
