"""The timed loop: per-iteration latency with perf_counter_ns, raw samples kept and
streamed in batches, inputs cycled. Nothing but the call and two clock reads inside
the timed region."""

from __future__ import annotations

import gc
import os
import time
from dataclasses import dataclass
from typing import Any, Callable, List, Sequence


@dataclass
class Measurement:
    samples_ns: List[int]
    elapsed_s: float
    stopped_by: str


def measure(
    calls: Sequence[Callable[[], Any]],
    min_runs: int,
    min_seconds: float,
    max_runs: int,
    max_seconds: float,
    on_batch: Callable[[int, List[int]], None],
    batch_interval_s: float = 0.25,
) -> Measurement:
    """Run `calls` in turn until BOTH min_runs and min_seconds are met, or max_runs or
    max_seconds is reached. `on_batch(offset, latencies_ns)` gets new samples about every
    batch_interval_s and the rest at the end; it runs outside the timed region. If a call
    raises, the samples taken before it are still passed to on_batch, then it re-raises."""
    perf = time.perf_counter_ns
    n = len(calls)
    samples: List[int] = []
    append = samples.append
    min_ns = int(min_seconds * 1e9)
    max_ns = int(max_seconds * 1e9)
    batch_ns = max(1, int(batch_interval_s * 1e9))
    sent = 0
    count = 0
    index = 0
    stopped_by = "min_reached"
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        start = perf()
        next_flush = start + batch_ns
        while True:
            call = calls[index]
            t0 = perf()
            call()
            t1 = perf()
            append(t1 - t0)
            count += 1
            index += 1
            if index == n:
                index = 0
            elapsed = t1 - start
            if count >= min_runs and elapsed >= min_ns:
                break
            if count >= max_runs:
                stopped_by = "max_runs"
                break
            if elapsed >= max_ns:
                stopped_by = "max_seconds"
                break
            if t1 >= next_flush:
                on_batch(sent, samples[sent:count])
                sent = count
                next_flush = perf() + batch_ns
        end = perf()
    except BaseException:
        if sent < count:  # nothing measured is lost: the host gets them before the error
            on_batch(sent, samples[sent:count])
        raise
    finally:
        if gc_was_enabled:
            gc.enable()
    if sent < count:
        on_batch(sent, samples[sent:count])
    return Measurement(samples_ns=samples, elapsed_s=(end - start) / 1e9, stopped_by=stopped_by)


#: Test-only knob, outside the protocol: extra busy time inside each timed iteration as a
#: fraction of the iteration's own time (0.10 = 10% slower), so benchmarks can check that
#: regression detection fires. Never set it for a real measurement.
SLOWDOWN_ENV = "RKBENCH_TEST_INJECT_SLOWDOWN"


def test_slowdown() -> float:
    """The slowdown asked for in the environment (0.0 when unset); a bad value is an error."""
    text = os.environ.get(SLOWDOWN_ENV, "").strip()
    if not text:
        return 0.0
    try:
        value = float(text)
    except ValueError:
        raise ValueError("%s=%r: expected a fraction such as 0.10" % (SLOWDOWN_ENV, text)) from None
    if not 0.0 <= value <= 10.0:
        raise ValueError("%s=%r: must be within 0..10" % (SLOWDOWN_ENV, text))
    return value


def slowed(call: Callable[[], Any], fraction: float) -> Callable[[], Any]:
    """Test-only: `call` plus `fraction` of its own duration of extra busy time, inside
    the timed region (so latencies grow by that fraction). Sleeps for the bulk of long
    pads and spins the last stretch for precision."""
    perf = time.perf_counter_ns
    sleep = time.sleep

    def run() -> Any:
        t0 = perf()
        result = call()
        t1 = perf()
        deadline = t1 + int((t1 - t0) * fraction)
        left = deadline - t1
        if left > 2000000:
            sleep((left - 1000000) / 1e9)
        while perf() < deadline:
            pass
        return result

    return run
