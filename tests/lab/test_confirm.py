"""Confirmation before blame: suspected cells measured again, interleaved, on the board
(real runners on the local board and a loopback sshd, real SQLite, real build cache)."""

import json
import os
import sqlite3
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

import pytest

from tests.lab.conftest import LOCAL, write_lab

pytestmark = pytest.mark.toolkit


# Confirmation rounds are half of this: long enough for the rank test on a loaded machine.
SECONDS = 1.0


def _row(stdout: str, board: str = "here") -> list[str]:
    line = next(line for line in stdout.splitlines() if line.startswith("| `cnn") and f"@{board}[" in line)
    return [part.strip() for part in line.strip("|").split("|")]


def _not_blamed(outcome: str, confirmed: str) -> bool:
    """A drift alone is never blamed: SAME, or (on a machine too loaded to tell) UNKNOWN."""
    return (outcome, confirmed.split()[0]) in (("pass", "SAME"), ("unstable", "UNKNOWN"))


def test_drift_false_alarm_passes_with_the_drift_named(nightly, lab_files):
    write_lab(lab_files, LOCAL, seconds=SECONDS)
    assert nightly("-o", "d1", "--group", "d1", "--accept").returncode == 0

    # The board is 60% slower tonight for every build: the stored baseline cries wolf, the
    # interleaved confirmation (baseline build and candidate both measured now) does not.
    second = nightly("-o", "d2", "--group", "d2", "--inject-drift", "0.6", "--remeasure", "0")
    assert second.returncode == 0, second.stdout + second.stderr
    cell, outcome, _, stored, confirmed, drift, note = _row(second.stdout)
    assert _not_blamed(outcome, confirmed), note
    assert stored.startswith("DIFFERENT +"), stored
    assert drift.startswith("drifted +") and float(drift.split()[1].rstrip("%")) > 30, drift
    assert "stored baseline: DIFFERENT" in note and "3x2 interleaved rounds" in note and "x the cell" in note
    junit = ET.parse(lab_files / "d2" / "junit.xml").getroot()
    assert not junit.findall(".//failure")
    props = {p.get("name"): p.get("value") for p in junit.iter("property")}
    assert props["verdict_stored_baseline"].startswith("DIFFERENT")
    assert props["verdict_confirmed"] == confirmed and props["board_drift"].startswith("drifted")
    html = (lab_files / "d2" / "report.html").read_text()
    assert "latency_confirmed" in html and "board_drift" in html
    assert "Unstable boards" not in second.stdout  # one drifting night is not yet a pattern

    # Drifting again the next night: the board is listed as unstable (from the store's history).
    third = nightly("-o", "d3", "--group", "d3", "--inject-drift", "0.4", "--remeasure", "0")
    assert third.returncode == 0, third.stdout + third.stderr
    assert _not_blamed(_row(third.stdout)[1], _row(third.stdout)[4])
    assert "Unstable boards" in third.stdout and "- `here`: drifted in 2 of its last 2" in third.stdout

    # Nothing suspected: no confirmation runs at all.
    quiet = nightly("-o", "d4", "--group", "d4", "--no-confirm", "--remeasure", "0")
    with sqlite3.connect(nightly.db) as conn:
        groups = {g for (g,) in conn.execute("SELECT name FROM run_groups")}
    assert {"d2/confirm", "d3/confirm"} <= groups and "d1/confirm" not in groups, groups
    assert "confirmed" not in _row(quiet.stdout)[-1]


def test_real_slowdown_on_a_drifting_board_is_still_a_regression(nightly, lab_files):
    write_lab(lab_files, LOCAL, seconds=SECONDS)
    assert nightly("-o", "s1", "--group", "s1", "--accept").returncode == 0
    done = nightly("-o", "s2", "--group", "s2", "--inject-slowdown", "0.6", "--inject-drift", "0.3", "--remeasure", "0")
    assert done.returncode == 1, done.stdout + done.stderr
    _, outcome, _, stored, confirmed, drift, _ = _row(done.stdout)
    assert outcome == "regression" and stored.startswith("DIFFERENT") and confirmed.startswith("DIFFERENT +")
    assert drift.startswith("drifted +")  # the baseline build, re-measured, is slower too
    failures = ET.parse(lab_files / "s2" / "junit.xml").getroot().findall(".//failure")
    assert {f.get("message").split(":")[0] for f in failures} >= {"latency_vs_baseline", "latency_confirmed"}


def test_board_lost_during_confirmation_is_marked_and_the_others_finish(nightly, lab_files, sshd_factory, tmp_path):
    server = sshd_factory(host="127.0.0.2")
    known = tmp_path / "known_hosts"
    server.trust(known)
    boards = (
        LOCAL
        + f"""
[boards.far]
address = "{server.board}"
soc = "rk3588"
tags = ["lab=desk"]
python = "{sys.executable}"
known_hosts = "{known}"
"""
    )
    write_lab(lab_files, boards, seconds=SECONDS)
    first = nightly("-o", "l1", "--group", "l1", "--accept", "--known-hosts", known)
    assert first.returncode == 0, first.stdout + first.stderr
    args = [sys.executable, "-m", "rkbench", "nightly", "--suite", "suite.toml", "--boards", "boards.toml"]
    args += ["--db", str(nightly.db), "-o", "l2", "--group", "l2", "--inject-drift", "0.6", "--remeasure", "0"]
    proc = subprocess.Popen(
        args + ["--known-hosts", str(known), "--retries", "0"],
        cwd=lab_files,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "RKBENCH_CACHE": str(nightly.cache)},
    )
    # Pull the plug on the SSH board as soon as its confirmation has begun.
    deadline = time.monotonic() + 120
    query = (
        "SELECT COUNT(*) FROM runs r JOIN run_groups g ON g.id = r.group_id JOIN boards b ON b.id = r.board_id "
        "WHERE g.name = 'l2/confirm' AND b.name = 'far'"
    )
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with sqlite3.connect(f"file:{nightly.db}?mode=ro", uri=True, timeout=1) as conn:
                if conn.execute(query).fetchone()[0]:
                    break
        except sqlite3.Error:
            pass
        time.sleep(0.02)
    server.stop()
    stdout, stderr = proc.communicate(timeout=300)
    assert "Traceback" not in stderr, stderr
    assert proc.returncode == 3, stdout + stderr
    far = _row(stdout, "far")
    assert far[1] == "board-lost" and "board lost during the confirmation" in far[-1], far
    here = _row(stdout, "here")
    assert _not_blamed(here[1], here[4]), here  # the other board finished its confirmation


def _history(nightly) -> list[dict]:
    done = subprocess.run(
        [sys.executable, "-m", "rkbench", "history", "--db", nightly.db, "--json"], capture_output=True, text=True
    )
    return json.loads(done.stdout)


def _rk(nightly, *args) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [sys.executable, "-m", "rkbench", *map(str, args)],
        cwd=nightly.root,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "RKBENCH_CACHE": str(nightly.cache)},
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done


def test_compare_confirm_and_a_baseline_build_that_is_gone(nightly, lab_files):
    write_lab(lab_files, LOCAL)
    nightly("-o", "c1", "--group", "c1")
    nightly("-o", "c2", "--group", "c2")
    ids = {row["group"]: row["run_id"] for row in _history(nightly)}
    a, b = ids["c1"], ids["c2"]
    done = _rk(nightly, "compare", a, b, "--confirm", "local", "--db", nightly.db, "--json")
    assert done.returncode == 0, done.stderr
    checked = json.loads(done.stdout)["confirmation"]
    assert checked["error"] is None and checked["rounds"] == 3
    assert checked["verdict"]["n_a"] >= 30 and checked["verdict"]["n_b"] >= 30  # 3 rounds of >= 12 runs
    assert checked["drift"]["kind"] in ("SAME", "DIFFERENT", "UNKNOWN")
    text = _rk(nightly, "compare", a, b, "--confirm", "local", "--db", nightly.db)
    assert "Confirmed on local: confirmed" in text.stdout and "3x2 interleaved rounds" in text.stdout

    # RUN_A's build is gone from the cache and its toolkit is not installed: UNKNOWN, said why.
    with sqlite3.connect(nightly.db) as conn:
        model_id = conn.execute("SELECT model_id FROM runs WHERE id = ?", (a,)).fetchone()[0]
        conn.execute("INSERT INTO builds (build_key, model_id) VALUES (?, ?)", ("f" * 64, model_id))
        conn.execute(
            "UPDATE runs SET build_id = last_insert_rowid(), versions = ? WHERE id = ?",
            (json.dumps({"toolkit": "0.0.1"}), a),
        )
    gone = _rk(nightly, "compare", a, b, "--confirm", "local", "--db", nightly.db, "--fail-on-regression")
    assert gone.returncode == 0, gone.stderr
    assert f"not confirmed: the build of run {a} (ffffffffffff) is no longer in the build cache" in gone.stdout
    assert "toolkit 0.0.1 is not installed" in gone.stdout


def test_run_max_regression_confirms_before_failing(nightly, lab_files):
    run = ["run", "--model", "m.onnx", "--dataset", "calib/dataset.txt", "--backend", "onnxruntime"]
    run += ["--min-seconds", str(SECONDS), "--min-runs", "30", "--db", nightly.db]
    first = _rk(nightly, *run, "--group", "r1", "-o", "r1")
    assert first.returncode == 0, first.stderr
    accepted = _rk(nightly, "baseline", "accept", "r1", "--db", nightly.db)
    assert accepted.returncode == 0, accepted.stderr

    drifted = _rk(nightly, *run, "--group", "r2", "-o", "r2", "--max-regression", "0.05", "--inject-drift", "0.6")
    assert drifted.returncode == 0, drifted.stdout + drifted.stderr
    assert "max_latency_regression: confirmed " in drifted.stderr and "board drifted +" in drifted.stderr
    assert "confirmed DIFFERENT" not in drifted.stderr

    slower = _rk(nightly, *run, "--group", "r3", "-o", "r3", "--max-regression", "0.05", "--inject-slowdown", "0.6")
    assert slower.returncode == 1, slower.stdout + slower.stderr
    assert "confirmed DIFFERENT (regression)" in slower.stderr
    junit = (lab_files / "r3" / "junit.xml").read_text()
    assert "max_latency_regression" in junit and "stored: DIFFERENT vs run" in junit


def test_telemetry_changes_name_what_moved():
    from rkbench.lab.confirm import telemetry_changes
    from rkbench.results.model import TelemetrySample

    stored = [TelemetrySample(t, [10.0], 1_000_000_000, {"0": 1_800_000_000}, {"soc": 45.0}) for t in (0, 1)]
    now = [TelemetrySample(t, [30.0], 1_000_000_000, {"0": 1_416_000_000}, {"soc": 46.5}) for t in (0, 1)]
    changed = telemetry_changes(stored, now)
    # CPU clock down 21% and NPU load up 20 points; the NPU clock and a 1.5 °C warmer SoC did not move.
    assert changed == {"cpu0 MHz": (1800.0, 1416.0), "npu load %": (10.0, 30.0)}
