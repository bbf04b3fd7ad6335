"""Debian arm64 packages for the emulated board's root, fetched with apt using private
state: its own sources list, package lists and cache, an empty dpkg status. Nothing of
this machine's apt configuration, dpkg database or architectures is touched.

    lists = AptLists(cache / "apt" / "bookworm", Suite("bookworm"))
    lists.update()                                   # network: the signed Packages index
    for pkg in lists.closure(["python3.11"]):        # Depends/Pre-Depends, first alternative
        extract(fetch(pkg, cache / "debs"), root)    # downloads kept, checked by SHA256
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
#: Where the packages come from; RKBENCH_TEST_DEBIAN_MIRROR overrides (a local mirror, or
#: http://archive.debian.org/debian once a release has moved there).
DEFAULT_MIRROR = "http://deb.debian.org/debian"
MIRROR_ENV = "RKBENCH_TEST_DEBIAN_MIRROR"

#: Never pulled in as dependencies: package-management and configuration machinery a
#: root that is never booted or upgraded has no use for (they would bring perl along).
NOT_NEEDED = frozenset({"dpkg", "install-info", "perl-base", "debconf", "tzdata"})


class AptError(RuntimeError):
    pass


@dataclass(frozen=True)
class Suite:
    name: str  # bookworm, bullseye
    mirror: str = ""  # default: $RKBENCH_TEST_DEBIAN_MIRROR or deb.debian.org

    @property
    def url(self) -> str:
        return (self.mirror or os.environ.get(MIRROR_ENV) or DEFAULT_MIRROR).rstrip("/")


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    filename: str  # pool/main/p/python3.11/python3.11_3.11.2-6+deb12u8_arm64.deb
    sha256: str
    size: int
    depends: tuple  # first alternative of each Depends/Pre-Depends entry, bare names

    @property
    def deb_name(self) -> str:
        return self.filename.rsplit("/", 1)[-1]


class AptLists:
    """apt-get/apt-cache for arm64 with every piece of state under `state`."""

    def __init__(self, state: Path, suite: Suite) -> None:
        self.state = state
        self.suite = suite

    def options(self) -> list[str]:
        s = self.state
        return [
            "-oAPT::Architecture=arm64",
            "-oAPT::Architectures=arm64",
            f"-oDir::State::Lists={s}/lists",
            f"-oDir::Cache={s}/cache",
            "-oDir::State::status=/dev/null",
            f"-oDir::Etc::SourceList={s}/sources.list",
            f"-oDir::Etc::SourceParts={s}/sources.list.d",
            "-oDebug::NoLocking=1",
        ]

    def _run(self, tool: str, *args: str) -> str:
        done = subprocess.run([tool, *self.options(), *args], capture_output=True, text=True, stdin=subprocess.DEVNULL)
        if done.returncode != 0:
            raise AptError(
                f"{tool} {' '.join(args)} ({self.suite.name} arm64 from {self.suite.url}) failed: "
                f"{(done.stderr or done.stdout).strip()[-1500:]}"
            )
        return done.stdout

    def update(self, force: bool = False) -> None:
        """Fetch the suite's arm64 index once (kept with the cache; `force` fetches again)."""
        lists = self.state / "lists"
        if not force and any(lists.glob("*_Packages*")):
            return
        for sub in ("lists/partial", "cache/archives/partial", "sources.list.d"):
            (self.state / sub).mkdir(parents=True, exist_ok=True)
        (self.state / "sources.list").write_text(
            f"deb [arch=arm64 signed-by={KEYRING}] {self.suite.url} {self.suite.name} main\n"
        )
        self._run("apt-get", "-q", "update")

    def show(self, names: Iterable[str]) -> dict[str, Package]:
        """The candidate version of each package (names apt does not know are left out)."""
        names = sorted(set(names))
        if not names:
            return {}
        out = subprocess.run(
            ["apt-cache", *self.options(), "show", "--no-all-versions", *names],
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
        ).stdout
        found = {}
        for stanza in out.split("\n\n"):
            fields = _fields(stanza)
            if "Package" in fields and "Filename" in fields:
                deps = _first_alternatives(fields.get("Pre-Depends", "") + "," + fields.get("Depends", ""))
                found[fields["Package"]] = Package(
                    fields["Package"],
                    fields["Version"],
                    fields["Filename"],
                    fields["SHA256"],
                    int(fields["Size"]),
                    tuple(deps),
                )
        return found

    def closure(self, roots: Sequence[str], leaves: Sequence[str] = ()) -> list[Package]:
        """`roots` and everything they depend on (first alternative, NOT_NEEDED left out);
        `leaves` are taken without their dependencies. Sorted by name."""
        wanted: dict[str, Package] = {}
        todo = set(roots) | set(leaves)
        while todo:
            found = self.show(todo)
            missing = todo - set(found)
            if missing & (set(roots) | set(leaves)):
                raise AptError(f"{self.suite.name} arm64 has no package {', '.join(sorted(missing))}")
            wanted.update(found)
            todo = {
                d
                for name, p in found.items()
                if name not in leaves
                for d in p.depends
                if d not in wanted and d not in NOT_NEEDED
            }
            # a virtual name apt cannot show (e.g. "awk") is simply not followed
            todo -= missing
        return [wanted[n] for n in sorted(wanted)]


def _fields(stanza: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    key = None
    for line in stanza.splitlines():
        if line[:1] in (" ", "\t") and key:
            fields[key] += " " + line.strip()
        elif ":" in line:
            key, value = line.split(":", 1)
            fields[key] = value.strip()
    return fields


def _first_alternatives(depends: str) -> list[str]:
    names = []
    for entry in depends.split(","):
        first = entry.split("|")[0].strip()
        if first:
            names.append(re.split(r"[\s(:]", first, maxsplit=1)[0])
    return names


def fetch(pkg: Package, downloads: Path, mirror: str) -> Path:
    """The .deb in `downloads`, fetched once and checked against the index's SHA256."""
    downloads.mkdir(parents=True, exist_ok=True)
    path = downloads / pkg.deb_name
    if path.is_file() and _sha256(path) == pkg.sha256:
        return path
    tmp = path.with_name(path.name + ".part")
    url = f"{mirror}/{pkg.filename}"
    with urllib.request.urlopen(url, timeout=120) as response, open(tmp, "wb") as out:
        shutil.copyfileobj(response, out)
    if _sha256(tmp) != pkg.sha256:
        tmp.unlink()
        raise AptError(f"{url}: SHA256 differs from the signed index; try again or set {MIRROR_ENV}")
    os.replace(tmp, path)
    return path


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def extract(deb: Path, root: Path) -> None:
    """Unpack the files (not the maintainer scripts) of `deb` into `root`, as dpkg -x."""
    subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True, stdin=subprocess.DEVNULL)
