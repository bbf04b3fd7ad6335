"""The HTML report's charts, drawn with matplotlib (Agg-free: the SVG backend) and
returned as inline SVG text: no JavaScript, nothing fetched.

What is plotted is reduced first so a 10,000-sample run stays small: histograms of at
most HIST_BINS bins, CDFs at most CDF_POINTS quantiles, time series cut into at most
TIME_BINS slices drawn as a min-max band and a median line (spikes stay visible),
telemetry at most TELEMETRY_POINTS readings.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence

import numpy as np

from rkbench.report import common as c
from rkbench.results.model import RunResult

HIST_BINS = 80
CDF_POINTS = 1000
TIME_BINS = 400
TELEMETRY_POINTS = 500
LABEL_CHARS = 48

_RC = {
    "svg.fonttype": "none",  # text stays text: smaller, selectable, searchable
    "font.size": 9,
    "font.family": "DejaVu Sans",
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "legend.fontsize": 8,
    "legend.frameon": False,
    "figure.dpi": 72,
    "path.simplify": True,
    "text.usetex": False,
}
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
DEPART = "#d62728"


def label(text: object, limit: int = LABEL_CHARS) -> str:
    """Data text made safe for matplotlib: no mathtext ($ would start it), no control
    characters, not longer than `limit`. (XML escaping is the SVG backend's job.)"""
    s = _CONTROL.sub("?", str(text))
    if len(s) > limit:
        s = s[: limit - 1] + "\u2026"
    return s.replace("$", r"\$")


def mask_label(run: RunResult) -> str:
    return f"core {label(run.core_mask)}" if run.core_mask else label(run.backend)


def _figure(width: float, height: float, rows: int = 1, cols: int = 1, **kw):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False, **kw)
    return fig, axes


def _svg(fig, title: str) -> str:
    import matplotlib

    buf = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none"}):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    text = buf.getvalue()
    text = text[text.index("<svg") :]  # drop the XML declaration and DOCTYPE: inline in HTML
    text = re.sub(r"<metadata>.*?</metadata>", "", text, count=1, flags=re.S)
    # Scale with the page: keep the viewBox, drop the fixed size.
    text = re.sub(r'<svg([^>]*?)\swidth="[^"]*"\s+height="[^"]*"', r"<svg\1", text, count=1)
    from html import escape

    return text.replace("<svg", f'<svg role="img" aria-label="{escape(title)}" class="plot"', 1)


def render(draw, *args, **kw) -> str | None:
    """Run one drawing function under the report's style; None when it has nothing to draw."""
    try:
        import matplotlib
    except ImportError as exc:
        raise ImportError(
            "the HTML report draws its charts with matplotlib, which is not installed: pip install 'matplotlib>=3.6'"
        ) from exc

    with matplotlib.rc_context(_RC):
        return draw(*args, **kw)


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


def latency_distribution(runs: Sequence[RunResult]) -> str | None:
    """Histogram and CDF, one colour per core mask, overlaid."""
    runs = [r for r in runs if r.latency_ns]
    if not runs:
        return None
    samples = [_ms(r) for r in runs]
    all_ms = np.concatenate(samples)
    lo, hi, over = hist_range(all_ms)
    bins = int(min(HIST_BINS, max(10, np.sqrt(all_ms.size))))
    edges = np.linspace(lo, hi if hi > lo else lo + 1e-3, bins + 1)
    fig, ax = _figure(9.5, 3.2, 1, 2)
    hist, cdf = ax[0][0], ax[0][1]
    for i, (r, ms) in enumerate(zip(runs, samples)):
        color = COLORS[i % len(COLORS)]
        counts, _ = np.histogram(ms, bins=edges)
        stats = c.latency_stats(r)
        name = f"{mask_label(r)}: p50 {stats.p50_ms:.3f}, p99 {stats.p99_ms:.3f} ms"
        hist.stairs(counts, edges, fill=True, alpha=0.3, color=color)
        hist.stairs(counts, edges, color=color, label=name)
        x, q = cdf_points(ms)
        cdf.plot(x, q, color=color, lw=1.4, label=mask_label(r))
        cdf.axvline(stats.p99_ms, color=color, ls=":", lw=0.9)
    hist.set_xlabel("latency (ms)")
    hist.set_ylabel("iterations")
    hist.set_title("histogram" + (f" ({over} slower samples beyond {hi:.2f} ms not shown)" if over else ""))
    hist.legend(loc="upper right")
    for level in (0.5, 0.99):
        cdf.axhline(level, color="#999", lw=0.7, ls="--")
    cdf.set_xlabel("latency (ms)")
    cdf.set_ylabel("fraction of iterations \u2264 x")
    cdf.set_title("CDF (dotted: p99)")
    cdf.set_ylim(0, 1.01)
    cdf.legend(loc="lower right")
    return _svg(fig, "latency histogram and CDF")


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
    rows = 2 if has_bottom else 1
    fig, axes = _figure(9.5, 2.4 * rows + 0.4, rows, 1, sharex=True)
    top = axes[0][0]
    t, lo, med, hi = decimate_series(sample_times(run), _ms(run))
    top.fill_between(t, lo, hi, color=COLORS[0], alpha=0.25, lw=0, label="min-max per slice")
    top.plot(t, med, color=COLORS[0], lw=1.1, label="median" if lo is not med else "latency")
    top.set_ylabel("latency (ms)")
    top.set_title(
        f"latency over time ({len(run.latency_ns)} iterations"
        + (f", {t.size} slices" if t.size < len(run.latency_ns) else "")
        + ")"
    )
    handles, labels = top.get_legend_handles_labels()
    npu = [(s.t, s.npu_freq_hz / 1e6) for s in tel if s.npu_freq_hz]
    if npu:
        clock = top.twinx()
        clock.step(*zip(*npu), where="post", color=DEPART, lw=1.2, label="NPU clock")
        clock.set_ylabel("NPU clock (MHz)", color=DEPART)
        clock.grid(False)
        clock.set_ylim(0, max(v for _, v in npu) * 1.15)
        h2, l2 = clock.get_legend_handles_labels()
        handles, labels = handles + h2, labels + l2
    top.legend(handles, labels, loc="upper left", ncols=3)
    if has_bottom:
        bottom = axes[1][0]
        zones = sorted({z for s in tel for z in s.temperatures_c})
        for i, zone in enumerate(zones[:6]):
            pts = [(s.t, s.temperatures_c[zone]) for s in tel if zone in s.temperatures_c]
            bottom.plot(*zip(*pts), color=COLORS[(i + 1) % len(COLORS)], lw=1.1, label=label(zone, 24))
        bottom.set_ylabel("temperature (C)")
        handles, labels = bottom.get_legend_handles_labels()
        policies = sorted({p for s in tel for p in s.cpu_freq_hz})
        if policies:
            cpu = bottom.twinx()
            cpu.grid(False)
            for i, policy in enumerate(policies[:4]):
                pts = [(s.t, s.cpu_freq_hz[policy] / 1e6) for s in tel if policy in s.cpu_freq_hz]
                cpu.step(
                    *zip(*pts),
                    where="post",
                    color=COLORS[(i + 5) % len(COLORS)],
                    lw=1.0,
                    ls="--",
                    label=f"CPU {label(policy, 16)}",
                )
            cpu.set_ylabel("CPU clock (MHz)")
            top_mhz = max(s.cpu_freq_hz[p] for s in tel for p in s.cpu_freq_hz) / 1e6
            cpu.set_ylim(0, top_mhz * 1.15)
            h2, l2 = cpu.get_legend_handles_labels()
            handles, labels = handles + h2, labels + l2
        bottom.legend(handles, labels, loc="lower left", ncols=4)
        bottom.set_xlabel("seconds since the timed loop started")
    else:
        top.set_xlabel("seconds since the timed loop started")
    return _svg(fig, "latency over time with telemetry")


# -- per-layer error -------------------------------------------------------------------


def layer_errors(run: RunResult, annotate: int = 3) -> str | None:
    """Cosine per layer: simulator vs fp32 (what quantization does), board vs fp32, and
    board vs simulator; layers where the board departs from the simulator marked."""
    layers = sorted(run.layers, key=lambda layer: layer.index)
    if not layers:
        return None
    fig, ax = _figure(9.5, 3.4)
    ax = ax[0][0]
    idx = np.array([layer.index for layer in layers])

    def series(attr: str) -> np.ndarray:
        return np.array([np.nan if getattr(layer, attr) is None else getattr(layer, attr) for layer in layers])

    drawn = []
    for attr, name, color, style in (
        ("sim_entire_cos", "simulator vs fp32", COLORS[0], "-"),
        ("rt_entire_cos", "board vs fp32", COLORS[1], "-"),
        ("rt_single_sim_cos", "board vs simulator (layer alone)", COLORS[2], "--"),
    ):
        y = series(attr)
        if np.isfinite(y).any():
            ax.plot(idx, y, color=color, ls=style, lw=1.2, label=name)
            drawn.append(y)
    gone = c.departures(run)
    if gone:
        xs = [layer.index for layer in gone]
        ys = [layer.rt_single_sim_cos if layer.rt_single_sim_cos is not None else layer.rt_entire_cos for layer in gone]
        keep = [(x, y) for x, y in zip(xs, ys) if y is not None]
        if keep:
            ax.scatter(*zip(*keep), color=DEPART, marker="x", s=40, zorder=5, label="board departs")
        for layer in gone[:annotate]:
            y = layer.rt_single_sim_cos if layer.rt_single_sim_cos is not None else layer.rt_entire_cos
            if y is not None:
                ax.annotate(
                    f"#{layer.index} {label(layer.tensor, 28)}",
                    (layer.index, y),
                    xytext=(6, -10),
                    textcoords="offset points",
                    fontsize=7,
                    color=DEPART,
                )
        for x in xs:
            ax.axvline(x, color=DEPART, lw=0.6, alpha=0.4)
    if drawn:
        low = np.nanmin(np.concatenate(drawn))
        ax.set_ylim(max(-1.0, low - (1.0 - low) * 0.08 - 1e-4), 1.0 + (1.0 - low) * 0.04 + 1e-5)
    ax.set_xlabel("layer index")
    ax.set_ylabel("cosine similarity")
    ax.set_title(f"per-layer error, {len(layers)} layers ({len(gone)} where the board departs from the simulator)")
    ax.legend(loc="lower left", ncols=2)
    return _svg(fig, "per-layer cosine: simulator vs board")


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
    fig, ax = _figure(9.5, 2.8)
    ax = ax[0][0]
    order: list[str] = []
    for _, xs, _, _ in series:
        for x in xs:
            if x not in order:
                order.append(x)
    pos = {x: i for i, x in enumerate(order)}
    for i, (r, xs, p50, p99) in enumerate(series):
        color = COLORS[i % len(COLORS)]
        x = [pos[v] for v in xs]
        ax.plot(x, p50, color=color, marker="o", ms=3, lw=1.2, label=f"{mask_label(r)} p50")
        y99 = [(a, b) for a, b in zip(x, p99) if b is not None]
        if y99:
            ax.plot(*zip(*y99), color=color, ls=":", marker=".", lw=1.0, label=f"{mask_label(r)} p99")
        ax.scatter([x[-1]], [p50[-1]], color=color, s=50, zorder=5)
    step = max(1, len(order) // 12)
    ax.set_xticks(range(0, len(order), step), [label(o, 20) for o in order[::step]], rotation=20, ha="right")
    ax.set_ylabel("latency (ms)")
    ax.set_title("latency over previous runs (the last point is this run)")
    ax.legend(loc="upper left", ncols=4)
    return _svg(fig, "latency history")
