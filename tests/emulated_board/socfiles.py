"""What makes the emulated root look like an RK3588/RK3566 to the board's programs: the
device tree (rknn-toolkit-lite2 reads the SoC from /proc/device-tree/compatible), the
render node lite2 wants when /.dockerenv exists (it does on this machine, and qemu shows
this machine's files where the root has none), and the /sys files the runner reads
(devfreq, thermal, cpufreq, rknpu debugfs), taken from tests/device/fixtures/<soc>/.

The fixtures' usr/lib/librknnrt.so (a few bytes with a version string) and
etc/os-release are not copied: the board gets a real library (board.py) and the root's
own os-release from Debian's base-files.
"""

from __future__ import annotations

import shutil
from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[1] / "device" / "fixtures"
SOCS = ("rk3588", "rk3566")
NOT_COPIED = {"usr/lib/librknnrt.so", "etc/os-release"}
DEVICE_TREE = "proc/device-tree"
#: qemu's CPU per SoC: the A76 of RK3588's big cores; RK3566's A55 is not in qemu 7.2,
#: the A53 (same ARMv8-A base, NEON) is the nearest.
CPUS = {"rk3588": "cortex-a76", "rk3566": "cortex-a53"}
KERNEL = "5.10.160-rockchip"


def write_soc_files(root: Path, soc: str, device_tree: bool = True) -> None:
    if soc not in SOCS:
        raise ValueError(f"no emulated {soc}: known {', '.join(SOCS)}")
    source = FIXTURES / soc
    for path in sorted(source.rglob("*")):
        rel = path.relative_to(source).as_posix()
        if not path.is_file() or rel in NOT_COPIED or (not device_tree and rel.startswith(DEVICE_TREE)):
            continue
        dest = root / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, dest)
    if device_tree:
        (root / DEVICE_TREE / "model").write_bytes(
            f"Rockchip {soc.upper()} (rkbench emulated board: qemu-user, stand-in NPU runtime)\0".encode()
        )
    render = root / "dev" / "dri" / "renderD129"
    render.parent.mkdir(parents=True, exist_ok=True)
    render.touch()


def kernel_release(soc: str) -> str:
    """What uname -r says on the board (the fixture's osrelease when it has one)."""
    release = FIXTURES / soc / "proc" / "sys" / "kernel" / "osrelease"
    return release.read_text().strip() if release.exists() else KERNEL
