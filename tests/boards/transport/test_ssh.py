"""SSH transport against real OpenSSH servers on loopback."""

import os
import shutil
import socket
import subprocess
import threading
import time

import pytest

from rkbench.boards.transport import open_transport
from rkbench.boards.transport.ssh import KnownHostsFile, SshTransport
from rkbench.errors import BoardError
from tests.support.sshd import SSH_KEYGEN, make_client_key


def known_hosts(home):
    return home / ".ssh" / "known_hosts"


def test_connects_and_runs(sshd):
    with open_transport(sshd.board) as t:
        assert isinstance(t, SshTransport)
        assert t.run(["echo", "hi"], check=True).stdout == b"hi\n"
        assert t.home() == str(sshd.home)
        assert t.describe() == f"ssh {sshd.board}"


def test_several_boards_at_once(sshd_factory):
    servers = [sshd_factory(host=h) for h in ("127.0.0.1", "127.0.0.2", "127.0.0.3")]
    transports = [open_transport(s.board) for s in servers]
    try:
        homes = [t.run(["sh", "-c", 'echo "$HOME"'], check=True).stdout.strip().decode() for t in transports]
        assert homes == [str(s.home) for s in servers]
    finally:
        for t in transports:
            t.close()


def test_unknown_host_key_refused_with_fingerprint(sshd_factory, ssh_home):
    server = sshd_factory(trusted=False)
    key = make_client_key(ssh_home / ".ssh")  # the client key in its default place
    shutil.copy(server.client_pubkeys[0], key)
    with pytest.raises(BoardError) as e:
        open_transport(server.board)
    msg = str(e.value)
    assert server.fingerprint() in msg and "ssh-ed25519" in msg
    assert "--trust-new-board" in msg and server.board in msg
    assert "\n" not in msg
    assert not known_hosts(ssh_home).exists() or server.host_pubkey() not in known_hosts(ssh_home).read_text()


@pytest.mark.parametrize("hashed", [False, True])
def test_trust_new_records_then_plain_connect_works(sshd_factory, ssh_home, ssh_client_key, hashed):
    server = sshd_factory(trusted=False)
    notices = []
    with open_transport(
        server.board, identity_files=[ssh_client_key], trust_new=True, hash_known_hosts=hashed, log=notices.append
    ) as t:
        assert t.run(["true"]).returncode == 0
    assert len(notices) == 1 and server.fingerprint() in notices[0] and str(known_hosts(ssh_home)) in notices[0]
    text = known_hosts(ssh_home).read_text()
    if hashed:
        assert text.startswith("|1|") and f"[127.0.0.1]:{server.port}" not in text
    else:
        assert text.startswith(f"[127.0.0.1]:{server.port} ssh-ed25519 ")
    # OpenSSH itself accepts what we recorded
    out = subprocess.run(
        [SSH_KEYGEN, "-F", f"[127.0.0.1]:{server.port}", "-f", str(known_hosts(ssh_home))],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0
    # second time: no flag needed, nothing recorded again
    notices.clear()
    with open_transport(server.board, identity_files=[ssh_client_key], log=notices.append) as t:
        assert t.run(["true"]).returncode == 0
    assert notices == []
    assert known_hosts(ssh_home).read_text() == text


def test_changed_host_key_refused_even_with_trust_new(sshd, ssh_home):
    # a few unrelated lines first, so the line number means something
    kh = known_hosts(ssh_home)
    kh.write_text(
        "# comment\nother.example ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBVUg9g3bXoT9nT6l1yxbFcQzN0D3YvN7zzg4uUq2c3F\n"
        + kh.read_text()
    )
    with open_transport(sshd.board) as t:
        t.run(["true"], check=True)
    sshd.restart(new_host_key=True)
    before = kh.read_text()
    for trust in (False, True):
        with pytest.raises(BoardError) as e:
            open_transport(sshd.board, trust_new=trust)
        msg = str(e.value)
        assert "CHANGED" in msg and sshd.fingerprint() in msg
        assert f"{kh}:3" in msg and "ssh-keygen -R" in msg
        assert "\n" not in msg
    assert kh.read_text() == before


def test_known_hosts_option_and_patterns(sshd, ssh_home, tmp_path):
    other = tmp_path / "kh"
    other.write_text(f"!nomatch,127.0.0.*,[127.0.0.1]:{sshd.port} {sshd.host_pubkey()}\n")
    known_hosts(ssh_home).unlink()
    with open_transport(sshd.board, known_hosts=str(other)) as t:
        t.run(["true"], check=True)
    assert KnownHostsFile(other).lookup(f"[127.0.0.1]:{sshd.port}")
    other.write_text(f"![127.0.0.1]:{sshd.port},[127.0.0.1]:* {sshd.host_pubkey()}\n")  # negated
    with pytest.raises(BoardError, match="unknown host key"):
        open_transport(sshd.board, known_hosts=str(other))


def test_auth_failure_names_user_host_and_what_was_tried(sshd, ssh_home, monkeypatch):
    # a key the server does not know, and a password that is refused
    os.unlink(ssh_home / ".ssh" / "id_ed25519")
    stranger = make_client_key(ssh_home / ".ssh", "id_ed25519")
    monkeypatch.setenv("RKBENCH_SSH_PASSWORD", "sup3r-s3cret")
    with pytest.raises(BoardError) as e:
        open_transport(sshd.board)
    msg = str(e.value)
    assert f"authentication failed for {sshd.board}" in msg
    assert str(stranger) in msg and "RKBENCH_SSH_PASSWORD" in msg
    assert "sup3r-s3cret" not in msg and "\n" not in msg
    assert "ssh-copy-id" in msg


def test_auth_lists_nothing_tried(sshd, ssh_home):
    os.unlink(ssh_home / ".ssh" / "id_ed25519")
    with pytest.raises(BoardError, match="no key in ~/.ssh"):
        open_transport(sshd.board)


def test_encrypted_key_is_reported(sshd, ssh_home):
    os.unlink(ssh_home / ".ssh" / "id_ed25519")
    subprocess.run(
        [SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "passphrase", "-f", str(ssh_home / ".ssh" / "id_ed25519")], check=True
    )
    with pytest.raises(BoardError, match="passphrase-protected"):
        open_transport(sshd.board)


def test_ssh_agent(sshd, ssh_home, ssh_client_key, monkeypatch, tmp_path):
    agent = shutil.which("ssh-agent")
    if not agent:
        pytest.skip("no ssh-agent")
    os.unlink(ssh_home / ".ssh" / "id_ed25519")
    sock = tmp_path / "agent.sock"
    proc = subprocess.Popen([agent, "-D", "-a", str(sock)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if sock.exists():
                break
            time.sleep(0.02)
        env = dict(os.environ, SSH_AUTH_SOCK=str(sock))
        for _ in range(100):  # the socket file appears just before the agent listens
            added = subprocess.run(["ssh-add", "-q", str(ssh_client_key)], env=env, capture_output=True)
            if added.returncode == 0:
                break
            time.sleep(0.02)
        assert added.returncode == 0, added.stderr
        monkeypatch.setenv("SSH_AUTH_SOCK", str(sock))
        with open_transport(sshd.board) as t:
            assert t.run(["true"]).returncode == 0
    finally:
        proc.terminate()
        proc.wait(5)


def test_unreachable_closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # nothing listens on `port` now
    with pytest.raises(BoardError) as e:
        open_transport(f"root@127.0.0.1:{port}")
    msg = str(e.value)
    assert f"127.0.0.1:{port}" in msg and "refused" in msg and "\n" not in msg


def test_unreachable_connect_timeout():
    # a loopback listener whose accept queue is full drops our SYN: connect() hangs
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(0)
    port = srv.getsockname()[1]
    fillers = []
    for _ in range(3):
        c = socket.socket()
        c.setblocking(False)
        try:
            c.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        fillers.append(c)
    time.sleep(0.1)
    try:
        t0 = time.monotonic()
        with pytest.raises(BoardError) as e:
            open_transport(f"root@127.0.0.1:{port}", connect_timeout=0.5)
        assert time.monotonic() - t0 < 5
        msg = str(e.value)
        assert f"127.0.0.1:{port}" in msg and ("no answer" in msg or "handshake" in msg)
    finally:
        for c in fillers:
            c.close()
        srv.close()


def test_silent_port_times_out():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    try:
        t0 = time.monotonic()
        with pytest.raises(BoardError) as e:
            open_transport(f"root@127.0.0.1:{port}", connect_timeout=0.5)
        assert time.monotonic() - t0 < 5
        assert f"127.0.0.1:{port}" in str(e.value) and "handshake" in str(e.value)
    finally:
        srv.close()


def test_not_ssh_port():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]

    def serve():
        c, _ = srv.accept()
        c.sendall(b"HTTP/1.0 400 Bad Request\r\n\r\n")
        c.close()

    th = threading.Thread(target=serve, daemon=True)
    th.start()
    try:
        with pytest.raises(BoardError, match="handshake failed"):
            open_transport(f"root@127.0.0.1:{port}", connect_timeout=2)
    finally:
        srv.close()


def test_ssh_config_alias(sshd, ssh_home, ssh_client_key, tmp_path):
    # key only in a non-default place, found through IdentityFile
    os.unlink(ssh_home / ".ssh" / "id_ed25519")
    keydir = tmp_path / "keys"
    keydir.mkdir()
    shutil.copy(ssh_client_key, keydir / "lab_key")
    (ssh_home / ".ssh" / "config").write_text(
        f"Host rock5b\n  HostName {sshd.host}\n  Port {sshd.port}\n  User nobody-here\n  IdentityFile {keydir}/lab_key\n"
    )
    # explicit user on --board wins over the config's User
    with open_transport(f"{sshd.user}@rock5b") as t:
        assert t.target.hostname == "127.0.0.1" and t.target.port == sshd.port
        assert t.run(["true"]).returncode == 0
    # config User is used when the --board string has none
    with pytest.raises(BoardError, match="nobody-here@127.0.0.1"):
        open_transport("rock5b")


def test_proxy_jump(sshd_factory, ssh_home):
    jump = sshd_factory(host="127.0.0.2", extra_config="LogLevel DEBUG1")
    board = sshd_factory(host="127.0.0.3")
    (ssh_home / ".ssh" / "config").write_text(
        f"Host lab-gw\n  HostName {jump.host}\n  Port {jump.port}\n  User {jump.user}\n\n"
        f"Host board1\n  HostName {board.host}\n  Port {board.port}\n  User {board.user}\n  ProxyJump lab-gw\n"
    )
    with open_transport("board1") as t:
        assert t.run(["sh", "-c", 'echo "$HOME"'], check=True).stdout.strip().decode() == str(board.home)
        assert t.sha256(f"{board.home}/nothing") is None
    assert f"target {board.host} port {board.port}" in jump.log  # really went through the jump host
    # the jump host's key is checked strictly too
    kh = (ssh_home / ".ssh" / "known_hosts").read_text()
    (ssh_home / ".ssh" / "known_hosts").write_text(
        "".join(line for line in kh.splitlines(True) if str(jump.port) not in line)
    )
    with pytest.raises(BoardError, match=f"^jump host .*{jump.host}:{jump.port}: unknown host key"):
        open_transport("board1")


def test_proxy_jump_option_and_refused_forward(sshd_factory):
    jump = sshd_factory(host="127.0.0.2", extra_config="PermitOpen none")
    board = sshd_factory(host="127.0.0.3")
    with pytest.raises(BoardError) as e:
        open_transport(board.board, proxy_jump=jump.board)
    assert "jump host" in str(e.value) and f"{board.host}:{board.port}" in str(e.value)


def test_connection_lost(sshd):
    t = open_transport(sshd.board)
    sshd.stop()
    # sshd -D keeps sessions in children; kill them by closing our side instead
    t._t.close()
    with pytest.raises(BoardError, match="connection is closed"):
        t.run(["true"])
    t.close()


@pytest.fixture(scope="module")
def password_user():
    """(name, password) of a throwaway local user, unique to this test process."""
    if os.getuid() != 0 or not shutil.which("useradd") or not shutil.which("chpasswd"):
        pytest.skip("password auth test needs root (to create a throwaway user)")
    name = f"rkbt{os.getpid()}"
    subprocess.run(["useradd", "-M", "-d", "/nonexistent", "-s", "/bin/sh", name], check=True)
    try:
        password = "pw-" + os.urandom(6).hex()
        subprocess.run(["chpasswd"], input=f"{name}:{password}\n", text=True, check=True)
        yield name, password
    finally:
        subprocess.run(["userdel", name], check=False)


def test_password_from_environment(sshd_factory, ssh_home, password_user, monkeypatch):
    user, password = password_user
    server = sshd_factory(password_auth=True)
    os.unlink(ssh_home / ".ssh" / "id_ed25519")  # no key: only the password can work
    with pytest.raises(BoardError, match="RKBENCH_SSH_PASSWORD"):
        open_transport(server.board_for(user))
    monkeypatch.setenv("RKBENCH_SSH_PASSWORD", password)
    with open_transport(server.board_for(user)) as t:
        assert t.run(["id", "-un"], check=True).stdout.strip().decode() == user
    monkeypatch.setenv("RKBENCH_SSH_PASSWORD", "wrong-" + password)
    with pytest.raises(BoardError) as e:
        open_transport(server.board_for(user))
    assert password not in str(e.value) and "authentication failed" in str(e.value)
