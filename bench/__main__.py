"""`make bench`: every benchmark, each in its own process (some move HOME or start servers),
printing its figures and ratios measured side by side."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time

BENCHES = [
    ("bench.bench_push", "push over SSH vs scp (issue 4)"),
    ("bench.bench_runner", "runner overhead vs a bare loop (issue 4)"),
    ("bench.bench_run", "rkbench run: time outside the measurement (issue 5)"),
    ("bench.bench_report", "HTML report size and load time (issue 5)"),
    ("bench.bench_stats", "latency verdicts on synthetic NPU-shaped runs (issues 5/6)"),
    ("bench.bench_nightly", "nightly over four SSH boards, A/A false alarms, sensitivity (issue 6)"),
    ("bench.bench_hybrid", "hybrid search vs the vendor's proposal and auto_hybrid (issue 3)"),
    ("bench.bench_rknnrt", "rknnrt backend vs a bare C loop on the stand-in librknnrt (issue 9)"),
    ("bench.bench_emulated", "Python lite2 (the real wheel) vs C on the emulated aarch64 board (issue 9)"),
    ("bench.bench_throughput", "throughput mode: runner total FPS vs N bare C loops on the stand-in (issue 13)"),
]


def main() -> int:
    failed = []
    for module, what in BENCHES:
        if importlib.util.find_spec(module) is None:
            continue
        print(f"\n=== {module}: {what}", flush=True)
        started = time.monotonic()
        code = subprocess.call([sys.executable, "-m", module])
        print(f"=== {module}: exit {code} in {time.monotonic() - started:.0f} s", flush=True)
        if code != 0:
            failed.append(module)
    if failed:
        print(f"\nbenchmarks missing a target: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
