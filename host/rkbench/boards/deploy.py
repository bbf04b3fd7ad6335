"""Put what a run needs onto a board, pushing only what is missing.

The board keeps a content-addressed cache (default `~/.cache/rkbench/`):

    blobs/<sha256><suffix>      models, inputs, the runner tarball
    runner/<tar sha256>/        the runner code, extracted (rkbench_device, rkbench_wire),
                                with .rkbench-manifest (sha256 of every file in it)
    runs/<run id>/              one run's outputs, removed when the run is done

A blob is uploaded under a temporary name in the same directory, its sha256 is
checked on the board, then it is renamed into place, so a broken transfer never
leaves a corrupt file under a final name. A blob already there is hashed on the
board before reuse; a mismatch is removed and pushed again (once). The runner tree is
checked against its manifest the same way before every use (one command on the board)
and extracted again when a file does not match.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import os
import re
import tarfile
import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rkbench import errors
from rkbench.boards.transport.base import Progress, Transport
from rkbench.errors import BoardError

InputFileError = getattr(errors, "InputFileError", errors.UsageError)

CACHE_SUBDIR = ".cache/rkbench"
RUNNER_PACKAGES = ("rkbench_device", "rkbench_wire")
COMPLETE_MARKER = ".rkbench-complete"
MANIFEST = ".rkbench-manifest"
_SUFFIX_RE = re.compile(r"^\.[A-Za-z0-9_-]{1,16}$")


@dataclass
class DeployStats:
    bytes_pushed: int = 0
    blobs_pushed: int = 0
    blobs_reused: int = 0
    #: runner files on the board that did not match their manifest (the tree was re-extracted)
    runner_repaired: list[str] = field(default_factory=list)

    def add(self, other: DeployStats) -> DeployStats:
        self.bytes_pushed += other.bytes_pushed
        self.blobs_pushed += other.blobs_pushed
        self.blobs_reused += other.blobs_reused
        self.runner_repaired += other.runner_repaired
        return self


def sha256_file(path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def cache_dir(transport: Transport, cache: str | None = None) -> str:
    """The board-side cache root: `cache` if given (absolute), else <home>/.cache/rkbench."""
    if cache:
        if not cache.startswith("/"):
            cache = f"{transport.home()}/{cache}"
        return cache.rstrip("/")
    return f"{transport.home()}/{CACHE_SUBDIR}"


def blob_path(transport: Transport, sha: str, suffix: str = "", cache: str | None = None) -> str:
    suffix = suffix if _SUFFIX_RE.match(suffix or "") else ""
    return f"{cache_dir(transport, cache)}/blobs/{sha}{suffix}"


def _push_verified(transport: Transport, local: str, remote: str, sha: str, progress: Progress | None) -> int:
    """Upload to a temporary name beside `remote`, check the hash, rename into place."""
    tmp = f"{remote}.tmp-{uuid.uuid4().hex[:12]}"
    try:
        sent = transport.put(local, tmp, progress=progress)
        got = transport.sha256(tmp)
        if got != sha:
            raise _HashMismatch(got)
        transport.rename(tmp, remote)
        return sent
    except BaseException:
        try:
            transport.remove(tmp)
        except Exception:
            pass
        raise


class _HashMismatch(Exception):
    def __init__(self, got: str | None):
        super().__init__(got)
        self.got = got


def ensure_blob(
    transport: Transport,
    local_path,
    *,
    stats: DeployStats | None = None,
    cache: str | None = None,
    progress: Progress | None = None,
    sha: str | None = None,
) -> str:
    """The board path of `local_path`'s content, uploading it only if missing.

    Adds to `stats` (bytes pushed, blobs pushed/reused) when given."""
    local = os.fspath(local_path)
    if not os.path.isfile(local):
        raise InputFileError(f"cannot deploy {local}: no such file")
    sha = sha or sha256_file(local)
    suffix = Path(local).suffix
    remote = blob_path(transport, sha, suffix, cache)
    stats = stats if stats is not None else DeployStats()

    existing = transport.sha256(remote)
    if existing == sha:
        stats.blobs_reused += 1
        return remote
    if existing is not None:  # corrupt: somebody changed or truncated it
        transport.remove(remote)

    transport.makedirs(remote.rsplit("/", 1)[0])
    last: str | None = None
    for _attempt in range(2):
        try:
            sent = _push_verified(transport, local, remote, sha, progress)
        except _HashMismatch as exc:
            stats.bytes_pushed += os.path.getsize(local)
            last = exc.got
            continue
        stats.bytes_pushed += sent
        stats.blobs_pushed += 1
        return remote
    raise BoardError(
        f"{transport.describe()}: {os.path.basename(local)} arrives corrupted at {remote} "
        f"(sha256 {last or 'missing'} instead of {sha}) twice; check the board's storage and memory"
    )


# --------------------------------------------------------------------------
# the runner
# --------------------------------------------------------------------------
def find_package_dir(name: str) -> Path:
    """Directory of an import package of this checkout / installation."""
    candidates: list[Path] = []
    spec = importlib.util.find_spec(name)
    if spec is not None:
        if spec.origin and spec.origin.endswith("__init__.py"):
            candidates.append(Path(spec.origin).parent)
        for loc in spec.submodule_search_locations or []:
            candidates.append(Path(loc))
    import rkbench

    here = Path(rkbench.__file__).resolve().parent  # host/rkbench or site-packages/rkbench
    candidates += [here.parent / name, here.parents[1] / "device" / name, here.parents[1] / "shared" / name]
    for c in candidates:
        if (c / "__init__.py").is_file():
            return c
    raise BoardError(f"the runner package {name} is not installed with rkbench; reinstall rkbench (make install)")


def runner_files(package_dirs: Sequence[Path] | None = None) -> list[tuple]:
    """(archive name, local path) of every .py file of the runner packages, sorted."""
    dirs = [Path(d) for d in package_dirs] if package_dirs else [find_package_dir(n) for n in RUNNER_PACKAGES]
    out = []
    for d in dirs:
        for p in sorted(d.rglob("*.py")):
            rel = p.relative_to(d.parent)
            if "__pycache__" in rel.parts or any(part.startswith(".") for part in rel.parts):
                continue
            out.append((rel.as_posix(), p))
    if not out:
        raise BoardError(f"no runner code found in {', '.join(map(str, dirs))}; reinstall rkbench")
    return sorted(out)


def runner_tarball(package_dirs: Sequence[Path] | None = None) -> bytes:
    """A deterministic tar (fixed mtimes, owners, modes, order) of the runner code, with a
    manifest (`sha256  path` lines, what `sha256sum -c` reads) to check the tree against."""
    buf = io.BytesIO()
    files = [(name, path.read_bytes()) for name, path in runner_files(package_dirs)]
    manifest = "".join(f"{hashlib.sha256(data).hexdigest()}  {name}\n" for name, data in files)
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        made_dirs = set()
        for name, data in files:
            parts = name.split("/")[:-1]
            for i in range(1, len(parts) + 1):
                d = "/".join(parts[:i])
                if d not in made_dirs:
                    made_dirs.add(d)
                    info = tarfile.TarInfo(d)
                    info.type = tarfile.DIRTYPE
                    info.mode = 0o755
                    info.mtime = 0
                    tar.addfile(info)
            _add_file(tar, name, data)
        _add_file(tar, MANIFEST, manifest.encode("utf-8"))
    return buf.getvalue()


def _add_file(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    info.mtime = 0
    tar.addfile(info, io.BytesIO(data))


# Runs on the board with argv: final dir. Prints "ok" when the runner tree there is whole
# and every file matches the manifest, "missing" when there is none, else "damaged" and
# the files that differ (the tree is then removed). sha256sum (coreutils or busybox), else
# python3's hashlib.
_CHECK_SCRIPT = rf"""
cd "$1" 2>/dev/null && [ -e {COMPLETE_MARKER} ] && [ -e {MANIFEST} ] || {{ echo missing; exit 0; }}
if command -v sha256sum >/dev/null 2>&1; then
  bad=$(sha256sum -c {MANIFEST} 2>/dev/null | grep ': FAILED')
else
  bad=$(python3 -c '
import hashlib, sys
for line in open(sys.argv[1]):
    want, name = line.rstrip("\n").split("  ", 1)
    try:
        got = hashlib.sha256(open(name, "rb").read()).hexdigest()
    except OSError:
        got = ""
    if got != want:
        print(name + ": FAILED")
' {MANIFEST} 2>&1)
fi
if [ -z "$bad" ]; then echo ok; exit 0; fi
echo damaged
printf '%s\n' "$bad" | head -n 5
cd / && rm -rf "$1"
"""

# Runs on the board with argv: blob, tmpdir, final dir. Extracts into a temporary
# directory and renames it into place, so a runner dir is either whole or absent.
_EXTRACT_SCRIPT = rf"""
set -e
if [ -e "$3/{COMPLETE_MARKER}" ]; then exit 0; fi
rm -rf "$2" "$3"
mkdir -p "$2"
if command -v tar >/dev/null 2>&1; then
  tar -xf "$1" -C "$2"
else
  python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' "$1" "$2"
fi
: > "$2/{COMPLETE_MARKER}"
if [ -e "$3" ]; then rm -rf "$2"; else mv "$2" "$3" 2>/dev/null || rm -rf "$2"; fi
test -e "$3/{COMPLETE_MARKER}"
"""


def runner_dir_state(transport: Transport, final: str) -> tuple[str, list[str]]:
    """("ok" | "missing" | "damaged", the files that differ): one command on the board.
    A damaged tree is removed by that command."""
    res = transport.run(["sh", "-c", _CHECK_SCRIPT, "sh", final], timeout=120)
    lines = res.stdout_text.split("\n")
    state = lines[0].strip() if res.returncode == 0 and lines else ""
    if state not in ("ok", "missing", "damaged"):
        detail = res.stderr_last_line() or res.stdout_text.strip()[:200]
        raise BoardError(f"{transport.describe()}: cannot check the runner files in {final}: {detail or 'no answer'}")
    return state, [ln.strip() for ln in lines[1:] if ln.strip()]


def ensure_runner(
    transport: Transport,
    *,
    stats: DeployStats | None = None,
    cache: str | None = None,
    package_dirs: Sequence[Path] | None = None,
) -> str:
    """The board directory holding the runner packages (put it on PYTHONPATH).

    Pushed and extracted once per runner version (its tar hash); checked against its
    manifest before every use, and extracted again when a file on the board differs."""
    stats = stats if stats is not None else DeployStats()
    data = runner_tarball(package_dirs)
    sha = hashlib.sha256(data).hexdigest()
    root = cache_dir(transport, cache)
    final = f"{root}/runner/{sha[:16]}"
    state, differing = runner_dir_state(transport, final)
    if state == "ok":
        stats.blobs_reused += 1
        return final
    if state == "damaged":
        stats.runner_repaired += differing or [final]
    with tempfile.TemporaryDirectory(prefix="rkbench-runner-") as tmp:
        tar_path = os.path.join(tmp, "runner.tar")
        with open(tar_path, "wb") as f:
            f.write(data)
        blob = ensure_blob(transport, tar_path, stats=stats, cache=cache, sha=sha)
    tmpdir = f"{final}.tmp-{uuid.uuid4().hex[:12]}"
    transport.makedirs(f"{root}/runner")
    res = transport.run(["sh", "-c", _EXTRACT_SCRIPT, "sh", blob, tmpdir, final], timeout=120)
    transport.check_result(res, f"unpacking the runner into {final}")
    return final


def remove_runner(transport: Transport, runner_dir: str) -> None:
    """Remove a runner tree (the next ensure_runner extracts it again)."""
    transport.run(["rm", "-rf", "--", runner_dir], timeout=60)
