"""qemu-user: how the board's aarch64 programs run on this x86_64 machine.

`qemu-aarch64-static -L ROOT` runs an aarch64 program with ROOT as its prefix: the ELF
interpreter and libraries, and every absolute path the program opens, are looked up
under ROOT first and on this machine when ROOT lacks them. So the emulated Python sees
ROOT/usr/lib/librknnrt.so as /usr/lib/librknnrt.so and ROOT/proc/device-tree/compatible
as the board's device tree. New files are created outside ROOT (at their real paths), so
everything the board writes goes to absolute paths that are the same in both views
(its HOME, or ROOT itself, where its Python's sys.prefix is).

No binfmt_misc: programs the emulated Python starts run natively (the shell, coreutils
are this machine's x86_64 ones, which is all the runner needs), and no kernel-wide state
is changed.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

QEMU = "qemu-aarch64-static"
CROSS_CC = "aarch64-linux-gnu-gcc"
#: The Debian packages that provide what the emulated board needs on this machine.
NEEDED = {QEMU: "qemu-user-static", CROSS_CC: "gcc-aarch64-linux-gnu", "dpkg-deb": "dpkg", "apt-get": "apt"}


def qemu() -> str:
    return shutil.which(QEMU) or f"/usr/bin/{QEMU}"


def missing_tools() -> list[str]:
    """'qemu-aarch64-static (apt-get install qemu-user-static)' for each tool not here,
    including the aarch64 C headers the stand-in library is built with."""
    out = [f"{tool} (apt-get install {pkg})" for tool, pkg in NEEDED.items() if shutil.which(tool) is None]
    if not os.path.exists("/usr/aarch64-linux-gnu/include/stdio.h"):
        out.append("aarch64 C headers (apt-get install libc6-dev-arm64-cross)")
    return out


def prefix(root: Path, cpu: str, uname: str | None = None) -> list[str]:
    """qemu's command line up to the program: append an aarch64 program's path (on this
    machine) and its arguments."""
    out = [qemu(), "-L", str(root), "-cpu", cpu]
    if uname:
        out += ["-r", uname]
    return out


def argv(root: Path, program: str, cpu: str, uname: str | None = None) -> list[str]:
    """qemu's command line for ROOT/program (a path inside the root)."""
    return prefix(root, cpu, uname) + [str(root / program)]
