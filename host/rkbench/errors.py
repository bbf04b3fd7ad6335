"""User-facing errors: one line that says what is wrong and what to do, and an exit code.

Exit codes (documented in the README):
  0 success, 1 a threshold failed, 2 usage error (bad option, bad input file),
  3 board unreachable or runner failure, 4 the toolkit failed (conversion, crash,
  timeout), 5 disk full, 6 target cannot be reached (hybrid search).
"""

from __future__ import annotations


class RkbenchError(Exception):
    """An error the user can act on. `str(err)` is the whole message."""

    exit_code = 2


class UsageError(RkbenchError):
    """Bad option, missing or malformed input file."""

    exit_code = 2


class ThresholdFailed(RkbenchError):
    exit_code = 1


class BoardError(RkbenchError):
    """Board unreachable, authentication, host key, runner failure."""

    exit_code = 3


class ToolkitError(RkbenchError):
    """rknn-toolkit2 refused the model or crashed/hung in the worker."""

    exit_code = 4


class DiskFullError(RkbenchError):
    exit_code = 5


class TargetNotReached(RkbenchError):
    exit_code = 6
