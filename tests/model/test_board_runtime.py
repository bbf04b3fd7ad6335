"""The board's librknnrt version, read with one command: GNU grep, busybox, no grep at all
(the board's Python then), over the local board and a real sshd."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from rkbench.boards.runtime import board_runtime_version, runtime_version_argv
from rkbench.model.compat import parse_version
from tests.standins.librknnrt import build_standin

#: What the stand-in library carries (tests/standins/librknnrt/README.md).
STANDIN_VERSION = "2.5.0 (stand-in standin@2026-12-01, not the vendor runtime)"


@pytest.fixture(scope="module")
def standin_so() -> Path:
    return build_standin()


class CountingTransport:
    """The local board, counting the commands it runs (the reading must take one)."""

    def __init__(self, inner):
        self.inner, self.commands = inner, []

    def run(self, argv, **kw):
        self.commands.append(argv)
        return self.inner.run(argv, **kw)


def _tools(directory: Path, **links: str) -> Path:
    """A PATH of its own: name -> the program it runs (busybox dispatches on its name)."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, target in links.items():
        (directory / name).symlink_to(target)
    return directory


def test_reads_the_standin_with_one_command(local_board, standin_so):
    board = CountingTransport(local_board)
    version = board_runtime_version(board, sys.executable, str(standin_so))
    assert version == STANDIN_VERSION and parse_version(version).standin
    assert len(board.commands) == 1 and board.commands[0][0] == "sh"


def test_missing_or_foreign_library(local_board, tmp_path):
    (tmp_path / "librknnrt.so").write_bytes(b"\x7fELF" + bytes(4096) + b"no version here")
    assert board_runtime_version(local_board, sys.executable, str(tmp_path / "librknnrt.so")) is None
    assert board_runtime_version(local_board, sys.executable, str(tmp_path / "absent.so")) is None


def test_a_version_string_in_a_vendor_like_binary(local_board, tmp_path):
    """The string sits between NUL bytes in a binary blob, as in the vendor's library."""
    blob = (
        os.urandom(300_000).replace(b"librknnrt", b"x")
        + b"\0librknnrt version: 2.3.2 (429f97ae6b@2025-04-09T09:09:27)\0"
    )
    (tmp_path / "librknnrt.so").write_bytes(blob + os.urandom(1000))
    assert board_runtime_version(local_board, sys.executable, str(tmp_path / "librknnrt.so")) == (
        "2.3.2 (429f97ae6b@2025-04-09T09:09:27)"
    )


@pytest.mark.parametrize("tools", ["gnu", "busybox", "no-grep", "no-grep-file-unseen"])
def test_with_and_without_grep(local_board, standin_so, tmp_path, monkeypatch, tools):
    """grep (GNU or busybox), or the board's Python where grep is missing."""
    sh = shutil.which("sh")
    if tools == "gnu":
        path = _tools(tmp_path / "bin", sh=sh, grep=shutil.which("grep"))
    elif tools == "busybox":
        busybox = shutil.which("busybox")
        if busybox is None:
            pytest.skip("busybox is not installed (Debian package busybox)")
        path = _tools(tmp_path / "bin", sh=busybox, grep=busybox)
    else:
        path = _tools(tmp_path / "bin", sh=sh)
    monkeypatch.setenv("PATH", str(path))
    library = str(standin_so)
    if tools == "no-grep-file-unseen":
        # As on the emulated board: the login's tools do not see the file, the Python does
        # (here: a Python that opens another path than the one asked for).
        python = [sys.executable, "-c", _redirecting_python(library)]
        library = "/nonexistent/librknnrt.so"
    else:
        python = [sys.executable]
    assert board_runtime_version(local_board, python, library) == STANDIN_VERSION


def _redirecting_python(real: str) -> str:
    """A 'python' that runs `-c CODE PATH` on `real` instead of PATH."""
    return f"import sys; code, _ = sys.argv[2], sys.argv[3]; sys.argv = ['-c', {real!r}]; exec(code)"


def test_over_ssh(ssh_board, standin_so):
    """Through a real sshd: the argv list survives the remote shell's quoting."""
    assert board_runtime_version(ssh_board, sys.executable, str(standin_so)) == STANDIN_VERSION


def test_the_command_is_an_argv_list():
    argv = runtime_version_argv("python3 -X utf8", "/usr/lib/librknnrt.so")
    assert argv[:2] == ["sh", "-c"] and argv[-3:] == ["python3", "-X", "utf8"]
    assert "/usr/lib/librknnrt.so" in argv
