"""What an emulated board is made of: the Debian release (and so its Python and glibc)
and the Python packages of a provisioned board."""

from __future__ import annotations

from dataclasses import dataclass

#: A provisioned board's Python packages: the real vendor wheel and what it needs, pinned
#: so the cached root only changes when this list does. numpy 1.26.4 is the release
#: rknn-toolkit2 2.5.0 pins on the host; ruamel.yaml 0.19 needs no compiled clib.
BOARD_WHEELS: tuple[str, ...] = (
    "numpy==1.26.4",
    "rknn-toolkit-lite2==2.5.0",
    "psutil==7.2.2",
    "ruamel.yaml==0.19.1",
)


@dataclass(frozen=True)
class Flavour:
    name: str  # the Debian suite the arm64 packages come from
    python: str  # its Python, X.Y
    like: str  # which field boards it stands for
    debs: tuple[str, ...]  # packages to install with their dependencies
    leaves: tuple[str, ...] = ("base-files",)  # taken without dependencies (/etc/os-release)

    @property
    def python_binary(self) -> str:
        return f"usr/bin/python{self.python}"

    @property
    def site_packages(self) -> str:
        """Where Debian's Python finds (and pip installs) local packages, inside the root."""
        return f"usr/local/lib/python{self.python}/dist-packages"

    @property
    def cp_tag(self) -> str:
        return "cp" + self.python.replace(".", "")


# libstdc++6: numpy's manylinux wheels link it (every board image has it).
BOOKWORM = Flavour("bookworm", "3.11", "Debian 12 boards (glibc 2.36)", ("python3.11", "libstdc++6"))
BULLSEYE = Flavour("bullseye", "3.9", "Debian 11 / Ubuntu 20.04 boards (glibc 2.31)", ("python3.9", "libstdc++6"))
FLAVOURS = {f.name: f for f in (BOOKWORM, BULLSEYE)}
