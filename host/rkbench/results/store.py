"""The results store: every measured run in one SQLite file, written as the run goes.

Where: `--db PATH`, else $RKBENCH_DB, else $XDG_DATA_HOME/rkbench/results.db, else
~/.local/share/rkbench/results.db.

Writing a run (the session calls these as events arrive; each is one short transaction):

    run_id = store.begin_run(result)           # status "running", pid + host recorded
    store.add_samples(run_id, offset, batch)   # raw latencies, as each batch arrives
    store.add_telemetry(run_id, samples)
    store.finish_run(run_id, result)           # stats, outputs, layers, thresholds, status
    store.abort_run(run_id, reason)            # or this, when the run cannot finish

A process killed between begin and finish leaves a "running" row with the samples it had
committed; the next open of the store marks it "aborted" and keeps the samples (same host
and pid namespace: the recorded pid is gone or belongs to another process now; another
host or container: no heartbeat for `stale_after` seconds).

The file: WAL mode (readers never block the writer), foreign keys on, a busy timeout and
short transactions so several processes (one per board in a nightly) can write at once.
`PRAGMA application_id` marks an rkbench store and `PRAGMA user_version` is the schema
version. Opening checks the header, the version, the tables (a hand-dropped table is
caught) and, for files up to QUICK_CHECK_MAX_BYTES, `PRAGMA quick_check`. Every SQLite
failure becomes a one-line `StoreError` (exit 4) naming the file and what to do; a
damaged store is never replaced or emptied behind the user's back.

Schema (version 3; an older store is migrated in place on open, its data kept):
    boards(id, name UNIQUE, soc)            models(id, sha256 UNIQUE, name)
    builds(id, build_key UNIQUE, model_id, target, quant)
    run_groups(id, name UNIQUE, suite, created)
    runs(id, group_id, model_id, board_id, build_id, backend, core_mask, status, started,
         finished, updated, target, quant, board_soc, sample_count, stats, npu_stats,
         memory, versions, settings, throttled, throttle_reasons, error, pid, host,
         pid_start, npu)                    -- stats ... settings, throttle_reasons, npu: JSON
    samples(run_id, seq, latency_ns, inputs_set_ns, run_ns, npu_ns, outputs_get_ns)
                                            -- the stage columns NULL where the backend did not time them
    telemetry(run_id, seq, t, data JSON)
    output_errors(run_id, seq, name, reference, cos_mean, cos_min, euc_mean, max_abs,
                  top1_agreement)
    layer_errors(run_id, seq, layer_index, op, tensor, sim_entire_cos, sim_single_cos,
                 rt_entire_cos, rt_single_sim_cos, board_departs)
    thresholds(run_id, seq, name, limit_value, value, passed, detail)
    baselines(id, run_id, model_id, build_key, board_id, core_mask, backend, accepted)
        -- the baseline of a key is its last accepted row; older rows are the history
    throughput(id, group_id, model_id, board_id, build_key, backend, started, seq, assignment,
               core_masks, contexts, fps, p50_ms, p99_ms, runs, elapsed_s, dma_bytes, vm_hwm_kb,
               out_of_memory, data)     -- one row per throughput configuration (version 3)
"""

from __future__ import annotations

import json
import math
import os
import re
import socket
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from functools import wraps
from pathlib import Path

from rkbench.errors import DiskFullError, InputFileError, RkbenchError, UsageError
from rkbench.results.model import (
    STATUSES,
    LatencyStats,
    LayerError,
    OutputError,
    RunResult,
    TelemetrySample,
    Threshold,
    npu_facts,
    npu_fields,
    stats_from_dict,
)
from rkbench.results.stats import summarize
from rkbench_wire import ProtocolError

SCHEMA_VERSION = 4
#: Per-iteration stage times kept beside each latency (rkbench_wire STAGES, as columns).
STAGE_COLUMNS = {"inputs_set": "inputs_set_ns", "run": "run_ns", "npu": "npu_ns", "outputs_get": "outputs_get_ns"}
#: What brings a store of version N-1 to N (run in one transaction on open; data is kept).
#: Version 3: throughput configurations (`rkbench run --throughput`), one row each.
_THROUGHPUT_TABLE = """
CREATE TABLE throughput (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    group_id INTEGER NOT NULL REFERENCES run_groups(id),
    model_id INTEGER NOT NULL REFERENCES models(id),
    board_id INTEGER NOT NULL REFERENCES boards(id),
    build_key TEXT NOT NULL,            -- '' when the run has none
    backend TEXT NOT NULL,
    started TEXT NOT NULL,
    seq INTEGER NOT NULL,               -- the configuration's place in its run
    assignment TEXT NOT NULL,
    core_masks TEXT NOT NULL,           -- JSON list, one mask per context
    contexts INTEGER NOT NULL,
    fps REAL,                           -- NULL: the contexts did not fit
    p50_ms REAL,
    p99_ms REAL,
    runs INTEGER NOT NULL,
    elapsed_s REAL NOT NULL,
    dma_bytes INTEGER,
    vm_hwm_kb INTEGER,
    out_of_memory TEXT,
    data TEXT NOT NULL                  -- the runner's throughput event, JSON
);
CREATE INDEX throughput_by_key ON throughput(model_id, board_id, backend, assignment, contexts, id);
"""
#: Confirmations of suspected verdicts (lab/confirm.py) and the board drift they saw.
_CONFIRMATIONS_TABLE = """
CREATE TABLE confirmations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id INTEGER REFERENCES runs(id) ON DELETE CASCADE,  -- the suspected (candidate) run
    baseline_run INTEGER,               -- the stored baseline it was suspected against
    board TEXT NOT NULL,
    group_name TEXT NOT NULL,
    stored_kind TEXT NOT NULL,          -- SAME | DIFFERENT | UNKNOWN vs the stored baseline
    confirm_kind TEXT,                  -- the interleaved verdict (NULL: no confirmation)
    drift REAL,                         -- baseline build now vs as stored (+0.12: 12% slower now)
    drifted INTEGER NOT NULL DEFAULT 0,
    detail TEXT NOT NULL DEFAULT '',
    created TEXT NOT NULL
);
CREATE INDEX confirmations_by_board ON confirmations(board, id);
"""
MIGRATIONS = {
    2: [f"ALTER TABLE samples ADD COLUMN {column} INTEGER" for column in STAGE_COLUMNS.values()]
    + ["ALTER TABLE runs ADD COLUMN npu TEXT NOT NULL DEFAULT '{}'"],
    3: [statement for statement in _THROUGHPUT_TABLE.split(";") if statement.strip()],
    # 4: confirmations of suspected verdicts (re-measured interleaved) and the board drift they saw.
    4: [statement for statement in _CONFIRMATIONS_TABLE.split(";") if statement.strip()],
}
APPLICATION_ID = 0x726B6231  # "rkb1": marks the file as an rkbench results store
SQLITE_MAGIC = b"SQLite format 3\x00"
QUICK_CHECK_MAX_BYTES = 32 * 1024 * 1024  # quick_check on open up to this size (~0.2 s)
BUSY_TIMEOUT_S = 30.0
STALE_AFTER_S = 3600.0  # a "running" row from another host without news for this long is dead

HELP_DAMAGED = (
    "check it with `sqlite3 {path} 'PRAGMA integrity_check'`, recover what is left "
    "with `sqlite3 {path} .recover | sqlite3 recovered.db`, or move the file aside "
    "(rkbench then starts a new store) or pick another with --db"
)

_SCHEMA = (
    """
CREATE TABLE boards (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,          -- display address, never credentials
    soc TEXT
);
CREATE TABLE models (
    id INTEGER PRIMARY KEY,
    sha256 TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL
);
CREATE TABLE builds (
    id INTEGER PRIMARY KEY,
    build_key TEXT NOT NULL UNIQUE,
    model_id INTEGER NOT NULL REFERENCES models(id),
    target TEXT,
    quant TEXT
);
CREATE TABLE run_groups (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    suite TEXT,
    created TEXT NOT NULL
);
CREATE TABLE runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    group_id INTEGER NOT NULL REFERENCES run_groups(id),
    model_id INTEGER NOT NULL REFERENCES models(id),
    board_id INTEGER NOT NULL REFERENCES boards(id),
    build_id INTEGER REFERENCES builds(id),
    backend TEXT NOT NULL,
    core_mask TEXT,
    status TEXT NOT NULL CHECK (status IN ('running', 'ok', 'failed', 'aborted')),
    started TEXT NOT NULL,
    finished TEXT,
    updated TEXT NOT NULL,              -- heartbeat: last write for this run
    target TEXT,
    quant TEXT,
    board_soc TEXT,
    sample_count INTEGER NOT NULL DEFAULT 0,
    stats TEXT,
    npu_stats TEXT,
    memory TEXT NOT NULL DEFAULT '{}',
    versions TEXT NOT NULL DEFAULT '{}',
    settings TEXT NOT NULL DEFAULT '{}',
    throttled INTEGER NOT NULL DEFAULT 0,
    throttle_reasons TEXT NOT NULL DEFAULT '[]',
    error TEXT,
    pid INTEGER,                        -- the writing process, to find interrupted runs
    host TEXT,
    -- pid_start: "<pid namespace>/<start time>" from /proc: a reused pid, or a
    -- container's, is not taken for the writer
    pid_start TEXT,
    npu TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX runs_by_key ON runs(model_id, board_id, core_mask, id);
CREATE INDEX runs_by_group ON runs(group_id);
CREATE INDEX runs_by_status ON runs(status);
CREATE TABLE samples (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    latency_ns INTEGER NOT NULL,
    inputs_set_ns INTEGER,
    run_ns INTEGER,
    npu_ns INTEGER,
    outputs_get_ns INTEGER,
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;
CREATE TABLE telemetry (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    t REAL NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;
CREATE TABLE output_errors (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    name TEXT NOT NULL,
    reference TEXT NOT NULL,
    cos_mean REAL,
    cos_min REAL,
    euc_mean REAL,
    max_abs REAL,
    top1_agreement REAL,
    PRIMARY KEY (run_id, seq)
);
CREATE TABLE layer_errors (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    layer_index INTEGER NOT NULL,
    op TEXT NOT NULL,
    tensor TEXT NOT NULL,
    sim_entire_cos REAL,
    sim_single_cos REAL,
    rt_entire_cos REAL,
    rt_single_sim_cos REAL,
    board_departs INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, seq)
);
CREATE TABLE thresholds (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    name TEXT NOT NULL,
    limit_value REAL NOT NULL,
    value REAL,
    passed INTEGER NOT NULL,
    detail TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (run_id, seq)
);
CREATE TABLE baselines (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    model_id INTEGER NOT NULL REFERENCES models(id),
    build_key TEXT NOT NULL,            -- '' when the run has none
    board_id INTEGER NOT NULL REFERENCES boards(id),
    core_mask TEXT NOT NULL,            -- '' when the run has none
    backend TEXT NOT NULL,
    accepted TEXT NOT NULL
);
CREATE INDEX baselines_by_key ON baselines(model_id, build_key, board_id, core_mask, backend, id);
"""
    + _THROUGHPUT_TABLE
    + _CONFIRMATIONS_TABLE
)


# --------------------------------------------------------------------------- errors


class StoreError(InputFileError):
    """The results store file cannot be used: damaged, hand-edited, newer, not a store."""


class StoreBusy(StoreError):
    """Another process held the store locked for longer than the busy timeout."""


class UnknownRun(UsageError):
    """A run id (or group) that the store does not hold."""


class RunStateError(RkbenchError):
    """An operation the run's status does not allow (samples for a finished run, ...)."""


def _sqlite_code(err: sqlite3.Error) -> str:
    name = getattr(err, "sqlite_errorname", None)  # Python 3.11+
    if name:
        return name.split("_")[1] if name.count("_") else name
    text = str(err).lower()
    for needle, code in (
        ("malformed", "CORRUPT"),
        ("not a database", "NOTADB"),
        ("disk is full", "FULL"),
        ("locked", "BUSY"),
        ("readonly", "READONLY"),
        ("unable to open", "CANTOPEN"),
        ("disk i/o", "IOERR"),
    ):
        if needle in text:
            return code
    return "ERROR"


def map_sqlite_error(err: sqlite3.Error, path: Path) -> RkbenchError:
    """One SQLite failure as an error the user can act on."""
    code = _sqlite_code(err)
    text = " ".join(str(err).split())
    lowered = text.lower()
    if code in ("CORRUPT", "NOTADB") or "no such table" in lowered or "no such column" in lowered:
        return StoreError(f"results store {path} is damaged ({text}): " + HELP_DAMAGED.format(path=path))
    if code == "FULL":
        return DiskFullError(f"disk full while writing the results store {path}: free some space and run again")
    if code in ("BUSY", "LOCKED"):
        return StoreBusy(
            f"results store {path} stayed locked by another process for more than "
            f"{BUSY_TIMEOUT_S:g} s: wait for it to finish and run again"
        )
    if code == "READONLY":
        return StoreError(
            f"results store {path} is read-only: fix its permissions "
            "(and those of its folder) or pick another file with --db"
        )
    if code == "CANTOPEN":
        return StoreError(
            f"cannot open the results store {path}: check that its folder exists "
            "and is writable, or pick another file with --db"
        )
    if code == "IOERR":
        return StoreError(f"I/O error on the results store {path} ({text}): check the disk")
    if code == "CONSTRAINT":
        return StoreError(
            f"results store {path} refused a value ({text}): was it edited by hand? " + HELP_DAMAGED.format(path=path)
        )
    return StoreError(f"results store {path}: {text}")


def _mapped(method):
    """Turn SQLite failures inside a Store method into StoreError (and friends)."""

    @wraps(method)
    def wrapper(self: Store, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except (sqlite3.ProgrammingError, sqlite3.InterfaceError):
            raise  # our bug (closed store, bad binding), not the file's
        except sqlite3.Error as err:
            raise map_sqlite_error(err, self.path) from err

    return wrapper


# --------------------------------------------------------------------------- helpers


def default_db_path() -> Path:
    """$RKBENCH_DB, else $XDG_DATA_HOME/rkbench/results.db, else ~/.local/share/rkbench/results.db."""
    env = os.environ.get("RKBENCH_DB")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".local" / "share"
    return base / "rkbench" / "results.db"


def _cannot_write(path: Path) -> bool:
    """The store (or its folder, where SQLite keeps the -wal and -shm files) is not writable."""
    if not path.exists():
        return False
    siblings = [Path(f"{path}-wal"), Path(f"{path}-shm")]
    return not all(os.access(p, os.W_OK) for p in [path, path.parent, *[p for p in siblings if p.exists()]])


def _header(conn: sqlite3.Connection) -> tuple[int, int]:
    """(application_id, user_version) read in one statement: two PRAGMAs are two snapshots,
    and a store created between them read as version 4 of no application (seen)."""
    app_id, version = conn.execute("SELECT * FROM pragma_application_id(), pragma_user_version()").fetchone()
    return app_id, version


@contextmanager
def _creating(path: Path) -> Iterator[None]:
    """One process at a time creates a new store in a folder (a lock on the folder itself,
    no file left behind): two nightlies starting on a fresh --db otherwise raced SQLite's
    switch to WAL and saw each other's half-made file as foreign (seen: 4 in 240 starts)."""
    import fcntl

    fd = os.open(path.parent, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _connect_read_only(path: Path, busy_timeout: float) -> sqlite3.Connection:
    """A read-only connection. SQLite reads a WAL store read-only when it can make its -shm
    file or finds one; on read-only media without one, the file is opened as immutable,
    which is exact only when no -wal file holds changes not yet in the store itself."""
    if not path.exists():
        raise StoreError(f"results store {path} does not exist (`rkbench run` fills it; --db picks another file)")
    uri = path.resolve().as_uri()
    options = dict(timeout=busy_timeout, isolation_level=None, check_same_thread=False, uri=True)
    conn = sqlite3.connect(f"{uri}?mode=ro", **options)
    try:
        conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        return conn
    except sqlite3.OperationalError as err:
        conn.close()
        wal = Path(f"{path}-wal")
        if _sqlite_code(err) not in ("CANTOPEN", "READONLY") and "unable to open" not in str(err).lower():
            raise
        if wal.exists() and wal.stat().st_size > 0:
            raise StoreError(
                f"results store {path} is read-only and its {wal.name} holds changes that SQLite cannot read "
                "without writing: copy the store with its -wal file to a writable folder and use that copy (--db)"
            ) from err
    return sqlite3.connect(f"{uri}?immutable=1", **options)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _age_seconds(iso: str | None) -> float:
    if not iso:
        return math.inf
    try:
        when = datetime.fromisoformat(iso)
    except ValueError:
        return math.inf
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return (datetime.now(timezone.utc) - when).total_seconds()


def _json_default(value):
    if hasattr(value, "tolist") and callable(value.tolist):  # numpy scalars and arrays
        return value.tolist()
    if isinstance(value, (set, tuple)):
        return list(value)
    return str(value)  # Path and the like


def _dumps(value) -> str:
    return json.dumps(value, default=_json_default, sort_keys=True)


def _proc_stat(pid: int) -> tuple[str | None, str | None]:
    """(state, start time in clock ticks) of a Linux process, or (None, None)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None, None
    rest = text[text.rfind(")") + 2 :].split()
    if len(rest) < 20:
        return None, None
    return rest[0], rest[19]


def _pid_namespace() -> str:
    """This process's pid namespace ("pid:[4026531836]"), "" where /proc does not tell."""
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""


def _process_token(pid: int) -> str | None:
    """ "<pid namespace>/<start time>": tells a reused pid, or one in another container, apart."""
    start = _proc_stat(pid)[1]
    return f"{_pid_namespace()}/{start}" if start else None


def _same_pid_namespace(token: str | None) -> bool:
    return token is None or token.rpartition("/")[0] == _pid_namespace()


def _process_alive(pid: int, start_token: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    except OSError:
        return False
    state, start = _proc_stat(pid)
    if state in ("Z", "X"):
        return False
    if start_token and start and start_token.rpartition("/")[2] != start:
        return False  # the pid was reused by another process
    return True


_PASSWORD_IN_URL = re.compile(r"^((?:[A-Za-z][A-Za-z0-9+.-]*://)?[^/@:\[\]]*):[^/@]*@")


def board_display(board: str) -> str:
    """The board as stored: a password in an address (ssh://user:pw@host) never reaches the file."""
    return _PASSWORD_IN_URL.sub(r"\1@", board)


def _model_filter_is_sha(text: str) -> bool:
    return len(text) >= 6 and all(c in "0123456789abcdef" for c in text.lower())


@dataclass
class RunSummary:
    """One line of `rkbench history`."""

    run_id: int
    group: str
    suite: str | None
    started: str
    finished: str | None
    model: str
    model_sha256: str
    board: str
    board_soc: str | None
    backend: str
    core_mask: str | None
    status: str
    build_key: str | None
    target: str | None
    quant: str | None
    sample_count: int
    p50_ms: float | None
    p99_ms: float | None
    cos_fp32: float | None  # the worst output's mean cosine against fp32
    throttled: bool
    error: str | None

    def to_dict(self) -> dict:
        return asdict(self)


_SUMMARY_SQL = """
SELECT r.id, g.name, g.suite, r.started, r.finished, m.name, m.sha256, b.name, r.board_soc,
       r.backend, r.core_mask, r.status, bu.build_key, r.target, r.quant, r.sample_count,
       r.stats, (SELECT MIN(o.cos_mean) FROM output_errors o
                 WHERE o.run_id = r.id AND o.reference = 'fp32'),
       r.throttled, r.error
FROM runs r
JOIN run_groups g ON g.id = r.group_id
JOIN models m ON m.id = r.model_id
JOIN boards b ON b.id = r.board_id
LEFT JOIN builds bu ON bu.id = r.build_id
"""


# --------------------------------------------------------------------------- the store


class Store:
    """One results store file. Open it, use it, close it (or use `with Store(...) as s`)."""

    def __init__(
        self,
        path: str | os.PathLike | None = None,
        *,
        busy_timeout: float = BUSY_TIMEOUT_S,
        stale_after: float = STALE_AFTER_S,
        quick_check: bool | None = None,
        read_only: bool | None = False,
    ) -> None:
        """Open (and create if missing) the store. quick_check: None = when the file is small.

        read_only: True opens an existing store for reading only (nothing is written, not
        even the sweep of interrupted runs); None does so when the store cannot be written
        (read-only media, no write permission), for commands that only read."""
        self.path = Path(path).expanduser() if path is not None else default_db_path()
        self.read_only = _cannot_write(self.path) if read_only is None else read_only
        if not self.read_only and _cannot_write(self.path):
            raise StoreError(
                f"results store {self.path} is read-only (read-only media, or no write permission for it or its "
                "folder): this command writes to it; pick another file with --db (history, show, compare and "
                "export can still read this one)"
            )
        self.stale_after = stale_after
        self._lock = threading.RLock()
        self._host = socket.gethostname()
        self._pid = os.getpid()
        self._pid_start = _process_token(self._pid)
        self._conn: sqlite3.Connection | None = None
        self._expected = _expected_columns()
        try:
            self._open(busy_timeout, quick_check)
        except (sqlite3.ProgrammingError, sqlite3.InterfaceError):
            self.close()
            raise
        except sqlite3.Error as err:
            self.close()
            raise map_sqlite_error(err, self.path) from err
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------------ opening

    def _open(self, busy_timeout: float, quick_check: bool | None) -> None:
        path = self.path
        if path.is_dir():
            raise StoreError(f"results store {path} is a folder, not a file: pick a file with --db")
        size = 0
        if path.exists():
            size = path.stat().st_size
            if size:
                with open(path, "rb") as fh:
                    head = fh.read(len(SQLITE_MAGIC))
                if head != SQLITE_MAGIC:
                    raise StoreError(
                        f"{path} is not an rkbench results store (not an SQLite "
                        "database): move it aside or pick another file with --db"
                    )
        else:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as err:
                raise StoreError(
                    f"cannot create the folder of the results store {path} "
                    f"({err.strerror or err}): pick another file with --db"
                ) from err
        if self.read_only:
            conn = _connect_read_only(path, busy_timeout)
        else:
            conn = sqlite3.connect(str(path), timeout=busy_timeout, isolation_level=None, check_same_thread=False)
        self._conn = conn
        conn.execute("PRAGMA foreign_keys = ON")
        app_id, version = _header(conn)
        if app_id == 0 and version == 0 and not self.read_only:
            # New, or being created by another process right now (its switch to WAL can show
            # its tables before its header): one creator at a time, then read afresh.
            with _creating(path):
                conn.close()
                conn = self._conn = sqlite3.connect(
                    str(path), timeout=busy_timeout, isolation_level=None, check_same_thread=False
                )
                conn.execute("PRAGMA foreign_keys = ON")
                app_id, version = _header(conn)
                if app_id == 0 and version == 0:
                    if conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0]:
                        raise StoreError(
                            f"{path} is an SQLite database but not an rkbench results store: "
                            "pick another file with --db"
                        )
                    conn.execute("PRAGMA journal_mode = WAL")  # before the schema: a new, empty file
                    self._create_schema()
                    app_id, version = _header(conn)
        if app_id != APPLICATION_ID:
            raise StoreError(
                f"{path} is an SQLite database but not an rkbench results store: pick another file with --db"
            )
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"results store {path} has schema version {version}, written by a newer "
                f"rkbench (this one reads up to version {SCHEMA_VERSION}): upgrade "
                "rkbench, or pick another file with --db"
            )
        if version < 1:
            raise StoreError(
                f"results store {path} has an invalid schema version {version}: " + HELP_DAMAGED.format(path=path)
            )
        if not self.read_only:
            conn.execute("PRAGMA journal_mode = WAL")  # a no-op once set; kept by the file
            conn.execute("PRAGMA synchronous = NORMAL")  # safe in WAL against process crashes
        if version < SCHEMA_VERSION:
            if self.read_only:
                self._migrate_a_copy()
            else:
                self._migrate()
        if quick_check is None:
            quick_check = size <= QUICK_CHECK_MAX_BYTES
        if quick_check:
            self._integrity("quick_check")
        self._check_tables()
        self._sweep_interrupted()

    def _create_schema(self) -> None:
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Another process may have created it while we waited for the lock.
            if conn.execute("PRAGMA user_version").fetchone()[0] == 0:
                tables = conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0]
                if tables:
                    raise StoreError(
                        f"{self.path} is an SQLite database but not an rkbench "
                        "results store: pick another file with --db"
                    )
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def _migrate_a_copy(self) -> None:
        """An older store that cannot be written (read-only media): read it through a copy in
        memory brought to this schema, so the file is never touched."""
        copy = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        self._conn.backup(copy)
        self._conn.close()
        self._conn = copy
        self._migrate()

    def _migrate(self) -> None:
        """Bring an older store to SCHEMA_VERSION, one step at a time, in one transaction;
        another process may have done it while we waited for the lock."""
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            for step in range(version + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS[step]:
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def _integrity(self, pragma: str) -> None:
        rows = [r[0] for r in self._conn.execute(f"PRAGMA {pragma}").fetchall()]
        if rows != ["ok"]:
            first = " ".join("; ".join(str(r) for r in rows[:3]).split())  # one line
            raise StoreError(
                f"results store {self.path} is damaged ({pragma}: {first}): " + HELP_DAMAGED.format(path=self.path)
            )

    def _check_tables(self) -> None:
        conn = self._conn
        for table, columns in self._expected.items():
            have = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
            if not have:
                raise StoreError(
                    f"results store {self.path} has no table '{table}': it was edited "
                    "by hand or damaged; " + HELP_DAMAGED.format(path=self.path)
                )
            missing = [c for c in columns if c not in have]
            if missing:
                raise StoreError(
                    f"results store {self.path}: table '{table}' lacks column(s) "
                    f"{', '.join(missing)}: it was edited by hand or damaged; " + HELP_DAMAGED.format(path=self.path)
                )

    def _sweep_interrupted(self) -> None:
        """Mark "running" rows whose writer is gone as aborted, keeping their samples."""
        rows = self._conn.execute(
            "SELECT id, pid, host, pid_start, updated FROM runs WHERE status = 'running'"
        ).fetchall()
        for run_id, pid, host, pid_start, updated in rows:
            if host == self._host and pid is not None and _same_pid_namespace(pid_start):
                if _process_alive(int(pid), pid_start):
                    continue
                why = f"process {pid} on {host} ended before the run finished"
            else:
                age = _age_seconds(updated)
                if age < self.stale_after:
                    continue
                why = (
                    f"no news from process {pid} on {host} for {age / 3600:.1f} h"
                    if math.isfinite(age)
                    else f"process {pid} on {host} left it unfinished"
                )
            count = self._conn.execute("SELECT COUNT(*) FROM samples WHERE run_id = ?", (run_id,)).fetchone()[0]
            try:
                self._mark_aborted(run_id, f"interrupted: {why}; its {count} sample(s) are kept", only_running=True)
            except sqlite3.OperationalError as err:
                if _sqlite_code(err) == "READONLY":
                    return  # reading a read-only store: leave the rows as they are
                raise

    # ------------------------------------------------------------------ plumbing

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                try:
                    self._conn.close()
                finally:
                    self._conn = None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise sqlite3.ProgrammingError("the results store is closed")
        return self._conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One short write transaction (BEGIN IMMEDIATE: takes the write lock up front)."""
        with self._lock:
            conn = self.conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    try:
                        conn.execute("ROLLBACK")
                    except sqlite3.Error:
                        pass  # the first error is the one to report
                raise

    def _id_for(self, conn, table: str, key_col: str, key, extra: dict) -> int:
        cols = [key_col, *extra]
        conn.execute(
            f"INSERT OR IGNORE INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
            (key, *extra.values()),
        )
        updates = {k: v for k, v in extra.items() if v is not None}
        if updates:
            conn.execute(
                f"UPDATE {table} SET {', '.join(f'{k} = ?' for k in updates)} WHERE {key_col} = ?",
                (*updates.values(), key),
            )
        return conn.execute(f"SELECT id FROM {table} WHERE {key_col} = ?", (key,)).fetchone()[0]

    def _status(self, conn, run_id: int) -> str:
        row = conn.execute("SELECT status FROM runs WHERE id = ?", (int(run_id),)).fetchone()
        if row is None:
            raise UnknownRun(f"no run {run_id} in the results store {self.path}: `rkbench history` lists the runs")
        return row[0]

    def _require_running(self, conn, run_id: int, what: str) -> None:
        status = self._status(conn, run_id)
        if status != "running":
            raise RunStateError(f"cannot {what} run {run_id}: it is already {status}")

    @staticmethod
    def _sample_rows(run_id: int, offset: int, batch: Sequence, stages: dict | None = None) -> list[tuple]:
        """(run_id, seq, latency, *stage times in STAGE_COLUMNS order, None where not timed)."""
        stages = stages or {}
        unknown = sorted(set(stages) - set(STAGE_COLUMNS))
        if unknown:
            raise ValueError(f"run {run_id}: unknown stage(s) {', '.join(unknown)}")
        columns = [stages.get(stage) for stage in STAGE_COLUMNS]
        for stage, values in stages.items():
            if len(values) != len(batch):
                raise ValueError(f"run {run_id}: {len(values)} {stage} times for {len(batch)} latencies")
        rows = []
        for i, value in enumerate(batch):
            ns = int(value)
            if ns < 0:
                raise ValueError(f"run {run_id}: negative latency {ns} ns at sample {offset + i}")
            rows.append((run_id, offset + i, ns, *(None if c is None else int(c[i]) for c in columns)))
        return rows

    def _insert_samples(self, conn, run_id: int, rows: list[tuple]) -> None:
        names = ", ".join(STAGE_COLUMNS.values())
        updates = ", ".join(f"{c} = excluded.{c}" for c in ["latency_ns", *STAGE_COLUMNS.values()])
        conn.executemany(
            f"INSERT INTO samples (run_id, seq, latency_ns, {names}) VALUES (?, ?, ?{', ?' * len(STAGE_COLUMNS)}) "
            f"ON CONFLICT (run_id, seq) DO UPDATE SET {updates}",
            rows,
        )
        if rows:
            conn.execute(
                "UPDATE runs SET sample_count = MAX(sample_count, ?), updated = ? WHERE id = ?",
                (rows[-1][1] + 1, _now(), run_id),
            )

    def _insert_telemetry(self, conn, run_id: int, samples: Sequence[TelemetrySample]) -> None:
        start = conn.execute("SELECT COALESCE(MAX(seq) + 1, 0) FROM telemetry WHERE run_id = ?", (run_id,)).fetchone()[
            0
        ]
        rows = []
        for i, sample in enumerate(samples):
            data = asdict(sample)
            t = data.pop("t")
            rows.append((run_id, start + i, float(t), _dumps(data)))
        conn.executemany("INSERT INTO telemetry (run_id, seq, t, data) VALUES (?, ?, ?, ?)", rows)
        conn.execute("UPDATE runs SET updated = ? WHERE id = ?", (_now(), run_id))

    def _stats_from_samples(self, run_id: int) -> LatencyStats | None:
        values = [
            r[0] for r in self.conn.execute("SELECT latency_ns FROM samples WHERE run_id = ? ORDER BY seq", (run_id,))
        ]
        return summarize(values) if values else None

    def _mark_aborted(self, run_id: int, reason: str, only_running: bool) -> None:
        stats = self._stats_from_samples(run_id)
        with self._write() as conn:
            if only_running and self._status(conn, run_id) != "running":
                return  # someone else finished or aborted it meanwhile
            count = conn.execute("SELECT COUNT(*) FROM samples WHERE run_id = ?", (run_id,)).fetchone()[0]
            now = _now()
            conn.execute(
                "UPDATE runs SET status = 'aborted', error = ?, finished = COALESCE(finished, ?), "
                "updated = ?, stats = COALESCE(?, stats), sample_count = ? WHERE id = ?",
                (reason, now, now, _dumps(asdict(stats)) if stats else None, count, run_id),
            )

    # ------------------------------------------------------------------ writing a run

    @_mapped
    def begin_run(self, result: RunResult) -> int:
        """Record a run that starts now (status running); returns its id (also set on result).

        Samples and telemetry already in `result` are written too.
        """
        for name in ("group", "model", "model_sha256", "board", "backend"):
            if not getattr(result, name):
                raise ValueError(f"begin_run: RunResult.{name} is empty")
        started = result.started or _now()
        with self._write() as conn:
            board_id = self._id_for(conn, "boards", "name", board_display(result.board), {"soc": result.board_soc})
            model_id = self._id_for(conn, "models", "sha256", result.model_sha256, {"name": result.model})
            build_id = None
            if result.build_key:
                build_id = self._id_for(
                    conn,
                    "builds",
                    "build_key",
                    result.build_key,
                    {"model_id": model_id, "target": result.target, "quant": result.quant},
                )
            conn.execute(
                "INSERT OR IGNORE INTO run_groups (name, suite, created) VALUES (?, ?, ?)",
                (result.group, result.suite, started),
            )
            if result.suite:
                conn.execute(
                    "UPDATE run_groups SET suite = COALESCE(suite, ?) WHERE name = ?", (result.suite, result.group)
                )
            group_id = conn.execute("SELECT id FROM run_groups WHERE name = ?", (result.group,)).fetchone()[0]
            cur = conn.execute(
                "INSERT INTO runs (group_id, model_id, board_id, build_id, backend, core_mask, status, "
                "started, updated, target, quant, board_soc, memory, versions, settings, throttled, "
                "throttle_reasons, pid, host, pid_start) "
                "VALUES (?, ?, ?, ?, ?, ?, 'running', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    group_id,
                    model_id,
                    board_id,
                    build_id,
                    result.backend,
                    result.core_mask,
                    started,
                    _now(),
                    result.target,
                    result.quant,
                    result.board_soc,
                    _dumps(result.memory or {}),
                    _dumps(result.versions or {}),
                    _dumps(result.settings or {}),
                    int(result.throttled),
                    _dumps(list(result.throttle_reasons)),
                    self._pid,
                    self._host,
                    self._pid_start,
                ),
            )
            run_id = int(cur.lastrowid)
            if len(result.latency_ns):
                self._insert_samples(conn, run_id, self._sample_rows(run_id, 0, result.latency_ns, result.stages_ns))
            if len(result.telemetry):
                self._insert_telemetry(conn, run_id, result.telemetry)
        result.run_id = run_id
        result.status = "running"
        result.started = started
        return run_id

    @_mapped
    def add_samples(
        self, run_id: int, offset: int, batch: Sequence[int], stages: dict[str, Sequence[int]] | None = None
    ) -> None:
        """Raw latencies (ns) batch[i] for samples offset + i of a running run, and where the
        backend timed them, each stage's time of the same iterations (stage -> list).

        Re-sending a batch (same offsets) replaces it; nothing is duplicated.
        """
        rows = self._sample_rows(int(run_id), int(offset), batch, stages)
        with self._write() as conn:
            self._require_running(conn, run_id, "add samples to")
            self._insert_samples(conn, int(run_id), rows)

    @_mapped
    def add_telemetry(self, run_id: int, samples: Sequence[TelemetrySample]) -> None:
        with self._write() as conn:
            self._require_running(conn, run_id, "add telemetry to")
            self._insert_telemetry(conn, int(run_id), samples)

    @_mapped
    def finish_run(self, run_id: int, result: RunResult) -> None:
        """Store the outcome of a running run: status (ok unless result says failed/aborted),
        stats, outputs, layers, thresholds, memory, versions, settings, throttling.

        Samples and telemetry of `result` beyond those already stored are appended, so a
        caller that never streamed can pass everything here. Stats missing from `result`
        are computed from the stored samples. `result` gets run_id, status, stats, finished.
        """
        run_id = int(run_id)
        status = result.status if result.status in ("ok", "failed", "aborted") else "ok"
        with self._lock:
            stored = self.conn.execute("SELECT sample_count FROM runs WHERE id = ?", (run_id,)).fetchone()
            stored_telemetry = self.conn.execute(
                "SELECT COUNT(*) FROM telemetry WHERE run_id = ?", (run_id,)
            ).fetchone()[0]
            tail = []
            if stored is not None and len(result.latency_ns) > stored[0]:
                start = stored[0]
                stages = {stage: values[start:] for stage, values in result.stages_ns.items()}
                tail = self._sample_rows(run_id, start, result.latency_ns[start:], stages)
            finished = result.finished or _now()
            with self._write() as conn:
                self._require_running(conn, run_id, "finish")
                self._insert_samples(conn, run_id, tail)
                if len(result.telemetry) > stored_telemetry:
                    self._insert_telemetry(conn, run_id, result.telemetry[stored_telemetry:])
            stats = result.stats or self._stats_from_samples(run_id)
            with self._write() as conn:
                self._require_running(conn, run_id, "finish")
                count = conn.execute("SELECT COUNT(*) FROM samples WHERE run_id = ?", (run_id,)).fetchone()[0]
                conn.execute(
                    "UPDATE runs SET status = ?, finished = ?, updated = ?, stats = ?, npu_stats = ?, "
                    "memory = ?, versions = ?, settings = ?, throttled = ?, throttle_reasons = ?, "
                    "error = ?, target = COALESCE(?, target), quant = COALESCE(?, quant), "
                    "board_soc = COALESCE(?, board_soc), sample_count = ?, npu = ? WHERE id = ?",
                    (
                        status,
                        finished,
                        _now(),
                        _dumps(asdict(stats)) if stats else None,
                        _dumps(asdict(result.npu_stats)) if result.npu_stats else None,
                        _dumps(result.memory or {}),
                        _dumps(result.versions or {}),
                        _dumps(result.settings or {}),
                        int(result.throttled),
                        _dumps(list(result.throttle_reasons)),
                        result.error,
                        result.target,
                        result.quant,
                        result.board_soc,
                        count,
                        _dumps(npu_facts(result)),
                        run_id,
                    ),
                )
                for table in ("output_errors", "layer_errors", "thresholds"):
                    conn.execute(f"DELETE FROM {table} WHERE run_id = ?", (run_id,))
                conn.executemany(
                    "INSERT INTO output_errors (run_id, seq, name, reference, cos_mean, cos_min, "
                    "euc_mean, max_abs, top1_agreement) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        (run_id, i, o.name, o.reference, o.cos_mean, o.cos_min, o.euc_mean, o.max_abs, o.top1_agreement)
                        for i, o in enumerate(result.outputs)
                    ],
                )
                conn.executemany(
                    "INSERT INTO layer_errors (run_id, seq, layer_index, op, tensor, sim_entire_cos, "
                    "sim_single_cos, rt_entire_cos, rt_single_sim_cos, board_departs) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        (
                            run_id,
                            i,
                            layer.index,
                            layer.op,
                            layer.tensor,
                            layer.sim_entire_cos,
                            layer.sim_single_cos,
                            layer.rt_entire_cos,
                            layer.rt_single_sim_cos,
                            int(layer.board_departs),
                        )
                        for i, layer in enumerate(result.layers)
                    ],
                )
                conn.executemany(
                    "INSERT INTO thresholds (run_id, seq, name, limit_value, value, passed, detail) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [
                        (run_id, i, t.name, t.limit, t.value, int(t.passed), t.detail or "")
                        for i, t in enumerate(result.thresholds)
                    ],
                )
        result.run_id = run_id
        result.status = status
        result.stats = stats
        result.finished = finished

    @_mapped
    def abort_run(self, run_id: int, reason: str) -> None:
        """The run cannot finish (board lost, user interrupt): aborted, samples kept.

        Aborting an already aborted run does nothing; an ok or failed run cannot be aborted.
        """
        with self._lock:
            status = self._status(self.conn, run_id)
            if status == "aborted":
                return
            if status != "running":
                raise RunStateError(f"cannot abort run {run_id}: it is already {status}")
            self._mark_aborted(int(run_id), reason, only_running=True)

    # ------------------------------------------------------------------ reading

    def _loads(self, text: str | None, run_id: int, column: str, default=None):
        if text is None:
            return default
        try:
            return json.loads(text)
        except (TypeError, ValueError) as err:
            raise StoreError(
                f"results store {self.path}: run {run_id} has an unreadable {column} "
                f"({err}): was it edited by hand? " + HELP_DAMAGED.format(path=self.path)
            ) from err

    def _bad_row(self, run_id: int, what: str, err: Exception) -> StoreError:
        return StoreError(
            f"results store {self.path}: run {run_id} has unreadable {what} ({err}): "
            "was it edited by hand? " + HELP_DAMAGED.format(path=self.path)
        )

    def _summary(self, row) -> RunSummary:
        (
            run_id,
            group,
            suite,
            started,
            finished,
            model,
            sha,
            board,
            soc,
            backend,
            core_mask,
            status,
            build_key,
            target,
            quant,
            count,
            stats_text,
            cos,
            throttled,
            error,
        ) = row
        stats = self._loads(stats_text, run_id, "stats")
        try:
            p50 = float(stats["p50_ms"]) if stats else None
            p99 = float(stats["p99_ms"]) if stats else None
        except (KeyError, TypeError, ValueError) as err:
            raise self._bad_row(run_id, "stats", err) from err
        return RunSummary(
            run_id=run_id,
            group=group,
            suite=suite,
            started=started,
            finished=finished,
            model=model,
            model_sha256=sha,
            board=board,
            board_soc=soc,
            backend=backend,
            core_mask=core_mask,
            status=status,
            build_key=build_key,
            target=target,
            quant=quant,
            sample_count=int(count or 0),
            p50_ms=p50,
            p99_ms=p99,
            cos_fp32=cos,
            throttled=bool(throttled),
            error=error,
        )

    @_mapped
    def get_run(self, run_id: int, samples: bool = True) -> RunResult:
        """Everything about one run, raw samples included unless samples=False."""
        with self._lock:
            conn = self.conn
            row = conn.execute(
                "SELECT r.id, g.name, g.suite, m.name, m.sha256, b.name, r.backend, r.core_mask, "
                "r.status, r.started, r.finished, bu.build_key, r.target, r.quant, r.board_soc, "
                "r.stats, r.npu_stats, r.memory, r.versions, r.settings, r.throttled, "
                "r.throttle_reasons, r.error, r.npu FROM runs r "
                "JOIN run_groups g ON g.id = r.group_id JOIN models m ON m.id = r.model_id "
                "JOIN boards b ON b.id = r.board_id LEFT JOIN builds bu ON bu.id = r.build_id "
                "WHERE r.id = ?",
                (int(run_id),),
            ).fetchone()
            if row is None:
                raise UnknownRun(f"no run {run_id} in the results store {self.path}: `rkbench history` lists the runs")
            (
                rid,
                group,
                suite,
                model,
                sha,
                board,
                backend,
                core_mask,
                status,
                started,
                finished,
                build_key,
                target,
                quant,
                soc,
                stats,
                npu_stats,
                memory,
                versions,
                settings,
                throttled,
                reasons,
                error,
                npu,
            ) = row
            try:
                stats_obj = self._loads(stats, rid, "stats")
                npu_obj = self._loads(npu_stats, rid, "npu_stats")
                result = RunResult(
                    group=group,
                    model=model,
                    model_sha256=sha,
                    board=board,
                    backend=backend,
                    core_mask=core_mask,
                    status=status,
                    started=started,
                    finished=finished,
                    run_id=rid,
                    build_key=build_key,
                    target=target,
                    quant=quant,
                    board_soc=soc,
                    stats=stats_from_dict(stats_obj) if stats_obj else None,
                    npu_stats=stats_from_dict(npu_obj) if npu_obj else None,
                    memory=self._loads(memory, rid, "memory", {}),
                    versions=self._loads(versions, rid, "versions", {}),
                    settings=self._loads(settings, rid, "settings", {}),
                    throttled=bool(throttled),
                    throttle_reasons=list(self._loads(reasons, rid, "throttle_reasons", [])),
                    error=error,
                    suite=suite,
                    **npu_fields(self._loads(npu, rid, "npu", {})),
                )
            except (TypeError, ValueError, ProtocolError) as err:
                raise self._bad_row(rid, "columns", err) from err
            try:
                if samples:
                    result.latency_ns, result.stages_ns = self._samples_of(conn, rid)
                for t, data in conn.execute("SELECT t, data FROM telemetry WHERE run_id = ? ORDER BY seq", (rid,)):
                    result.telemetry.append(TelemetrySample(t=float(t), **self._loads(data, rid, "telemetry")))
                result.outputs = [
                    OutputError(*r)
                    for r in conn.execute(
                        "SELECT name, reference, cos_mean, cos_min, euc_mean, max_abs, top1_agreement "
                        "FROM output_errors WHERE run_id = ? ORDER BY seq",
                        (rid,),
                    )
                ]
                result.layers = [
                    LayerError(i, op, tensor, a, b, c, d, bool(e))
                    for i, op, tensor, a, b, c, d, e in conn.execute(
                        "SELECT layer_index, op, tensor, sim_entire_cos, sim_single_cos, rt_entire_cos, "
                        "rt_single_sim_cos, board_departs FROM layer_errors WHERE run_id = ? ORDER BY seq",
                        (rid,),
                    )
                ]
                result.thresholds = [
                    Threshold(n, lim, v, bool(p), d or "")
                    for n, lim, v, p, d in conn.execute(
                        "SELECT name, limit_value, value, passed, detail FROM thresholds WHERE run_id = ? ORDER BY seq",
                        (rid,),
                    )
                ]
            except (TypeError, ValueError) as err:
                raise self._bad_row(rid, "samples, telemetry or errors", err) from err
            return result

    @staticmethod
    def _samples_of(conn, run_id: int) -> tuple[list[int], dict[str, list[int]]]:
        """The raw latencies of a run, and each stage's times where every iteration has one."""
        rows = conn.execute(
            f"SELECT latency_ns, {', '.join(STAGE_COLUMNS.values())} FROM samples WHERE run_id = ? ORDER BY seq",
            (run_id,),
        ).fetchall()
        latencies = [int(r[0]) for r in rows]
        stages = {}
        for k, stage in enumerate(STAGE_COLUMNS, start=1):
            values = [r[k] for r in rows]
            if values and all(v is not None for v in values):
                stages[stage] = [int(v) for v in values]
        return latencies, stages

    @_mapped
    def get_samples(self, run_id: int) -> list[tuple[int, int]]:
        """The raw latencies of a run as (seq, latency_ns), in order."""
        with self._lock:
            self._status(self.conn, run_id)
            try:
                return [
                    (int(seq), int(ns))
                    for seq, ns in self.conn.execute(
                        "SELECT seq, latency_ns FROM samples WHERE run_id = ? ORDER BY seq", (int(run_id),)
                    )
                ]
            except (TypeError, ValueError) as err:
                raise self._bad_row(int(run_id), "samples", err) from err

    @_mapped
    def latest_run_id(self) -> int | None:
        with self._lock:
            row = self.conn.execute("SELECT MAX(id) FROM runs").fetchone()
        return row[0]

    @_mapped
    def history(
        self, model: str | None = None, board: str | None = None, limit: int | None = 50, status: str | None = None
    ) -> list[RunSummary]:
        """Newest runs first. model: display name or sha256 (or a prefix of 6+ hex digits);
        board: display address, or a SoC name (rk3588) for every board with it."""
        where, args = [], []
        if model:
            if _model_filter_is_sha(model):
                where.append("(m.name = ? OR m.sha256 LIKE ?)")
                args += [model, model.lower() + "%"]
            else:
                where.append("m.name = ?")
                args.append(model)
        if board:
            where.append("(b.name = ? OR LOWER(r.board_soc) = LOWER(?))")
            args += [board_display(board), board]
        if status:
            if status not in STATUSES:
                raise UsageError(f"unknown status {status!r}: one of {', '.join(STATUSES)}")
            where.append("r.status = ?")
            args.append(status)
        sql = _SUMMARY_SQL + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY r.id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(int(limit))
        with self._lock:
            rows = self.conn.execute(sql, args).fetchall()
        return [self._summary(r) for r in rows]

    @_mapped
    def previous_runs(
        self,
        model_sha256: str,
        board: str,
        core_mask: str | None,
        before_run_id: int | None = None,
        limit: int = 10,
        *,
        backend: str | None = None,
        status: str | None = "ok",
    ) -> list[RunSummary]:
        """Earlier runs of the same model on the same board and core mask, newest first
        (only finished ok runs unless status=None; one backend if given)."""
        where = ["m.sha256 = ?", "b.name = ?", "r.core_mask IS ?"]
        args: list = [model_sha256, board_display(board), core_mask]
        if before_run_id is not None:
            where.append("r.id < ?")
            args.append(int(before_run_id))
        if backend:
            where.append("r.backend = ?")
            args.append(backend)
        if status:
            where.append("r.status = ?")
            args.append(status)
        sql = _SUMMARY_SQL + " WHERE " + " AND ".join(where) + " ORDER BY r.id DESC LIMIT ?"
        with self._lock:
            rows = self.conn.execute(sql, (*args, int(limit))).fetchall()
        return [self._summary(r) for r in rows]

    @_mapped
    def group_runs(self, group: str, samples: bool = False) -> list[RunResult]:
        """Every run of one group (one `rkbench run`, one nightly), in the order they began."""
        with self._lock:
            ids = [
                r[0]
                for r in self.conn.execute(
                    "SELECT r.id FROM runs r JOIN run_groups g ON g.id = r.group_id WHERE g.name = ? ORDER BY r.id",
                    (group,),
                )
            ]
        if not ids and not self._group_exists(group):
            raise UnknownRun(
                f"no run group '{group}' in the results store {self.path}: "
                "`rkbench history` lists the runs and their groups"
            )
        return [self.get_run(i, samples=samples) for i in ids]

    def _group_exists(self, group: str) -> bool:
        with self._lock:
            return self.conn.execute("SELECT 1 FROM run_groups WHERE name = ?", (group,)).fetchone() is not None

    @_mapped
    def accept_baseline(self, run_or_group: int | str) -> list[int]:
        """Make a run (int id) or every ok run of a group (name) the baseline of its key
        (model, build key, board, core mask, backend). Returns the accepted run ids."""
        if isinstance(run_or_group, int):
            ids = [run_or_group]
            with self._lock:
                status = self._status(self.conn, run_or_group)
            if status != "ok":
                raise RunStateError(
                    f"run {run_or_group} is {status}: only a run that finished ok can become a baseline"
                )
        else:
            with self._lock:
                rows = self.conn.execute(
                    "SELECT r.id, r.status FROM runs r JOIN run_groups g ON g.id = r.group_id "
                    "WHERE g.name = ? ORDER BY r.id",
                    (run_or_group,),
                ).fetchall()
            if not rows:
                raise UnknownRun(
                    f"no run group '{run_or_group}' in the results store {self.path}: "
                    "`rkbench history` lists the runs and their groups"
                )
            ids = [r for r, s in rows if s == "ok"]
            if not ids:
                raise RunStateError(
                    f"group '{run_or_group}' has no run that finished ok: nothing to accept as a baseline"
                )
        now = _now()
        with self._write() as conn:
            for run_id in ids:
                conn.execute(
                    "INSERT INTO baselines (run_id, model_id, build_key, board_id, core_mask, backend, "
                    "accepted) SELECT r.id, r.model_id, COALESCE(bu.build_key, ''), r.board_id, "
                    "COALESCE(r.core_mask, ''), r.backend, ? FROM runs r "
                    "LEFT JOIN builds bu ON bu.id = r.build_id WHERE r.id = ?",
                    (now, run_id),
                )
        return ids

    @_mapped
    def baseline_for(self, run: RunResult | int) -> int | None:
        """The run id of the last accepted baseline with the same model, build key, board,
        core mask and backend as `run` (a stored run id, or a RunResult), not `run` itself."""
        if isinstance(run, int):
            run = self.get_run(run, samples=False)
        own = run.run_id if run.run_id is not None else -1
        with self._lock:
            row = self.conn.execute(
                "SELECT bl.run_id FROM baselines bl JOIN models m ON m.id = bl.model_id "
                "JOIN boards b ON b.id = bl.board_id WHERE m.sha256 = ? AND bl.build_key = ? "
                "AND b.name = ? AND bl.core_mask = ? AND bl.backend = ? AND bl.run_id != ? "
                "ORDER BY bl.id DESC LIMIT 1",
                (
                    run.model_sha256,
                    run.build_key or "",
                    board_display(run.board),
                    run.core_mask or "",
                    run.backend,
                    own,
                ),
            ).fetchone()
        return row[0] if row else None

    @_mapped
    def add_throughput(self, meta: RunResult, events: Sequence) -> list[int]:
        """Store the throughput configurations of one run (rkbench_wire Throughput events)
        under meta's group, model, board and backend; returns their row ids."""
        started = meta.started or _now()
        ids = []
        with self._write() as conn:
            board_id = self._id_for(conn, "boards", "name", board_display(meta.board), {"soc": meta.board_soc})
            model_id = self._id_for(conn, "models", "sha256", meta.model_sha256, {"name": meta.model})
            conn.execute(
                "INSERT OR IGNORE INTO run_groups (name, suite, created) VALUES (?, ?, ?)",
                (meta.group, meta.suite, started),
            )
            group_id = conn.execute("SELECT id FROM run_groups WHERE name = ?", (meta.group,)).fetchone()[0]
            for event in events:
                stats = event.stats
                cur = conn.execute(
                    "INSERT INTO throughput (group_id, model_id, board_id, build_key, backend, started, seq, "
                    "assignment, core_masks, contexts, fps, p50_ms, p99_ms, runs, elapsed_s, dma_bytes, vm_hwm_kb, "
                    "out_of_memory, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        group_id,
                        model_id,
                        board_id,
                        meta.build_key or "",
                        event.backend,
                        started,
                        event.index,
                        event.assignment,
                        _dumps(list(event.core_masks)),
                        len(event.core_masks),
                        None if event.out_of_memory else event.fps,
                        stats.p50_ms if stats else None,
                        stats.p99_ms if stats else None,
                        event.runs,
                        event.elapsed_s,
                        event.memory.get("dma_bytes"),
                        event.memory.get("vm_hwm_kb"),
                        event.out_of_memory,
                        _dumps(event.to_dict()),
                    ),
                )
                ids.append(cur.lastrowid)
        return ids

    @_mapped
    def throughput_rows(
        self, model_sha256: str | None = None, board: str | None = None, group: str | None = None
    ) -> list[dict]:
        """Stored throughput configurations, oldest first, as dicts (the event under "event")."""
        sql = (
            "SELECT t.id, g.name, m.name, m.sha256, b.name, t.build_key, t.backend, t.started, t.seq, t.assignment, "
            "t.core_masks, t.contexts, t.fps, t.p50_ms, t.p99_ms, t.runs, t.elapsed_s, t.dma_bytes, t.vm_hwm_kb, "
            "t.out_of_memory, t.data FROM throughput t JOIN run_groups g ON g.id = t.group_id "
            "JOIN models m ON m.id = t.model_id JOIN boards b ON b.id = t.board_id"
        )
        where, args = [], []
        if model_sha256:
            where.append("m.sha256 = ?")
            args.append(model_sha256)
        if board:
            where.append("b.name = ?")
            args.append(board_display(board))
        if group:
            where.append("g.name = ?")
            args.append(group)
        if where:
            sql += " WHERE " + " AND ".join(where)
        keys = (
            "id group model model_sha256 board build_key backend started seq assignment core_masks contexts fps "
            "p50_ms p99_ms runs elapsed_s dma_bytes vm_hwm_kb out_of_memory event"
        ).split()
        with self._lock:
            rows = self.conn.execute(sql + " ORDER BY t.id", args).fetchall()
        out = []
        for row in rows:
            item = dict(zip(keys, row))
            item["core_masks"] = json.loads(item["core_masks"])
            item["event"] = json.loads(item["event"])
            out.append(item)
        return out

    @_mapped
    def add_confirmation(
        self,
        run_id: int | None,
        baseline_run: int | None,
        board: str,
        group: str,
        stored_kind: str,
        confirm_kind: str | None,
        drift: float | None,
        drifted: bool,
        detail: str = "",
    ) -> None:
        """Record a confirmation: what the stored baseline said, what the interleaved
        re-measurement said, and how far the board drifted (for `drift_history`)."""
        with self._write() as conn:
            conn.execute(
                "INSERT INTO confirmations (run_id, baseline_run, board, group_name, stored_kind, confirm_kind, "
                "drift, drifted, detail, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run_id,
                    baseline_run,
                    board_display(board),
                    group,
                    stored_kind,
                    confirm_kind,
                    drift,
                    int(drifted),
                    detail,
                    _now(),
                ),
            )

    @_mapped
    def drift_history(self, board: str, groups: int = 3) -> list[tuple[str, bool, float | None]]:
        """The board's last `groups` run groups that needed a confirmation, newest first:
        (group, whether the board drifted in it, the largest drift seen)."""
        with self._lock:
            rows = self.conn.execute(
                "SELECT group_name, MAX(drifted), MAX(ABS(drift)), MAX(id) FROM confirmations WHERE board = ? "
                "GROUP BY group_name ORDER BY MAX(id) DESC LIMIT ?",
                (board_display(board), groups),
            ).fetchall()
        return [(group, bool(drifted), drift) for group, drifted, drift, _ in rows]

    @_mapped
    def check(self) -> None:
        """Full `PRAGMA integrity_check` (slow on a big store); StoreError when damaged."""
        with self._lock:
            self._integrity("integrity_check")


def _expected_columns() -> dict[str, list[str]]:
    """Tables and columns of this schema version, read from the schema itself."""
    mem = sqlite3.connect(":memory:")
    try:
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                mem.execute(statement)
        tables = [
            r[0]
            for r in mem.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        ]
        return {t: [r[1] for r in mem.execute(f"PRAGMA table_info({t})")] for t in tables}
    finally:
        mem.close()


__all__ = [
    "Store",
    "RunSummary",
    "StoreError",
    "StoreBusy",
    "UnknownRun",
    "RunStateError",
    "default_db_path",
    "map_sqlite_error",
    "SCHEMA_VERSION",
    "APPLICATION_ID",
]
