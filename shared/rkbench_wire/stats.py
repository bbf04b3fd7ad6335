"""Latency statistics in pure Python, the same numbers on the host and on the board.

Percentiles use linear interpolation between closest ranks (numpy's default
"linear" method): for q in [0, 100] the position is q/100 * (n - 1).
The standard deviation is the sample one (n - 1), 0.0 for fewer than two values.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Dict, Iterable, List, Sequence

from .errors import ProtocolError


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) of values already sorted ascending."""
    n = len(sorted_values)
    if n == 0:
        raise ValueError("percentile of an empty sequence")
    if not 0.0 <= q <= 100.0:
        raise ValueError("percentile q must be within 0..100, got %r" % (q,))
    pos = (n - 1) * (q / 100.0)
    lo = int(math.floor(pos))
    hi = min(lo + 1, n - 1)
    frac = pos - lo
    a = float(sorted_values[lo])
    b = float(sorted_values[hi])
    return a + (b - a) * frac


@dataclass
class LatencyStats:
    """Summary of per-iteration latencies, in milliseconds."""

    n: int
    min_ms: float
    mean_ms: float
    std_ms: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float

    def to_dict(self) -> Dict[str, float]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: object, where: str = "stats") -> LatencyStats:
        if not isinstance(data, dict):
            raise ProtocolError("%s: expected an object, got %s" % (where, type(data).__name__))
        values = {}
        for name in ("n", "min_ms", "mean_ms", "std_ms", "p50_ms", "p90_ms", "p99_ms", "max_ms"):
            if name not in data:
                raise ProtocolError("%s.%s: missing" % (where, name))
            value = data[name]
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ProtocolError("%s.%s: expected a number, got %r" % (where, name, value))
            values[name] = value
        values["n"] = int(values["n"])
        return cls(**values)  # type: ignore[arg-type]  # every field checked to be a number above


def summarize_ns(samples_ns: Iterable[int]) -> LatencyStats:
    """Summarize raw latencies given in nanoseconds (as `time.perf_counter_ns` gives)."""
    ordered: List[float] = sorted(float(v) for v in samples_ns)
    n = len(ordered)
    if n == 0:
        raise ValueError("no latency samples to summarize")
    mean = math.fsum(ordered) / n
    if n > 1:
        var = math.fsum((v - mean) ** 2 for v in ordered) / (n - 1)
    else:
        var = 0.0
    ms = 1e-6
    return LatencyStats(
        n=n,
        min_ms=ordered[0] * ms,
        mean_ms=mean * ms,
        std_ms=math.sqrt(var) * ms,
        p50_ms=percentile(ordered, 50) * ms,
        p90_ms=percentile(ordered, 90) * ms,
        p99_ms=percentile(ordered, 99) * ms,
        max_ms=ordered[-1] * ms,
    )
