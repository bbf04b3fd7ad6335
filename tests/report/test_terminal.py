"""The terminal summary: verdicts, backend, numbers equal to the stats, history, width."""

from __future__ import annotations

import re

from rkbench.report import HistoryPoint, run_key, summary
from rkbench.results.model import RunResult

from .synthetic import failed_run, run


def blocks(text: str) -> list[str]:
    return text.split("\n\n")[1:-1]


def test_one_block_per_run_with_verdict_backend_and_mask(results, history):
    text = summary(results, history)
    first = text.splitlines()[0]
    assert first == "rkbench: 3 runs: 1 passed, 1 failed, 1 error"
    b = blocks(text)
    assert len(b) == 3
    assert b[0].startswith("FAIL ") and b[1].startswith("PASS ") and b[2].startswith("ERROR ")
    for block, r in zip(b, results):
        assert f"backend {r.backend}" in block
        assert f"core mask {r.core_mask}" in block
        assert r.board in block
    assert text.rstrip().endswith("ERROR: 2 of 3 runs did not pass")


def test_failed_threshold_named_with_value_and_limit(results):
    text = summary(results)
    p99 = results[0].stats.p99_ms
    assert f"breached    max_p99_ms: {p99:.4g} ms > limit 11 ms" in text
    assert "2 of 3 passed: min_cos_fp32, max_peak_rss_mb" in blocks(text)[0]
    assert "breached" not in blocks(text)[1]


def test_latency_numbers_are_the_stats(results):
    for block, r in zip(blocks(summary(results)), results[:2]):
        s = r.stats
        assert f"p50 {s.p50_ms:.3f} ms  p99 {s.p99_ms:.3f} ms  (n={s.n})" in block
        assert f"min {s.min_ms:.3f}  mean {s.mean_ms:.3f}  std {s.std_ms:.3f}  max {s.max_ms:.3f} ms" in block


def test_stats_worked_out_from_samples_when_missing():
    r = run(n=500)
    expected = r.stats
    r.stats = None
    assert f"p50 {expected.p50_ms:.3f} ms  p99 {expected.p99_ms:.3f} ms" in summary([r])


def test_previous_run_comparison(results, history):
    r = results[0]
    prev = history[run_key(r)][-1]
    pct = (r.stats.p50_ms - prev.p50_ms) / prev.p50_ms * 100
    assert f"p50 {pct:+.1f}% vs run {prev.run_id} ({prev.p50_ms:.3f} ms)" in summary(results, history)
    assert "+3.1% vs run 34" in summary(results, history)
    # without history: no comparison line at all; with an empty one: says there is none
    assert "vs previous" not in summary(results)
    assert "no earlier run" in summary(results[:1], {})


def test_previous_run_skips_failed_runs_and_the_run_itself():
    r = run(n=300, run_id=50)
    key = run_key(r)
    history = {
        key: [
            HistoryPoint(run_id=48, started="2024-05-01T00:00:00Z", p50_ms=r.stats.p50_ms / 2, p99_ms=None),
            HistoryPoint(run_id=49, started="2024-05-02T00:00:00Z", p50_ms=None, p99_ms=None, status="failed"),
            HistoryPoint(run_id=50, started="2024-06-01T00:00:00Z", p50_ms=1.0, p99_ms=1.0),
        ]
    }
    assert "+100.0% vs run 48" in summary([r], history)


def test_memory_throttling_outputs_and_departing_layers(results):
    block = blocks(summary(results))[0]
    assert "peak RSS 212.5 MiB" in block
    assert "THROTTLED   NPU clock changed during the runs" in block
    assert "vs fp32     logits: cos mean 0.99612 min 0.99123  top-1 98.5%" in block
    assert "vs sim      logits: cos mean 0.99998 min 0.99990  top-1 100.0%" in block
    assert "1 of 40 layers: the board departs from the simulator" in block
    assert "#20 Conv" in block and "board vs sim cos 0.93000" in block
    assert "NPU time" in block


def test_error_run_says_what_happened():
    text = summary([failed_run()])
    assert "ERROR yolov5s" in text
    assert "error       board lost during the runs" in text


def test_width_and_no_control_characters_from_data():
    r = run(n=200, model="m" * 150 + "\x1b[2J\x07", board="lab-board-with-a-very-long-name-" * 4)
    r.throttle_reasons = ["x" * 300]
    text = summary([r, failed_run()])
    assert max(len(line) for line in text.splitlines()) <= 100
    assert "\x1b" not in text and "\x07" not in text


def test_color_only_when_asked(results):
    assert "\x1b[" not in summary(results)
    colored = summary(results, color=True)
    assert "\x1b[31mFAIL" in colored and "\x1b[32mPASS" in colored
    plain = re.sub(r"\x1b\[[0-9;]*m", "", colored)
    assert plain == summary(results)


def test_empty_and_running():
    assert "nothing was run" in summary([])
    r = RunResult(group="g", model="m", model_sha256="", board="b", backend="onnxruntime", core_mask=None)
    text = summary([r])
    assert "ERROR m" in text and "did not finish" in text and "core mask n/a" in text


def test_many_outputs_are_summarised_and_missing_values_said():
    from rkbench.results.model import OutputError, Threshold

    r = run(n=200)
    r.outputs = [OutputError(f"out{i}", "fp32", 0.999, 0.99 - i / 100, 0.1, 0.2) for i in range(6)]
    r.thresholds.append(Threshold("min_top1_fp32", 0.95, None, False))
    text = summary([r])
    assert "vs fp32     6 outputs: cos mean 0.99900 min 0.94000; worst out5 (cos min 0.94000)" in text
    assert "breached    min_top1_fp32: no value measured (limit 0.95000)" in text
    assert "  vs sim  " not in text  # no outputs against the simulator left


def test_history_from_store_like_rows():
    from types import SimpleNamespace

    from rkbench.report import group_history

    r = run(n=300, run_id=60)
    rows = [
        SimpleNamespace(
            run_id=58,
            started="2024-05-01T00:00:00Z",
            model=r.model,
            board=r.board,
            backend=r.backend,
            core_mask=r.core_mask,
            status="ok",
            p50_ms=r.stats.p50_ms / 1.1,
            p99_ms=r.stats.p99_ms,
            throttled=False,
            cos_fp32=0.99,
        ),
        SimpleNamespace(
            run_id=59,
            started="2024-05-02T00:00:00Z",
            model=r.model,
            board=r.board,
            backend="onnxruntime",
            core_mask=None,
            status="ok",
            p50_ms=1.0,
            p99_ms=2.0,
        ),
    ]
    history = group_history(rows)
    assert len(history) == 2
    assert "p50 +10.0% vs run 58" in summary([r], history)
    # rows straight in the dict work too
    assert "p50 +10.0% vs run 58" in summary([r], {run_key(r): rows[:1]})
