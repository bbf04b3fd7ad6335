"""Throughput results (`rkbench run --throughput` / `--sweep`): the table printed after the
run, and the HTML page with FPS vs contexts and latency vs FPS (our own SVG charts), the
single-context figure as the baseline, the best configurations named with their memory."""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Sequence
from pathlib import Path

from rkbench import __version__
from rkbench.report import svg
from rkbench.report.html import _CSS, e
from rkbench.report.terminal import clean
from rkbench.run.throughput import FPS_TIE, Pick, label

ONE_CORE_NOTE = (
    "one NPU core: more contexts only overlap CPU-side work (setting inputs, reading outputs, "
    "Python between the runs); the NPU runs one context at a time"
)


def _mb(value) -> str:
    return "-" if value is None else f"{value / 1e6:.1f}"


def _kb_mb(value) -> str:
    return "-" if value is None else f"{value / 1024:.1f}"


def _load(event) -> str:
    if not event.npu_load_pct:
        return "-"
    return "/".join(f"{v:.0f}" for v in event.npu_load_pct)


def _rows(events: Sequence, chosen: Pick, max_p99_ms: float | None = None) -> list[list[str]]:
    base = chosen.baseline.fps if chosen.baseline else None
    rows = []
    for ev in events:
        marks = []
        if ev is chosen.best_fps:
            marks.append("most FPS")
        if ev is chosen.best_p99:
            marks.append(f"best with p99 <= {max_p99_ms:g} ms" if max_p99_ms is not None else "lowest p99")
        if ev.out_of_memory:
            rows.append(
                [str(len(ev.core_masks)), ev.assignment, ",".join(ev.core_masks), "did not fit"] + ["-"] * 6 + [""]
            )
            continue
        worst_p99 = max((c["p99_ms"] or 0.0) for c in ev.contexts) if ev.contexts else None
        rows.append(
            [
                str(len(ev.core_masks)),
                ev.assignment,
                ",".join(ev.core_masks),
                f"{ev.fps:.1f}",
                f"{ev.fps / base:.2f}x" if base else "-",
                f"{ev.stats.p50_ms:.2f}" if ev.stats else "-",
                f"{ev.stats.p99_ms:.2f}" if ev.stats else "-",
                f"{worst_p99:.2f}" if worst_p99 is not None else "-",
                _load(ev),
                f"{_mb(ev.memory.get('dma_bytes'))} / {_kb_mb(ev.memory.get('vm_hwm_kb'))}",
                ", ".join(marks),
            ]
        )
    return rows


HEADERS = ["ctx", "assignment", "core masks", "FPS", "vs 1 ctx", "p50 ms", "p99 ms", "worst ctx p99",
           "NPU load %", "DMA / peak RSS MB", "pick"]  # fmt: skip


def throughput_table(
    events: Sequence, chosen: Pick, max_p99_ms: float | None = None, npu_cores: int | None = None
) -> str:
    """The plain-text table and the verdict lines (control characters from the board removed)."""
    if not events:
        return "throughput: nothing was measured"
    rows = [[clean(cell) for cell in row] for row in _rows(events, chosen, max_p99_ms)]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(HEADERS)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(HEADERS, widths)).rstrip()]
    lines.append("  ".join("-" * w for w in widths).rstrip())
    lines += ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.append("")
    if chosen.best_fps is not None:
        best = chosen.best_fps
        lines.append(
            f"most FPS: {label(best)}: {best.fps:.1f} FPS, p99 {best.stats.p99_ms:.2f} ms, {_memory(best)}"
            f" (within {FPS_TIE:.0%} of the most: the fewest contexts)"
        )
    if chosen.best_p99 is not None:
        best = chosen.best_p99
        what = f"most FPS with p99 <= {max_p99_ms:g} ms" if max_p99_ms is not None else "lowest p99"
        lines.append(f"{what}: {label(best)}: {best.fps:.1f} FPS, p99 {best.stats.p99_ms:.2f} ms, {_memory(best)}")
    elif max_p99_ms is not None:
        lines.append(f"most FPS with p99 <= {max_p99_ms:g} ms: no configuration kept p99 that low")
    if chosen.baseline is not None:
        lines.append(f"single context: {chosen.baseline.fps:.1f} FPS (the baseline of 'vs 1 ctx')")
    if chosen.stopped:
        lines.append(f"stopped early: {clean(chosen.stopped)}; the configurations above it were measured and kept")
    if npu_cores == 1:
        lines.append(ONE_CORE_NOTE)
    return "\n".join(lines)


def _memory(event) -> str:
    return f"NPU DMA {_mb(event.memory.get('dma_bytes'))} MB, peak RSS {_kb_mb(event.memory.get('vm_hwm_kb'))} MB"


def charts(events: Sequence, chosen: Pick) -> tuple[str, str]:
    """FPS vs contexts (one line per assignment, the single context as a reference line) and
    latency (p50, p99) vs FPS."""
    measured = [ev for ev in events if not ev.out_of_memory and ev.stats is not None]
    fps_chart = svg.Chart("FPS vs contexts")
    panel = fps_chart.panel(title="total FPS vs contexts", xlabel="contexts", ylabel="FPS", xinteger=True)
    assignments = list(dict.fromkeys(ev.assignment for ev in measured))
    for k, name in enumerate(assignments):
        points = sorted((len(ev.core_masks), ev.fps) for ev in measured if ev.assignment == name)
        color = svg.COLORS[k % len(svg.COLORS)]
        panel.line([p[0] for p in points], [p[1] for p in points], color=color, label=name, marker="o")
    if chosen.baseline is not None:
        panel.hline(chosen.baseline.fps, label=f"1 context: {chosen.baseline.fps:.1f} FPS")
    lat_chart = svg.Chart("latency vs FPS")
    panel = lat_chart.panel(title="latency vs FPS (each point a configuration)", xlabel="FPS", ylabel="ms")
    for k, name in enumerate(assignments):
        chosen_events = [ev for ev in measured if ev.assignment == name]
        color = svg.COLORS[k % len(svg.COLORS)]
        panel.scatter([ev.fps for ev in chosen_events], [ev.stats.p99_ms for ev in chosen_events], color=color,
                      label=f"{name} p99")  # fmt: skip
        panel.scatter([ev.fps for ev in chosen_events], [ev.stats.p50_ms for ev in chosen_events], color=color,
                      marker="s", size=2.5, label=f"{name} p50")  # fmt: skip
    if chosen.baseline is not None:
        panel.vline(chosen.baseline.fps, label="1 context")
    return fps_chart.svg(), lat_chart.svg()


def render_throughput_html(
    events: Sequence, chosen: Pick, title: str, soc: str | None = None, max_p99_ms: float | None = None
) -> str:
    generated = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    rows = _rows(events, chosen, max_p99_ms)
    table = ['<table class="summary"><tr>' + "".join(f"<th>{e(h)}</th>" for h in HEADERS) + "</tr>"]
    for row in rows:
        table.append("<tr>" + "".join(f"<td>{e(cell)}</td>" for cell in row) + "</tr>")
    table.append("</table>")
    verdict = throughput_table(events, chosen, max_p99_ms).split("\n\n", 1)[-1] if events else "nothing measured"
    body = [
        f"<header><h1>{e(title)}</h1>",
        f'<p class="meta">{len(events)} configuration(s) on {e(soc or "an unknown SoC")} &middot; generated '
        f"{e(generated)} by rkbench {e(__version__)}</p></header>",
        "<h2>Configurations</h2>",
        *table,
        "<pre>" + e(verdict) + "</pre>",
    ]
    if any(not ev.out_of_memory for ev in events):
        fps_svg, lat_svg = charts(events, chosen)
        body += ["<h2>FPS vs contexts</h2>", fps_svg, "<h2>Latency vs FPS</h2>", lat_svg]
    return (
        "\n".join(
            [
                "<!DOCTYPE html>",
                '<html lang="en"><head><meta charset="utf-8">',
                '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; img-src data:; '
                "style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'\">",
                f"<title>{e(title)}</title>",
                f"<style>{_CSS}</style></head><body>",
                *body,
                "</body></html>",
            ]
        )
        + "\n"
    )


def write_throughput_html(
    events: Sequence,
    chosen: Pick,
    path: str | os.PathLike,
    title: str,
    soc: str | None = None,
    max_p99_ms: float | None = None,
) -> Path:
    path = Path(path)
    text = render_throughput_html(events, chosen, title, soc=soc, max_p99_ms=max_p99_ms)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path
