"""The board's root file system, built once and cached by what goes into it.

Two layers per Debian flavour, each a directory under
${RKBENCH_TEST_CACHE:-~/.cache/rkbench-test}/emulated/roots/:

    <flavour>-bare-<key>       Debian's arm64 Python and its libraries (dpkg-deb -x),
                               the standard library compiled to .pyc by that Python
    <flavour>-packages-<key>   the bare layer (hard links) + numpy, rknn-toolkit-lite2,
                               psutil, ruamel.yaml in /usr/local/lib/pythonX.Y/dist-packages

The key hashes the flavour, the pinned wheels and this package's builder sources: the
root is rebuilt when one of them changes and never otherwise (older roots of the same
flavour are removed then). Downloads are cached beside the roots: the apt lists
(emulated/apt/<suite>/), the .debs (emulated/downloads/debs/), the wheels
(emulated/downloads/wheels/<cpXY>/). Boards are hard-link copies of a root (board.py),
so a board is made in well under a second and a test may change its own copy.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import pwd
import shutil
import subprocess
import time
import urllib.error
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from . import debian, emulator, wheels
from .flavours import BOARD_WHEELS, Flavour

CACHE_ENV = "RKBENCH_TEST_CACHE"
MANIFEST = "etc/rkbench-emulated-board.json"
_COMPLETE = ".rkbench-complete"
_BUILDER_SOURCES = ("debian.py", "wheels.py", "flavours.py", "rootfs.py")


def cache_dir() -> Path:
    """The emulated boards' cache. Not from $HOME: tests move HOME to a tmp dir."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser() / "emulated"
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(pwd.getpwuid(os.getuid()).pw_dir, ".cache")
    return Path(base) / "rkbench-test" / "emulated"


def downloads(kind: str) -> Path:
    return cache_dir() / "downloads" / kind


def root_key(flavour: Flavour, packages: bool) -> str:
    here = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    digest.update(
        json.dumps(
            {"flavour": flavour.__dict__, "packages": packages, "wheels": list(BOARD_WHEELS) if packages else []},
            sort_keys=True,
        ).encode()
    )
    for name in _BUILDER_SOURCES:
        digest.update((here / name).read_bytes())
    return digest.hexdigest()[:16]


def layer_name(flavour: Flavour, packages: bool) -> str:
    return f"{flavour.name}-{'packages' if packages else 'bare'}"


@contextmanager
def _locked() -> Iterator[None]:
    cache_dir().mkdir(parents=True, exist_ok=True)
    with open(cache_dir() / "lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)  # another session building the same root: wait for it
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def clone_tree(src: Path, dst: Path) -> None:
    """A copy of `src` at `dst` made of hard links (a plain copy across file systems)."""
    done = subprocess.run(["cp", "-al", str(src), str(dst)], capture_output=True, text=True)
    if done.returncode != 0:
        shutil.rmtree(dst, ignore_errors=True)
        subprocess.run(["cp", "-a", str(src), str(dst)], check=True)


def cached_root(flavour: Flavour, packages: bool = True) -> Path:
    """The ready root for this flavour and layer, built first if the cache lacks it."""
    roots = cache_dir() / "roots"
    dest = roots / f"{layer_name(flavour, packages)}-{root_key(flavour, packages)}"
    if (dest / _COMPLETE).exists():
        return dest
    base = cached_root(flavour, packages=False) if packages else None
    with _locked():
        if (dest / _COMPLETE).exists():
            return dest
        tmp = dest.with_name(dest.name + ".building")
        shutil.rmtree(tmp, ignore_errors=True)
        roots.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        manifest = _build_packages(flavour, base, tmp) if base else _build_bare(flavour, tmp)
        manifest.update(
            layer=layer_name(flavour, packages),
            key=dest.name.rsplit("-", 1)[1],
            build_seconds=round(time.monotonic() - started, 1),
            note="rkbench emulated aarch64 board: Debian arm64 userland under qemu-user, not a real board",
        )
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
        (tmp / _COMPLETE).touch()
        os.rename(tmp, dest)
        for old in roots.glob(f"{layer_name(flavour, packages)}-*"):
            if old != dest and not old.name.endswith(".building"):
                shutil.rmtree(old, ignore_errors=True)
    return dest


def _build_bare(flavour: Flavour, root: Path) -> dict:
    suite = debian.Suite(flavour.name)
    lists = debian.AptLists(cache_dir() / "apt" / flavour.name, suite)
    lists.update()
    try:
        debs = _fetch_all(lists, flavour)
    except urllib.error.HTTPError:
        lists.update(force=True)  # the mirror moved on since the lists were cached
        debs = _fetch_all(lists, flavour)
    root.mkdir(parents=True)
    for _pkg, path in debs:
        debian.extract(path, root)
    compile_python(root, flavour, f"usr/lib/python{flavour.python}")
    return {
        "flavour": flavour.name,
        "python": flavour.python,
        "mirror": suite.url,
        "debs": {pkg.name: pkg.version for pkg, _ in debs},
    }


def _fetch_all(lists: debian.AptLists, flavour: Flavour) -> list:
    packages = lists.closure(flavour.debs, leaves=flavour.leaves)
    return [(pkg, debian.fetch(pkg, downloads("debs"), lists.suite.url)) for pkg in packages]


def _build_packages(flavour: Flavour, base: Path, root: Path) -> dict:
    found = wheels.board_wheels(BOARD_WHEELS, flavour.python, downloads("wheels") / flavour.cp_tag)
    clone_tree(base, root)
    (root / _COMPLETE).unlink()
    (root / MANIFEST).unlink()
    site = root / flavour.site_packages
    wheels.install(found, flavour.python, site)
    compile_python(root, flavour, flavour.site_packages)
    manifest = json.loads((base / MANIFEST).read_text())
    manifest["wheels"] = [w.name for w in found]
    return manifest


def compile_python(root: Path, flavour: Flavour, folder: str) -> None:
    """.pyc for ROOT/folder by the board's own Python (so every board copy starts warm)."""
    argv = emulator.argv(root, flavour.python_binary, "max") + ["-m", "compileall", "-q", "-j0", str(root / folder)]
    done = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    # compileall exits 1 when a file does not compile (the stdlib's deliberately broken
    # test files do not); an unstartable Python is what must stop the build
    if done.returncode not in (0, 1) or "Traceback" in done.stderr:
        raise RuntimeError(f"compiling {folder} with the emulated Python failed: {done.stderr[-1500:]}")
