"""Builds the stand-in librknnrt.so and the bare C benchmark, cached by the sources' hash.

    from tests.standins.librknnrt import build_standin, build_bare_loop, make_board_root
    lib = build_standin()                      # this machine's arch, the current variant
    lib = build_standin("aarch64", "old")      # for the emulated board, without zero-copy symbols
    loop = build_bare_loop("x86_64")

Outputs live in ~/.cache/rkbench-test/standin/<source sha>/<arch>-<variant>[-<version>]/ and
are rebuilt only when a source file, a flag or this file changes. Builds are atomic (compiled
into a temporary file, then renamed), so parallel test processes can share the cache.
"""

from __future__ import annotations

import hashlib
import os
import platform
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
LIB_SOURCES = ("standin.c", "model.c", "perf_detail.c")
BARE_LOOP_SOURCES = ("bare_loop.c",)
HEADERS = ("rknn_abi.h", "model.h", "perf_detail.h", "glibc_compat.h")
CFLAGS = ("-Wall", "-Wextra", "-Werror", "-O2", "-fPIC", "-pthread")
VARIANTS = ("current", "old")
DEFAULT_VERSION = "2.5.0"
CACHE = Path.home() / ".cache" / "rkbench-test" / "standin"

# arch -> (compiler, the Debian packages that provide it)
COMPILERS = {
    "x86_64": ("gcc", "gcc"),
    "aarch64": ("aarch64-linux-gnu-gcc", "gcc-aarch64-linux-gnu libc6-dev-arm64-cross"),
}


class StandinBuildError(RuntimeError):
    """The stand-in could not be built (no compiler, or the C did not compile)."""


def host_arch() -> str:
    machine = platform.machine().lower()
    return {"amd64": "x86_64", "arm64": "aarch64"}.get(machine, machine)


def source_sha() -> str:
    """One hash over every source, header, flag and this builder."""
    h = hashlib.sha256()
    for name in sorted(LIB_SOURCES + BARE_LOOP_SOURCES + HEADERS) + ["build.py"]:
        h.update(name.encode() + b"\0" + (HERE / name).read_bytes() + b"\0")
    h.update(" ".join(CFLAGS).encode())
    return h.hexdigest()[:16]


def build_standin(arch: str | None = None, variant: str = "current", version: str = DEFAULT_VERSION) -> Path:
    """The stand-in librknnrt.so for `arch` ("x86_64" or "aarch64"; default: this machine's).

    variant "old" is an older runtime without rknn_create_mem, rknn_set_io_mem,
    rknn_destroy_mem and rknn_dup_context. `version` is the runtime version it reports
    (SDK_VERSION and the "librknnrt version:" string), e.g. "1.6.0" to test version skew.
    """
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {', '.join(VARIANTS)}, not {variant!r}")
    if not re.fullmatch(r"\d+\.\d+\.\d+", version):
        raise ValueError(f"version must look like 2.5.0, not {version!r}")
    arch = _check_arch(arch)
    flags = ["-fvisibility=hidden", "-shared", "-Wl,-soname,librknnrt.so"]
    if variant == "old":
        flags.append("-DRKNN_STANDIN_OLD")
    if version != DEFAULT_VERSION:
        flags.append(f'-DRKNN_STANDIN_VERSION="{version}"')
    suffix = "" if version == DEFAULT_VERSION else f"-{version}"
    out = CACHE / source_sha() / f"{arch}-{variant}{suffix}" / "librknnrt.so"
    return _compile(arch, LIB_SOURCES, flags, ["-lm"], out)


def build_bare_loop(arch: str | None = None) -> Path:
    """The bare C benchmark (bare_loop.c) for `arch`; it dlopens the library given as argv[1]."""
    arch = _check_arch(arch)
    out = CACHE / source_sha() / f"{arch}-current" / "bare_loop"
    return _compile(arch, BARE_LOOP_SOURCES, [], ["-ldl"], out)


def make_board_root(root: Path, soc: str = "rk3588", board: str | None = None) -> Path:
    """Writes root/proc/device-tree/compatible as a board with `soc` has it (NUL-separated,
    board first); point RKNN_STANDIN_ROOT at `root`. Returns root."""
    tree = Path(root) / "proc" / "device-tree"
    tree.mkdir(parents=True, exist_ok=True)
    entries = [f"rockchip,{board}"] if board else []
    (tree / "compatible").write_bytes(b"".join(e.encode() + b"\0" for e in entries + [f"rockchip,{soc}"]))
    return Path(root)


def _check_arch(arch: str | None) -> str:
    arch = arch or host_arch()
    if arch not in COMPILERS:
        raise ValueError(f"arch must be one of {', '.join(COMPILERS)}, not {arch!r}")
    return arch


def _compile(arch: str, sources: tuple[str, ...], flags: list[str], libs: list[str], out: Path) -> Path:
    if out.is_file():
        return out
    compiler, packages = COMPILERS[arch]
    cc = shutil.which(compiler)
    if cc is None:
        raise StandinBuildError(
            f"{compiler} not found: building the {arch} stand-in needs it "
            f"(Debian: apt-get install {packages})")
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=out.name + ".", dir=out.parent)
    os.close(fd)
    cmd = [cc, *CFLAGS, *flags, "-o", tmp, *[str(HERE / s) for s in sources], *libs]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        os.unlink(tmp)
        raise StandinBuildError(f"{compiler} failed on {', '.join(sources)}:\n{done.stderr.strip()}")
    os.chmod(tmp, 0o755)
    os.replace(tmp, out)
    return out
