"""The results store under stress: several writers at once, and a store that is truncated,
from a newer rkbench, or on read-only media. A store is refused without being touched, or
read as it is; a run is never lost."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys

import pytest

from tests.run.helpers import explain, model_args

WRITER = """
import sys
from rkbench.results.model import RunResult
from rkbench.results.store import Store
db, me = sys.argv[1], int(sys.argv[2])
with Store(db) as store:
    for i in range(5):
        template = RunResult(group=f"writer-{me}", model=f"m{me}", model_sha256=f"{me:064x}",
                             board=f"board-{me}", backend="onnxruntime", core_mask=None)
        run_id = store.begin_run(template)
        for offset in range(0, 400, 100):
            store.add_samples(run_id, offset, [1_000_000 + me * 1000 + k for k in range(100)])
        store.abort_run(run_id, "written by a test writer")
"""


def test_concurrent_writers_lose_nothing(tmp_path, rk):
    db = tmp_path / "shared.db"
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(db), str(i)], stderr=subprocess.PIPE, text=True)
               for i in range(4)]  # fmt: skip
    for proc in writers:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    rows = rk.history(db)
    assert len(rows) == 20 and all(r["sample_count"] == 400 for r in rows)
    assert sorted({r["board"] for r in rows}) == [f"board-{i}" for i in range(4)]


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _copy(store, tmp_path, name="copy.db"):
    dst = tmp_path / name
    shutil.copy(store, dst)
    return dst


@pytest.mark.parametrize("fault", ["truncated", "newer"])
def test_a_broken_store_is_refused_untouched(rk, warm, cls_model, cls_dataset, tmp_path, fault):
    db = _copy(warm, tmp_path)
    if fault == "truncated":
        db.write_bytes(db.read_bytes()[: db.stat().st_size // 2])
        expected = "is damaged"
    else:
        conn = sqlite3.connect(db)
        conn.execute("PRAGMA user_version = 99")
        conn.commit()
        conn.close()  # the last connection: the change is checkpointed into the file itself
        expected = "has schema version 99, written by a newer rkbench"
    before = _sha(db)
    run = ["run", *model_args(cls_model, cls_dataset), "--db", db]
    for argv in (["history", "--db", db], ["show", "latest", "--db", db], run):
        done = rk(*argv)
        assert done.returncode == 4, explain(done)
        assert expected in done.stderr and str(db) in done.stderr, done.stderr
        assert _sha(db) == before and not os.path.exists(f"{db}-wal")


@pytest.fixture
def read_only_store(warm, tmp_path):
    """The session's store copied onto a tmpfs, then remounted read-only (needs root)."""
    if os.getuid() != 0:
        pytest.skip("needs root to mount a read-only filesystem")
    mount = tmp_path / "ro"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        shutil.copy(warm, mount / "results.db")
        subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
        yield mount / "results.db"
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_a_store_on_read_only_media_is_read(rk, read_only_store, cls_model, cls_dataset):
    db = read_only_store
    [row] = rk.history(db)
    assert row["status"] == "ok" and row["sample_count"] > 0
    shown = rk.show(db, row["run_id"])
    assert shown["stats"]["n"] == row["sample_count"]
    exported = rk.export(db, row["run_id"])
    assert exported["run_id"] == row["run_id"] or exported.get("run", {}).get("run_id") == row["run_id"]
    compared = rk("compare", str(row["run_id"]), str(row["run_id"]), "--db", db, "--json")
    assert compared.returncode == 0, explain(compared)
    assert json.loads(compared.stdout)
    # a command that writes says why it cannot, naming the file
    done = rk("run", *model_args(cls_model, cls_dataset), "--db", db)
    assert done.returncode == 4, explain(done)
    assert f"results store {db} is read-only" in done.stderr or "read-only" in done.stderr, done.stderr
    assert sorted(os.listdir(db.parent)) == ["results.db"]  # nothing written beside it


def test_an_older_store_on_read_only_media_is_read_without_touching_it(tmp_path):
    """A store of schema 1 (before the NPU columns) on read-only media: read through a copy
    migrated in memory; the file stays byte for byte what it was."""
    if os.getuid() != 0:
        pytest.skip("needs root to mount a read-only filesystem")
    from rkbench.results.store import STAGE_COLUMNS, Store
    from tests.results.helpers import make_result, store_run

    db = tmp_path / "v1.db"
    with Store(db) as store:
        run_id = store_run(store, make_result(samples=40, seed=2))
    conn = sqlite3.connect(db)  # what rkbench 0.1 wrote: the same tables without the NPU columns
    for column in STAGE_COLUMNS.values():
        conn.execute(f"ALTER TABLE samples DROP COLUMN {column}")
    conn.execute("ALTER TABLE runs DROP COLUMN npu")
    conn.execute("DROP TABLE throughput")  # schema version 3's
    conn.execute("DROP TABLE confirmations")  # schema version 4's
    conn.execute("PRAGMA user_version = 1")
    conn.execute("PRAGMA journal_mode = DELETE")
    conn.close()
    mount = tmp_path / "ro"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)]).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        shutil.copy(db, mount / "results.db")
        subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
        before = _sha(mount / "results.db")
        with Store(mount / "results.db", read_only=True) as store:
            got = store.get_run(run_id)
            assert len(got.latency_ns) == 40 and got.stages_ns == {}
        assert _sha(mount / "results.db") == before
    finally:
        subprocess.run(["umount", str(mount)], check=True)
