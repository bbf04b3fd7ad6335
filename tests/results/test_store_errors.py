"""A damaged, hand-edited, foreign or newer store: one clear line, exit 4, the file untouched."""

from __future__ import annotations

import os
import sqlite3

import pytest

from rkbench.errors import InputFileError
from rkbench.results.store import SCHEMA_VERSION, Store, StoreError
from tests.results.helpers import make_result, store_run


def _filled(db, runs: int = 3, samples: int = 5000):
    with Store(db) as store:
        return [store_run(store, make_result(samples=samples, seed=i)) for i in range(runs)]


def expect_store_error(store_cli, db, *fragments, args=("history",)):
    before = db.read_bytes() if db.exists() else None
    done = store_cli(*args, db=db)
    assert done.returncode == 4, (done.returncode, done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rkbench: error: "), done.stderr
    assert str(db) in lines[0]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    if before is not None:
        assert db.read_bytes() == before, "a damaged store must never be rewritten"
    return lines[0]


def test_random_bytes(store_cli, tmp_path):
    db = tmp_path / "random.db"
    db.write_bytes(os.urandom(64 * 1024))
    expect_store_error(store_cli, db, "not an rkbench results store", "--db")
    expect_store_error(store_cli, db, "not an rkbench results store", args=("show", "1"))


@pytest.mark.parametrize("keep", [0.5, 0.9])
def test_truncated(store_cli, tmp_path, keep):
    db = tmp_path / "truncated.db"
    _filled(db)
    size = db.stat().st_size
    with open(db, "r+b") as fh:
        fh.truncate(int(size * keep))
    expect_store_error(store_cli, db, "is damaged", "integrity_check", ".recover")


@pytest.mark.parametrize("page", [1, 4, 20])
def test_overwritten_page(store_cli, tmp_path, page):
    """A disk block gone bad: one whole page of random bytes."""
    db = tmp_path / "scribbled.db"
    _filled(db)
    conn = sqlite3.connect(db)
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.close()
    with open(db, "r+b") as fh:
        fh.seek(page_size * page)
        fh.write(os.urandom(page_size))
    expect_store_error(store_cli, db, "is damaged")


def test_damage_found_after_open_when_the_check_is_skipped(tmp_path):
    """Big stores skip quick_check on open; damage met later is still a StoreError."""
    db = tmp_path / "big.db"
    ids = _filled(db)
    with open(db, "r+b") as fh:
        fh.truncate(db.stat().st_size // 2)
    with pytest.raises(StoreError, match="damaged"):
        with Store(db, quick_check=False) as store:
            for run_id in ids:
                store.get_run(run_id)


def test_hand_dropped_table(store_cli, tmp_path):
    db = tmp_path / "dropped.db"
    _filled(db, runs=1, samples=10)
    conn = sqlite3.connect(db)
    conn.execute("DROP TABLE samples")
    conn.commit()
    conn.close()
    expect_store_error(store_cli, db, "no table 'samples'", "edited by hand")


@pytest.mark.skipif(sqlite3.sqlite_version_info < (3, 35), reason="DROP COLUMN needs SQLite 3.35")
def test_hand_dropped_column(store_cli, tmp_path):
    db = tmp_path / "column.db"
    _filled(db, runs=1, samples=10)
    conn = sqlite3.connect(db)
    conn.execute("ALTER TABLE runs DROP COLUMN throttled")
    conn.commit()
    conn.close()
    expect_store_error(store_cli, db, "lacks column(s) throttled")


def test_hand_edited_json(store_cli, tmp_path):
    db = tmp_path / "edited.db"
    (run_id,) = _filled(db, runs=1, samples=10)
    conn = sqlite3.connect(db)
    conn.execute("UPDATE runs SET settings = '{not json' WHERE id = ?", (run_id,))
    conn.commit()
    conn.close()
    expect_store_error(store_cli, db, f"run {run_id} has an unreadable settings", args=("show", run_id))


def test_hand_edited_stats(store_cli, tmp_path):
    db = tmp_path / "stats.db"
    (run_id,) = _filled(db, runs=1, samples=10)
    conn = sqlite3.connect(db)
    conn.execute("UPDATE runs SET stats = '{\"p50\": 1}' WHERE id = ?", (run_id,))
    conn.commit()
    conn.close()
    expect_store_error(store_cli, db, f"run {run_id}")
    expect_store_error(store_cli, db, f"run {run_id}", args=("show", run_id))


def test_newer_schema(store_cli, tmp_path):
    db = tmp_path / "newer.db"
    _filled(db, runs=1, samples=10)
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA user_version = 7")
    conn.close()
    line = expect_store_error(store_cli, db, "schema version 7", "newer rkbench", "upgrade rkbench")
    assert f"version {SCHEMA_VERSION}" in line
    with pytest.raises(StoreError, match="newer rkbench"):
        Store(db)


def test_foreign_sqlite_database(store_cli, tmp_path):
    db = tmp_path / "other.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE photos (id INTEGER PRIMARY KEY, path TEXT)")
    conn.commit()
    conn.close()
    expect_store_error(store_cli, db, "SQLite database but not an rkbench results store")


def test_store_is_a_folder(store_cli, tmp_path):
    done = store_cli("history", db=tmp_path)
    assert done.returncode in (2, 4), done.stderr  # click refuses a folder for --db
    assert "Traceback" not in done.stderr


def test_errors_are_input_file_errors():
    assert issubclass(StoreError, InputFileError) and StoreError.exit_code == 4
