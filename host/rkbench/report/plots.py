"""The HTML report's charts, drawn by report/svg.py and returned as inline SVG text: no
JavaScript, nothing fetched, no plotting library to import.

What is plotted is reduced first so a 10,000-sample run stays small: histograms of at
most HIST_BINS bins, CDFs at most CDF_POINTS quantiles, time series cut into at most
TIME_BINS slices drawn as a min-max band and a median line (spikes stay visible),
telemetry at most TELEMETRY_POINTS readings.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rkbench.report import common as c
from rkbench.report.svg import COLORS, DEPART, Chart
from rkbench.results.model import RunResult

HIST_BINS = 80
CDF_POINTS = 1000
TIME_BINS = 400
TELEMETRY_POINTS = 500
LABEL_CHARS = 48


def label(text: object, limit: int = LABEL_CHARS) -> str:
    """Data text not longer than `limit` (svg.py escapes it and fits it to its room)."""
    s = str(text)
    return s if len(s) <= limit else s[: limit - 1] + "\u2026"


def mask_label(run: RunResult) -> str:
    """A run's name in a legend: its core mask (else its backend), short enough to leave room for what follows."""
    return f"core {label(run.core_mask, 28)}" if run.core_mask else label(run.backend, 28)


# -- latency distribution --------------------------------------------------------------


def _ms(run: RunResult) -> np.ndarray:
    return np.asarray(run.latency_ns, dtype=np.float64) / 1e6


def cdf_points(ms: np.ndarray, points: int = CDF_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """The empirical CDF at `points` evenly spaced probabilities (quantiles), not per sample."""
    k = min(points, ms.size)
    q = np.linspace(0.0, 1.0, k)
    return np.quantile(ms, q), q


def hist_range(all_ms: np.ndarray) -> tuple[float, float, int]:
    """(low, high, n_over): the full range, unless a long tail would squash the body, then
    up to the 99.9th percentile with the rest counted as beyond."""
    lo, hi = float(all_ms.min()), float(all_ms.max())
    p99 = float(np.quantile(all_ms, 0.99))
    if hi > lo and hi - lo > 3 * (p99 - lo):
        hi = float(np.quantile(all_ms, 0.999))
    return lo, hi, int((all_ms > hi).sum())


def hist_edges(lo: float, hi: float, samples: int) -> np.ndarray:
    """At most HIST_BINS bins over [lo, hi]; one value gets bins around it (it sits in the middle)."""
    bins = int(min(HIST_BINS, max(10, np.sqrt(samples))))
    if hi <= lo:
        half = max(abs(lo) * 0.01, 1e-3)
        return np.linspace(lo - half, lo + half, bins + 1 if bins % 2 else bins)
    return np.linspace(lo, hi, bins + 1)


def latency_distribution(runs: Sequence[RunResult]) -> str | None:
    """Histogram and CDF, one colour per core mask, overlaid."""
    runs = [r for r in runs if r.latency_ns]
    if not runs:
        return None
    samples = [_ms(r) for r in runs]
    all_ms = np.concatenate(samples)
    lo, hi, over = hist_range(all_ms)
    edges = hist_edges(lo, hi, all_ms.size)
    chart = Chart("latency histogram and CDF")
    hist = chart.panel(
        0,
        0,
        title="histogram" + (f" ({over} slower samples beyond {hi:.2f} ms not shown)" if over else ""),
        xlabel="latency (ms)",
        ylabel="iterations",
        height=190,
    )
    cdf = chart.panel(
        0, 1, title="CDF (dotted: p99)", xlabel="latency (ms)", ylabel="fraction of iterations \u2264 x", height=190
    )
    for level in (0.5, 0.99):
        cdf.hline(level, color="#999", width=0.7)
    for i, (r, ms) in enumerate(zip(runs, samples)):
        color = COLORS[i % len(COLORS)]
        counts, _ = np.histogram(ms, bins=edges)
        stats = c.latency_stats(r)
        hist.stairs(
            counts, edges, color=color, label=f"{mask_label(r)}: p50 {stats.p50_ms:.3f}, p99 {stats.p99_ms:.3f} ms"
        )
        x, q = cdf_points(ms)
        cdf.line(x, q, color=color, width=1.6, label=mask_label(r))
        cdf.vline(stats.p99_ms, color=color, width=0.9, dash="dot")
    cdf.ylim(0, 1.01)
    return chart.svg()


# -- latency over time, with telemetry -------------------------------------------------


def sample_times(run: RunResult) -> np.ndarray:
    """When each iteration ended, in seconds since the timed loop started: the running sum
    of the latencies, stretched to the loop's recorded wall time (settings["elapsed_s"])
    when that is longer, so the loop's own overhead is spread evenly and the axis matches
    the telemetry's clock."""
    t = np.cumsum(np.asarray(run.latency_ns, dtype=np.float64)) / 1e9
    elapsed = run.settings.get("elapsed_s")
    if isinstance(elapsed, (int, float)) and t.size and elapsed > t[-1] > 0:
        t *= elapsed / t[-1]
    return t


def decimate_series(t: np.ndarray, y: np.ndarray, slices: int = TIME_BINS):
    """(t, low, median, high) over at most `slices` consecutive slices."""
    if y.size <= slices:
        return t, y, y, y
    parts = np.array_split(np.arange(y.size), slices)
    tt = np.array([t[p[-1]] for p in parts])
    lo = np.array([y[p].min() for p in parts])
    med = np.array([np.median(y[p]) for p in parts])
    hi = np.array([y[p].max() for p in parts])
    return tt, lo, med, hi


def _thin(items: list, limit: int = TELEMETRY_POINTS) -> list:
    if len(items) <= limit:
        return items
    step = int(np.ceil(len(items) / limit))
    return items[::step] + ([items[-1]] if (len(items) - 1) % step else [])


def latency_timeline(run: RunResult) -> str | None:
    """Latency over the run with the NPU clock on a second axis; below it, on the same
    time axis, temperatures and CPU clocks."""
    if not run.latency_ns:
        return None
    tel = _thin(sorted(run.telemetry, key=lambda s: s.t))
    has_bottom = any(s.temperatures_c or s.cpu_freq_hz for s in tel)
    xlabel = "seconds since the timed loop started"
    chart = Chart("latency over time with telemetry", sharex=True)
    t, lo, med, hi = decimate_series(sample_times(run), _ms(run))
    decimated = t.size < len(run.latency_ns)
    npu = [(s.t, s.npu_freq_hz / 1e6) for s in tel if s.npu_freq_hz]
    top = chart.panel(
        0,
        title=f"latency over time ({len(run.latency_ns)} iterations"
        + (f", {t.size} slices" if decimated else "")
        + ")",
        xlabel="" if has_bottom else xlabel,
        ylabel="latency (ms)",
        y2label="NPU clock (MHz)" if npu else "",
        height=150,
    )
    if decimated:
        top.band(t, lo, hi, color=COLORS[0], label="min-max per slice")
    top.line(t, med, color=COLORS[0], width=1.2, label="median" if decimated else "latency")
    if npu:
        top.step(*zip(*npu), color=DEPART, width=1.3, right=True, label="NPU clock")
        top.ylim(0, max(v for _, v in npu) * 1.15, right=True)
        top.axis_color(DEPART)
    if has_bottom:
        policies = sorted({p for s in tel for p in s.cpu_freq_hz})
        bottom = chart.panel(
            1, xlabel=xlabel, ylabel="temperature (C)", y2label="CPU clock (MHz)" if policies else "", height=130
        )
        zones = sorted({z for s in tel for z in s.temperatures_c})
        for i, zone in enumerate(zones[:6]):
            pts = [(s.t, s.temperatures_c[zone]) for s in tel if zone in s.temperatures_c]
            bottom.line(*zip(*pts), color=COLORS[(i + 1) % len(COLORS)], width=1.2, label=label(zone, 24))
        for i, policy in enumerate(policies[:4]):
            pts = [(s.t, s.cpu_freq_hz[policy] / 1e6) for s in tel if policy in s.cpu_freq_hz]
            bottom.step(
                *zip(*pts),
                color=COLORS[(i + 5) % len(COLORS)],
                width=1.1,
                dash="dash",
                right=True,
                label=f"CPU {label(policy, 16)}",
            )
        if policies:
            top_mhz = max(s.cpu_freq_hz[p] for s in tel for p in s.cpu_freq_hz) / 1e6
            bottom.ylim(0, top_mhz * 1.15, right=True)
    return chart.svg()


# -- per-layer error -------------------------------------------------------------------


def layer_errors(run: RunResult, annotate: int = 3) -> str | None:
    """Cosine per layer: simulator vs fp32 (what quantization does), board vs fp32, and
    board vs simulator; layers where the board departs from the simulator marked."""
    layers = sorted(run.layers, key=lambda layer: layer.index)
    if not layers:
        return None
    gone = c.departures(run)
    chart = Chart("per-layer cosine: simulator vs board")
    ax = chart.panel(
        title=f"per-layer error, {len(layers)} layers ({len(gone)} where the board departs from the simulator)",
        xlabel="layer index",
        ylabel="cosine similarity",
        xinteger=True,
        height=200,
    )
    idx = np.array([layer.index for layer in layers])

    def series(attr: str) -> np.ndarray:
        return np.array([np.nan if getattr(layer, attr) is None else getattr(layer, attr) for layer in layers])

    drawn = []
    for attr, name, color, style in (
        ("sim_entire_cos", "simulator vs fp32", COLORS[0], None),
        ("rt_entire_cos", "board vs fp32", COLORS[1], None),
        ("rt_single_sim_cos", "board vs simulator (layer alone)", COLORS[2], "dash"),
    ):
        y = series(attr)
        if np.isfinite(y).any():
            ax.line(idx, y, color=color, dash=style, width=1.3, label=name)
            drawn.append(y)
    if gone:
        ax.vline([layer.index for layer in gone], color=DEPART, width=0.7, dash=None, opacity=0.4)
        marked = [(layer, _departure_cos(layer)) for layer in gone]
        marked = [(layer, y) for layer, y in marked if y is not None]
        if marked:
            ax.scatter(
                [x.index for x, _ in marked],
                [y for _, y in marked],
                color=DEPART,
                marker="x",
                size=4,
                label="board departs",
            )
        for layer, y in marked[:annotate]:
            ax.annotate(layer.index, y, f"#{layer.index} {label(layer.tensor, 28)}", color=DEPART)
    if drawn:
        low = float(np.nanmin(np.concatenate(drawn)))
        ax.ylim(max(-1.0, low - (1.0 - low) * 0.08 - 1e-4), 1.0 + (1.0 - low) * 0.04 + 1e-5)
    return chart.svg()


def _departure_cos(layer) -> float | None:
    return layer.rt_single_sim_cos if layer.rt_single_sim_cos is not None else layer.rt_entire_cos


# -- history ---------------------------------------------------------------------------


def history_trend(runs: Sequence[RunResult], history: c.History | None) -> str | None:
    """p50 (solid) and p99 (dotted) of the previous runs and this one, per core mask."""
    series = []
    for r in runs:
        points = [p for p in c.history_for(r, history) if p.p50_ms is not None]
        stats = c.latency_stats(r)
        if not points:
            continue
        xs = [p.label() for p in points]
        p50 = [p.p50_ms for p in points]
        p99 = [p.p99_ms for p in points]
        if stats is not None:
            xs.append(f"run {r.run_id}" if r.run_id is not None else "this run")
            p50.append(stats.p50_ms)
            p99.append(stats.p99_ms)
        series.append((r, xs, p50, p99))
    if not series:
        return None
    chart = Chart("latency history")
    ax = chart.panel(title="latency over previous runs (the last point is this run)", ylabel="latency (ms)", height=150)
    order: list[str] = []
    for _, xs, _, _ in series:
        for x in xs:
            if x not in order:
                order.append(x)
    pos = {x: i for i, x in enumerate(order)}
    for i, (r, xs, p50, p99) in enumerate(series):
        color = COLORS[i % len(COLORS)]
        x = [pos[v] for v in xs]
        ax.line(x, p50, color=color, marker="o", size=2.5, width=1.3, label=f"{mask_label(r)} p50")
        y99 = [(a, b) for a, b in zip(x, p99) if b is not None]
        if y99:
            ax.line(*zip(*y99), color=color, dash="dot", marker="o", size=1.8, width=1.1, label=f"{mask_label(r)} p99")
        ax.scatter([x[-1]], [p50[-1]], color=color, size=5)
    ax.xticks(range(len(order)), [label(o, 20) for o in order], rotate=20)
    return chart.svg()


#: How many of the slowest NPU layers the profile chart shows.
PROFILE_LAYERS = 15


def npu_profile(run: RunResult) -> str | None:
    """The slowest layers of the per-layer NPU profile as horizontal bars (CPU layers marked)."""
    summary = c.npu_profile(run)
    if summary is None or not summary.slowest:
        return None
    slow = summary.slowest[:PROFILE_LAYERS]
    chart = Chart("per-layer NPU profile: the slowest layers")
    ax = chart.panel(
        title=f"slowest {len(slow)} of {len(summary.slowest)} layers (RKNN_QUERY_PERF_DETAIL), "
        f"{summary.layers_time_us:.0f} us in all",
        xlabel="time per frame (us)",
        height=max(120, 16 * len(slow)),
    )
    times = [layer.time_us or 0.0 for layer in slow]
    npu = [t if not layer.on_cpu else 0.0 for t, layer in zip(times, slow)]
    cpu = [t if layer.on_cpu else 0.0 for t, layer in zip(times, slow)]
    ax.bars(range(len(slow)), npu, horizontal=True, color=COLORS[0], label="on the NPU")
    if any(cpu):
        ax.bars(range(len(slow)), cpu, horizontal=True, color=DEPART, label="on the CPU")
    ax.yticks(range(len(slow)), [label(f"{layer.op_type} {layer.full_name}", 40) for layer in slow])
    ax.ylim(len(slow) - 0.4, -0.6)
    return chart.svg()
