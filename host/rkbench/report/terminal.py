"""The summary a field engineer reads in ten seconds after `rkbench run`: one block per
model x board x core mask, the verdict first, at most 100 columns, plain text unless
`color=True` (ANSI) is asked for."""

from __future__ import annotations

import re
import textwrap
from collections.abc import Sequence

from rkbench.report import common as c
from rkbench.results.model import RunResult

WIDTH = 100
LABEL = 12  # label column, after a 2-space indent
MAX_OUTPUTS = 3  # output tensors listed one per line; more are summarised
MAX_LAYERS = 5  # departing layers listed

_GREEN, _RED, _YELLOW, _BOLD, _RESET = "\x1b[32m", "\x1b[31m", "\x1b[33m", "\x1b[1m", "\x1b[0m"
_STATUS_COLOR = {c.PASS: _GREEN, c.FAIL: _RED, c.ERROR: _RED + _BOLD}
# C0/C1 control characters (and DEL): a hostile model or board name must not move the
# cursor or clear the user's terminal.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def clean(text: object) -> str:
    return _CONTROL.sub("?", str(text)).replace("\n", " ").replace("\t", " ")


def summary(
    results: Sequence[RunResult], history: c.History | None = None, color: bool = False, width: int = WIDTH
) -> str:
    """The whole summary: a header line with the counts, one block per run, a verdict line."""
    tally = c.counts(results)
    n = len(results)
    errors = f"{tally[c.ERROR]} error{'s' if tally[c.ERROR] != 1 else ''}"
    lines = [
        _fit(
            f"rkbench: {n} run{'s' if n != 1 else ''}: {tally[c.PASS]} passed, {tally[c.FAIL]} failed, {errors}", width
        )
    ]
    for result in results:
        lines.append("")
        lines.extend(run_block(result, history, color=color, width=width))
    lines.append("")
    if not results:
        verdict = "nothing was run"
    elif tally[c.PASS] == n:
        verdict = c.PASS + ": every run met its thresholds"
    else:
        bad = tally[c.FAIL] + tally[c.ERROR]
        verdict = f"{c.FAIL if tally[c.ERROR] == 0 else c.ERROR}: {bad} of {n} runs did not pass"
    lines.append(_paint(verdict, verdict.split(":")[0], color))
    return "\n".join(lines) + "\n"


def run_block(
    result: RunResult, history: c.History | None = None, color: bool = False, width: int = WIDTH
) -> list[str]:
    """The lines for one run (also used as the JUnit testcase's system-out)."""
    verdict = c.outcome(result)
    head = f"{verdict:<5} {clean(result.model)}"
    if result.run_id is not None:
        head += f"  (run {result.run_id})"
    lines = _wrap(head, "", 6, width)
    lines[0] = _paint(lines[0], verdict, color, length=len(verdict))
    where = (
        f"{clean(c.soc_of(result))} {clean(result.board)}  backend {clean(result.backend)}"
        f"  core mask {clean(c.core_mask_text(result))}"
    )
    for label, text, tone in [("board", where, None), *_rows(result, history)]:
        lines.extend(_row(label, text, tone, color, width))
    return lines


def _profile_rows(r: RunResult) -> list[tuple[str, str, str | None]]:
    """The per-layer NPU profile in three lines: the slowest layers, CPU layers, one-core layers."""
    if (r.npu_profile or {}).get("unsupported"):
        return [("NPU profile", clean(f"not available: {r.npu_profile['unsupported']}"), "warn")]
    summary = c.npu_profile(r)
    if summary is None or not summary.slowest:
        return []
    slow = ", ".join(
        f"{clean(layer.op_type)} {clean(layer.full_name)[:28]} {layer.time_us:.0f} us" for layer in summary.slowest[:3]
    )
    rows = [("NPU profile", f"slowest of {len(summary.slowest)} layers: {slow}", None)]
    if summary.cpu_layers:
        names = ", ".join(clean(layer.op_type) for layer in summary.cpu_layers[:5])
        rows.append(("", f"{len(summary.cpu_layers)} layer(s) run on the CPU, not the NPU: {names}", "warn"))
    if summary.multi_core and summary.single_core_layers:
        rows.append(
            ("", f"{len(summary.single_core_layers)} layer(s) stayed on one core under a multi-core mask", "warn")
        )
    return rows


def _rows(r: RunResult, history: c.History | None) -> list[tuple[str, str, str | None]]:
    """(label, text, tone) rows; tone colours the label: 'bad', 'warn' or None."""
    rows: list[tuple[str, str, str | None]] = []
    if r.status != "ok":
        rows.append(("error", clean(c.error_text(r)), "bad"))
    failed = c.failed_thresholds(r)
    for t in failed:
        rows.append(("breached", clean(c.threshold_text(t)), "bad"))
    passed = [t for t in r.thresholds if t.passed]
    if r.thresholds:
        names = ", ".join(clean(t.name) for t in passed) or "none"
        rows.append(("thresholds", f"{len(passed)} of {len(r.thresholds)} passed: {names}", None))
    elif r.status == "ok":
        rows.append(("thresholds", "none set", None))

    stats = c.latency_stats(r)
    if stats is not None:
        rows.append(("latency", f"p50 {stats.p50_ms:.3f} ms  p99 {stats.p99_ms:.3f} ms  (n={stats.n})", None))
        rows.append(
            (
                "",
                f"min {stats.min_ms:.3f}  mean {stats.mean_ms:.3f}  std {stats.std_ms:.3f}  max {stats.max_ms:.3f} ms",
                None,
            )
        )
        prev = c.previous_run(r, history)
        if prev is not None:
            parts = [f"p50 {_signed(c.pct_change(stats.p50_ms, prev.p50_ms))} vs {prev.label()} ({prev.p50_ms:.3f} ms)"]
            d99 = c.pct_change(stats.p99_ms, prev.p99_ms)
            if d99 is not None:
                parts.append(f"p99 {_signed(d99)} ({prev.p99_ms:.3f} ms)")
            if prev.started:
                parts.append(f"on {prev.started[:10]}")
            rows.append(("vs previous", ", ".join(parts), None))
        elif history is not None:
            rows.append(("vs previous", "no earlier run of this model on this board", None))
    elif r.status == "ok":
        rows.append(("latency", "no samples recorded", "warn"))
    if r.npu_stats is not None:
        rows.append(
            (
                "NPU time",
                f"p50 {r.npu_stats.p50_ms:.3f} ms  p99 {r.npu_stats.p99_ms:.3f} ms  (the runtime's own, RKNN_QUERY_PERF_RUN)",
                None,
            )
        )
        split = c.npu_split(r)
        if split is not None:
            rows.append(
                (
                    "",
                    f"host share {split.host_ms:.3f} ms of {split.end_to_end_ms:.3f} ms end to end; "
                    f"NPU utilisation {split.utilisation:.0%}",
                    None,
                )
            )
    stages = c.stage_table(r)
    if stages:
        text = "  ".join(f"{stage} {s.p50_ms:.3f}" for stage, s in stages)
        rows.append(("stages", f"{text} ms (medians)" + (f"; io {r.io_mode}" if r.io_mode else ""), None))
    for note in r.timing_notes:
        rows.append(("timing", clean(note), None))

    rss = c.peak_rss_mb(r)
    if rss is not None:
        rows.append(("memory", f"peak RSS {rss:.1f} MiB", None))
    npu_memory = c.npu_memory_text(r)
    if npu_memory is not None:
        rows.append(("NPU memory", clean(npu_memory), "warn" if npu_memory.startswith("not") else None))
    runtime = c.runtime_text(r)
    if runtime is not None:
        rows.append(("runtime", clean(runtime), None))
    rows.extend(_profile_rows(r))
    if r.throttled:
        reasons = "; ".join(clean(x) for x in r.throttle_reasons) or "clocks or temperature changed"
        rows.append(("THROTTLED", f"{reasons} (latency may not be representative)", "warn"))

    for reference, label in (("fp32", "vs fp32"), ("simulator", "vs sim")):
        rows.extend(_output_rows(r, reference, label))

    if r.layers:
        gone = c.departures(r)
        if gone:
            rows.append(
                (
                    "departs",
                    f"{len(gone)} of {len(r.layers)} layers: the board departs from the "
                    f"simulator (runtime/driver, not quantization); worst:",
                    "warn",
                )
            )
            for layer in gone[:MAX_LAYERS]:
                rows.append(("", _layer_text(layer), None))
            if len(gone) > MAX_LAYERS:
                rows.append(("", f"... and {len(gone) - MAX_LAYERS} more (see the HTML report)", None))
        else:
            rows.append(("layers", f"the board follows the simulator on all {len(r.layers)} layers", None))
    return rows


def _output_rows(r: RunResult, reference: str, label: str) -> list[tuple[str, str, str | None]]:
    outs = c.outputs_vs(r, reference)
    if not outs:
        return []
    if len(outs) <= MAX_OUTPUTS:
        return [
            (label if i == 0 else "", f"{clean(o.name)}: {_agreement(o.cos_mean, o.cos_min, o.top1_agreement)}", None)
            for i, o in enumerate(outs)
        ]
    worst = min(outs, key=lambda o: o.cos_min)
    overall = _agreement(c.mean_cos(r, reference), c.worst_cos(r, reference), c.top1(r, reference))
    text = f"{len(outs)} outputs: {overall}; worst {clean(worst.name)} (cos min {worst.cos_min:.5f})"
    return [(label, text, None)]


def _agreement(cos_mean: float | None, cos_min: float | None, top1: float | None) -> str:
    text = f"cos mean {_f5(cos_mean)} min {_f5(cos_min)}"
    if top1 is not None:
        text += f"  top-1 {top1 * 100:.1f}%"
    return text


def _layer_text(layer) -> str:
    return (
        f"#{layer.index} {clean(layer.op)} {clean(layer.tensor)}: board vs sim cos "
        f"{_f5(layer.rt_single_sim_cos)} (sim vs fp32 {_f5(layer.sim_entire_cos)}, "
        f"board vs fp32 {_f5(layer.rt_entire_cos)})"
    )


def _f5(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.5f}"


def _signed(pct: float | None) -> str:
    return "n/a" if pct is None else f"{pct:+.1f}%"


# -- layout ----------------------------------------------------------------------------


def _row(label: str, text: str, tone: str | None, color: bool, width: int) -> list[str]:
    prefix = "  " + label.ljust(LABEL)
    lines = _wrap(text, prefix, len(prefix), width)
    if color and tone and label:
        paint = _RED if tone == "bad" else _YELLOW
        lines[0] = "  " + paint + label + _RESET + lines[0][2 + len(label) :]
    return lines


def _wrap(text: str, prefix: str, indent: int, width: int) -> list[str]:
    return textwrap.wrap(
        text, width=width, initial_indent=prefix, subsequent_indent=" " * indent, break_on_hyphens=False
    ) or [prefix.rstrip()]


def _fit(text: str, width: int) -> str:
    return "\n".join(_wrap(text, "", 2, width))


def _paint(line: str, verdict: str, color: bool, length: int | None = None) -> str:
    if not color or verdict not in _STATUS_COLOR:
        return line
    n = length if length is not None else len(line)
    return _STATUS_COLOR[verdict] + line[:n] + _RESET + line[n:]
