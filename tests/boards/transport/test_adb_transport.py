"""AdbTransport with the real adb client against the adbd stand-in."""

import hashlib
import json
import os
import sys
import threading
import time

import pytest

from rkbench.boards.address import parse_board
from rkbench.boards.transport import CommandFailed, RemoteProcess, TransportTimeout, open_transport
from rkbench.boards.transport.adb import AdbTransport, remote_line, split_exit_marker
from rkbench.errors import BoardError
from tests.standins.adbd import AdbServer, free_port

NASTY = [
    "two words",
    "it's",
    'say "hi"',
    "$(touch pwned)",
    "`touch pwned2`",
    "a;b",
    "x && y || z",
    "*",
    "$HOME",
    "back\\slash",
    "new\nline",
    "",
    "-n",
    "ünïcødé",
]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead too
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


def _wait_dead(pid: int, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return False


# -- helpers ------------------------------------------------------------------
def test_remote_line_and_markers():
    line = remote_line(["echo", "a b"])
    assert "echo 'a b';" in line
    rc, err = split_exit_marker(b"oops\n\x1erkbench-exit 7\n")
    assert (rc, err) == (7, b"oops")
    rc, err = split_exit_marker(b"partial\n\n\x1erkbench-exit 0\n")
    assert (rc, err) == (0, b"partial\n")
    assert split_exit_marker(b"no marker\n") == (None, b"no marker\n")


# -- commands -------------------------------------------------------------------
def test_describe_and_features(adb_transport, adbd_standin):
    assert isinstance(adb_transport, AdbTransport)
    assert adbd_standin.serial in adb_transport.describe()
    assert "shell_v2" in adb_transport.features


def test_exit_codes_and_streams(adb_transport):
    assert adb_transport.run(["true"]).returncode == 0
    assert adb_transport.run(["false"]).returncode == 1
    res = adb_transport.run(["sh", "-c", "echo out; echo err >&2; exit 42"])
    assert (res.returncode, res.stdout, res.stderr) == (42, b"out\n", b"err\n")
    assert adb_transport.run(["definitely-not-a-command-xyz"]).returncode == 127
    res = adb_transport.run(["sh", "-c", "printf 'no newline' >&2; exit 0"])
    assert res.stderr == b"no newline"  # markers removed, nothing added
    with pytest.raises(CommandFailed) as e:
        adb_transport.run(["sh", "-c", "echo boom >&2; exit 3"], check=True)
    assert "exit 3" in str(e.value) and "boom" in str(e.value) and "\n" not in str(e.value)


def test_nasty_args_arrive_literally(adb_transport, adbd_standin):
    script = "import sys, json; print(json.dumps(sys.argv[1:]))"
    res = adb_transport.run([sys.executable, "-c", script] + NASTY, check=True)
    assert json.loads(res.stdout) == NASTY
    assert not (adbd_standin.root / "pwned").exists()
    assert not (adbd_standin.root / "pwned2").exists()


def test_stdout_stderr_large_and_separate(adb_transport):
    # 2 MB on stdout and 1 MB on stderr interleaved: flow control both ways
    script = (
        "import sys\n"
        "for i in range(2000):\n"
        "    sys.stdout.write('o%07d' % i + 'o' * 992 + '\\n'); sys.stdout.flush()\n"
        "    if i % 2 == 0: sys.stderr.write('e%07d' % i + 'e' * 992 + '\\n'); sys.stderr.flush()\n"
    )
    res = adb_transport.run([sys.executable, "-c", script], check=True)
    out = res.stdout.splitlines()
    err = res.stderr.splitlines()
    assert len(out) == 2000 and len(err) == 1000
    assert all(ln.startswith(b"o") for ln in out) and all(ln.startswith(b"e") for ln in err)
    assert out[1999].startswith(b"o0001999") and err[-1].startswith(b"e0001998")


def test_stdin_binary_and_eof(adb_transport):
    data = os.urandom(2 * 1024 * 1024)
    res = adb_transport.run(["sha256sum"], stdin=data, check=True)
    assert res.stdout.split()[0].decode() == hashlib.sha256(data).hexdigest()
    res = adb_transport.run(["cat"], timeout=10)  # no stdin given: EOF at once
    assert res.returncode == 0 and res.stdout == b""
    assert adb_transport.run(["wc", "-c"], stdin=b"").stdout.strip() == b"0"


def test_run_timeout_kills_the_command(adb_transport, adbd_standin):
    pidfile = adbd_standin.root / "pid"
    t0 = time.monotonic()
    with pytest.raises(TransportTimeout) as e:
        adb_transport.run(["sh", "-c", "echo $$ > pid; exec sleep 30"], timeout=0.7)
    assert time.monotonic() - t0 < 6
    assert "0.7 s" in str(e.value)
    assert _wait_dead(int(pidfile.read_text()))


# -- streaming ---------------------------------------------------------------------
def test_streaming_lines_arrive_as_written(adb_transport):
    proc = adb_transport.start(["sh", "-c", "echo one; sleep 1; echo two; echo oops >&2; exit 5"])
    assert isinstance(proc, RemoteProcess)
    t0 = time.monotonic()
    assert proc.readline(timeout=10) == b"one\n"
    assert time.monotonic() - t0 < 0.9  # before the command finished
    assert proc.returncode is None
    assert list(proc) == [b"two\n"]
    assert proc.wait(10) == 5 and proc.returncode == 5
    assert proc.stderr_tail() == "oops\n"  # no pid/exit markers


def test_streaming_slow_printer(adb_transport):
    proc = adb_transport.start(["sh", "-c", "for i in 1 2 3 4; do echo line $i; sleep 0.25; done"])
    stamps = []
    t0 = time.monotonic()
    for line in proc:
        stamps.append((line, time.monotonic() - t0))
    assert [s[0] for s in stamps] == [b"line 1\n", b"line 2\n", b"line 3\n", b"line 4\n"]
    assert stamps[0][1] < 0.5 and stamps[3][1] > 0.6  # one by one, not all at the end
    assert proc.wait(5) == 0


def test_streaming_stdin_dialogue_and_eof(adb_transport):
    # like the board runner: reads its spec from stdin, answers, exits on EOF
    runner = (
        "import sys, json\n"
        "spec = json.loads(sys.stdin.readline())\n"
        "print(json.dumps({'event': 'hello', 'model': spec['model']}), flush=True)\n"
        "for line in sys.stdin:\n"
        "    print(json.dumps({'event': 'echo', 'got': line.strip()}), flush=True)\n"
        "print(json.dumps({'event': 'bye'}), flush=True)\n"
        "sys.exit(3)\n"
    )
    with adb_transport.start([sys.executable, "-u", "-c", runner]) as proc:
        proc.write_stdin(json.dumps({"model": "m.rknn"}).encode() + b"\n")
        assert json.loads(proc.readline(10)) == {"event": "hello", "model": "m.rknn"}
        proc.write_stdin(b"ping\n")
        assert json.loads(proc.readline(10)) == {"event": "echo", "got": "ping"}
        proc.close_stdin()  # EOF reaches the command
        assert json.loads(proc.readline(10)) == {"event": "bye"}
        assert proc.readline(10) == b""
        assert proc.wait(10) == 3


def test_streaming_timeout_then_kill(adb_transport, adbd_standin):
    proc = adb_transport.start(["sh", "-c", "echo $$ > pid2; exec sleep 30"])
    with pytest.raises(TransportTimeout):
        proc.readline(timeout=0.3)
    with pytest.raises(TransportTimeout):
        proc.wait(0.2)
    assert proc.pid  # the board-side pid came through stderr
    deadline = time.monotonic() + 5
    while not (adbd_standin.root / "pid2").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    pid = int((adbd_standin.root / "pid2").read_text())
    proc.kill()
    assert proc.returncode is not None and proc.returncode != 0
    proc.kill()  # twice is fine
    assert _wait_dead(pid)


def test_write_after_exit_is_a_board_error(adb_transport):
    proc = adb_transport.start(["true"])
    assert proc.wait(10) == 0
    with pytest.raises(BoardError):
        for _ in range(50):  # the pipe may take a write or two before it breaks
            proc.write_stdin(b"x" * 65536)


# -- files ---------------------------------------------------------------------------
def test_put_get_roundtrip(adb_transport, adbd_standin, tmp_path):
    data = os.urandom(4 * 1024 * 1024 + 5)
    src = tmp_path / "model.rknn"
    src.write_bytes(data)
    home = adb_transport.home()
    assert home == str(adbd_standin.root)
    remote_dir = f"{home}/rk files"
    adb_transport.makedirs(remote_dir)
    remote = f"{remote_dir}/a b.rknn"
    seen = []
    assert adb_transport.put(src, remote, progress=lambda d, t: seen.append((d, t))) == len(data)
    assert seen[0] == (0, len(data)) and seen[-1] == (len(data), len(data))
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert adb_transport.exists(remote) and not adb_transport.exists(remote + ".nope")
    assert adb_transport.sha256(remote) == hashlib.sha256(data).hexdigest()
    assert adb_transport.sha256(remote + ".nope") is None
    back = tmp_path / "back.rknn"
    assert adb_transport.get(remote, back) == len(data)
    assert back.read_bytes() == data
    assert adb_transport.stats.bytes_pushed == adb_transport.stats.bytes_pulled == len(data)
    adb_transport.rename(remote, remote + ".2")
    assert adb_transport.exists(remote + ".2") and not adb_transport.exists(remote)
    adb_transport.remove(remote + ".2")
    adb_transport.remove(remote + ".2")
    assert not adb_transport.exists(remote + ".2")


def test_get_missing_and_push_refused(adb_transport, adbd_standin, tmp_path):
    with pytest.raises(BoardError) as e:
        adb_transport.get(f"{adbd_standin.root}/nope.bin", tmp_path / "x")
    assert "does not exist" in str(e.value) and "\n" not in str(e.value)
    assert not (tmp_path / "x").exists() and not list(tmp_path.glob(".x*"))
    src = tmp_path / "s"
    src.write_bytes(b"data")
    with pytest.raises(BoardError) as e:  # the stand-in refuses sync outside its root
        adb_transport.put(src, str(tmp_path / "outside.bin"))
    assert "adb push" in str(e.value) and adbd_standin.serial in str(e.value)


# -- several boards ------------------------------------------------------------------------
def test_two_boards_in_parallel(adb_server, adbd_standin_factory):
    devs = [adbd_standin_factory(f"b{i}") for i in range(2)]
    transports = [open_transport(d.board, **adb_server.transport_opts()) for d in devs]
    results = {}

    def work(i):
        results[i] = transports[i].run(["sh", "-c", "sleep 0.3; pwd"]).stdout.decode().strip()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert results == {0: str(devs[0].root), 1: str(devs[1].root)}
    for t in transports:
        t.close()


def test_only_device_address(adbd_standin_factory):
    # `--board adb`: the only device of a (private, fresh) adb server
    dev = adbd_standin_factory("only")
    with AdbServer() as server:
        with pytest.raises(BoardError) as e:
            AdbTransport(parse_board("adb"), **server.transport_opts())
        assert "no adb device" in str(e.value)
        server.connect(dev.serial)
        locked = adbd_standin_factory("locked", handshake="unauthorized")
        server.adb("connect", locked.serial)  # an unauthorized leftover does not count
        with AdbTransport(parse_board("adb"), **server.transport_opts()) as t:
            assert t.serial == dev.serial
            assert t.run(["pwd"]).stdout.decode().strip() == str(dev.root)
        other = adbd_standin_factory("other")
        server.connect(other.serial)
        with pytest.raises(BoardError) as e:
            AdbTransport(parse_board("adb"), **server.transport_opts())
        assert "more than one adb device" in str(e.value) and other.serial in str(e.value)
        assert "adb:SERIAL" in str(e.value)


# -- errors ---------------------------------------------------------------------------------
def _one_line(err: BaseException) -> str:
    text = str(err)
    assert "\n" not in text
    return text


def test_unknown_serial(adb_server):
    with pytest.raises(BoardError) as e:
        AdbTransport(parse_board("adb:no-such-board-123"), **adb_server.transport_opts())
    text = _one_line(e.value)
    assert "no-such-board-123" in text and "not found" in text and "adb -P" in text and "devices" in text
    assert e.value.exit_code == 3


def test_standin_down(adb_server):
    port = free_port()  # nothing listens there
    with pytest.raises(BoardError) as e:
        open_transport(f"adb://127.0.0.1:{port}", **adb_server.transport_opts())
    text = _one_line(e.value)
    assert f"127.0.0.1:{port}" in text and "refused" in text.lower() and "adbd" in text
    assert adb_server.state(f"127.0.0.1:{port}") is None  # nothing left behind


def test_unauthorized(adb_server, adbd_standin_factory):
    dev = adbd_standin_factory("locked", handshake="unauthorized")
    with pytest.raises(BoardError) as e:
        open_transport(dev.board, **adb_server.transport_opts())
    text = _one_line(e.value)
    assert dev.serial in text and "unauthorized" in text and "RSA key" in text


def test_offline(adb_server, adbd_standin_factory):
    dev = adbd_standin_factory("flaky")
    adb_server.connect(dev.serial)
    dev.handshake = "silent"  # the board's adbd stops answering
    dev.drop_connections()
    deadline = time.monotonic() + 10
    while adb_server.state(dev.serial) != "offline" and time.monotonic() < deadline:
        time.sleep(0.05)
    with pytest.raises(BoardError) as e:
        open_transport(dev.board, **adb_server.transport_opts())
    text = _one_line(e.value)
    assert dev.serial in text and "offline" in text


def test_connection_lost_mid_command_is_not_success(adb_transport, adbd_standin):
    # adb clients up to 29.x exit 0 when the stream drops; the transport must not
    proc = adb_transport.start(["sh", "-c", "echo started; exec sleep 30"])
    assert proc.readline(10) == b"started\n"
    t = threading.Timer(0.3, adbd_standin.drop_connections)
    t.start()
    with pytest.raises(BoardError) as e:
        adb_transport.run(["sh", "-c", "sleep 5; echo never"], timeout=20)
    t.join()
    assert "lost" in _one_line(e.value) or "offline" in str(e.value)
    assert proc.wait(10) != 0
    assert "lost" in proc.stderr_tail() or "offline" in proc.stderr_tail()


def test_missing_adb_client(tmp_path):
    with pytest.raises(BoardError) as e:
        AdbTransport(parse_board("adb://127.0.0.1:5555"), adb_path=str(tmp_path / "no-adb"))
    assert "adb client not found" in _one_line(e.value) and "apt-get install adb" in str(e.value)
