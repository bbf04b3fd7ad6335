"""The runner's one exception type: it becomes an `error` event and an exit code."""

from __future__ import annotations

from typing import Optional

from rkbench_wire import EXIT_FAILED


class RunnerError(Exception):
    """A failure with an `error` event kind (rkbench_wire.constants.ERR_*), a message
    that tells the user what to do, an optional detail (stderr/traceback tail)."""

    def __init__(
        self,
        kind: str,
        message: str,
        detail: Optional[str] = None,
        exit_code: int = EXIT_FAILED,
        core_mask: Optional[str] = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.detail = detail
        self.exit_code = exit_code
        self.core_mask = core_mask
