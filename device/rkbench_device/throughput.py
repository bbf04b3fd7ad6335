"""Throughput mode: N contexts of one model run in parallel, one thread each, each on its
core mask, for the same window; one `throughput` event per configuration.

The backends' C calls release the GIL (ctypes.CDLL), so the threads overlap on the NPU as
a C program's would; what Python costs between the calls is what the benchmark
(bench/bench_throughput.py) compares with N bare C loops. Nothing but the bound call, two
clock reads and a list append runs inside a thread's loop; memory, telemetry and the
summary are taken after the window."""

from __future__ import annotations

import gc
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence

from rkbench_wire import Throughput, summarize_ns

from . import sysfs
from .backends import Backend
from .errors import RunnerError
from .telemetry import TelemetrySampler, throttle_verdict


@dataclass
class ContextRun:
    """One context of a configuration: its backend, the bound calls, the latencies."""

    backend: Backend
    mask: str
    calls: List[Callable[[], Any]] = field(default_factory=list)
    samples_ns: List[int] = field(default_factory=list)
    error: Optional[BaseException] = None


def is_out_of_memory(err: BaseException) -> bool:
    """rknn_init / rknn_dup_context said RKNN_ERR_MALLOC_FAIL (rknnrt_lib.ContextError)."""
    return bool(getattr(err, "out_of_memory", False))


def run_window(contexts: Sequence[ContextRun], seconds: float) -> float:
    """Run every context's calls in its own thread, all released together, each stopping
    at the first run that ends past the shared deadline (so every thread's last run is
    counted). Returns the window in seconds: from the release to the last thread's end.
    A failure in one thread stops the others and is re-raised here."""
    barrier = threading.Barrier(len(contexts) + 1)
    stop = threading.Event()
    start_ns = [0]
    ends = [0] * len(contexts)
    perf = time.perf_counter_ns

    def worker(k: int) -> None:
        ctx = contexts[k]
        calls = ctx.calls
        n = len(calls)
        append = ctx.samples_ns.append
        index = 0
        barrier.wait()
        deadline = start_ns[0] + int(seconds * 1e9)
        t1 = perf()
        try:
            while True:
                call = calls[index]
                t0 = perf()
                call()
                t1 = perf()
                append(t1 - t0)
                index += 1
                if index == n:
                    index = 0
                if t1 >= deadline or stop.is_set():
                    break
        except BaseException as exc:  # kept and re-raised by the main thread
            ctx.error = exc
            stop.set()
        ends[k] = t1

    threads = [
        threading.Thread(target=worker, args=(k,), name="rkbench-ctx-%d" % k, daemon=True) for k in range(len(contexts))
    ]
    gc_was_enabled = gc.isenabled()
    gc.disable()  # no collection pauses inside the window (each thread only appends ints)
    try:
        for thread in threads:
            thread.start()
        start_ns[0] = perf()
        barrier.wait()
        for thread in threads:
            thread.join()
    finally:
        if gc_was_enabled:
            gc.enable()
    for ctx in contexts:
        if ctx.error is not None:
            raise ctx.error
    return (max(ends) - start_ns[0]) / 1e9


def summarize(
    index: int,
    assignment: str,
    masks: Sequence[str],
    backend_name: str,
    contexts: Sequence[ContextRun],
    elapsed_s: float,
    sampler: TelemetrySampler,
    window: Sequence[float],
    temp_limit_c: float,
    notes: List[str],
) -> Throughput:
    """The event for one measured configuration."""
    runs = sum(len(c.samples_ns) for c in contexts)
    pooled: List[int] = []
    per_context = []
    for ctx in contexts:
        pooled.extend(ctx.samples_ns)
        stats = summarize_ns(ctx.samples_ns) if ctx.samples_ns else None
        per_context.append(
            {
                "core_mask": ctx.mask,
                "creation": ctx.backend.creation,
                "runs": len(ctx.samples_ns),
                "fps": len(ctx.samples_ns) / elapsed_s if elapsed_s > 0 else 0.0,
                "p50_ms": stats.p50_ms if stats else None,
                "p99_ms": stats.p99_ms if stats else None,
                "mean_ms": stats.mean_ms if stats else None,
            }
        )
    readings = sampler.between(window[0], window[1])
    throttled, reasons = throttle_verdict(readings, temp_limit_c)
    return Throughput(
        index=index,
        assignment=assignment,
        core_masks=list(masks),
        backend=backend_name,
        runs=runs,
        elapsed_s=elapsed_s,
        fps=runs / elapsed_s if elapsed_s > 0 else 0.0,
        stats=summarize_ns(pooled) if pooled else None,
        contexts=per_context,
        npu_load_pct=mean_load([r.npu_load_pct for r in readings[1:]] or [r.npu_load_pct for r in readings]),
        memory=memory_of(contexts),
        board=board_of(readings),
        throttled=throttled,
        throttle_reasons=reasons,
        notes=notes,
    )


def mean_load(loads: Sequence[Optional[List[int]]]) -> Optional[List[float]]:
    """Mean load per core over the readings that have it (the first reading, taken as the
    window opens, is left out by the caller: it shows the NPU before the runs)."""
    known = [load for load in loads if load]
    if not known:
        return None
    width = min(len(load) for load in known)
    return [sum(load[i] for load in known) / len(known) for i in range(width)]


def memory_of(contexts: Sequence[ContextRun]) -> Dict[str, Any]:
    """RKNN_QUERY_MEM_SIZE summed over the contexts (null unless every context answers) and
    the runner's own resident set (VmHWM is the process's peak so far)."""
    dma: Optional[int] = 0
    weight: Optional[int] = 0
    for ctx in contexts:
        mem = ctx.backend.memory()
        if not mem or "unsupported" in mem:
            dma = weight = None
            break
        dma = (dma or 0) + int(mem["dma_bytes"])
        weight = (weight or 0) + int(mem["weight_bytes"])
    proc = sysfs.process_memory("/") or {}
    return {
        "dma_bytes": dma,
        "weight_bytes": weight,
        "vm_hwm_kb": proc.get("vm_hwm_kb"),
        "vm_rss_kb": proc.get("vm_rss_kb"),
    }


def board_of(readings: Sequence[Any]) -> Dict[str, Any]:
    temps = [t for r in readings for t in r.temperatures_c.values()]
    npu = [r.npu_freq_hz for r in readings if r.npu_freq_hz is not None]
    cpu = [c["cur_khz"] for r in readings for c in r.cpu if c.get("cur_khz") is not None]
    return {
        "temp_max_c": max(temps) if temps else None,
        "npu_freq_hz_min": min(npu) if npu else None,
        "npu_freq_hz_max": max(npu) if npu else None,
        "cpu_khz_min": min(cpu) if cpu else None,
        "cpu_khz_max": max(cpu) if cpu else None,
    }


def did_not_fit(
    index: int, assignment: str, masks: Sequence[str], backend_name: str, created: Sequence[Backend], err: RunnerError
) -> Throughput:
    """The event for a configuration whose contexts could not all be created."""
    return Throughput(
        index=index,
        assignment=assignment,
        core_masks=list(masks),
        backend=backend_name,
        contexts=[
            {
                "core_mask": b.core_mask or "auto",
                "creation": b.creation,
                "runs": 0,
                "fps": 0.0,
                "p50_ms": None,
                "p99_ms": None,
                "mean_ms": None,
            }
            for b in created
        ],
        out_of_memory="context %d of %d could not be created: %s" % (len(created) + 1, len(masks), err.message),
    )
