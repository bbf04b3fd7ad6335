"""One emulated board: a hard-link copy of a cached root with the SoC's files and a
librknnrt.so of its own, and a `python3` that runs the root's Python under qemu.

    board = make_board(tmp_path / "board", soc="rk3588", librknnrt=standin_aarch64)
    board.python          # tmp_path/board/bin/python3 (put board.bin first on PATH)
    board.run_python("-c", "import platform; print(platform.machine())")  -> "aarch64"
"""

from __future__ import annotations

import os
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

from . import emulator, rootfs, socfiles
from .flavours import BOOKWORM, Flavour

LIBRKNNRT = "usr/lib/librknnrt.so"


@dataclass
class EmulatedBoard:
    home: Path  # the board's folder: root/, bin/
    flavour: Flavour
    soc: str
    packages: bool  # numpy + rknn-toolkit-lite2 installed (False: a bare Python)

    @property
    def root(self) -> Path:
        return self.home / "root"

    @property
    def bin(self) -> Path:
        return self.home / "bin"

    @property
    def python(self) -> Path:
        return self.bin / "python3"

    @property
    def site_packages(self) -> Path:
        return self.root / self.flavour.site_packages

    def python_argv(self) -> list:
        return emulator.argv(
            self.root, self.flavour.python_binary, socfiles.CPUS[self.soc], uname=socfiles.kernel_release(self.soc)
        )

    def run_python(self, *args: str, timeout: float = 300, **kw) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(self.python), *args], capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL, **kw
        )

    # -- what a test changes on its own board ---------------------------------------
    def set_librknnrt(self, library: Path | None) -> None:
        """Put `library` at /usr/lib/librknnrt.so (a new file: the cached root is
        hard-linked, never written through), or remove it (None)."""
        dest = self.root / LIBRKNNRT
        if dest.exists() or dest.is_symlink():
            dest.unlink()
        if library is not None:
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(Path(library).read_bytes())


def make_board(
    home: Path,
    *,
    flavour: Flavour = BOOKWORM,
    soc: str = "rk3588",
    packages: bool = True,
    librknnrt: Path | None = None,
    device_tree: bool = True,
) -> EmulatedBoard:
    """A new board in `home` (which must not exist yet)."""
    board = EmulatedBoard(home=home, flavour=flavour, soc=soc, packages=packages)
    home.mkdir(parents=True)
    rootfs.clone_tree(rootfs.cached_root(flavour, packages), board.root)
    socfiles.write_soc_files(board.root, soc, device_tree=device_tree)
    board.set_librknnrt(librknnrt)
    _write_python_wrapper(board)
    return board


#: Programs the board's sessions find first on PATH instead of this machine's.
LDCONFIG = """#!/bin/sh
# rkbench emulated board: no ldconfig. The board has no ld.so.cache of its own (its loader
# is qemu's), and this machine's ldconfig would rewrite this machine's /etc/ld.so.cache.
exit 0
"""


def _write_python_wrapper(board: EmulatedBoard) -> None:
    board.bin.mkdir(parents=True, exist_ok=True)
    (board.bin / "ldconfig").write_text(LDCONFIG)
    os.chmod(board.bin / "ldconfig", 0o755)
    words = " ".join(shlex.quote(w) for w in board.python_argv())
    script = (
        "#!/bin/sh\n"
        f"# rkbench emulated {board.soc} board ({board.flavour.like}): Debian arm64 Python {board.flavour.python}\n"
        "# under qemu-user with this root as its prefix. Not a real board.\n"
        f'exec {words} "$@"\n'
    )
    for name in ("python3", f"python{board.flavour.python}"):
        path = board.bin / name
        path.write_text(script)
        os.chmod(path, 0o755)
