"""User-facing errors: one line that says what is wrong and what to do, and an exit code.

Exit codes (the README lists them):
  0 success                       1 a threshold failed
  2 usage error (bad option, unknown target, a setting the target refuses)
  3 board unreachable or runner failure
  4 bad input file (model, dataset, images, config file)
  5 the toolkit could not convert the model (its reason is quoted)
  6 the toolkit crashed or hung (the step and the log file are named)
  7 disk full                      8 a search target was not reached
"""

from __future__ import annotations


class RkbenchError(Exception):
    """An error the user can act on. `str(err)` is the whole message."""

    exit_code = 2


class UsageError(RkbenchError):
    """Bad option value, unknown target, a setting the target refuses."""

    exit_code = 2


class ThresholdFailed(RkbenchError):
    exit_code = 1


class BoardError(RkbenchError):
    """Board unreachable, authentication, host key, runner failure."""

    exit_code = 3


class InputFileError(RkbenchError):
    """Missing, unreadable or malformed model, dataset, image or config file."""

    exit_code = 4


class ConversionError(RkbenchError):
    """rknn-toolkit2 refused the model (unsupported op, bad graph)."""

    exit_code = 5


class ToolkitCrash(RkbenchError):
    """rknn-toolkit2 crashed (signal) or hung (timeout) in the worker process."""

    exit_code = 6


class DiskFullError(RkbenchError):
    exit_code = 7


class TargetNotReached(RkbenchError):
    exit_code = 8
