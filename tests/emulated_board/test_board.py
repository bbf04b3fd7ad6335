"""The emulated board itself: what its Python sees (machine, glibc, device tree, /sys, the
runtime library), that the cached root is reused and keyed by what goes into it."""

from __future__ import annotations

import json
import subprocess

import pytest

from . import rootfs
from .flavours import BOOKWORM, BULLSEYE, Flavour

pytestmark = pytest.mark.emulated

LOOK = """
import json, os, platform, sys
def read(p):
    try:
        return open(p, "rb").read().decode("ascii", "replace")
    except OSError as exc:
        return "missing: %s" % exc.strerror
print(json.dumps({
    "machine": platform.machine(), "release": platform.release(), "python": platform.python_version(),
    "glibc": platform.libc_ver()[1], "compatible": read("/proc/device-tree/compatible"),
    "devfreq": sorted(os.listdir("/sys/class/devfreq")), "os": read("/etc/os-release").splitlines()[0],
    "librknnrt": os.path.getsize("/usr/lib/librknnrt.so") if os.path.exists("/usr/lib/librknnrt.so") else None,
    "numpy": __import__("numpy").__version__ if "numpy" in sys.argv else None,
}))
"""


def look(board, *extra):
    done = board.run_python("-c", LOOK, *extra)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_bookworm_rk3588_board_as_its_python_sees_it(rk3588, standin):
    seen = look(rk3588, "numpy")
    assert seen["machine"] == "aarch64" and seen["python"].startswith("3.11.")
    assert seen["glibc"] == "2.36" and seen["os"] == 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"'
    assert seen["release"] == "5.10.160-rockchip-rk3588"
    assert seen["compatible"] == "rockchip,rk3588-evb\0rockchip,rk3588\0"
    assert seen["devfreq"] == ["fdab0000.npu"]
    assert seen["librknnrt"] == standin["aarch64"].stat().st_size  # the root's, not this machine's
    assert seen["numpy"] == "1.26.4"


def test_bullseye_rk3566_bare_board_like_ubuntu_20_04(new_board):
    board = new_board(flavour=BULLSEYE, soc="rk3566", packages=False, librknnrt=None, device_tree=False)
    seen = look(board)
    assert seen["python"].startswith("3.9.") and seen["glibc"] == "2.31"
    assert seen["os"] == 'PRETTY_NAME="Debian GNU/Linux 11 (bullseye)"'
    assert seen["compatible"].startswith("missing") and seen["librknnrt"] is None
    assert seen["devfreq"] == ["fde40000.npu"]
    done = board.run_python("-c", "import numpy")
    assert done.returncode != 0 and "No module named 'numpy'" in done.stderr


def test_the_root_is_cached_and_keyed_by_what_goes_in(rk3588):
    cached = rootfs.cached_root(BOOKWORM)
    manifest = json.loads((cached / rootfs.MANIFEST).read_text())
    again = rootfs.cached_root(BOOKWORM)
    assert again == cached and json.loads((again / rootfs.MANIFEST).read_text()) == manifest  # not rebuilt
    assert manifest["debs"]["python3.11"].startswith("3.11.") and "libc6" in manifest["debs"]
    assert any(w.startswith("rknn_toolkit_lite2-2.5.0-cp311") for w in manifest["wheels"])
    # the key follows the inputs: another package list, Python or layer is another root
    other = Flavour("bookworm", "3.11", "test", ("python3.11", "libstdc++6", "zlib1g"))
    keys = {
        rootfs.root_key(BOOKWORM, True),
        rootfs.root_key(BOOKWORM, False),
        rootfs.root_key(other, True),
        rootfs.root_key(BULLSEYE, True),
    }
    assert len(keys) == 4
    # boards are hard links into the root: a board costs no copy of the packages
    numpy_init = "usr/local/lib/python3.11/dist-packages/numpy/__init__.py"
    assert (rk3588.root / numpy_init).stat().st_ino == (cached / numpy_init).stat().st_ino


def test_bench_hook_gives_a_served_board_and_runs_the_aarch64_bare_loop(tmp_path, models, emulator_tools):
    from rkbench.boards.connect import open_board

    from .bench_hook import emulated_board

    with emulated_board(tmp_path, host="127.0.0.9") as eb:
        with open_board(eb.server.board, known_hosts=str(eb.known_hosts), identity_files=[str(eb.ssh_key)]) as board:
            res = board.run(["python3", "-c", "import platform; print(platform.machine())"], timeout=60)
        assert res.returncode == 0 and res.stdout_text.strip() == "aarch64"  # the login python3 is the board's
        # the C loop, aarch64 under qemu, finds the board's SoC through the root (no RKNN_STANDIN_ROOT)
        done = subprocess.run(
            eb.qemu + [str(eb.bare_loop), str(eb.lib), str(models["tiny_rk3588"]), "--runs", "3"],
            capture_output=True,
            text=True,
            timeout=120,
            env={"PATH": "/usr/bin:/bin", "RKNN_STANDIN_QUIET": "1"},
        )
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["perf_run_us"] == 2000
    assert eb.server.proc is None  # sshd stopped on the way out
