"""history, show, compare, export: as a user runs them, on a real store file."""

from __future__ import annotations

import csv
import io
import json

import pytest

from rkbench.results.store import Store
from tests.results.helpers import SHA, make_result, store_run
from tests.results.synthetic import npu_latencies


@pytest.fixture
def filled(db):
    """Runs: 1 baseline, 2 same speed, 3 10% slower with a worse output and more memory,
    4 another board, 5 aborted mid-run."""
    with Store(db) as store:
        ids = {}
        for name, seed, scale in (("base", 1, 1.0), ("same", 2, 1.0), ("slow", 3, 1.10)):
            run = make_result(group=f"night-{name}")
            run.latency_ns = npu_latencies(1500, seed=seed, scale=scale).tolist()
            if name == "slow":
                run.outputs[0].cos_mean = 0.9800
                run.memory["after_load"]["VmHWM"] = 61200
                run.throttled = True
                run.throttle_reasons = ["soc 86 C"]
            ids[name] = store_run(store, run)
        ids["other"] = store_run(
            store,
            make_result(
                group="night-other", samples=200, board="adb:R58M", model="yolo", sha="77" * 32, core_mask=None
            ),
        )
        aborted = store.begin_run(make_result(group="night-x"))
        store.add_samples(aborted, 0, [9_000_000] * 30)
        store.abort_run(aborted, "board unreachable")
        ids["aborted"] = aborted
    return ids


def test_history_table(store_cli, filled):
    done = store_cli("history")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split()[:3] == ["id", "when", "model"]
    assert [int(line.split()[0]) for line in lines[1:]] == sorted(filled.values(), reverse=True)
    slow = next(line for line in lines if line.split()[0] == str(filled["slow"]))
    assert "rknnlite" in slow and " ok " in slow and "0.9800" in slow and slow.rstrip().endswith("yes")
    assert "aborted" in next(line for line in lines if line.split()[0] == str(filled["aborted"]))


def test_history_filters_and_json(store_cli, filled):
    rows = json.loads(store_cli("history", "--model", "yolo", "--json").stdout)
    assert [r["run_id"] for r in rows] == [filled["other"]]
    assert rows[0]["board"] == "adb:R58M" and rows[0]["core_mask"] is None
    rows = json.loads(store_cli("history", "--board", "ssh://root@board-a.lab", "--json").stdout)
    assert len(rows) == 4
    rows = json.loads(store_cli("history", "--status", "aborted", "--json").stdout)
    assert [r["run_id"] for r in rows] == [filled["aborted"]] and rows[0]["sample_count"] == 30
    assert len(json.loads(store_cli("history", "-n", "2", "--json").stdout)) == 2


def test_history_of_a_missing_store_creates_nothing(store_cli, tmp_path):
    db = tmp_path / "none" / "results.db"
    done = store_cli("history", db=db)
    assert done.returncode == 0 and "No runs" in done.stdout
    assert json.loads(store_cli("history", "--json", db=db).stdout) == []
    assert not db.exists()


def test_history_uses_rkbench_db(tmp_path, filled, db):
    import os
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "rkbench", "history", "--json"],
        capture_output=True,
        text=True,
        env={**os.environ, "RKBENCH_DB": str(db)},
    )
    assert done.returncode == 0, done.stderr
    assert len(json.loads(done.stdout)) == 5


def test_show(store_cli, filled):
    done = store_cli("show", filled["slow"])
    assert done.returncode == 0, done.stderr
    out = done.stdout
    for fragment in (
        "OK",
        "mobilenet",
        "ssh://root@board-a.lab",
        "rk3588",
        "rknnlite",
        "Latency, 1500 samples",
        "p99",
        "THROTTLED: soc 86 C",
        "after_load.VmHWM",
        "61200",
        "logits",
        "0.98000",
        "Worst layers",
        "prob",
        "departs",
        "min_cos_fp32",
        "toolkit",
        "2.5.0",
        "warmup",
        "Previous runs on this board",
    ):
        assert fragment in out, fragment
    worst = out[out.index("Worst layers") :].splitlines()
    assert "prob" in worst[2]  # the layer where the board departs from the simulator comes first
    previous = out[out.index("Previous runs") :].splitlines()[1:3]
    assert [int(line.split()[0]) for line in previous] == [filled["same"], filled["base"]]


def test_show_json_and_latest(store_cli, filled):
    data = json.loads(store_cli("show", "latest", "--json").stdout)
    assert data["run_id"] == filled["aborted"] and data["status"] == "aborted"
    assert data["error"] == "board unreachable" and "latency_ns" not in data
    data = json.loads(store_cli("show", filled["slow"], "--json").stdout)
    assert data["stats"]["n"] == 1500 and data["outputs"][0]["cos_mean"] == 0.98
    assert [p["run_id"] for p in data["previous_runs"]] == [filled["same"], filled["base"]]


def test_compare_regression(store_cli, filled):
    done = store_cli("compare", filled["base"], filled["slow"])
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "Latency: REGRESSION" in out
    assert f"run {filled['slow']} was throttled" in out
    assert "cos mean 0.99910 -> 0.98000 (-0.01910)" in out
    assert "after_load.VmHWM" in out and "51200 -> 61200  +10000 (+19.5%)" in out
    data = json.loads(store_cli("compare", filled["base"], filled["slow"], "--json").stdout)
    lat = data["latency"]
    assert lat["kind"] == "DIFFERENT" and lat["direction"] == "regression"
    assert lat["ci_low"] > 0.05 and lat["effect"] == pytest.approx(0.10, abs=0.02)
    assert lat["n_a"] == lat["n_b"] == 1500
    cos = next(o for o in data["outputs"] if o["reference"] == "fp32")["cos_mean"]
    assert cos["delta"] == pytest.approx(-0.0191)
    assert next(m for m in data["memory"] if m["key"] == "after_load.VmHWM")["delta"] == 10000


def test_compare_fail_on_regression(store_cli, filled):
    done = store_cli("compare", filled["base"], filled["slow"], "--fail-on-regression")
    assert done.returncode == 1
    assert done.stderr.strip().startswith("rkbench: error: run") and "slower" in done.stderr
    assert store_cli("compare", filled["base"], filled["same"], "--fail-on-regression").returncode == 0
    # the other way round it is an improvement, never a failure
    assert store_cli("compare", filled["slow"], filled["base"], "--fail-on-regression").returncode == 0


def test_compare_same_and_min_effect(store_cli, filled):
    data = json.loads(store_cli("compare", filled["base"], filled["same"], "--json").stdout)
    assert data["latency"]["kind"] == "SAME" and data["warnings"] == []
    data = json.loads(store_cli("compare", filled["base"], filled["slow"], "--min-effect", "0.5", "--json").stdout)
    assert data["latency"]["kind"] == "SAME"


def test_compare_warns_about_different_boards_and_empty_runs(store_cli, filled):
    data = json.loads(store_cli("compare", filled["base"], filled["other"], "--json").stdout)
    assert any("boards" in w for w in data["warnings"]) and any("models" in w for w in data["warnings"])
    empty = make_result(group="empty")
    with Store(store_cli.db) as store:
        run_id = store.begin_run(empty)
        store.abort_run(run_id, "no samples at all")
    data = json.loads(store_cli("compare", filled["base"], run_id, "--json").stdout)
    assert data["latency"]["kind"] == "UNKNOWN" and "no latency samples" in data["latency"]["reason"]


def test_export_json(store_cli, filled, tmp_path):
    with Store(store_cli.db) as store:
        expected = store.get_run(filled["base"]).latency_ns
    data = json.loads(store_cli("export", filled["base"]).stdout)
    assert data["latency_ns"] == expected and data["run_id"] == filled["base"]
    assert data["model_sha256"] == SHA and data["stats"]["n"] == 1500
    out = tmp_path / "sub" / "run.json"
    done = store_cli("export", filled["base"], "--format", "json", "-o", out)
    assert done.returncode == 0 and "1500 samples written" in done.stderr
    assert json.loads(out.read_text()) == data


def test_export_csv(store_cli, filled, tmp_path):
    with Store(store_cli.db) as store:
        expected = store.get_run(filled["slow"]).latency_ns
    out = tmp_path / "run.csv"
    assert store_cli("export", filled["slow"], "--format", "csv", "-o", out).returncode == 0
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert len(rows) == 1500
    assert rows[0] == {"run_id": str(filled["slow"]), "seq": "0", "latency_ns": str(expected[0]), "core_mask": "0"}
    assert [int(r["latency_ns"]) for r in rows] == expected
    stdout_rows = list(csv.reader(io.StringIO(store_cli("export", filled["other"], "--format", "csv").stdout)))
    assert stdout_rows[0] == ["run_id", "seq", "latency_ns", "core_mask"] and len(stdout_rows) == 201
    assert stdout_rows[1][3] == ""


@pytest.mark.parametrize("args", [("show", "99"), ("compare", "1", "99"), ("export", "99"), ("show", "abc")])
def test_unknown_run(store_cli, filled, args):
    done = store_cli(*args)
    assert done.returncode == 2, done.stderr
    message = done.stderr.strip().splitlines()[-1]
    assert message.startswith("rkbench: error: no run") and args[-1] in message
    assert "rkbench history" in message


def test_unknown_run_in_a_missing_store(store_cli, tmp_path):
    db = tmp_path / "nothing.db"
    done = store_cli("show", "3", db=db)
    assert done.returncode == 2 and "no run 3" in done.stderr and str(db) in done.stderr
    assert not db.exists()
