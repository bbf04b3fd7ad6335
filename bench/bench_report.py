"""HTML report of a 10,000-sample run: its size and how long headless Chromium takes to
load and render it.

    python -m bench.bench_report [--samples 10000] [--layers 300] [--masks 1] [--keep DIR]

Builds a synthetic run (lognormal latencies, telemetry every 0.25 s with an NPU clock
drop, ~300 layers with a departure from the simulator, history), writes the HTML report
and prints its size against the 2 MB target. Then loads it in headless Chromium (Debian
package `chromium`) over the DevTools protocol and prints the browser's own navigation
timing, navigation start -> load event end, against the 1 s target: the first load in a
fresh tab (what a person gets) and the median of 5 reloads. Browser start-up is not
counted (it happens once, before, on about:blank). Also fails when the page logs a
script error or asks for anything but itself.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

SIZE_LIMIT_MB = 2.0
LOAD_LIMIT_MS = 1000.0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.bench_report", description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=10_000, help="latency samples per run (default 10000)")
    ap.add_argument("--layers", type=int, default=300, help="layers with per-layer error (default 300)")
    ap.add_argument("--masks", type=int, default=1, help="core masks, one run each (default 1)")
    ap.add_argument("--keep", type=Path, help="write the report into this folder and keep it")
    args = ap.parse_args(argv)

    from rkbench.report import write_html
    from tests.report.chromium import Chromium, ChromiumError, find_chromium
    from tests.report.synthetic import history_for, run

    masks = ["0", "0_1", "0_1_2", "0_1_2_3"][: max(1, args.masks)]
    results = [
        run(core_mask=m, n=args.samples, n_layers=args.layers, seed=i, median_ms=8.0 / (i + 1), run_id=100 + i)
        for i, m in enumerate(masks)
    ]
    history = history_for(results, points=10)
    with tempfile.TemporaryDirectory(prefix="rkbench-bench-report-") as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "report.html"
        t0 = time.perf_counter()
        write_html(results, path, history=history, title="bench_report")
        build_s = time.perf_counter() - t0
        size_mb = path.stat().st_size / 1e6
        print(
            f"report: {len(results)} run(s) x {args.samples} samples, {args.layers} layers, "
            f"{len(results[0].telemetry)} telemetry readings each, 10 history points"
        )
        print(f"  written in {build_s:.2f} s (matplotlib, server side)")
        size_ok = size_mb < SIZE_LIMIT_MB
        print(f"  size {size_mb:.3f} MB (target < {SIZE_LIMIT_MB:g} MB): {'PASS' if size_ok else 'FAIL'}")

        if find_chromium() is None:
            print(
                "bench_report: Chromium not installed (apt-get install -y chromium): load time not measured",
                file=sys.stderr,
            )
            return 2
        try:
            with Chromium() as browser:
                browser.open("about:blank")  # start-up and first-tab costs, not counted
                first = browser.open(path)
                again = [browser.open(path) for _ in range(5)]
        except ChromiumError as exc:
            print(f"bench_report: {exc}", file=sys.stderr)
            return 2
        reload_ms = statistics.median(p.load_ms for p in again)
        load_ok = first.load_ms is not None and first.load_ms < LOAD_LIMIT_MS
        print(
            f"  Chromium load (navigation start -> load event end, browser's own timing): "
            f"first {first.load_ms:.0f} ms, median of 5 reloads {reload_ms:.0f} ms "
            f"(target < {LOAD_LIMIT_MS:.0f} ms): {'PASS' if load_ok else 'FAIL'}"
        )
        if first.fcp_ms is not None:
            print(f"  first contentful paint {first.fcp_ms:.0f} ms")
        print(
            f"  page holds {first.counts['svg']} SVG charts, {first.counts['tables']} tables; "
            f"{len(first.errors)} script errors, {len(first.requests) - 1} requests besides itself"
        )
        clean = not first.errors and all(u == first.url for u in first.requests)
        for problem in first.errors + [u for u in first.requests if u != first.url]:
            print(f"  problem: {problem}")
        if args.keep:
            print(f"  kept: {path}")
    return 0 if size_ok and load_ok and clean else 1


if __name__ == "__main__":
    sys.exit(main())
