"""How the runner is started on a board, and what its death before `hello` means.

The runner is started as

    sh -c '"$@"; exit $?' sh env PYTHONPATH=<runner dir> python3 -m rkbench_device COMMAND

(the small shell turns a death by signal into 128+N on every transport).
"""

from __future__ import annotations

import re
import shlex
import signal
from collections.abc import Mapping, Sequence

from rkbench.boards.transport import Transport
from rkbench.errors import BoardError, DiskFullError, UsageError

RUNNER_MODULE = "rkbench_device"
#: Runs argv and exits with its status; a death by signal N becomes 128+N (what a
#: shell reports), the same on ssh, adb and local.
EXIT_WRAPPER = '"$@"; exit $?'
#: How long the runner may stay silent (no event) before the host stops it, on top
#: of the lock wait of the spec. The runner streams samples every 0.25 s and
#: telemetry every telemetry_interval_s while it measures; loading a big model is the
#: longest quiet stretch.

PROVISION_HINT = "run `rkbench provision {board}`"


def python_argv(python: str | Sequence[str]) -> list[str]:
    """The board's Python as argv words: "python3", "/opt/py/bin/python3", or a
    command with options ("python3 -X faulthandler")."""
    words = shlex.split(python) if isinstance(python, str) else [str(w) for w in python]
    if not words:
        raise UsageError("--python: empty; give the board's Python, e.g. python3 or /usr/bin/python3")
    return words


def runner_argv(
    runner_dir: str, python: str | Sequence[str], command: str, *args: str, env: Mapping[str, str] | None = None
) -> list[str]:
    """argv of `python3 -m rkbench_device COMMAND ARGS...` with the runner on PYTHONPATH and
    `env` (NAME=value words for env(1)) in its environment."""
    settings = [f"{name}={value}" for name, value in sorted((env or {}).items())]
    return [
        "sh",
        "-c",
        EXIT_WRAPPER,
        "sh",
        "env",
        f"PYTHONPATH={runner_dir}",
        *settings,
        *python_argv(python),
        "-m",
        RUNNER_MODULE,
        command,
        *args,
    ]


def board_name(transport: Transport) -> str:
    """What `rkbench provision BOARD` should say for this board."""
    address = getattr(transport, "address", None)
    if address is None:
        return "BOARD"
    return address.raw or address.display


class RunnerFailed(BoardError):
    """The runner reported an error, crashed, hung, or could not start.

    kind: the runner's error kind (rkbench_wire ERR_*) or one of "crashed",
    "silent", "protocol", "connection_lost", "python_missing", "python_too_old",
    "numpy_missing", "runner_missing", "runner_damaged", "start_failed".
    detail: traceback/stderr tail (multi-line)."""

    def __init__(
        self, message: str, kind: str, detail: str = "", exit_code: int | None = None, signal_number: int | None = None
    ):
        super().__init__(message)
        self.kind = kind
        self.detail = detail
        self.runner_exit_code = exit_code
        self.signal_number = signal_number


class BoardDiskFull(RunnerFailed, DiskFullError):
    """The board ran out of disk space while the runner wrote (exit code 7, disk full)."""

    exit_code = DiskFullError.exit_code


def signal_of(returncode: int | None) -> int | None:
    """The signal that ended a command: rc < 0 (subprocess), or > 128 (a shell)."""
    if returncode is None:
        return None
    if returncode < 0:
        return -returncode
    if 128 < returncode < 128 + 65:
        return returncode - 128
    return None


def signal_text(number: int) -> str:
    try:
        name = signal.Signals(number).name
    except ValueError:
        name = f"signal {number}"
    return f"signal {number} ({name})"


def tail_lines(text: str, lines: int = 3, width: int = 300) -> str:
    """The last non-empty lines of `text` joined with " | " (for one-line messages)."""
    kept = [ln.strip()[-width:] for ln in (text or "").splitlines() if ln.strip()]
    kept = [ln for ln in kept if not ln.startswith("rkbench-device: stdin closed")]
    return " | ".join(kept[-lines:])


#: `File "/path/x.py", line 3` in a traceback, and Python's SyntaxError lines.
_TRACE_FILE_RE = re.compile(r'File "([^"]+)", line (\d+)')
#: Prints the version of whatever Python this is (2.x included), for a start failure.
_VERSION_PROBE = "import sys; sys.stdout.write('%d.%d.%d' % tuple(sys.version_info[:3]))"


def syntax_error_site(stderr: str) -> tuple[str, int] | None:
    """(file, line) of the SyntaxError in a traceback: the last `File "...", line N`."""
    found = _TRACE_FILE_RE.findall(stderr or "")
    return (found[-1][0], int(found[-1][1])) if found else None


def python_version(transport: Transport, python: str | Sequence[str]) -> tuple[int, ...] | None:
    """The board Python's version (one command), None when it cannot tell."""
    try:
        res = transport.run([*python_argv(python), "-c", _VERSION_PROBE], timeout=60)
    except BoardError:
        return None
    text = res.stdout_text.strip()
    if res.returncode != 0 or not re.fullmatch(r"\d+\.\d+\.\d+", text):
        return None
    return tuple(int(x) for x in text.split("."))


def explain_start_failure(
    transport: Transport,
    python: str | Sequence[str],
    returncode: int | None,
    stderr: str,
    what: str = "the runner",
    runner_dir: str | None = None,
) -> RunnerFailed:
    """start_failure with the facts it needs read from the board: when Python could not
    parse a file, which Python it is (one more command, on failure only)."""
    version = None
    if "syntaxerror" in (stderr or "").lower():
        version = python_version(transport, python)
    return start_failure(
        transport.describe(),
        board_name(transport),
        python,
        returncode,
        stderr,
        what=what,
        python_version=version,
        runner_dir=runner_dir,
    )


def start_failure(
    board: str,
    board_arg: str,
    python: str | Sequence[str],
    returncode: int | None,
    stderr: str,
    what: str = "the runner",
    python_version: tuple[int, ...] | None = None,
    runner_dir: str | None = None,
) -> RunnerFailed:
    """Why `python3 -m rkbench_device ...` ended before saying anything, as a message
    that says what to do.

    A SyntaxError is classified from what happened: an old Python (its version, when
    known, is below 3.8), a damaged runner file (the error is in `runner_dir` and the
    Python is new enough: kind "runner_damaged", the caller re-deploys), or a broken
    file of the board's own (a sitecustomize, a package)."""
    py = " ".join(python_argv(python))
    hint = PROVISION_HINT.format(board=board_arg)
    text = stderr or ""
    low = text.lower()
    tail = tail_lines(text)
    if returncode == 127 or (py.split()[0] in text and ("not found" in low or "no such file" in low)):
        return RunnerFailed(
            f"{board}: {py} is not on the board (or not on the login PATH): install Python 3.8+ with numpy "
            f"from the board's OS (e.g. apt-get install python3 python3-numpy) or give its path with "
            f"--python, then {hint}",
            "python_missing",
            text,
            returncode,
        )
    if "no module named 'numpy'" in low or 'no module named "numpy"' in low:
        return RunnerFailed(
            f"{board}: numpy is missing from {py} on the board: {hint} (it pushes a numpy wheel that "
            f"matches the board, no internet needed on the board)",
            "numpy_missing",
            text,
            returncode,
        )
    if "syntaxerror" in low or "future feature annotations" in low:
        return _syntax_failure(board, py, hint, text, returncode, python_version, runner_dir)
    if "no module named 'rkbench_device'" in low or "no module named 'rkbench_wire'" in low:
        return RunnerFailed(
            f"{board}: the runner files on the board are incomplete ({tail}); delete ~/.cache/rkbench/runner "
            f"on the board and run again",
            "runner_missing",
            text,
            returncode,
        )
    sig = signal_of(returncode)
    how = f"died from {signal_text(sig)}" if sig else f"exited with code {returncode}"
    return RunnerFailed(
        f"{board}: {what} {how} before saying hello" + (f"; stderr: {tail}" if tail else ""),
        "start_failed",
        text,
        returncode,
        sig,
    )


def _syntax_failure(
    board: str,
    py: str,
    hint: str,
    text: str,
    returncode: int | None,
    version: tuple[int, ...] | None,
    runner_dir: str | None,
) -> RunnerFailed:
    site = syntax_error_site(text)
    ours = bool(runner_dir and site and site[0].startswith(runner_dir.rstrip("/") + "/"))
    where = f"{site[0]} line {site[1]}" if site else "a file"
    named = ".".join(map(str, version)) if version else None
    old = version is not None and version < (3, 8)
    if old or (version is None and (ours or site is None)):
        is_what = f"is Python {named}," if named else "is"
        return RunnerFailed(
            f"{board}: {py} on the board {is_what} too old for the runner (it needs Python 3.8+): install a newer "
            f"python3 or point --python at one, then {hint}",
            "python_too_old",
            text,
            returncode,
        )
    if ours:
        return RunnerFailed(
            f"{board}: the runner on the board is damaged: Python {named} cannot parse {where} "
            f"({tail_lines(text, 1)}); rkbench deploys it again",
            "runner_damaged",
            text,
            returncode,
        )
    which = f"{py} (Python {named})" if named else py
    return RunnerFailed(
        f"{board}: {which} stops on a SyntaxError in {where}, which is not part of the runner "
        f"(a sitecustomize or a package of the board's Python): fix or remove that file on the board",
        "start_failed",
        text,
        returncode,
    )
