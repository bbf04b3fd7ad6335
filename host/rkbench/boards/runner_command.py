"""How the runner is started on a board, and what its death before `hello` means.

The runner is started as

    sh -c '"$@"; exit $?' sh env PYTHONPATH=<runner dir> python3 -m rkbench_device COMMAND

(the small shell turns a death by signal into 128+N on every transport).
"""

from __future__ import annotations

import shlex
import signal
from collections.abc import Mapping, Sequence

from rkbench.boards.transport import Transport
from rkbench.errors import BoardError, UsageError

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
    "silent", "protocol", "python_missing", "python_too_old", "numpy_missing",
    "runner_missing", "start_failed". detail: traceback/stderr tail (multi-line)."""

    def __init__(
        self, message: str, kind: str, detail: str = "", exit_code: int | None = None, signal_number: int | None = None
    ):
        super().__init__(message)
        self.kind = kind
        self.detail = detail
        self.runner_exit_code = exit_code
        self.signal_number = signal_number


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


def start_failure(
    board: str,
    board_arg: str,
    python: str | Sequence[str],
    returncode: int | None,
    stderr: str,
    what: str = "the runner",
) -> RunnerFailed:
    """Why `python3 -m rkbench_device ...` ended before saying anything, as a message
    that says what to do."""
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
        return RunnerFailed(
            f"{board}: {py} on the board is too old for the runner (it needs Python 3.8+): install a newer "
            f"python3 or point --python at one, then {hint}",
            "python_too_old",
            text,
            returncode,
        )
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
