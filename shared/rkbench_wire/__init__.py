"""rkbench wire protocol: the run spec the host sends and the events the runner streams.

Standard library only, Python 3.8+: this package is copied to the board with the runner.
"""

from .constants import (
    BACKENDS,
    CORE_MASK_VALUES,
    CORE_MASKS,
    DATA_FORMATS,
    ERROR_KINDS,
    EXIT_BAD_SPEC,
    EXIT_BOARD_BUSY,
    EXIT_FAILED,
    EXIT_HOST_GONE,
    EXIT_OK,
    IO_MODES,
    PROTOCOL_VERSION,
    STAGES,
)
from .errors import ProtocolError
from .events import (
    EVENT_TYPES,
    Done,
    Error,
    Event,
    Hello,
    Progress,
    Result,
    Samples,
    Telemetry,
    Throughput,
    decode_event,
    encode_event,
)
from .info import decode_board_info, encode_board_info
from .spec import DEFAULT_LOCK_PATH, BuildRecipe, ModelRef, RunSpec, check_version
from .stats import LatencyStats, percentile, summarize_ns

__all__ = [
    "BACKENDS",
    "CORE_MASK_VALUES",
    "CORE_MASKS",
    "DATA_FORMATS",
    "ERROR_KINDS",
    "EXIT_BAD_SPEC",
    "EXIT_BOARD_BUSY",
    "EXIT_FAILED",
    "EXIT_HOST_GONE",
    "EXIT_OK",
    "IO_MODES",
    "PROTOCOL_VERSION",
    "STAGES",
    "ProtocolError",
    "EVENT_TYPES",
    "Done",
    "Error",
    "Event",
    "Hello",
    "Progress",
    "Result",
    "Samples",
    "Telemetry",
    "Throughput",
    "decode_event",
    "encode_event",
    "decode_board_info",
    "encode_board_info",
    "DEFAULT_LOCK_PATH",
    "BuildRecipe",
    "ModelRef",
    "RunSpec",
    "check_version",
    "LatencyStats",
    "percentile",
    "summarize_ns",
]
