"""Runs rknn-toolkit2 jobs in a separate process and turns its failures into clear errors.

The toolkit prints heavily, keeps global state and can segfault or hang. Each job runs
`job.py` with the interpreter that has the toolkit (`--toolkit-python`, default this
one), in its own working directory (the toolkit writes files into the cwd), with its
output in a log file. We read step events from a pipe; a silent step longer than the
timeout is killed, and a crash names the signal, the step and the log.
"""

from __future__ import annotations

import functools
import json
import os
import re
import select
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from rkbench.errors import ConversionError, DiskFullError, ToolkitCrash, UsageError

TOOLKIT_SCRIPT = Path(__file__).with_name("job.py")
ANSI = re.compile(r"\x1b\[[0-9;]*m")
# Error lines rknn-toolkit2 2.5 prints that are not a reason (some on every build).
NOISE = ("Unkown op target", "rknn-toolkit2 version", "Traceback")


@dataclass(frozen=True)
class WorkerOptions:
    python: str = sys.executable
    step_timeout: float = 1800.0


@functools.lru_cache(maxsize=8)
def toolkit_version(python: str) -> str:
    """The rknn-toolkit2 version of an interpreter, without importing the toolkit (fast:
    read in this process when the interpreter is this one, else asked of it)."""
    if python == sys.executable:
        try:
            return metadata.version("rknn-toolkit2")
        except metadata.PackageNotFoundError:
            pass  # say it the same way as for another interpreter, below
    try:
        done = subprocess.run(
            [python, str(TOOLKIT_SCRIPT), "--version"],
            capture_output=True,
            text=True,
            timeout=120,
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        raise UsageError(f"cannot run the toolkit interpreter {python}: {err}") from None
    version = done.stdout.strip()
    if done.returncode != 0 or not version or version == "not installed":
        raise UsageError(
            f"rknn-toolkit2 is not installed for {python}: install it with "
            "`pip install 'rkbench[toolkit]'`, or point --toolkit-python (RKBENCH_TOOLKIT_PYTHON) "
            "at an interpreter that has it"
        )
    return version


def toolkit_reason(log: Path, fallback: str) -> str:
    """The toolkit's own words for a failure: its last error line in the log."""
    try:
        text = ANSI.sub("", log.read_text(errors="replace"))
    except OSError:
        return fallback
    raised, printed = [], []
    for line in text.splitlines():
        line = line.strip()
        if any(noise in line for noise in NOISE):
            continue
        if line.startswith("ValueError: "):
            raised.append(line[len("ValueError: ") :])
        elif line.startswith("E "):
            printed.append(line[2:].strip())
    # What the toolkit raised is its reason; what it printed as an error comes next.
    reasons = raised or printed
    return reasons[-1] if reasons else fallback


def log_tail(log: Path, lines: int = 5) -> str:
    try:
        text = ANSI.sub("", log.read_text(errors="replace"))
    except OSError:
        return ""
    tail = [line for line in text.splitlines() if line.strip()][-lines:]
    return " | ".join(line.strip()[:200] for line in tail)


def run_job(
    request: dict,
    workdir: Path,
    options: WorkerOptions,
    on_step: Callable[[str, str | None], None] | None = None,
    what: str = "the model",
) -> dict:
    """Run one toolkit job; return its result dict or raise a user-facing error."""
    workdir.mkdir(parents=True, exist_ok=True)
    request_path = workdir / "request.json"
    request_path.write_text(json.dumps(request, indent=1))
    log = workdir / "toolkit.log"
    read_end, write_end = os.pipe()
    env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONDONTWRITEBYTECODE="1")
    with open(log, "wb") as log_file:
        try:
            proc = subprocess.Popen(
                [options.python, str(TOOLKIT_SCRIPT), str(request_path), str(write_end)],
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                pass_fds=(write_end,),
                cwd=workdir,
                env=env,
                start_new_session=True,
            )
        except OSError as err:
            os.close(read_end)
            raise UsageError(f"cannot start the toolkit interpreter {options.python}: {err}") from None
        finally:
            os.close(write_end)
    step, result, error = "start", None, None
    try:
        with os.fdopen(read_end, "r") as events:
            while True:
                ready, _, _ = select.select([events], [], [], options.step_timeout)
                if not ready:
                    _kill(proc)
                    raise ToolkitCrash(
                        f"rknn-toolkit2 hung in step '{step}' on {what} for more than "
                        f"{options.step_timeout:.0f} s and was stopped; its log: {log}"
                    )
                line = events.readline()
                if not line:
                    break
                event = json.loads(line)
                if event["type"] == "step":
                    step = event["step"]
                    if on_step:
                        on_step(step, event.get("detail"))
                elif event["type"] == "result":
                    result = event
                elif event["type"] == "error":
                    error = event
        proc.wait()
    finally:
        if proc.poll() is None:
            _kill(proc)
    if error is not None:
        raise _error_for(error, log, what)
    if proc.returncode < 0:
        name = signal.Signals(-proc.returncode).name
        raise ToolkitCrash(f"rknn-toolkit2 crashed ({name}) in step '{step}' on {what}; its log: {log}")
    if result is None:
        raise ToolkitCrash(
            f"rknn-toolkit2 stopped in step '{step}' on {what} with exit code "
            f"{proc.returncode} and no result ({log_tail(log, 2)}); its log: {log}"
        )
    return result


def _kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def _error_for(event: dict, log: Path, what: str) -> Exception:
    step, kind, message = event["step"], event["kind"], event["message"]
    reason = toolkit_reason(log, message) if kind in ("conversion", "failed") else message
    if kind == "refused":
        return UsageError(f"rknn-toolkit2 refused the configuration of {what}: {message}")
    if kind == "disk_full" or "No space left on device" in reason:
        return DiskFullError(
            f"disk full while the toolkit was in step '{step}' on {what} ({reason}): "
            f"free some space and run again; its log: {log}"
        )
    if kind == "missing_toolkit":
        return UsageError(
            f"rknn-toolkit2 cannot be imported ({message}): install `rkbench[toolkit]` or point "
            f"--toolkit-python at an interpreter that has it; log: {log}"
        )
    return ConversionError(f"rknn-toolkit2 could not {step.replace('_', ' ')} {what}: {reason} (full log: {log})")
