"""An interrupted `rkbench run`: Ctrl-C (SIGINT) or a CI timeout (SIGTERM) in the middle
of a long measurement. rkbench exits within seconds without a traceback, the run stays in
the store as aborted with the samples measured so far, and no runner is left behind on
the board.

Processes are found only by this test's own unique paths (the board's HOME, whose runner
folder is on the runner's command line) or as descendants of the rkbench process this
test started; nothing is killed by name."""

from __future__ import annotations

import os
import signal
import time

import pytest

from .helpers import BOARD_PYTHON, alive, children, explain, model_args, processes_mentioning, ssh_args

LONG = ["--min-seconds", "30", "--max-seconds", "60"]


def _wait_for_samples(rk, db, proc, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"rkbench ended before it was interrupted: exit {proc.returncode}\n{out}\n{err}")
        rows = rk.history(db) if db.exists() else []
        if rows and rows[0]["status"] == "running" and rows[0]["sample_count"] > 0:
            return rows[0]
        time.sleep(0.2)
    proc.kill()
    pytest.fail("no running run with samples appeared in the store")


@pytest.mark.parametrize(
    "where,sig",
    [("local", signal.SIGINT), ("local", signal.SIGTERM), ("ssh", signal.SIGINT)],
    ids=["local-SIGINT", "local-SIGTERM", "ssh-SIGINT"],
)
def test_interrupted_run_is_stored_as_aborted(
    rk, warm_run, cls_model, cls_dataset, tmp_path, isolated, request, where, sig
):
    db, out = isolated["db"], isolated["out"]
    if where == "local":
        board_home = tmp_path / "board-home"  # the local board's cache: a path only this test uses
        board_home.mkdir()
        board, env = [], {"HOME": board_home}
    else:
        server = request.getfixturevalue("sshd")
        ssh_home = request.getfixturevalue("ssh_home")
        board_home = server.home
        board = ssh_args(server, ssh_home, request.getfixturevalue("ssh_client_key"), tmp_path)
        env = {"HOME": ssh_home}
    marker = str(board_home / ".cache" / "rkbench" / "runner")  # on every runner's command line

    proc = rk.popen(
        "run",
        *model_args(cls_model, cls_dataset),
        *LONG,
        "--backend",
        "onnxruntime",
        *board,
        "--db",
        db,
        "-o",
        out,
        **env,
    )
    try:
        before = _wait_for_samples(rk, db, proc)
        runners = processes_mentioning(marker)
        assert runners and all(BOARD_PYTHON in cmd for cmd in runners.values()), runners
        if where == "local":
            assert set(runners) <= children(proc.pid)  # the runner is ours: a child of rkbench
        descendants = children(proc.pid)

        sent = time.monotonic()
        os.kill(proc.pid, sig)  # the rkbench process only, not its group: it must stop the runner itself
        stdout, stderr = proc.communicate(timeout=20)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()

    done = type("Done", (), {"returncode": proc.returncode, "stdout": stdout, "stderr": stderr})
    assert proc.returncode == 128 + sig, explain(done)
    assert took < 8, f"rkbench took {took:.1f} s to stop"
    assert "Traceback" not in stderr and "Traceback" not in stdout
    if sig == signal.SIGINT:
        assert "rkbench: aborted" in stderr or "rkbench: interrupted" in stderr, stderr

    # no runner left behind: neither the runner nor anything else rkbench started
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and (processes_mentioning(marker) or any(map(alive, descendants))):
        time.sleep(0.1)
    assert not processes_mentioning(marker), processes_mentioning(marker)
    assert not [pid for pid in descendants if alive(pid)]

    [row] = rk.history(db)
    assert row["status"] == "aborted"
    assert row["sample_count"] >= before["sample_count"] > 0  # what was measured is kept
    shown = rk.show(db, row["run_id"])
    assert shown["finished"] and shown["stats"]["n"] == row["sample_count"]
    expected = "interrupted" if sig == signal.SIGINT else "terminated"
    assert expected in shown["error"], shown["error"]
    assert not out.exists() or not (out / "report.html").exists()  # no report for an aborted run
    # the board keeps no half run
    assert not list((board_home / ".cache" / "rkbench" / "runs").glob("*"))
