"""Board telemetry while measuring (NPU load and clock, CPU clocks, temperatures), and
the throttling verdict drawn from it."""

from __future__ import annotations

import threading
import time
from typing import Callable, List, Optional, Sequence, Tuple

from rkbench_wire import Telemetry

from . import sysfs


def read_telemetry(root: str = "/") -> Telemetry:
    devfreq = sysfs.npu_devfreq(root)
    cpus = [
        {"policy": p["policy"], "cpus": p["cpus"], "cur_khz": p["cur_khz"], "governor": p["governor"]}
        for p in sysfs.cpufreq(root)
    ]
    return Telemetry(
        timestamp=time.time(),
        npu_load_pct=sysfs.npu_load(root),
        npu_freq_hz=devfreq["cur_freq_hz"] if devfreq else None,
        npu_governor=devfreq["governor"] if devfreq else None,
        cpu=cpus,
        temperatures_c=sysfs.temperatures(root),
    )


class TelemetrySampler:
    """Reads telemetry every `interval_s` on a daemon thread, hands each reading to
    `emit` and keeps it (with a monotonic stamp) for the throttling verdict."""

    def __init__(self, root: str, interval_s: float, emit: Callable[[Telemetry], None]) -> None:
        self.root = root
        self.interval_s = interval_s
        self._emit = emit
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._readings: List[Tuple[float, Telemetry]] = []
        self._thread: Optional[threading.Thread] = None

    def start(self) -> None:
        if self.interval_s > 0:
            self._thread = threading.Thread(target=self._loop, name="rkbench-telemetry", daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sample()

    def sample(self) -> Telemetry:
        """Take one reading now (also used right before and after each timed loop)."""
        reading = read_telemetry(self.root)
        with self._lock:
            self._readings.append((time.monotonic(), reading))
        self._emit(reading)
        return reading

    def between(self, start: float, end: float) -> List[Telemetry]:
        with self._lock:
            return [r for t, r in self._readings if start <= t <= end]

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)


def throttle_verdict(readings: Sequence[Telemetry], temp_limit_c: float) -> Tuple[bool, List[str]]:
    """Throttled when the NPU clock or a CPU policy's clock changed across the readings
    taken during the runs, or a thermal zone reached temp_limit_c."""
    reasons: List[str] = []
    npu = [r.npu_freq_hz for r in readings if r.npu_freq_hz is not None]
    if len(set(npu)) > 1:
        reasons.append("NPU clock changed during the runs: %s Hz (min %d, max %d)" % (_span(npu), min(npu), max(npu)))
    policies = {}
    for reading in readings:
        for cpu in reading.cpu:
            if cpu.get("cur_khz") is not None:
                policies.setdefault(cpu.get("policy"), []).append(cpu["cur_khz"])
    for policy in sorted(policies, key=str):
        values = policies[policy]
        if len(set(values)) > 1:
            reasons.append(
                "CPU %s clock changed during the runs: %s kHz (min %d, max %d)"
                % (policy, _span(values), min(values), max(values))
            )
    hottest = {}
    for reading in readings:
        for zone, temp in reading.temperatures_c.items():
            if temp >= temp_limit_c and temp > hottest.get(zone, float("-inf")):
                hottest[zone] = temp
    for zone in sorted(hottest):
        reasons.append("%s reached %.1f C (limit %.1f C)" % (zone, hottest[zone], temp_limit_c))
    return bool(reasons), reasons


def _span(values: Sequence[int]) -> str:
    seen: List[int] = []
    for value in values:
        if not seen or seen[-1] != value:
            seen.append(value)
    text = " -> ".join(str(v) for v in seen[:6])
    return text + (" -> ..." if len(seen) > 6 else "")
