"""Throughput mode on the host: which configurations to run (contexts x core-mask
assignment), refusing masks the SoC lacks before anything runs, and which configuration
came out best. The runner runs them (rkbench_device.throughput); one thread per context,
so the thread count of a configuration is its context count."""

from __future__ import annotations

from dataclasses import dataclass

from rkbench.errors import UsageError
from rkbench_device.coremask import cores_needed, usable_masks
from rkbench_device.sysfs import npu_core_count
from rkbench_wire import CORE_MASKS, Throughput


def assignments(cores: int) -> tuple[str, ...]:
    """Assignments of core masks to contexts a sweep tries: per-core (context k on core
    k mod cores), the all-cores mask (0_1_2 on an RK3588: every context on every core), auto
    (the runtime picks). A single-core SoC takes auto only."""
    if cores <= 1:
        return ("auto",)
    return ("per-core", "_".join(str(c) for c in range(cores)), "auto")


def assignment_masks(assignment: str, contexts: int, cores: int) -> list[str]:
    if assignment == "per-core":
        return [str(k % cores) for k in range(contexts)]
    if assignment == "auto":
        return ["auto"] * contexts
    return [assignment] * contexts  # a mask: every context on it


def npu_cores(soc: str | None) -> int | None:
    return npu_core_count(soc) if soc else None


def check_masks(masks: list[str], soc: str | None, board: str) -> None:
    """Refuse (exit 2, before the run) a core mask the board's SoC does not have."""
    cores = npu_cores(soc)
    for mask in masks:
        if mask not in CORE_MASKS:
            raise UsageError(f"core mask {mask!r} is not one rkbench knows (known: {', '.join(CORE_MASKS)})")
        if cores is not None and cores_needed(mask) > cores:
            raise UsageError(
                f"core mask {mask} needs {cores_needed(mask)} NPU cores but board {board} ({soc}) has {cores} "
                f"(cores 0..{cores - 1}): use one of {', '.join(usable_masks(cores))}"
            )


def plan_configs(
    soc: str | None, board: str, sweep: bool, contexts: int = 0, masks: list[str] | None = None
) -> list[dict]:
    """The configurations, in the order they run (more contexts later, so a sweep that runs
    out of memory has measured everything smaller). Without --sweep: one configuration,
    `contexts` contexts (0: one per core) on `masks` (cycled; default per-core)."""
    cores = npu_cores(soc) or 1
    if not sweep:
        count = contexts or cores
        if masks:
            check_masks(masks, soc, board)
            chosen = [masks[k % len(masks)] for k in range(count)]
            name = "custom" if len(set(masks)) > 1 or len(masks) != 1 else masks[0]
        else:
            chosen = assignment_masks("per-core" if cores > 1 else "auto", count, cores)
            name = "per-core" if cores > 1 else "auto"
        return [{"assignment": name, "core_masks": chosen}]
    most = contexts or 2 * cores
    configs = []
    for count in range(1, most + 1):
        for name in assignments(cores):
            if name not in ("per-core", "auto") and count > cores:
                continue  # every context on all cores: more than one per core only queues
            configs.append({"assignment": name, "core_masks": assignment_masks(name, count, cores)})
    return configs


@dataclass
class Pick:
    best_fps: Throughput | None
    best_p99: Throughput | None  # the best p99 among those under the bound (or overall without one)
    baseline: Throughput | None  # the single-context figure
    stopped: str | None  # why the sweep stopped early (out of memory)


#: FPS within this fraction of the most count as a tie, won by the fewest contexts (less
#: memory, lower latency): one window's FPS is not more precise than that on a busy board.
FPS_TIE = 0.02


def _most_fps(events: list[Throughput]) -> Throughput | None:
    if not events:
        return None
    top = max(e.fps for e in events)
    close = [e for e in events if e.fps >= top * (1 - FPS_TIE)]
    return min(close, key=lambda e: (len(e.core_masks), -e.fps))


def pick(events: list[Throughput], max_p99_ms: float | None) -> Pick:
    measured = [e for e in events if e.out_of_memory is None and e.stats is not None]
    stopped = next((e.out_of_memory for e in events if e.out_of_memory), None)
    best_fps = _most_fps(measured)
    bounded = [e for e in measured if max_p99_ms is None or e.stats.p99_ms <= max_p99_ms]
    best_p99 = None
    if bounded:
        # under the bound: the most FPS (ties as above); without a bound: the lowest p99
        best_p99 = _most_fps(bounded) if max_p99_ms is not None else min(bounded, key=lambda e: e.stats.p99_ms)
    # the baseline: one context on one core (or where the runtime puts it), as users compare
    singles = [e for e in measured if len(e.core_masks) == 1]
    plain = [e for e in singles if "_" not in e.core_masks[0]]
    baseline = (plain or singles or [None])[0]
    return Pick(best_fps, best_p99, baseline, stopped)


def label(event: Throughput) -> str:
    return f"{len(event.core_masks)} ctx {event.assignment} [{','.join(event.core_masks)}]"
