"""NPU core masks: which exist on which SoC."""

from __future__ import annotations

from typing import List, Optional, Sequence

from rkbench_wire import CORE_MASK_VALUES
from rkbench_wire.constants import ERR_CORE_MASK_REFUSED

from .errors import RunnerError


def cores_needed(mask: str) -> int:
    """How many NPU cores a mask needs to exist: "0_1" needs 2, "2" needs 3, "auto" 1."""
    if mask == "auto":
        return 1
    return max(int(core) for core in mask.split("_")) + 1


def check_core_masks(masks: Sequence[str], npu_cores: Optional[int], soc: Optional[str]) -> None:
    """Refuse a mask that names a core the SoC does not have (RunnerError core_mask_refused).
    With an unknown SoC (npu_cores None) nothing is refused: the runtime decides."""
    for mask in masks:
        if mask not in CORE_MASK_VALUES:
            raise RunnerError(
                ERR_CORE_MASK_REFUSED,
                "unknown core mask %r (known: %s)" % (mask, ", ".join(CORE_MASK_VALUES)),
                core_mask=mask,
            )
        if npu_cores is None:
            continue
        need = cores_needed(mask)
        if need > npu_cores:
            usable = [m for m in CORE_MASK_VALUES if cores_needed(m) <= npu_cores]
            raise RunnerError(
                ERR_CORE_MASK_REFUSED,
                "core mask %r needs %d NPU cores but %s has %d; use one of: %s"
                % (mask, need, soc or "this SoC", npu_cores, ", ".join(usable)),
                core_mask=mask,
            )


def usable_masks(npu_cores: Optional[int]) -> List[str]:
    if npu_cores is None:
        return list(CORE_MASK_VALUES)
    return [m for m in CORE_MASK_VALUES if cores_needed(m) <= npu_cores]
