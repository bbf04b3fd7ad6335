"""What rknn-toolkit-lite2 knows but does not offer publicly, reached with care.

Seen on the real 2.5.0 wheel (run under qemu-user against our stand-in librknnrt):
RKNNLite keeps its runtime object in `rknn_runtime` (None before init_runtime and after
release), whose methods are what inference() calls: set_inputs(inputs, data_type,
data_format), run(get_frame_id) -> rknn_run's return code (which inference() drops),
get_outputs(get_frame_id), plus get_tensor_attr(i, is_output=False) (the runtime's
INPUT/OUTPUT_ATTR, zp declared unsigned), get_in_out_num() and get_run_perf()
(RKNN_QUERY_PERF_RUN's microseconds as a *string*). None of it is API: every reader here
returns None when the wheel at hand lacks it or answers otherwise, and callers say so.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Dict, List, Optional, Tuple

Attr = Dict[str, Any]


def runtime_of(rknn: Any) -> Any:
    return getattr(rknn, "rknn_runtime", None)


def microseconds(value: Any) -> Optional[int]:
    """get_run_perf()'s answer as an int: 2.5.0 gives "2000" (a str); numbers are taken too."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)) and value >= 0:
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def run_perf_getter(rknn: Any) -> Tuple[Optional[Callable[[], Optional[int]]], Any]:
    """(a call giving the last run's NPU microseconds, None) when get_run_perf answers with a
    number now (call after a run); (None, what it gave) when not; (None, None) without it."""
    getter = getattr(runtime_of(rknn), "get_run_perf", None)
    if getter is None:
        return None, None
    try:
        value = getter()
    except Exception as exc:
        return None, exc
    if microseconds(value) is None:
        return None, value

    def npu_us() -> Optional[int]:
        return microseconds(getter())

    return npu_us, None


def _signed32(value: int) -> int:
    return value - (1 << 32) if value >= 1 << 31 else value


def tensor_attrs(rknn: Any) -> Optional[Tuple[List[Attr], List[Attr]]]:
    """(inputs, outputs) as the attr dicts rknnrt_layout takes (names for the enums), or None."""
    runtime = runtime_of(rknn)
    try:
        from .rknnrt_abi import QUANT_TYPES, TENSOR_FORMATS, TENSOR_TYPES

        n_in, n_out = runtime.get_in_out_num()
        found = []
        for count, output in ((n_in, False), (n_out, True)):
            attrs = []
            for i in range(int(count)):
                a = runtime.get_tensor_attr(i, is_output=output)
                attrs.append(
                    {
                        "index": i,
                        "name": bytes(a.name).decode("utf-8", "replace"),
                        "dims": [int(a.dims[k]) for k in range(int(a.n_dims))],
                        "fmt": TENSOR_FORMATS.get(int(a.fmt), str(a.fmt)),
                        "type": TENSOR_TYPES.get(int(a.type), (str(a.type), None))[0],
                        "qnt_type": QUANT_TYPES.get(int(a.qnt_type), str(a.qnt_type)),
                        "zp": _signed32(int(a.zp)),
                        "scale": float(a.scale),
                        "fl": int(a.fl),
                    }
                )
            found.append(attrs)
        return found[0], found[1]
    except Exception:
        return None


def checked_steps(rknn: Any) -> Optional[Tuple[Callable, Callable, Callable]]:
    """(set_inputs, run, get_outputs) of lite2's runtime, the steps inference() chains while
    dropping run's return code; None when they are not there."""
    runtime = runtime_of(rknn)
    steps = tuple(getattr(runtime, name, None) for name in ("set_inputs", "run", "get_outputs"))
    return steps if all(callable(s) for s in steps) else None  # type: ignore[return-value]


_SDK_LINE = re.compile(r"^\s*(API|DRV)\s*:\s*(.+?)\s*$", re.M)


def sdk_versions(text: Any) -> Tuple[Optional[str], Optional[str]]:
    """(api, driver) from get_sdk_version()'s banner ("RKNN VERSION:\\n  API: 2.5.0 (...)\\n
    DRV: 0.9.8 (...)" between lines of '='), or (None, None)."""
    found = dict(_SDK_LINE.findall(str(text or "")))
    return found.get("API"), found.get("DRV")
