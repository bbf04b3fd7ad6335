"""The HTML report: ONE self-contained file (styles, charts and the little script it has
are inline; a Content-Security-Policy forbids it to fetch anything), every piece of
text from the results HTML-escaped.

Contents: a summary table (one row per model x board x core mask); per model and board
the latency histogram and CDF with the core masks overlaid and the history trend; per
run its thresholds, latency over time with telemetry on the same time axis, per-layer
error (simulator vs board, departures marked), output errors, memory, versions and
settings.
"""

from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import html as _html
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from rkbench import __version__
from rkbench.report import common as c
from rkbench.report import plots
from rkbench.results.model import RunResult

MAX_LAYER_ROWS = 2000  # the full per-layer table (collapsed) stops there


def e(value: object) -> str:
    """Escape for HTML text and attribute values (quotes included)."""
    return _html.escape("" if value is None else str(value), quote=True)


def write_html(
    results: Sequence[RunResult],
    path: str | os.PathLike,
    history: c.History | None = None,
    title: str = "rkbench report",
) -> Path:
    """Write the report to `path` (created or replaced atomically); returns the path."""
    path = Path(path)
    text = render_html(results, history=history, title=title)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path


def render_html(
    results: Sequence[RunResult],
    history: c.History | None = None,
    title: str = "rkbench report",
    generated: str | None = None,
) -> str:
    generated = generated or _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    ids = {id(r): f"run-{i}" for i, r in enumerate(results)}
    tally = c.counts(results)
    errors = f"{tally[c.ERROR]} error{'s' if tally[c.ERROR] != 1 else ''}"
    body = [
        f"<header><h1>{e(title)}</h1>",
        f'<p class="meta">{len(results)} run(s): <span class="PASS">{tally[c.PASS]} passed</span>, '
        f'<span class="FAIL">{tally[c.FAIL]} failed</span>, <span class="ERROR">{errors}</span>'
        f" &middot; generated {e(generated)} by rkbench {e(__version__)}</p></header>",
        _summary_table(results, history, ids),
    ]
    for (_group, model, board, backend), runs in c.cells(results):
        body.append(_cell(model, board, backend, runs, history, ids))
    script = _SCRIPT
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    csp = (
        f"default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'sha256-{digest}'; "
        "base-uri 'none'; form-action 'none'"
    )
    return (
        "\n".join(
            [
                "<!DOCTYPE html>",
                '<html lang="en"><head><meta charset="utf-8">',
                f'<meta http-equiv="Content-Security-Policy" content="{e(csp)}">',
                '<meta name="viewport" content="width=device-width, initial-scale=1">',
                f"<title>{e(title)}</title>",
                f"<style>{_CSS}</style></head><body>",
                *body,
                f"<script>{script}</script>",
                "</body></html>",
            ]
        )
        + "\n"
    )


# -- summary ---------------------------------------------------------------------------


def _summary_table(results: Sequence[RunResult], history: c.History | None, ids: dict) -> str:
    head = [
        "result",
        "model",
        "board",
        "SoC",
        "backend",
        "core mask",
        "n",
        "p50 ms",
        "p99 ms",
        "mean ms",
        "std ms",
        "p50 vs prev",
        "peak RSS MiB",
        "cos min fp32",
        "cos min sim",
        "top-1 fp32",
        "throttled",
        "breached",
    ]
    rows = []
    for r in results:
        stats = c.latency_stats(r)
        prev = c.previous_run(r, history)
        delta = c.pct_change(stats.p50_ms, prev.p50_ms) if (stats and prev) else None
        verdict = c.outcome(r)
        top1 = c.top1(r, "fp32")
        breached = ", ".join(t.name for t in c.failed_thresholds(r))
        if verdict == c.ERROR:
            breached = c.error_text(r)
        cells = [
            (f'<a href="#{ids[id(r)]}" class="badge {verdict}">{verdict}</a>', verdict),
            (e(r.model), r.model),
            (e(r.board), r.board),
            (e(c.soc_of(r)), c.soc_of(r)),
            (e(r.backend), r.backend),
            (e(c.core_mask_text(r)), c.core_mask_text(r)),
            _num(stats.n if stats else None, "{:d}"),
            _num(stats.p50_ms if stats else None),
            _num(stats.p99_ms if stats else None),
            _num(stats.mean_ms if stats else None),
            _num(stats.std_ms if stats else None),
            (e(f"{delta:+.1f}% vs {prev.label()}") if delta is not None else "", delta),
            _num(c.peak_rss_mb(r), "{:.1f}"),
            _num(c.worst_cos(r, "fp32"), "{:.5f}"),
            _num(c.worst_cos(r, "simulator"), "{:.5f}"),
            _num(top1 * 100 if top1 is not None else None, "{:.1f}%"),
            ('<span class="warn">yes</span>' if r.throttled else "no", int(r.throttled)),
            (e(breached), breached),
        ]
        rows.append(
            "<tr>"
            + "".join(f'<td data-v="{e(v)}"{_NUM if isinstance(v, (int, float)) else ""}>{h}</td>' for h, v in cells)
            + "</tr>"
        )
    return (
        '<section><h2>Summary</h2><p class="hint">click a column to sort; click a result to jump to the run'
        '</p><table class="sortable summary"><thead><tr>'
        + "".join(f"<th>{e(h)}</th>" for h in head)
        + "</tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table></section>"
    )


_NUM = ' class="num"'


def _num(value: float | None, fmt: str = "{:.3f}") -> tuple[str, object]:
    if value is None:
        return ("", "")
    return (e(fmt.format(value)), value)


# -- one model on one board ------------------------------------------------------------


def _cell(model: str, board: str, backend: str, runs: list[RunResult], history: c.History | None, ids: dict) -> str:
    masks = ", ".join(c.core_mask_text(r) for r in runs)
    parts = [
        f'<section class="cell"><h2>{e(model)} <small>on {e(c.soc_of(runs[0]))} {e(board)} &middot; '
        f"backend {e(backend)} &middot; core mask {e(masks)}</small></h2>"
    ]
    parts.append(
        _figure(
            plots.latency_distribution(runs),
            "Latency distribution: histogram and CDF, one colour per core mask.",
        )
    )
    if history:
        parts.append(
            _figure(
                plots.history_trend(runs, history),
                "Latency next to the previous runs of this model on this board.",
            )
        )
    for r in runs:
        parts.append(_run(r, history, ids[id(r)]))
    parts.append("</section>")
    return "\n".join(p for p in parts if p)


def _figure(svg: str | None, caption: str) -> str:
    if not svg:
        return ""
    return f"<figure>{svg}<figcaption>{e(caption)}</figcaption></figure>"


def _run(r: RunResult, history: c.History | None, anchor: str) -> str:
    verdict = c.outcome(r)
    out = [
        f'<article id="{anchor}"><h3><span class="badge {verdict}">{verdict}</span> '
        f"core mask {e(c.core_mask_text(r))}"
        + (f" <small>run {e(r.run_id)}</small>" if r.run_id is not None else "")
        + f" <small>started {e(r.started)}</small></h3>"
    ]
    if r.status != "ok":
        out.append(f'<p class="error">{e(c.error_text(r))}</p>')
    if r.throttled:
        reasons = "".join(f"<li>{e(x)}</li>" for x in r.throttle_reasons) or "<li>clocks or temperature changed</li>"
        out.append(
            f'<div class="warn box"><b>Throttled</b>: latency may not be representative.<ul>{reasons}</ul></div>'
        )
    out.append(_thresholds(r))
    out.append(_latency(r, history))
    out.append(
        _figure(
            plots.latency_timeline(r),
            "Latency over the timed loop (median per slice, band: min-max) with the NPU clock; below, "
            "temperatures and CPU clocks on the same time axis.",
        )
    )
    out.append(_npu_profile(r))
    out.append(_outputs(r))
    out.append(
        _figure(
            plots.layer_errors(r),
            "Per-layer cosine similarity. Where the board departs from the simulator (red), the "
            "runtime or driver differs from the simulator: not a quantization effect.",
        )
    )
    out.append(_layers(r))
    out.append(_details(r))
    out.append("</article>")
    return "\n".join(p for p in out if p)


def _npu_profile(r: RunResult) -> str:
    """The per-layer NPU profile: the slowest layers as bars, the time per op type, CPU layers."""
    if (r.npu_profile or {}).get("unsupported"):
        return f'<h4>NPU profile</h4><p class="hint">not available: {e(r.npu_profile["unsupported"])}</p>'
    summary = c.npu_profile(r)
    if summary is None:
        return ""
    out = [
        "<h4>NPU profile</h4>",
        _figure(
            plots.npu_profile(r),
            "Where the NPU spends a frame, from a separate profiling pass "
            "(RKNN_FLAG_COLLECT_PERF_MASK slows inference, so it never runs inside the timed loop).",
        ),
    ]
    rows = [
        [e(t.op_type), e(t.count), e(f"{t.time_us:.1f}"), e(f"{t.share:.1%}"), e(t.cpu_count or "")]
        for t in summary.by_op_type
    ]
    out.append(_table(["op type", "layers", "time (us)", "share", "on the CPU"], rows))
    if summary.cpu_layers:
        names = ", ".join(f"{layer.op_type} {layer.full_name}" for layer in summary.cpu_layers)
        out.append(f'<p class="warn">{len(summary.cpu_layers)} layer(s) run on the CPU, not the NPU: {e(names)}</p>')
    if summary.multi_core and summary.single_core_layers:
        names = ", ".join(f"{layer.op_type} {layer.full_name}" for layer in summary.single_core_layers[:20])
        out.append(
            f'<p class="warn">{len(summary.single_core_layers)} layer(s) stayed on one core under core mask '
            f"{e(c.core_mask_text(r))}: {e(names)}</p>"
        )
    for problem in summary.problems[:5]:
        out.append(f'<p class="hint">profile line {problem.line} not read: {e(problem.reason)}</p>')
    return "\n".join(p for p in out if p)


def _table(head: Iterable[str], rows: Iterable[Iterable[str]], cls: str = "") -> str:
    """Cells are HTML already (callers escape)."""
    return (
        f'<table class="{cls}"><thead><tr>'
        + "".join(f"<th>{e(h)}</th>" for h in head)
        + "</tr></thead><tbody>"
        + "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
        + "</tbody></table>"
    )


def _thresholds(r: RunResult) -> str:
    if not r.thresholds:
        return '<h4>Thresholds</h4><p class="hint">none set</p>'
    rows = [
        [
            f'<span class="badge {"PASS" if t.passed else "FAIL"}">{"pass" if t.passed else "FAIL"}</span>',
            e(t.name),
            e(c.fmt_value(t.value, t.name)),
            e(c.fmt_value(t.limit, t.name)),
            e(t.detail),
        ]
        for t in r.thresholds
    ]
    return "<h4>Thresholds</h4>" + _table(["", "threshold", "value", "limit", "detail"], rows)


def _latency(r: RunResult, history: c.History | None) -> str:
    rows = []
    named = [("end to end", c.latency_stats(r)), ("NPU only (RKNN_QUERY_PERF_RUN)", r.npu_stats)]
    named += [(f"stage: {stage}", s) for stage, s in c.stage_table(r) if stage != "npu"]
    for name, s in named:
        if s is not None:
            rows.append(
                [e(name), e(s.n)]
                + [e(f"{v:.3f}") for v in (s.min_ms, s.p50_ms, s.p90_ms, s.p99_ms, s.max_ms, s.mean_ms, s.std_ms)]
            )
    if not rows:
        return ""
    text = "<h4>Latency (ms)</h4>" + _table(["", "n", "min", "p50", "p90", "p99", "max", "mean", "std"], rows)
    prev = c.previous_run(r, history)
    stats = c.latency_stats(r)
    if prev is not None and stats is not None:
        d50, d99 = c.pct_change(stats.p50_ms, prev.p50_ms), c.pct_change(stats.p99_ms, prev.p99_ms)
        text += (
            f"<p>vs {e(prev.label())} ({e(prev.started)}): p50 {e(_signed(d50))} "
            f"({prev.p50_ms:.3f} ms), p99 {e(_signed(d99))}"
            + (f" ({prev.p99_ms:.3f} ms)" if prev.p99_ms is not None else "")
            + "</p>"
        )
    split = c.npu_split(r)
    if split is not None:
        text += (
            f"<p>NPU time <b>{split.npu_ms:.3f} ms</b> of <b>{split.end_to_end_ms:.3f} ms</b> end to end "
            f"(medians): the host's share is <b>{split.host_ms:.3f} ms</b>, NPU utilisation "
            f"<b>{split.utilisation:.0%}</b>" + (f"; io mode {e(r.io_mode)}" if r.io_mode else "") + "</p>"
        )
    if r.timing_notes:
        text += '<ul class="hint">' + "".join(f"<li>{e(note)}</li>" for note in r.timing_notes) + "</ul>"
    rss = c.peak_rss_mb(r)
    if rss is not None:
        text += f"<p>Peak RSS of the runner: <b>{rss:.1f} MiB</b></p>"
    for label, value in (("NPU memory", c.npu_memory_text(r)), ("NPU runtime", c.runtime_text(r))):
        if value:
            text += f"<p>{label}: <b>{e(value)}</b></p>"
    return text


def _signed(x: float | None) -> str:
    return "n/a" if x is None else f"{x:+.1f}%"


def _outputs(r: RunResult) -> str:
    if not r.outputs:
        return ""
    rows = [
        [
            e(o.name),
            e(o.reference),
            e(f"{o.cos_mean:.5f}"),
            e(f"{o.cos_min:.5f}"),
            e(f"{o.euc_mean:.4g}"),
            e(f"{o.max_abs:.4g}"),
            e("" if o.top1_agreement is None else f"{o.top1_agreement * 100:.1f}%"),
        ]
        for o in r.outputs
    ]
    return "<h4>Output errors</h4>" + _table(
        ["output", "board vs", "cos mean", "cos min", "euclidean mean", "max abs", "top-1 agreement"], rows
    )


def _layers(r: RunResult) -> str:
    if not r.layers:
        return ""

    def row(layer) -> list[str]:
        cls = ' class="depart"' if layer.board_departs else ""
        return (
            [f"<span{cls}>{e(layer.index)}</span>", e(layer.op), e(layer.tensor)]
            + [
                e("" if v is None else f"{v:.5f}")
                for v in (layer.sim_entire_cos, layer.sim_single_cos, layer.rt_entire_cos, layer.rt_single_sim_cos)
            ]
            + ['<span class="depart">departs</span>' if layer.board_departs else ""]
        )

    head = ["#", "op", "tensor", "sim vs fp32", "sim single", "board vs fp32", "board vs sim", ""]
    gone = c.departures(r)
    text = ""
    if gone:
        text += f"<h4>Layers where the board departs from the simulator ({len(gone)})</h4>" + _table(
            head, [row(layer) for layer in gone[:50]]
        )
    layers = sorted(r.layers, key=lambda layer: layer.index)
    shown = layers[:MAX_LAYER_ROWS]
    more = f" (first {len(shown)})" if len(shown) < len(layers) else ""
    text += (
        f"<details><summary>All {len(layers)} layers{more}</summary>"
        + _table(head, [row(layer) for layer in shown], "layers")
        + "</details>"
    )
    return text


def _details(r: RunResult) -> str:
    def kv(d: dict) -> str:
        if not d:
            return '<p class="hint">none recorded</p>'
        return _table(["", ""], [[e(k), e(_flat(v))] for k, v in d.items()], "kv")

    info = {
        "model": r.model,
        "model sha256": r.model_sha256,
        "build key": r.build_key,
        "target": r.target,
        "quantization": r.quant,
        "board": r.board,
        "SoC": r.board_soc,
        "backend": r.backend,
        "core mask": r.core_mask,
        "group": r.group,
        "suite": r.suite,
        "started": r.started,
        "finished": r.finished,
        "status": r.status,
    }
    tel = _telemetry_summary(r)
    return (
        "<details><summary>Versions, settings, memory, telemetry</summary>"
        '<div class="grid"><div><h5>Run</h5>'
        + kv({k: v for k, v in info.items() if v is not None})
        + "</div><div><h5>Versions</h5>"
        + kv(r.versions)
        + "<h5>Settings</h5>"
        + kv(r.settings)
        + "</div><div><h5>Memory</h5>"
        + kv(r.memory)
        + "<h5>Telemetry</h5>"
        + tel
        + "</div></div></details>"
    )


def _telemetry_summary(r: RunResult) -> str:
    if not r.telemetry:
        return '<p class="hint">none recorded</p>'
    channels: dict[str, list[float]] = {}
    for s in r.telemetry:
        if s.npu_freq_hz:
            channels.setdefault("NPU clock (MHz)", []).append(s.npu_freq_hz / 1e6)
        if s.npu_load_pct:
            channels.setdefault("NPU load (%)", []).append(sum(s.npu_load_pct) / len(s.npu_load_pct))
        for k, v in s.cpu_freq_hz.items():
            channels.setdefault(f"CPU {k} (MHz)", []).append(v / 1e6)
        for k, v in s.temperatures_c.items():
            channels.setdefault(f"{k} (C)", []).append(v)
    rows = [[e(k), e(f"{min(v):.4g}"), e(f"{max(v):.4g}")] for k, v in channels.items()]
    return f'<p class="hint">{len(r.telemetry)} readings</p>' + _table(["", "min", "max"], rows)


def _flat(v: object) -> str:
    if isinstance(v, dict):
        return ", ".join(f"{k}={_flat(x)}" for k, x in v.items())
    if isinstance(v, (list, tuple)):
        return ", ".join(_flat(x) for x in v)
    return "" if v is None else str(v)


_CSS = """
:root{--ok:#1a7f37;--bad:#cf222e;--warn:#9a6700;--line:#d0d7de;--soft:#f6f8fa}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;max-width:1280px;
padding:1rem 1.5rem;color:#1f2328}
h1{font-size:1.5rem;margin:.2rem 0}h2{font-size:1.2rem;border-bottom:1px solid var(--line);padding-bottom:.2rem;
margin-top:2rem}h2 small,h3 small{font-weight:normal;color:#57606a}h3{font-size:1.05rem;margin-top:1.5rem}
h4{font-size:.95rem;margin:1rem 0 .3rem}h5{margin:.6rem 0 .2rem}
table{border-collapse:collapse;font-size:12.5px;margin:.3rem 0}th,td{border:1px solid var(--line);
padding:2px 6px;text-align:left;vertical-align:top}th{background:var(--soft)}
td{font-variant-numeric:tabular-nums;overflow-wrap:break-word;max-width:28rem}
table.summary{width:100%}table.sortable th{cursor:pointer;user-select:none}
table.kv td:first-child{color:#57606a;white-space:nowrap}
.PASS{color:var(--ok)}.FAIL,.ERROR,.error{color:var(--bad)}
.badge{display:inline-block;padding:0 6px;border-radius:3px;color:#fff;font-weight:600;font-size:11px;
text-decoration:none}.badge.PASS{background:var(--ok);color:#fff}.badge.FAIL{background:var(--bad);color:#fff}
.badge.ERROR{background:#6e0b12;color:#fff}td.num{white-space:nowrap;text-align:right}
.warn{color:var(--warn)}.box{border:1px solid #d4a72c;background:#fff8c5;padding:.3rem .6rem;margin:.4rem 0}
.depart{color:var(--bad);font-weight:600}.hint,.meta{color:#57606a;font-size:12px}
figure{margin:.6rem 0}figcaption{color:#57606a;font-size:12px}svg.plot{width:100%;height:auto;max-width:1000px}
details{margin:.4rem 0}summary{cursor:pointer;color:#0969da}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(300px,1fr));gap:1rem}
article{border-left:3px solid var(--line);padding-left:1rem;margin:1rem 0}
"""

# Sort a table by a clicked column (numbers by their data-v value). The only script; the
# page's Content-Security-Policy admits it by its hash and nothing else.
_SCRIPT = """
document.querySelectorAll('table.sortable th').forEach(function (th, col) {
  th.addEventListener('click', function () {
    var body = th.closest('table').tBodies[0];
    var asc = th.dataset.dir !== 'asc';
    th.dataset.dir = asc ? 'asc' : 'desc';
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = a.cells[col].dataset.v, y = b.cells[col].dataset.v;
      var nx = parseFloat(x), ny = parseFloat(y);
      var r = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : String(x).localeCompare(String(y));
      return asc ? r : -r;
    });
    rows.forEach(function (row) { body.appendChild(row); });
  });
});
"""
