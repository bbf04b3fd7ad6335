"""The same behaviour from every transport: local (subprocess) and ssh (real sshd)."""

import os
import time

import pytest

from rkbench.boards.transport import open_transport
from rkbench.boards.transport.base import (
    CommandFailed,
    LinePump,
    RemoteProcess,
    TailBuffer,
    Transport,
    TransportTimeout,
    quote_argv,
)
from rkbench.boards.transport.local import LocalTransport
from rkbench.errors import BoardError

NASTY = [
    "two words",
    "it's",
    'say "hi"',
    "$(touch /tmp/rkbench-pwned)",
    "`id`",
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


@pytest.fixture(params=["local", "ssh"])
def transport(request, tmp_path):
    if request.param == "local":
        t = LocalTransport(home=str(tmp_path))
    else:
        server = request.getfixturevalue("sshd")
        t = open_transport(server.board)
    with t:
        yield t


def test_quote_argv():
    assert quote_argv(["echo", "a b", "it's"]) == "echo 'a b' 'it'\"'\"'s'"
    with pytest.raises(TypeError):
        quote_argv("echo hi")
    with pytest.raises(ValueError):
        quote_argv([])


def test_is_a_transport(transport):
    assert isinstance(transport, Transport)
    assert transport.describe()


def test_exit_codes(transport):
    assert transport.run(["true"]).returncode == 0
    assert transport.run(["false"]).returncode == 1
    res = transport.run(["sh", "-c", "echo out; echo err >&2; exit 42"])
    assert (res.returncode, res.stdout, res.stderr) == (42, b"out\n", b"err\n")
    assert transport.run(["definitely-not-a-command-xyz"]).returncode == 127


def test_check_raises_one_line(transport):
    with pytest.raises(CommandFailed) as e:
        transport.run(["sh", "-c", "echo boom >&2; exit 3"], check=True)
    assert "exit 3" in str(e.value) and "boom" in str(e.value)
    assert "\n" not in str(e.value)
    assert isinstance(e.value, BoardError)


def test_nasty_args_arrive_literally(transport):
    if os.path.exists("/tmp/rkbench-pwned"):
        os.unlink("/tmp/rkbench-pwned")
    script = "import sys, json; print(json.dumps(sys.argv[1:]))"
    res = transport.run(["python3", "-c", script] + NASTY, check=True)
    import json

    assert json.loads(res.stdout) == NASTY
    assert not os.path.exists("/tmp/rkbench-pwned")


def test_stdin_and_binary(transport):
    data = bytes(range(256)) * 4096  # 1 MiB, binary, no newlines at the end
    res = transport.run(["sh", "-c", "cat"], stdin=data, check=True)
    assert res.stdout == data
    res = transport.run(["wc", "-c"], stdin=b"")
    assert res.stdout.strip() == b"0"


def test_no_stdin_means_eof(transport):
    # a command reading stdin must not hang when nothing is given
    res = transport.run(["cat"], timeout=10)
    assert res.returncode == 0 and res.stdout == b""


def test_timeout(transport):
    nap = f"sleep 30.{os.getpid()}{time.monotonic_ns() % 100000}"  # unique, to find it again
    t0 = time.monotonic()
    with pytest.raises(TransportTimeout) as e:
        transport.run(["sh", "-c", nap], timeout=0.5)
    assert time.monotonic() - t0 < 5
    assert "0.5 s" in str(e.value) and nap in str(e.value)
    # the command and its child are gone on the board
    time.sleep(0.2)
    res = transport.run(["sh", "-c", f"ps -eo args | grep -c '^{nap}$' || true"])
    assert res.stdout.strip() == b"0"


def test_streaming_lines_arrive_as_written(transport):
    proc = transport.start(["sh", "-c", "echo one; sleep 1; echo two; echo oops >&2; exit 5"])
    assert isinstance(proc, RemoteProcess)
    t0 = time.monotonic()
    first = proc.readline(timeout=10)
    assert first == b"one\n"
    assert time.monotonic() - t0 < 0.9  # arrived before the command finished
    assert proc.returncode is None
    assert list(proc) == [b"two\n"]
    assert proc.wait(10) == 5
    assert proc.returncode == 5
    assert "oops" in proc.stderr_tail()


def test_streaming_stdin_dialogue(transport):
    echo = "import sys\nfor line in sys.stdin:\n    print(line.strip().upper(), flush=True)\n"
    with transport.start(["python3", "-u", "-c", echo]) as proc:
        proc.write_stdin(b"hello\n")
        assert proc.readline(10) == b"HELLO\n"
        proc.write_stdin(b"world\n")
        assert proc.readline(10) == b"WORLD\n"
        proc.close_stdin()  # the runner's way to stop: EOF on stdin
        assert proc.readline(10) == b""
        assert proc.wait(10) == 0


def test_streaming_readline_timeout_and_kill(transport):
    proc = transport.start(["sh", "-c", "sleep 30"])
    with pytest.raises(TransportTimeout):
        proc.readline(timeout=0.3)
    with pytest.raises(TransportTimeout):
        proc.wait(0.2)
    proc.kill()
    assert proc.returncode is not None and proc.returncode != 0
    proc.kill()  # twice is fine


def test_files_roundtrip(transport, tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(os.urandom(300_000))
    remote_dir = f"{transport.home()}/rk-files"
    transport.makedirs(remote_dir)
    transport.makedirs(remote_dir)  # idempotent
    remote = f"{remote_dir}/a b.bin"
    seen = []
    before = transport.stats.bytes_pushed
    assert transport.put(src, remote, progress=lambda done, total: seen.append((done, total))) == 300_000
    assert transport.stats.bytes_pushed - before == 300_000
    assert seen and seen[-1] == (300_000, 300_000)
    assert transport.exists(remote)
    import hashlib

    assert transport.sha256(remote) == hashlib.sha256(src.read_bytes()).hexdigest()
    dst = tmp_path / "back.bin"
    assert transport.get(remote, dst) == 300_000
    assert dst.read_bytes() == src.read_bytes()
    transport.rename(remote, remote + ".2")
    assert not transport.exists(remote) and transport.exists(remote + ".2")
    transport.remove(remote + ".2")
    transport.remove(remote + ".2")  # missing is fine
    assert not transport.exists(remote + ".2")
    assert transport.sha256(remote + ".2") is None


def test_home_is_absolute(transport):
    assert transport.home().startswith("/")


def test_line_pump_and_tail_buffer():
    chunks = [b"a\nb", b"c\n", b"", b"tail"]
    it = iter(chunks)
    pump = LinePump(lambda n: next(it))
    assert [pump.readline(1), pump.readline(1)] == [b"a\n", b"bc\n"]
    assert pump.readline(1) == b""
    tb = TailBuffer(limit=10)
    for i in range(100):
        tb.feed(b"%03d," % i)
    assert tb.text().endswith("098,099,") and len(tb.data()) <= 10
