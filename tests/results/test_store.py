"""The results store on real SQLite files: round trips, runs written as they go, a writer
killed mid-run, several writers at once, baselines and the queries the reports use."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from dataclasses import replace

import pytest

from rkbench.results.model import TelemetrySample
from rkbench.results.stats import summarize
from rkbench.results.store import (
    APPLICATION_ID,
    SCHEMA_VERSION,
    STAGE_COLUMNS,
    RunStateError,
    Store,
    UnknownRun,
    default_db_path,
)
from tests.results.helpers import SHA, make_result, store_run


def test_round_trip_10k_samples(store, db):
    original = make_result(samples=10_000, seed=1)
    expected = list(original.latency_ns)
    run_id = store_run(store, original)
    with Store(db) as again:
        got = again.get_run(run_id)
    assert got.latency_ns == expected
    assert got.status == "ok" and got.run_id == run_id and got.finished
    assert got.stats.n == 10_000
    assert got.stats.p50_ms == pytest.approx(sorted(expected)[4999] / 1e6 * 0.5 + sorted(expected)[5000] / 1e6 * 0.5)
    for field in (
        "group",
        "model",
        "model_sha256",
        "board",
        "backend",
        "core_mask",
        "build_key",
        "target",
        "quant",
        "board_soc",
        "memory",
        "versions",
        "settings",
        "outputs",
        "layers",
        "thresholds",
        "telemetry",
        "throttled",
        "throttle_reasons",
        "suite",
    ):
        assert getattr(got, field) == getattr(original, field), field
    assert got.to_dict()["latency_ns"] == expected
    assert got.passed


def test_file_is_an_rkbench_store_in_wal_mode(store, db):
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()
    assert store.conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1


def test_written_as_it_goes(store, db):
    run = make_result()
    run_id = store.begin_run(run)
    store.add_samples(run_id, 0, [1000, 2000, 3000])
    store.add_samples(run_id, 3, [4000])
    store.add_samples(run_id, 3, [4500])  # a re-sent batch replaces, never duplicates
    store.add_telemetry(run_id, [TelemetrySample(t=1.0, temperatures_c={"soc": 50.0})])
    with Store(db) as reader:  # another connection sees every committed batch
        seen = reader.get_run(run_id)
        assert seen.status == "running"
        assert seen.latency_ns == [1000, 2000, 3000, 4500]
        assert seen.telemetry[-1].temperatures_c == {"soc": 50.0}
        assert reader.history()[0].sample_count == 4
    run.status = "failed"
    run.error = "runner crashed"
    run.latency_ns = []
    store.finish_run(run_id, run)
    got = store.get_run(run_id)
    assert got.status == "failed" and got.error == "runner crashed"
    assert got.stats.n == 4  # computed from the stored samples
    with pytest.raises(RunStateError, match="already failed"):
        store.add_samples(run_id, 4, [1])


def test_finish_appends_samples_not_yet_streamed(store):
    run = make_result(samples=1000, seed=3)
    everything = list(run.latency_ns)
    run_id = store.begin_run(replace(run, latency_ns=everything[:300]))
    store.add_samples(run_id, 300, everything[300:400])
    store.finish_run(run_id, replace(run, status="ok", latency_ns=everything, stats=None))
    assert store.get_run(run_id).latency_ns == everything


def test_abort_keeps_samples(store):
    run_id = store.begin_run(make_result())
    store.add_samples(run_id, 0, [5_000_000] * 50)
    store.abort_run(run_id, "board unreachable: connection reset")
    store.abort_run(run_id, "twice is harmless")
    got = store.get_run(run_id)
    assert got.status == "aborted" and got.error == "board unreachable: connection reset"
    assert len(got.latency_ns) == 50 and got.stats.n == 50
    with pytest.raises(RunStateError):
        store.finish_run(run_id, make_result())


def test_unknown_run(store):
    with pytest.raises(UnknownRun, match="no run 42 .* `rkbench history`"):
        store.get_run(42)
    with pytest.raises(UnknownRun):
        store.add_samples(42, 0, [1])
    assert UnknownRun.exit_code == 2


WRITER = textwrap.dedent("""
    import sys, time
    from rkbench.results.store import Store
    from tests.results.helpers import make_result
    store = Store(sys.argv[1])
    run_id = store.begin_run(make_result(group="killed"))
    for offset in range(0, 3000, 500):
        store.add_samples(run_id, offset, [7_000_000 + offset + i for i in range(500)])
    print(run_id, flush=True)
    time.sleep(120)
""")


def _start_writer(db):
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(db)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=os.getcwd(),
    )
    line = proc.stdout.readline()
    assert line.strip().isdigit(), proc.stderr.read() if proc.poll() is not None else line
    return proc, int(line)


def test_killed_writer_leaves_an_aborted_run_with_its_samples(db):
    proc, run_id = _start_writer(db)
    try:
        with Store(db) as live:  # the writer is alive: its run is left alone
            assert live.get_run(run_id, samples=False).status == "running"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        proc.stdout.close()
        proc.stderr.close()
    with Store(db) as store:
        got = store.get_run(run_id)
    assert got.status == "aborted"
    assert "interrupted" in got.error and f"process {proc.pid}" in got.error
    assert got.latency_ns == [7_000_000 + i for i in range(3000)]
    assert got.stats.n == 3000


def test_reused_pid_does_not_keep_a_dead_run_alive(db, store):
    run_id = store.begin_run(make_result())
    store.add_samples(run_id, 0, [1, 2, 3])
    # Same host, a live pid (ours), but another process start time: the pid was reused.
    token = store.conn.execute("SELECT pid_start FROM runs WHERE id = ?", (run_id,)).fetchone()[0]
    namespace, _, start = token.rpartition("/")
    store.conn.execute("UPDATE runs SET pid_start = ? WHERE id = ?", (f"{namespace}/{int(start) + 1}", run_id))
    with Store(db) as again:
        assert again.get_run(run_id).status == "aborted"


def test_a_pid_from_another_container_is_not_checked_here(db, store):
    """Same host name, another pid namespace: the pid means nothing here; the heartbeat decides."""
    run_id = store.begin_run(make_result())
    store.conn.execute("UPDATE runs SET pid = 999999, pid_start = 'pid:[1]/5' WHERE id = ?", (run_id,))
    with Store(db) as again:
        assert again.get_run(run_id).status == "running"


def test_running_rows_from_other_hosts_expire(db, store):
    fresh = store.begin_run(make_result())
    stale = store.begin_run(make_result())
    store.conn.execute("UPDATE runs SET host = 'lab-pc-2' WHERE id IN (?, ?)", (fresh, stale))
    store.conn.execute("UPDATE runs SET updated = '2001-01-01T00:00:00+00:00' WHERE id = ?", (stale,))
    with Store(db) as again:
        assert again.get_run(fresh).status == "running"
        got = again.get_run(stale)
        assert got.status == "aborted" and "lab-pc-2" in got.error


CONCURRENT = textwrap.dedent("""
    import sys
    from rkbench.results.model import RunResult
    from rkbench.results.store import Store
    db, who = sys.argv[1], int(sys.argv[2])
    with Store(db) as store:
        for r in range(15):
            run = RunResult(group=f"nightly-{who}", model="m", model_sha256="ab" * 32,
                            board=f"board-{who}", backend="rknnlite", core_mask="0")
            run_id = store.begin_run(run)
            for offset in range(0, 1000, 100):
                store.add_samples(run_id, offset, [who * 10**9 + r * 10**6 + offset + i
                                                   for i in range(100)])
            run.status = "ok"
            store.finish_run(run_id, run)
""")


def test_concurrent_writers(db):
    Store(db).close()  # both writers find the schema in place or race to create it: either works
    procs = [
        subprocess.Popen([sys.executable, "-c", CONCURRENT, str(db), str(who)], stderr=subprocess.PIPE, text=True)
        for who in (1, 2)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    with Store(db) as store:
        runs = store.history(limit=None)
        assert len(runs) == 30 and {r.status for r in runs} == {"ok"}
        for summary in runs:
            who = int(summary.board.split("-")[1])
            got = store.get_run(summary.run_id)
            r = int(got.latency_ns[0] // 10**6) - who * 1000
            assert got.latency_ns == [who * 10**9 + r * 10**6 + i for i in range(1000)]


@pytest.mark.parametrize("attempt", range(4))
def test_concurrent_creation_of_a_new_store(tmp_path, attempt):
    """Nightlies starting together on a fresh --db: none may see the others' half-made file as
    foreign (a torn header read did, about 1 start in 60, before creation took a lock)."""
    db = tmp_path / "new.db"
    code = "import sys; from rkbench.results.store import Store; Store(sys.argv[1]).close()"
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(db)], stderr=subprocess.PIPE, text=True) for _ in range(6)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    with Store(db) as store:
        assert store.history() == []


def test_history_filters_and_order(store):
    ids = [
        store_run(store, make_result(samples=20, seed=i, board=b, model=m, sha=s))
        for i, (b, m, s) in enumerate(
            [("ssh://a", "mobilenet", SHA), ("ssh://b", "mobilenet", SHA), ("ssh://a", "yolo", "77" * 32)]
        )
    ]
    assert [r.run_id for r in store.history()] == ids[::-1]
    assert [r.run_id for r in store.history(board="ssh://a")] == [ids[2], ids[0]]
    assert [r.run_id for r in store.history(model="yolo")] == [ids[2]]
    assert [r.run_id for r in store.history(model="777777")] == [ids[2]]  # sha256 prefix
    assert len(store.history(board="RK3588")) == 3  # every board with that SoC
    assert len(store.history(limit=1)) == 1
    top = store.history()[0]
    assert top.p50_ms is not None and top.cos_fp32 == pytest.approx(0.9991)


def test_previous_runs_same_board_mask_and_backend(store):
    older = store_run(store, make_result(samples=20, seed=1))
    store_run(store, make_result(samples=20, seed=2, core_mask="0_1_2"))
    store_run(store, make_result(samples=20, seed=3, backend="onnxruntime"))
    failed = store.begin_run(make_result())
    store.abort_run(failed, "lost")
    newer = store_run(store, make_result(samples=20, seed=4))
    prev = store.previous_runs(SHA, "ssh://root@board-a.lab", "0", before_run_id=newer, backend="rknnlite")
    assert [p.run_id for p in prev] == [older]
    assert len(store.previous_runs(SHA, "ssh://root@board-a.lab", "0", status=None)) == 4


def test_groups_and_baselines(store):
    a1 = store_run(store, make_result(group="night-1", samples=20, seed=1))
    a2 = store_run(store, make_result(group="night-1", samples=20, seed=2, board="ssh://b"))
    bad = store.begin_run(make_result(group="night-1"))
    store.abort_run(bad, "lost")
    assert [r.run_id for r in store.group_runs("night-1")] == [a1, a2, bad]
    assert store.group_runs("night-1")[0].latency_ns == []  # summaries without samples by default
    with pytest.raises(UnknownRun, match="no run group 'nope'"):
        store.group_runs("nope")

    new = make_result(group="night-2", samples=20, seed=3)
    new_id = store_run(store, new)
    assert store.baseline_for(new) is None
    assert store.accept_baseline("night-1") == [a1, a2]  # the aborted run is skipped
    assert store.baseline_for(new) == a1
    assert store.baseline_for(new_id) == a1
    assert store.baseline_for(replace(new, board="ssh://b")) == a2
    assert store.baseline_for(replace(new, core_mask="0_1")) is None
    assert store.baseline_for(replace(new, build_key="other")) is None
    store.accept_baseline(new_id)  # the last accepted one wins; a run is not its own baseline
    assert store.baseline_for(make_result()) == new_id
    assert store.baseline_for(new_id) == a1
    with pytest.raises(RunStateError, match="only a run that finished ok"):
        store.accept_baseline(bad)


def test_json_columns_accept_numpy_and_paths(store):
    from pathlib import Path

    import numpy as np

    run = make_result(samples=10)
    run.settings = {"inputs": Path("/data/img"), "n": np.int64(5), "scale": np.float32(0.5), "shape": np.array([1, 3])}
    run_id = store_run(store, run)
    assert store.get_run(run_id).settings == {"inputs": "/data/img", "n": 5, "scale": 0.5, "shape": [1, 3]}


def test_default_path(monkeypatch, tmp_path):
    monkeypatch.setenv("RKBENCH_DB", str(tmp_path / "x.db"))
    assert default_db_path() == tmp_path / "x.db"
    monkeypatch.delenv("RKBENCH_DB")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert default_db_path() == tmp_path / "xdg" / "rkbench" / "results.db"
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_db_path() == tmp_path / "home" / ".local" / "share" / "rkbench" / "results.db"


def test_a_password_in_a_board_address_is_never_stored(store, db):
    run_id = store_run(store, make_result(samples=10, board="ssh://root:hunter2@10.0.0.5:2222"))
    assert store.get_run(run_id).board == "ssh://root@10.0.0.5:2222"
    assert store.previous_runs(SHA, "ssh://root:hunter2@10.0.0.5:2222", "0", status=None)
    run_id = store_run(store, make_result(samples=10, board="root:hunter2@10.0.0.6"))
    assert store.get_run(run_id).board == "root@10.0.0.6"
    store.close()
    for path in db.parent.iterdir():
        assert b"hunter2" not in path.read_bytes(), path


def test_no_secrets_columns(store):
    """Boards are stored by their display string only: no password/key columns exist."""
    columns = {row[1] for t in ("boards", "runs") for row in store.conn.execute(f"PRAGMA table_info({t})")}
    assert not {c for c in columns if "pass" in c or "key_file" in c or "secret" in c}


def test_writes_are_short(store):
    """A batch of 500 samples commits in well under the busy timeout other writers wait."""
    run_id = store.begin_run(make_result())
    started = time.perf_counter()
    for offset in range(0, 10_000, 500):
        store.add_samples(run_id, offset, list(range(offset + 1, offset + 501)))
    assert (time.perf_counter() - started) / 20 < 0.5
    assert (
        json.loads(store.conn.execute("SELECT memory FROM runs WHERE id = ?", (run_id,)).fetchone()[0])["npu_mem_kb"]
        == 9000
    )


def test_stage_times_and_npu_facts_are_kept_per_iteration(store):
    result = make_result(samples=0, backend="rknnrt")
    run_id = store.begin_run(result)
    store.add_samples(run_id, 0, [100, 110], {"npu": [60, 70], "run": [90, 95]})
    store.add_samples(run_id, 2, [120], {"npu": [80], "run": [100]})
    with pytest.raises(ValueError, match="2 npu times for 1 latencies"):
        store.add_samples(run_id, 3, [1], {"npu": [1, 2]})
    with pytest.raises(ValueError, match="unknown stage"):
        store.add_samples(run_id, 3, [1], {"warp": [1]})
    done = replace(
        result,
        latency_ns=[100, 110, 120],
        io_mode="zero_copy",
        timing_notes=["a note"],
        stage_stats={"npu": summarize([60, 70, 80])},
        npu_profile={"unsupported": "old runtime"},
        memory={"npu": {"dma_bytes": 5 << 20}},
    )
    store.finish_run(run_id, done)
    got = store.get_run(run_id)
    assert got.stages_ns == {"npu": [60, 70, 80], "run": [90, 95, 100]}  # untimed stages are absent
    assert got.stage_stats["npu"].n == 3 and got.io_mode == "zero_copy" and got.timing_notes == ["a note"]
    assert got.npu_profile == {"unsupported": "old runtime"} and got.npu_memory == {"dma_bytes": 5 << 20}


def test_a_version_1_store_is_migrated_with_its_data(tmp_path):
    db = tmp_path / "v1.db"
    with Store(db) as store:
        run_id = store_run(store, make_result(samples=50, seed=3))
    conn = sqlite3.connect(db)  # what rkbench 0.1 wrote: the same tables without the NPU columns
    for column in STAGE_COLUMNS.values():
        conn.execute(f"ALTER TABLE samples DROP COLUMN {column}")
    conn.execute("ALTER TABLE runs DROP COLUMN npu")
    conn.execute("DROP TABLE throughput")  # schema version 3's
    conn.execute("DROP TABLE confirmations")  # schema version 4's
    conn.execute("PRAGMA user_version = 1")
    conn.close()
    with Store(db) as store:
        old = store.get_run(run_id)
        assert len(old.latency_ns) == 50 and old.stages_ns == {} and old.stage_stats == {}
        new = store.begin_run(make_result(samples=0))
        store.add_samples(new, 0, [5, 6], {"npu": [3, 4]})
        assert store.get_run(new).stages_ns == {"npu": [3, 4]}
        store.add_confirmation(new, run_id, "b0", "g", "DIFFERENT", "SAME", 0.2, True)
        assert store.drift_history("b0") == [("g", True, 0.2)]
    assert sqlite3.connect(db).execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
