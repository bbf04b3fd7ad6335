"""provision: wheels pushed to a loopback sshd "board" and installed there with pip
--no-index, into a throwaway Python environment (never this machine's own Python).

An aarch64 rknn-toolkit-lite2 wheel cannot install on x86, so the real download is
checked by its file name and by a dry run (the pip command that would run on the
board, the files that arrive); real installs use small wheels built here."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from rkbench.boards import provision as prov
from rkbench.boards.connect import open_board
from rkbench.boards.provision import (
    default_lite2_requirement,
    find_cached_wheel,
    missing_requirements,
    pip_download_argv,
    provision,
    wheel_metadata,
    wheel_tags_fit,
)
from rkbench.boards.runner_command import RunnerFailed
from rkbench.errors import BoardError, InputFileError, UsageError
from tests.support.boards import REPO, board_venv, make_wheel, write_script

SCRIPT = REPO / "deploy" / "provision-board.sh"


def board_import(python: Path, code: str) -> str:
    return subprocess.run([str(python), "-c", code], check=True, capture_output=True, text=True).stdout.strip()


# -- pieces ------------------------------------------------------------------------
def test_pip_download_command_for_an_aarch64_board(tmp_path):
    argv = pip_download_argv(["rknn-toolkit-lite2==2.5.0"], "3.11.2", "aarch64", tmp_path, host_python="py")
    assert argv == [
        "py",
        "-m",
        "pip",
        "download",
        "rknn-toolkit-lite2==2.5.0",
        "--no-deps",
        "--only-binary=:all:",
        "--platform",
        "manylinux_2_17_aarch64",
        "--platform",
        "manylinux2014_aarch64",
        "--python-version",
        "3.11",
        "--implementation",
        "cp",
        "--disable-pip-version-check",
        "-d",
        str(tmp_path),
    ]
    with_deps = pip_download_argv(["numpy"], "3.8.10", "arm64", tmp_path, no_deps=False, host_python="py")
    assert "--no-deps" not in with_deps and "3.8" in with_deps and "manylinux2014_aarch64" in with_deps
    with pytest.raises(UsageError, match="riscv64"):
        pip_download_argv(["numpy"], "3.11", "riscv64", tmp_path)


def test_lite2_version_follows_the_host_toolkit():
    assert default_lite2_requirement("2.5.0") == "rknn-toolkit-lite2==2.5.0"
    assert default_lite2_requirement("2.3.2b1") == "rknn-toolkit-lite2==2.3.2"
    assert default_lite2_requirement(None) == "rknn-toolkit-lite2>=2,<3"


def test_requirements_the_board_lacks():
    requires = [
        "numpy",
        "psutil>=5",
        "ruamel.yaml",
        "typing-extensions; python_version < '3.8'",
        "colorama; sys_platform == 'win32'",
    ]
    installed = {"numpy": "1.24.4", "psutil": "4.0"}
    assert missing_requirements(requires, installed, "3.11.2", "aarch64") == ["psutil>=5", "ruamel.yaml"]
    assert missing_requirements(requires, {}, "3.7.3", "aarch64")[-1] == "typing-extensions"


def test_wheel_tags():
    lite2 = "rknn_toolkit_lite2-2.5.0-cp311-cp311-manylinux_2_17_aarch64.manylinux2014_aarch64.whl"
    assert wheel_tags_fit(lite2, "3.11.2", "aarch64")
    assert not wheel_tags_fit(lite2, "3.10.12", "aarch64") and not wheel_tags_fit(lite2, "3.11", "x86_64")
    assert wheel_tags_fit("pip-24.0-py3-none-any.whl", "3.8.10", "aarch64")
    assert wheel_tags_fit("psutil-6.0.0-cp36-abi3-manylinux_2_17_aarch64.manylinux2014_aarch64.whl", "3.9", "aarch64")


def test_wheel_metadata_and_cache_lookup(tmp_path):
    whl = make_wheel(tmp_path, "probe-pkg", "1.2.0", requires=["numpy>=1.20"])
    make_wheel(tmp_path, "probe-pkg", "1.1.0")
    assert wheel_metadata(whl) == ("probe-pkg", "1.2.0", ["numpy>=1.20"])
    assert find_cached_wheel(tmp_path, "probe-pkg", "3.11", "aarch64") == whl  # the newest
    assert find_cached_wheel(tmp_path, "probe-pkg==1.1.0", "3.11", "aarch64").name.startswith("probe_pkg-1.1.0")
    assert find_cached_wheel(tmp_path, "probe-pkg>2", "3.11", "aarch64") is None
    bad = tmp_path / "bad.whl"
    bad.write_bytes(b"not a zip")
    with pytest.raises(InputFileError, match="not a readable wheel"):
        wheel_metadata(bad)


# -- provisioning a board ------------------------------------------------------------
@pytest.fixture
def board_python(tmp_path):
    """A throwaway Python for the "board": sees numpy and pip, installs into itself."""
    return board_venv(tmp_path / "board-venv")


def test_provision_a_local_wheel_over_ssh(ssh_board, sshd, board_python, tmp_path):
    whl = make_wheel(tmp_path / "wheels", requires=["numpy>=1.0"])
    said = []
    report = provision(ssh_board, wheel=whl, python=str(board_python), log=said.append)

    assert report.installed["rkbench-probe-pkg"] == "0.1.0"
    assert board_import(board_python, "import rkbench_probe_pkg as m; print(m.VERSION)") == "0.1.0"
    # the pip command that ran on the board
    cmd = report.pip_command
    house = f"{sshd.home}/.cache/rkbench/provision/"
    assert cmd.startswith(f"{board_python} -m pip install --no-index --find-links {house}")
    assert cmd.endswith("/rkbench_probe_pkg-0.1.0-py3-none-any.whl")
    # what arrived: the script and the wheel as content-addressed blobs, the wheelhouse cleaned up
    blobs = os.listdir(sshd.home / ".cache/rkbench/blobs")
    assert sorted(b.rsplit(".", 1)[-1] for b in blobs) == ["sh", "tar", "whl"]  # script, runner, wheel
    assert os.listdir(sshd.home / ".cache/rkbench/provision") == []  # the wheelhouse is cleaned up
    assert [w.reason for w in report.wheels] == ["given with --wheel"]  # numpy is there already
    assert said[0].startswith(f"ssh {sshd.board}: Python 3.") and "numpy missing" not in said[0]

    again = provision(ssh_board, wheel=whl, python=str(board_python))
    assert again.pushed.bytes_pushed == 0 and again.pushed.blobs_reused == 2


def test_dry_run_installs_nothing(ssh_board, board_python, tmp_path):
    whl = make_wheel(tmp_path / "wheels", "dry-probe", "3.0")
    report = provision(ssh_board, wheel=whl, python=str(board_python), dry_run=True)
    assert report.dry_run and report.installed == {}
    assert "--no-index" in report.pip_command and "dry run: nothing installed" in report.log
    with pytest.raises(subprocess.CalledProcessError):
        board_import(board_python, "import dry_probe")


def test_librknnrt_is_replaced_atomically(local_board, board_python, tmp_path):
    lib = tmp_path / "librknnrt.so"
    lib.write_bytes(b"\x7fELF...librknnrt version: 2.5.0 (abc@2025)\x00" * 100)
    dest_dir = tmp_path / "usr-lib"
    dest_dir.mkdir()
    (dest_dir / "librknnrt.so").write_bytes(b"old runtime")
    whl = make_wheel(tmp_path / "wheels")
    report = provision(
        local_board, wheel=whl, python=str(board_python), librknnrt=lib, librknnrt_dest=str(dest_dir / "librknnrt.so")
    )
    assert report.librknnrt == str(dest_dir / "librknnrt.so")
    assert (dest_dir / "librknnrt.so").read_bytes() == lib.read_bytes()
    assert os.listdir(dest_dir) == ["librknnrt.so"]  # no temp file left


def test_librknnrt_needs_root(board_python, tmp_path):
    fake = tmp_path / "fakebin"
    fake.mkdir()
    write_script(fake / "id", "#!/bin/sh\necho 1000\n")
    env = dict(os.environ, PATH=f"{fake}:{os.environ['PATH']}")
    lib = tmp_path / "librknnrt.so"
    lib.write_bytes(b"lib")
    with open_board("local", home=str(tmp_path / "home"), env=env) as board:
        with pytest.raises(BoardError) as err:
            provision(
                board,
                wheel=make_wheel(tmp_path / "w"),
                python=str(board_python),
                librknnrt=lib,
                librknnrt_dest=str(tmp_path / "librknnrt.so"),
            )
    msg = str(err.value)
    assert "needs root" in msg and "root@" in msg
    assert not (tmp_path / "librknnrt.so.rkbench-tmp").exists()


def test_pip_failure_is_reported(local_board, board_python, tmp_path):
    # an aarch64-only wheel on this x86 "board": pip on the board refuses it
    whl = make_wheel(tmp_path / "wheels", "arm-only", "1.0")
    arm = whl.with_name("arm_only-1.0-cp311-cp311-manylinux2014_aarch64.whl")
    whl.rename(arm)
    with pytest.raises(BoardError) as err:
        provision(local_board, wheel=arm, python=str(board_python))
    msg = str(err.value)
    assert "pip install failed" in msg and "not a supported wheel" in msg
    assert "\n" not in msg


def test_wrong_inputs(local_board, board_python, tmp_path):
    with pytest.raises(InputFileError, match="not a .whl"):
        provision(local_board, wheel=tmp_path / "missing.whl", python=str(board_python))
    with pytest.raises(InputFileError, match="--librknnrt"):
        provision(local_board, wheel=make_wheel(tmp_path), librknnrt=tmp_path / "nope.so")
    with pytest.raises(UsageError, match="not both"):
        provision(local_board, wheel=make_wheel(tmp_path), version="2.5.0")
    # lite2 exists for aarch64 only: this x86 "board" is refused before any download
    with pytest.raises(UsageError, match="aarch64"):
        provision(local_board, version="2.5.0", python=str(board_python))
    with pytest.raises(RunnerFailed, match="not on the board"):
        provision(local_board, wheel=make_wheel(tmp_path), python="/nonexistent/python3")


def test_script_is_posix_sh():
    for shell in ("dash", "sh"):
        path = subprocess.run(["sh", "-c", f"command -v {shell}"], capture_output=True, text=True).stdout.strip()
        if path:
            subprocess.run([path, "-n", str(SCRIPT)], check=True)
    res = subprocess.run(["sh", str(SCRIPT), "--bogus"], capture_output=True, text=True)
    assert res.returncode == 64 and "unknown option" in res.stderr


# -- with the network (PyPI) ------------------------------------------------------------
@pytest.mark.slow
def test_real_lite2_download_and_dry_run(ssh_board, board_python, tmp_path):
    cache = tmp_path / "wheel-cache"
    [wheel] = prov.download(["rknn-toolkit-lite2==2.5.0"], "3.11.2", "aarch64", cache)
    assert wheel.name.startswith("rknn_toolkit_lite2-2.5.0-cp311-cp311-")
    assert "manylinux2014_aarch64" in wheel.name or "manylinux_2_17_aarch64" in wheel.name
    name, version, requires = wheel_metadata(wheel)
    assert (name, version) == ("rknn-toolkit-lite2", "2.5.0") and "numpy" in [r.split()[0] for r in requires]
    assert find_cached_wheel(cache, "rknn-toolkit-lite2==2.5.0", "3.11", "aarch64") == wheel
    assert find_cached_wheel(cache, "rknn-toolkit-lite2==2.5.0", "3.10", "aarch64") is None

    # dry run on the x86 loopback "board": the wheel and what it needs arrive, pip is not run
    said = []
    report = provision(ssh_board, wheel=wheel, python=str(board_python), dry_run=True, wheel_dir=cache, log=said.append)
    assert any("does not look built for Python 3.11 on x86_64" in s for s in said)
    assert report.wheels[0].path == wheel
    assert "--no-index --find-links" in report.pip_command and wheel.name in report.pip_command


@pytest.mark.slow
def test_bare_board_gets_numpy_and_pip(ssh_board, tmp_path):
    """A board Python with neither pip nor numpy: both come as wheels from the host."""
    bare = board_venv(tmp_path / "bare", see_host_packages=False)
    whl = make_wheel(tmp_path / "wheels")
    report = provision(ssh_board, wheel=whl, python=str(bare), wheel_dir=tmp_path / "wc")
    reasons = {w.name: w.reason for w in report.wheels}
    assert reasons["numpy"] == "missing on the board" and reasons["pip"] == "missing on the board"
    assert "pip install" in report.pip_command and ".whl/pip install" in report.pip_command
    assert report.installed["numpy"] and report.installed["pip"]
    assert board_import(bare, "import numpy, rkbench_probe_pkg; print('ok')") == "ok"
    # a second provision finds everything in the host's wheel cache: no network, nothing pushed
    original = prov.download
    prov.download = lambda *a, **kw: (_ for _ in ()).throw(AssertionError("downloaded again"))
    try:
        again = provision(ssh_board, wheel=whl, python=str(bare), wheel_dir=tmp_path / "wc")
    finally:
        prov.download = original
    assert again.pushed.bytes_pushed == 0
