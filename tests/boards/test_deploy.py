"""deploy: the content-addressed cache on the board, over real SSH and locally."""

import hashlib
import io
import os
import tarfile

import pytest

from rkbench.boards import deploy as dep
from rkbench.boards.deploy import DeployStats, ensure_blob, ensure_runner, runner_tarball
from rkbench.boards.transport import open_transport
from rkbench.boards.transport.local import LocalTransport
from rkbench.errors import BoardError, DiskFullError


@pytest.fixture
def blob(tmp_path):
    p = tmp_path / "model.rknn"
    p.write_bytes(os.urandom(2_000_000))
    return p


@pytest.fixture
def board(sshd):
    with open_transport(sshd.board) as t:
        yield t


def sha(p):
    return hashlib.sha256(p.read_bytes()).hexdigest()


def listing(path):
    return sorted(os.listdir(path)) if os.path.isdir(path) else []


def test_push_once_then_reuse(board, sshd, blob):
    s1 = DeployStats()
    remote = ensure_blob(board, blob, stats=s1)
    assert remote == f"{sshd.home}/.cache/rkbench/blobs/{sha(blob)}.rknn"
    assert (s1.bytes_pushed, s1.blobs_pushed, s1.blobs_reused) == (2_000_000, 1, 0)
    assert open(remote, "rb").read() == blob.read_bytes()  # the "board" is this machine
    s2 = DeployStats()
    before = board.stats.bytes_pushed
    assert ensure_blob(board, blob, stats=s2) == remote
    assert (s2.bytes_pushed, s2.blobs_pushed, s2.blobs_reused) == (0, 0, 1)
    assert board.stats.bytes_pushed == before
    assert listing(os.path.dirname(remote)) == [os.path.basename(remote)]  # no temp files


def test_other_cache_dir(board, sshd, blob, tmp_path):
    remote = ensure_blob(board, blob, cache=str(tmp_path / "c"))
    assert remote.startswith(str(tmp_path / "c" / "blobs"))


class Interrupted(Exception):
    pass


def test_interrupted_upload_leaves_no_blob(board, sshd, blob):
    def progress(done, total):
        if done > total // 2:
            raise Interrupted()

    with pytest.raises(Interrupted):
        ensure_blob(board, blob, progress=progress)
    blobs = f"{sshd.home}/.cache/rkbench/blobs"
    assert listing(blobs) == []  # no final name, and the partial temp file was removed
    # next time it is pushed whole
    s = DeployStats()
    remote = ensure_blob(board, blob, stats=s)
    assert s.blobs_pushed == 1 and sha(blob) == hashlib.sha256(open(remote, "rb").read()).hexdigest()


def test_connection_dropped_mid_upload(sshd, blob):
    t = open_transport(sshd.board)

    def progress(done, total):
        if done > total // 3:
            t._t.close()  # the network goes away

    with pytest.raises(BoardError):
        ensure_blob(t, blob, progress=progress)
    t.close()
    with open_transport(sshd.board) as t2:
        final = dep.blob_path(t2, sha(blob), ".rknn")
        assert not t2.exists(final)


def test_corrupt_blob_detected_and_repushed(board, sshd, blob):
    remote = ensure_blob(board, blob)
    with open(remote, "r+b") as f:  # bit rot on the board
        f.seek(1000)
        f.write(b"\0garbage\0")
    s = DeployStats()
    assert ensure_blob(board, blob, stats=s) == remote
    assert s.blobs_pushed == 1 and s.bytes_pushed == 2_000_000
    assert open(remote, "rb").read() == blob.read_bytes()
    os.truncate(remote, 10)  # truncated
    ensure_blob(board, blob)
    assert open(remote, "rb").read() == blob.read_bytes()


class FlakyLocal(LocalTransport):
    """Corrupts the first `bad` uploads (a bad cable, bad RAM)."""

    def __init__(self, home, bad):
        super().__init__(home=home)
        self.bad = bad

    def put(self, local_path, remote_path, progress=None):
        n = super().put(local_path, remote_path, progress)
        if self.bad > 0:
            self.bad -= 1
            with open(remote_path, "r+b") as f:
                f.write(b"XX")
        return n


def test_corrupt_upload_retried_once_then_error(tmp_path, blob):
    t = FlakyLocal(str(tmp_path / "b1"), bad=1)
    s = DeployStats()
    remote = ensure_blob(t, blob, stats=s)
    assert open(remote, "rb").read() == blob.read_bytes()
    assert s.blobs_pushed == 1 and s.bytes_pushed == 4_000_000  # pushed twice

    t = FlakyLocal(str(tmp_path / "b2"), bad=5)
    with pytest.raises(BoardError) as e:
        ensure_blob(t, blob)
    assert "corrupted" in str(e.value) and "model.rknn" in str(e.value)
    assert listing(tmp_path / "b2" / ".cache" / "rkbench" / "blobs") == []


def test_disk_full(sshd_factory, tmp_path):
    if os.getuid() != 0:
        pytest.skip("needs root to mount a tiny tmpfs in a private namespace")
    # the board's cache directory is a 1 MB tmpfs, private to this sshd
    server = sshd_factory(tmpfs=(str(tmp_path / "sshd0" / "home" / ".cache"), "1m"))
    big = tmp_path / "big.rknn"
    big.write_bytes(os.urandom(3_000_000))
    with open_transport(server.board) as t:
        with pytest.raises(DiskFullError) as e:
            ensure_blob(t, big)
        msg = str(e.value)
        assert server.board in msg and "disk full" in msg and "/.cache/rkbench/blobs/" in msg
        assert "\n" not in msg
        res = t.run(["ls", "-A", f"{server.home}/.cache/rkbench/blobs"], check=True)
        assert res.stdout == b""  # temp file cleaned up, nothing under the final name


def test_local_transport_deploys(tmp_path, blob):
    t = LocalTransport(home=str(tmp_path / "boardhome"))
    s = DeployStats()
    remote = ensure_blob(t, blob, stats=s)
    assert remote.startswith(str((tmp_path / "boardhome").resolve()))
    assert s.bytes_pushed == 2_000_000
    s = DeployStats()
    ensure_blob(t, blob, stats=s)
    assert s.bytes_pushed == 0 and s.blobs_reused == 1


def test_missing_local_file(board, tmp_path):
    with pytest.raises(Exception) as e:
        ensure_blob(board, tmp_path / "nope.rknn")
    assert "nope.rknn" in str(e.value)


# --------------------------------------------------------------------------- runner
def fake_packages(root):
    dev = root / "rkbench_device"
    wire = root / "rkbench_wire"
    (dev / "backends").mkdir(parents=True)
    wire.mkdir()
    (dev / "__init__.py").write_text("VERSION = 'fake'\n")
    (dev / "__main__.py").write_text("import sys\nprint('runner ok', sys.argv[1:])\n")
    (dev / "backends" / "__init__.py").write_text("")
    (dev / "notes.txt").write_text("not shipped")
    (dev / "__pycache__").mkdir()
    (dev / "__pycache__" / "x.py").write_text("not shipped")
    (wire / "__init__.py").write_text("PROTOCOL = 1\n")
    return [dev, wire]


def test_runner_tarball_is_deterministic(tmp_path):
    pkgs = fake_packages(tmp_path)
    a = runner_tarball(pkgs)
    os.utime(pkgs[0] / "__init__.py", (1, 1))
    assert runner_tarball(pkgs) == a
    names = tarfile.open(fileobj=io.BytesIO(a)).getnames()
    assert "rkbench_device/__main__.py" in names and "rkbench_device/backends/__init__.py" in names
    assert not any("pycache" in n or n.endswith(".txt") for n in names)
    (pkgs[1] / "__init__.py").write_text("PROTOCOL = 2\n")
    assert runner_tarball(pkgs) != a


def test_ensure_runner_fake_packages(board, sshd, tmp_path):
    pkgs = fake_packages(tmp_path / "src")
    s = DeployStats()
    d = ensure_runner(board, stats=s, package_dirs=pkgs)
    assert d.startswith(f"{sshd.home}/.cache/rkbench/runner/")
    assert s.blobs_pushed == 1 and s.bytes_pushed > 0
    res = board.run(["env", f"PYTHONPATH={d}", "python3", "-m", "rkbench_device", "--x"], check=True)
    assert res.stdout == b"runner ok ['--x']\n"
    s2 = DeployStats()
    assert ensure_runner(board, stats=s2, package_dirs=pkgs) == d
    assert s2.bytes_pushed == 0
    # a half-extracted dir (no marker) is redone
    os.unlink(os.path.join(d, dep.COMPLETE_MARKER))
    assert ensure_runner(board, package_dirs=pkgs) == d
    assert os.path.exists(os.path.join(d, dep.COMPLETE_MARKER))


def test_ensure_runner_real_packages(board):
    try:
        dep.find_package_dir("rkbench_device")
        dep.find_package_dir("rkbench_wire")
    except BoardError:
        pytest.skip("runner packages not written yet")
    d = ensure_runner(board)
    res = board.run(
        ["env", f"PYTHONPATH={d}", "python3", "-c", "import rkbench_device, rkbench_wire; print('ok')"], check=True
    )
    assert res.stdout == b"ok\n"
