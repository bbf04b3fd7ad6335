"""The board-facts object `python3 -m rkbench_device info` prints (one JSON object).

Keys (values null where the board does not tell):
  v, type="board_info", runner_version, soc, soc_compatible, npu_cores, kernel, os,
  python, numpy, rknn_toolkit_lite2, librknnrt, npu_driver, npu_devfreq, cpufreq,
  temperatures_c, memory, cache_dir, disk_free_bytes, backends, runtime_probe

librknnrt is the version string inside the .so file. runtime_probe is what the runtime
itself says: {"model", "api_version", "drv_version", "source", "error"}; without
`info --probe-model MODEL.rknn` model/api/drv are null and source says the version
comes from the .so file only; with a model that fails to init, error says why.
"""

from __future__ import annotations

import json
from typing import Any, Dict, Union

from ._fields import loads
from .errors import ProtocolError
from .spec import check_version

BOARD_INFO_TYPE = "board_info"
BOARD_INFO_KEYS = (
    "runner_version",
    "soc",
    "soc_compatible",
    "npu_cores",
    "kernel",
    "os",
    "python",
    "numpy",
    "rknn_toolkit_lite2",
    "librknnrt",
    "npu_driver",
    "npu_devfreq",
    "cpufreq",
    "temperatures_c",
    "memory",
    "cache_dir",
    "disk_free_bytes",
    "backends",
    "runtime_probe",
)


def encode_board_info(info: Dict[str, Any]) -> str:
    from .constants import PROTOCOL_VERSION

    data = {"v": PROTOCOL_VERSION, "type": BOARD_INFO_TYPE}
    data.update(info)
    return json.dumps(data, separators=(",", ":"), allow_nan=False, default=str)


def decode_board_info(text: Union[str, bytes]) -> Dict[str, Any]:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    data = loads(text, "board info", snippet=True)
    if not isinstance(data, dict):
        raise ProtocolError("board info: expected a JSON object")
    check_version(data, "board info")
    if data.get("type") != BOARD_INFO_TYPE:
        raise ProtocolError("board info.type: expected %r, got %r" % (BOARD_INFO_TYPE, data.get("type")))
    for key in BOARD_INFO_KEYS:
        if key not in data:
            raise ProtocolError("board info.%s: missing (required field)" % key)
    return data
