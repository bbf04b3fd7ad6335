"""JSON report: schema fields, derived numbers, round trip with and without samples."""

from __future__ import annotations

import json
import math

import pytest

from rkbench.report import SCHEMA_VERSION, read_json, write_json
from rkbench.report.jsonreport import ReportFormatError


def test_round_trip_with_samples(results, history, tmp_path):
    path = write_json(results, tmp_path / "r.json", samples=True, history=history)
    assert read_json(path) == list(results)


def test_round_trip_without_samples(results, tmp_path):
    path = write_json(results, tmp_path / "r.json")
    back = read_json(path)
    assert all(r.latency_ns == [] for r in back)
    for original, copy in zip(results, back):
        copy.latency_ns = original.latency_ns
        assert copy == original
    assert path.stat().st_size < 200_000


def test_schema_summary_and_derived(results, history, tmp_path):
    data = json.loads(write_json(results, tmp_path / "r.json", history=history).read_text())
    assert data["schema"] == "rkbench.report" and data["schema_version"] == SCHEMA_VERSION
    assert data["samples_included"] is False
    assert data["summary"] == {"runs": 3, "passed": 1, "failed": 1, "errors": 1}
    d = data["runs"][0]["derived"]
    assert d["outcome"] == "FAIL" and d["failed_thresholds"] == ["max_p99_ms"]
    assert d["key"] == [results[0].model, "board-a.lab", "rknnlite", "0"]
    assert d["peak_rss_mib"] == 212.5 and d["departing_layers"] == [20]
    assert d["previous"]["run_id"] == 34 and round(d["previous"]["p50_change_pct"], 1) == 3.1
    assert data["runs"][2]["derived"]["outcome"] == "ERROR"


def test_non_finite_numbers_become_null(results, tmp_path):
    r = results[1]
    saved = r.outputs[0].euc_mean
    try:
        r.outputs[0].euc_mean = math.nan
        text = write_json([r], tmp_path / "r.json").read_text()
    finally:
        r.outputs[0].euc_mean = saved
    assert "NaN" not in text
    assert json.loads(text)["runs"][0]["outputs"][0]["euc_mean"] is None


def test_refuses_other_files(tmp_path):
    (tmp_path / "a.json").write_text('{"schema": "something else"}')
    with pytest.raises(ReportFormatError, match="not an rkbench JSON report"):
        read_json(tmp_path / "a.json")
    (tmp_path / "b.json").write_text('{"schema": "rkbench.report", "schema_version": 99}')
    with pytest.raises(ReportFormatError, match="schema version 99"):
        read_json(tmp_path / "b.json")
    (tmp_path / "c.json").write_text("{")
    with pytest.raises(ReportFormatError, match="cannot read"):
        read_json(tmp_path / "c.json")
