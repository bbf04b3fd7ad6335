"""The board's librknnrt version, read with one command and no runner start.

    board_runtime_version(transport)       # "2.3.2 (429f97ae6b@2025-04-09T09:09:27)" or None

The runtime carries the line "librknnrt version: X.Y.Z (hash@date)" inside the library
(what `strings librknnrt.so | grep "librknnrt version"` shows). One `sh` command on the board
looks for it: with grep (GNU grep, or busybox's, which takes `-a` silently and reads binary
files as text anyway), and where grep is missing or does not see the file, with the board's
Python (a one-liner, standard library only). The Python matters on an emulated board: its
login tools see this machine's /usr/lib, its Python the board root's.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

from rkbench.boards.runner_command import python_argv
from rkbench.boards.transport.base import Transport

LIBRKNNRT = "/usr/lib/librknnrt.so"
PREFIX = "librknnrt version: "
# Python 3.8+, standard library: the first version string in the file named by argv[1].
_PY_FIND = (
    "import re,sys\n"
    "try:\n"
    " d=open(sys.argv[1],'rb').read()\n"
    "except OSError:\n"
    " sys.exit(3)\n"
    "m=re.search(rb'librknnrt version: [^)\\x00\\n]{1,200}\\)',d)\n"
    "m or sys.exit(1)\n"
    "print(m.group().decode('ascii','replace'))\n"
)
# $1: the library, $2: the Python program above, the rest: the board's Python. grep first
# (with -a, then without it for a grep that refuses it), then the Python.
_SCRIPT = (
    "lib=$1; py=$2; shift 2\n"
    'if [ -r "$lib" ] && command -v grep >/dev/null 2>&1; then\n'
    "  grep -a -o -m1 'librknnrt version: [^)]*)' \"$lib\" 2>/dev/null && exit 0\n"
    "  grep -o -m1 'librknnrt version: [^)]*)' \"$lib\" 2>/dev/null && exit 0\n"
    "fi\n"
    'exec "$@" -c "$py" "$lib"\n'
)


def runtime_version_argv(python: str | Sequence[str] = "python3", path: str = LIBRKNNRT) -> list[str]:
    """The one command that prints the version line of the runtime at `path`."""
    return ["sh", "-c", _SCRIPT, "sh", path, _PY_FIND, *python_argv(python)]


def board_runtime_version(
    transport: Transport, python: str | Sequence[str] = "python3", path: str = LIBRKNNRT, timeout: float = 60
) -> str | None:
    """The version of the board's librknnrt as it prints it after "librknnrt version: "
    ("2.5.0 (hash@date)"; a stand-in's says "stand-in"), or None when the library is
    missing or holds no version string."""
    result = transport.run(runtime_version_argv(python, path), timeout=timeout)
    for line in result.stdout.decode("ascii", "replace").splitlines():
        if line.startswith(PREFIX) and result.returncode == 0:
            return line[len(PREFIX) :].strip() or None
    return None


def local_runtime_version(path: str = LIBRKNNRT) -> str | None:
    """The same for this machine (the local board), read here without running a command;
    RKBENCH_LIBRKNNRT overrides the path as it does for the runner."""
    path = os.environ.get("RKBENCH_LIBRKNNRT") or path
    try:
        data = Path(path).read_bytes()
    except OSError:
        return None
    match = re.search(rb"librknnrt version: [^)\x00\n]{1,200}\)", data)
    return match.group().decode("ascii", "replace")[len(PREFIX) :].strip() if match else None
