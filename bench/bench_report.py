"""HTML report of a 10,000-sample run: what writing it costs `rkbench run` (imports and
drawing, in a fresh process), its size, and how long headless Chromium takes to load it;
our SVG writer (report/svg.py) side by side with the matplotlib charts it replaced.

    python -m bench.bench_report [--samples 10000] [--layers 300] [--masks 1] [--rounds 5] [--keep DIR]

Builds a synthetic run (lognormal latencies, telemetry every 0.25 s with an NPU clock
drop, ~300 layers with a departure from the simulator, history). Each round starts one
fresh Python per side, alternating, and times in it `import rkbench.report`, the first
write_html (what a user waits for after a run: lazy imports and drawing) and a second
one (drawing alone); medians over the rounds. The old side is the last matplotlib
plots.py, taken from git history into a temporary folder and put in place of
rkbench.report.plots in its process only (needs git and matplotlib; skipped, saying why,
without them). Then both reports are loaded in headless Chromium (Debian package
`chromium`) over the DevTools protocol: the browser's own navigation timing, navigation
start -> load event end, of the first load in a fresh tab and the median of 5 reloads
(browser start-up not counted: it happens once, before, on about:blank and a page with
text and SVG, so neither side pays for the first fonts).

Targets (exit 1 if one is missed): the new report under 2 MB and loading in under 1 s
without script errors or requests; import + first write at least 3x faster than the
matplotlib one when that was measured.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

SIZE_LIMIT_MB = 2.0
LOAD_LIMIT_MS = 1000.0
SPEEDUP_TARGET = 3.0
ROOT = Path(__file__).resolve().parent.parent
PLOTS = "host/rkbench/report/plots.py"

# Runs in a fresh interpreter per side and round. argv: samples layers masks out_html [old_plots.py]
WRITER = r"""
import json, sys, time
samples, layers, masks, out = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
t0 = time.perf_counter()
if len(sys.argv) > 5:  # the matplotlib plots.py in place of ours, before html.py imports it
    import importlib.util
    spec = importlib.util.spec_from_file_location("rkbench.report.plots", sys.argv[5])
    old = importlib.util.module_from_spec(spec)
    sys.modules["rkbench.report.plots"] = old
    spec.loader.exec_module(old)
    for name in ("latency_distribution", "history_trend", "latency_timeline", "layer_errors"):
        draw = getattr(old, name)
        setattr(old, name, lambda *a, _draw=draw: old.render(_draw, *a))  # html.py called it through render()
from rkbench.report import write_html
t1 = time.perf_counter()
from tests.report.synthetic import history_for, run
masks_ = ["0", "0_1", "0_1_2", "0_1_2_3"][:max(1, masks)]
results = [run(core_mask=m, n=samples, n_layers=layers, seed=i, median_ms=8.0 / (i + 1), run_id=100 + i)
           for i, m in enumerate(masks_)]
history = history_for(results, points=10)
t2 = time.perf_counter()
write_html(results, out, history=history, title="bench_report")
t3 = time.perf_counter()
write_html(results, out, history=history, title="bench_report")
t4 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "first_s": t3 - t2, "again_s": t4 - t3,
                  "matplotlib": "matplotlib" in sys.modules, "telemetry": len(results[0].telemetry)}))
"""


def old_plots(folder: Path) -> tuple[Path | None, str]:
    """The last plots.py that drew with matplotlib, from git history, or (None, why not)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return None, "matplotlib is not installed (pip install 'matplotlib>=3.6' to compare)"

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout

    try:  # the newest commit that added or removed matplotlib's Figure there, and its parent
        gone = git("log", "-1", "--format=%H", "-S", "from matplotlib.figure import Figure", "--", PLOTS).strip()
        if not gone:
            return None, f"no commit in git history touches matplotlib in {PLOTS}"
        commit = f"{gone}^"
        text = git("show", f"{commit}:{PLOTS}")
        if "matplotlib.figure" not in text:  # that commit added it, not removed it
            commit, text = gone, git("show", f"{gone}:{PLOTS}")
    except (OSError, subprocess.CalledProcessError) as exc:
        return None, f"git could not give the old {PLOTS} ({exc})"
    path = folder / "plots_matplotlib.py"
    path.write_text(text)
    return path, f"{PLOTS} as of {commit[:10] + commit[-1] if commit.endswith('^') else commit[:10]}"


def measure(args, out: Path, old: Path | None) -> dict:
    cmd = [sys.executable, "-c", WRITER, str(args.samples), str(args.layers), str(args.masks), str(out)]
    if old is not None:
        cmd.append(str(old))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    if done.returncode != 0:
        raise RuntimeError(f"report writer failed ({'matplotlib' if old else 'svg'}):\n{done.stderr.strip()}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.bench_report", description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=10_000, help="latency samples per run (default 10000)")
    ap.add_argument("--layers", type=int, default=300, help="layers with per-layer error (default 300)")
    ap.add_argument("--masks", type=int, default=1, help="core masks, one run each (default 1)")
    ap.add_argument("--rounds", type=int, default=5, help="fresh processes per side (default 5)")
    ap.add_argument("--keep", type=Path, help="write both reports into this folder and keep them")
    args = ap.parse_args(argv)

    from tests.report.chromium import Chromium, ChromiumError, find_chromium

    with tempfile.TemporaryDirectory(prefix="rkbench-bench-report-") as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        old, source = old_plots(Path(tmp))
        sides = {"svg": (folder / "report.html", None)}
        if old is not None:
            sides["matplotlib"] = (folder / "report-matplotlib.html", old)
        runs: dict[str, list[dict]] = {k: [] for k in sides}
        try:
            for _ in range(max(1, args.rounds)):
                for side, (path, plots) in sides.items():
                    runs[side].append(measure(args, path, plots))
        except RuntimeError as exc:
            print(f"bench_report: {exc}", file=sys.stderr)
            return 2
        print(
            f"report: {args.masks} run(s) x {args.samples} samples, {args.layers} layers, "
            f"{runs['svg'][0]['telemetry']} telemetry readings each, 10 history points; "
            f"median of {args.rounds} fresh processes per side, alternating"
        )
        if old is None:
            print(f"  matplotlib side not measured: {source}")
        else:
            print(f"  matplotlib side: {source}")
        med = {
            s: {k: statistics.median(r[k] for r in rs) for k in ("import_s", "first_s", "again_s")}
            for s, rs in runs.items()
        }
        print(f"  {'':34}" + "".join(f"{s:>12}" for s in sides) + ("       ratio" if old else ""))
        rows = [
            ("import rkbench.report", "import_s"),
            ("first write_html (lazy imports)", "first_s"),
            ("second write_html (drawing only)", "again_s"),
        ]
        for name, key in rows + [("import + first write", None)]:
            vals = {s: (m[key] if key else m["import_s"] + m["first_s"]) for s, m in med.items()}
            line = f"  {name:34}" + "".join(f"{vals[s]:>10.3f} s" for s in sides)
            if old:
                line += f"  {vals['matplotlib'] / vals['svg']:>8.1f}x"
            print(line)
        assert not any(r["matplotlib"] for r in runs["svg"]), "the svg side imported matplotlib"
        speed_ok = True
        if old:
            total = {s: m["import_s"] + m["first_s"] for s, m in med.items()}
            speedup = total["matplotlib"] / total["svg"]
            speed_ok = speedup >= SPEEDUP_TARGET
            print(
                f"  import + first write {speedup:.1f}x faster than matplotlib "
                f"(target >= {SPEEDUP_TARGET:g}x): {'PASS' if speed_ok else 'FAIL'}"
            )
        sizes = {s: p.stat().st_size / 1e6 for s, (p, _) in sides.items()}
        size_ok = sizes["svg"] < SIZE_LIMIT_MB
        print(
            "  size "
            + ", ".join(f"{s} {mb:.3f} MB" for s, mb in sizes.items())
            + f" (target < {SIZE_LIMIT_MB:g} MB): {'PASS' if size_ok else 'FAIL'}"
        )

        if find_chromium() is None:
            print(
                "bench_report: Chromium not installed (apt-get install -y chromium): load time not measured",
                file=sys.stderr,
            )
            return 2
        loads = {}
        try:
            with Chromium() as browser:
                browser.open("about:blank")  # start-up and first-tab costs, not counted
                warm = Path(tmp) / "warm.html"  # nor the first text and SVG (fonts), which the first side would pay
                warm.write_text('<!DOCTYPE html><p>warm</p><svg viewBox="0 0 9 9"><text y="9">up</text></svg>')
                browser.open(warm)
                for side, (path, _) in sides.items():
                    first = browser.open(path)
                    again = [browser.open(path) for _ in range(5)]
                    loads[side] = (first, statistics.median(p.load_ms for p in again))
        except ChromiumError as exc:
            print(f"bench_report: {exc}", file=sys.stderr)
            return 2
        for side, (first, reload_ms) in loads.items():
            print(
                f"  Chromium load, {side} (navigation start -> load event end, browser's own timing): "
                f"first {first.load_ms:.0f} ms, median of 5 reloads {reload_ms:.0f} ms"
                + (f"; first contentful paint {first.fcp_ms:.0f} ms" if first.fcp_ms is not None else "")
            )
        first = loads["svg"][0]
        load_ok = first.load_ms is not None and first.load_ms < LOAD_LIMIT_MS
        print(
            f"  new report loads in {first.load_ms:.0f} ms (target < {LOAD_LIMIT_MS:.0f} ms): {'PASS' if load_ok else 'FAIL'}"
        )
        print(
            f"  page holds {first.counts['svg']} SVG charts, {first.counts['tables']} tables; "
            f"{len(first.errors)} script errors, {len(first.requests) - 1} requests besides itself"
        )
        clean = not first.errors and all(u == first.url for u in first.requests)
        for problem in first.errors + [u for u in first.requests if u != first.url]:
            print(f"  problem: {problem}")
        if args.keep:
            print(f"  kept: {', '.join(str(p) for p, _ in sides.values())}")
    return 0 if size_ok and load_ok and clean and speed_ok else 1


if __name__ == "__main__":
    sys.exit(main())
