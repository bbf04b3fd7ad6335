"""Synthetic latencies shaped like real NPU runs, for the statistics tests and bench_stats.

A run of a model on an NPU is not a sample of independent draws: the body is roughly
lognormal (a few percent spread), consecutive iterations are correlated (DVFS steps,
caches, other load), the whole run drifts slowly (the SoC warms up), and a rare
iteration is much slower (an interrupt, a page fault, the governor stepping down).
Timers tick in microseconds, so equal values (ties) are common.
"""

from __future__ import annotations

import numpy as np


def npu_latencies(
    n: int,
    seed: int,
    median_ms: float = 8.0,
    scale: float = 1.0,
    sigma: float = 0.03,
    ar: float = 0.5,
    drift: float = 0.01,
    outlier_rate: float = 0.003,
    tick_ns: int = 1000,
) -> np.ndarray:
    """n latencies in ns (int64), in time order.

    scale multiplies the whole run (1.10: a 10% slowdown); sigma is the stationary
    spread of log latency; ar the lag-1 autocorrelation of the body; drift the total
    slow rise over the run (a warming SoC) with a random wobble; outliers are 1.5x-4x.
    """
    rng = np.random.default_rng(seed)
    noise = np.empty(n)
    shocks = rng.normal(0.0, sigma * np.sqrt(1.0 - ar * ar), n)
    noise[0] = rng.normal(0.0, sigma)
    for i in range(1, n):
        noise[i] = ar * noise[i - 1] + shocks[i]
    t = np.linspace(0.0, 1.0, n)
    phase = rng.uniform(0, 2 * np.pi)
    slow = drift * (t + 0.3 * np.sin(2 * np.pi * 1.5 * t + phase))
    ms = median_ms * scale * np.exp(noise + slow)
    outliers = rng.random(n) < outlier_rate
    ms[outliers] *= rng.uniform(1.5, 4.0, int(outliers.sum()))
    ns = np.round(ms * 1e6 / tick_ns) * tick_ns
    return ns.astype(np.int64)
