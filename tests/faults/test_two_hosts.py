"""Two hosts on one board: their runs take turns on the board lock, neither removes the
other's run folder, and a host that waits too long is told so without a made-up option."""

from __future__ import annotations

import fcntl
from dataclasses import replace

import pytest

from rkbench.boards.runner_command import RunnerFailed
from rkbench.run.session import run_on_board
from tests.run.helpers import BOARD_PYTHON, explain, model_args, ssh_args

from .helpers import assert_board_clean, finish


def test_two_hosts_take_turns_and_both_keep_their_outputs(
    rk, warm, cls_model, cls_dataset, sshd, ssh_home, ssh_client_key, tmp_path
):
    board = ssh_args(sshd, ssh_home, ssh_client_key, tmp_path)
    procs = [
        rk.popen("run", *model_args(cls_model, cls_dataset), "--min-seconds", "2", "--backend", "onnxruntime",
                 *board, "--db", tmp_path / f"host{i}.db", "-o", tmp_path / f"out{i}", HOME=ssh_home)
        for i in range(2)
    ]  # fmt: skip
    results = [finish(proc, timeout=180) for proc in procs]
    for code, out, err, _ in results:
        assert code == 0, explain(type("Done", (), {"returncode": code, "stdout": out, "stderr": err}))
    waited = [err for _, _, err, _ in results if "board busy:" in err]
    assert len(waited) == 1, "one host waited for the other's run"
    for i in range(2):
        [row] = rk.history(tmp_path / f"host{i}.db")
        shown = rk.show(tmp_path / f"host{i}.db", row["run_id"])
        assert shown["status"] == "ok" and [o for o in shown["outputs"] if o["reference"] == "fp32"]
    assert_board_clean(sshd.home)


def test_a_busy_board_is_named_without_a_made_up_option(ssh_board, sshd, spec):
    with open(spec.lock_path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # another run holds the board
        lock.write("pid 4242\n")
        lock.flush()
        with pytest.raises(RunnerFailed) as err:
            run_on_board(ssh_board, replace(spec, lock_timeout_s=1.0), python=BOARD_PYTHON)
    message = str(err.value)
    assert err.value.kind == "board_busy" and err.value.exit_code == 3
    assert f"the board is busy: another rkbench run (pid 4242) holds {spec.lock_path}; waited 1.0 s" in message
    assert "run again when it has finished (there is no option to wait longer)" in message
    assert "lock_timeout_s" not in message and "raise" not in message
    assert_board_clean(sshd.home)
