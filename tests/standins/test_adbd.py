"""The adbd stand-in, checked with the real adb client alone (no rkbench code):
if these pass, the stand-in speaks enough of adb for the transport tests."""

import hashlib
import os

from tests.standins.adbd import STANDIN_MODEL, AdbdStandin


def _adb_shell(server, dev, *args, input=None):
    return server.adb("-s", dev.serial, "shell", *args, input=input)


def test_connect_banner_marks_the_standin(adb_server, adbd_standin):
    out = adb_server.connect(adbd_standin.serial)
    assert "connected to" in out
    assert adb_server.state(adbd_standin.serial) == "device"
    listing = adb_server.adb("devices", "-l").stdout.decode()
    line = next(ln for ln in listing.splitlines() if ln.startswith(adbd_standin.serial))
    # adb shows the banner's ro.product.model with '-' made '_'
    assert "model:" + STANDIN_MODEL.replace("-", "_") in line
    assert "shell_v2" in adb_server.adb("-s", adbd_standin.serial, "features").stdout.decode()
    assert adbd_standin.host_banners and adbd_standin.host_banners[0].startswith("host::")


def test_exit_codes_and_separate_streams(adb_server, adbd_standin):
    adb_server.connect(adbd_standin.serial)
    assert _adb_shell(adb_server, adbd_standin, "exit 3").returncode == 3
    res = _adb_shell(adb_server, adbd_standin, "echo out; echo err >&2; pwd; exit 0")
    assert res.returncode == 0
    assert res.stdout == f"out\n{adbd_standin.root}\n".encode()
    assert res.stderr == b"err\n"
    # the client used the shell protocol v2, without a pty
    assert any(s.startswith("shell,v2,") and ",raw:" in s for s in adbd_standin.services_opened)


def test_stdin_forwarded_then_eof(adb_server, adbd_standin):
    adb_server.connect(adbd_standin.serial)
    res = _adb_shell(adb_server, adbd_standin, "cat; echo end", input=b"line 1\nline 2\n")
    assert (res.returncode, res.stdout) == (0, b"line 1\nline 2\nend\n")


def test_legacy_shell_and_pty(adb_server, adbd_standin):
    adb_server.connect(adbd_standin.serial)
    res = _adb_shell(adb_server, adbd_standin, "-x", "echo legacy; exit 4")
    assert res.stdout == b"legacy\r\n"  # a pty, and no exit status without shell v2
    assert res.returncode == 0
    assert "shell:echo legacy; exit 4" in adbd_standin.services_opened
    res = _adb_shell(adb_server, adbd_standin, "-tt", "test -t 1 && echo tty; exit 6")
    assert (res.returncode, res.stdout) == (6, b"tty\r\n")


def test_push_pull_roundtrip(adb_server, adbd_standin, tmp_path):
    adb_server.connect(adbd_standin.serial)
    data = os.urandom(3 * 1024 * 1024 + 17)
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    remote = f"{adbd_standin.root}/new/dir/blob.bin"  # parents created (fixed_push_mkdir)
    res = adb_server.adb("-s", adbd_standin.serial, "push", str(src), remote)
    assert res.returncode == 0, res
    assert hashlib.sha256(open(remote, "rb").read()).digest() == hashlib.sha256(data).digest()
    back = tmp_path / "back.bin"
    res = adb_server.adb("-s", adbd_standin.serial, "pull", remote, str(back))
    assert res.returncode == 0, res
    assert back.read_bytes() == data
    assert adbd_standin.stats["bytes_pushed"] == adbd_standin.stats["bytes_pulled"] == len(data)
    res = adb_server.adb("-s", adbd_standin.serial, "pull", f"{adbd_standin.root}/missing", str(back))
    assert res.returncode != 0 and b"No such file" in res.stdout + res.stderr
    listing = adb_server.adb("-s", adbd_standin.serial, "ls", f"{adbd_standin.root}/new/dir").stdout
    assert b"blob.bin" in listing


def test_sync_is_confined_to_the_device_root(adb_server, adbd_standin, tmp_path):
    adb_server.connect(adbd_standin.serial)
    src = tmp_path / "x"
    src.write_bytes(b"x")
    res = adb_server.adb("-s", adbd_standin.serial, "push", str(src), str(tmp_path / "outside"))
    assert res.returncode != 0
    assert not (tmp_path / "outside").exists()


def test_small_maxdata_splits_writes(adb_server, adbd_standin_factory, tmp_path):
    # 4 KiB messages: every sync DATA chunk and shell packet spans several WRTEs
    dev = adbd_standin_factory("small", max_payload=4096)
    adb_server.connect(dev.serial)
    data = os.urandom(300_000)
    (tmp_path / "s.bin").write_bytes(data)
    assert adb_server.adb("-s", dev.serial, "push", str(tmp_path / "s.bin"), "s.bin").returncode == 0
    assert (dev.root / "s.bin").read_bytes() == data
    res = adb_server.adb("-s", dev.serial, "shell", "cat s.bin")
    assert res.returncode == 0 and res.stdout == data


def test_several_standins_at_once(adb_server, adbd_standin_factory):
    devs = [adbd_standin_factory(f"dev{i}") for i in range(3)]
    for d in devs:
        adb_server.connect(d.serial)
    assert len({d.port for d in devs}) == 3
    for d in devs:
        res = adb_server.adb("-s", d.serial, "shell", "pwd")
        assert res.stdout.decode().strip() == str(d.root)


def test_standin_listens_on_loopback_only(tmp_path):
    import pytest

    with pytest.raises(ValueError):
        AdbdStandin(tmp_path, host="0.0.0.0")
