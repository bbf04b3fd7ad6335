"""run_on_board end to end: a real sshd on loopback (and the local board), the real
runner, the onnxruntime backend on a tiny ONNX model."""

from __future__ import annotations

import fcntl
import os
import shutil
import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from rkbench.boards.connect import open_board
from rkbench.boards.runner_command import RunnerFailed, signal_of
from rkbench.errors import BoardError, InputFileError, UsageError
from rkbench.run.plan import MeasureOptions
from rkbench.run.session import run_on_board, soc_matches
from rkbench_wire import PROTOCOL_VERSION, ModelRef, summarize_ns
from tests.support.boards import (
    BOARD_PYTHON,
    FIXTURES,
    REPO,
    noisy_python,
    ort_outputs,
    pid_alive,
    python_without_numpy,
)


def run(board, spec, **kw):
    kw.setdefault("python", BOARD_PYTHON)
    return run_on_board(board, spec, **kw)


def test_end_to_end_over_ssh(ssh_board, sshd, spec, model_files, tmp_path):
    seen = []
    out = run(ssh_board, spec, on_event=seen.append, out_dir=tmp_path / "outputs")

    types = [e.type for e in seen]
    assert types[0] == "hello" and types[-1] == "done"
    assert types.index("result") > types.index("samples")
    assert out.backend == "onnxruntime" and "asked for" in out.backend_reason
    assert out.transport == "ssh" and sshd.board in out.board

    [mask] = out.results
    assert mask.core_mask is None and mask.backend == "onnxruntime"
    assert len(mask.samples_ns) == mask.result.counts["runs"] >= 20
    assert summarize_ns(mask.samples_ns) == mask.result.stats  # raw samples are the ones measured
    assert out.telemetry, "telemetry events are kept"

    # outputs brought back, equal to what onnxruntime gives on the host
    expected = ort_outputs(model_files["model"], model_files["inputs"])
    assert [o.sample for o in mask.outputs] == [0, 1, 2]
    for o, want in zip(mask.outputs, expected):
        assert o.local_path.parent == tmp_path / "outputs"
        got = np.load(o.local_path)
        assert got.shape == want.shape and o.name == "scores"
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)

    # everything was pushed once; the run's folder on the board is gone
    assert out.deploy.bytes_pushed > os.path.getsize(model_files["model"])
    assert not Path(out.remote_run_dir).exists()
    assert out.timings.total_s >= out.timings.measure_s > 0


def test_second_run_pushes_no_model_bytes(ssh_board, spec):
    first = run(ssh_board, spec)
    assert first.deploy.blobs_pushed >= 5  # runner tarball, model, three inputs
    before = ssh_board.stats.bytes_pushed
    second = run(ssh_board, spec)
    assert (second.deploy.bytes_pushed, second.deploy.blobs_pushed) == (0, 0)
    assert ssh_board.stats.bytes_pushed == before


def test_local_board_and_two_ssh_boards_at_once(sshd_factory, local_board, spec, tmp_path):
    servers = [sshd_factory(host=h) for h in ("127.0.0.2", "127.0.0.3")]
    boards = [open_board(s.board) for s in servers]
    outcomes, errors = {}, []

    def go(i, board):
        try:
            mine = replace(spec, lock_path=str(tmp_path / f"lock{i}"))
            outcomes[i] = run(board, mine, out_dir=tmp_path / f"out{i}")
        except Exception as exc:  # pragma: no cover - shown below
            errors.append(exc)

    threads = [threading.Thread(target=go, args=(i, b)) for i, b in enumerate(boards + [local_board])]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    finally:
        for b in boards:
            b.close()
    assert not errors, errors
    assert sorted(outcomes) == [0, 1, 2]
    assert [outcomes[i].transport for i in range(3)] == ["ssh", "ssh", "local"]
    for i in range(3):
        assert servers[i].host in outcomes[i].board if i < 2 else outcomes[i].board == "local"
        outputs = [np.load(p) for p in outcomes[i].output_files]
        np.testing.assert_array_equal(outputs[0], np.load(outcomes[0].output_files[0]))


def test_runner_killed_mid_run_reports_signal_and_stderr(ssh_board, spec, tmp_path):
    python = noisy_python(tmp_path / "bin", "board-python-wrapper: starting the runner")
    spec = replace(spec, min_seconds=30.0, max_seconds=60.0)
    killed = []

    def on_event(event):
        if event.type == "samples" and not killed:
            killed.append(True)
            hello_pid = pids[0]
            ssh_board.run(["kill", "-9", str(hello_pid)], check=True)

    pids = []

    def remember(event):
        if event.type == "hello":
            pids.append(event.pid)
        on_event(event)

    started = time.monotonic()
    with pytest.raises(RunnerFailed) as err:
        run(ssh_board, spec, on_event=remember, python=str(python))
    assert time.monotonic() - started < 15
    msg = str(err.value)
    assert "SIGKILL" in msg and "signal 9" in msg
    assert "board-python-wrapper: starting the runner" in msg  # the stderr tail
    assert "measur" in msg  # where it was
    assert err.value.exit_code == 3 and err.value.kind == "crashed"
    assert "\n" not in msg


def test_silent_runner_is_stopped(ssh_board, spec):
    spec = replace(spec, min_seconds=30.0, max_seconds=60.0, telemetry_interval_s=0.0)
    pids = []

    def on_event(event):
        if event.type == "hello":
            pids.append(event.pid)
        if event.type == "progress" and event.stage == "measure":
            ssh_board.run(["kill", "-STOP", str(pids[0])], check=True)

    started = time.monotonic()
    with pytest.raises(RunnerFailed) as err:
        run(ssh_board, spec, on_event=on_event, silence_timeout=1.5)
    assert time.monotonic() - started < 15
    assert "sent nothing for 1.5 s" in str(err.value) and err.value.kind == "silent"
    deadline = time.monotonic() + 5
    while pid_alive(pids[0]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid_alive(pids[0]), "the hung runner was not stopped"


def test_unknown_protocol_version_is_refused(ssh_board, spec, tmp_path):
    # a runner from "another release": the same code speaking protocol version 99
    device = tmp_path / "other" / "rkbench_device"
    wire = tmp_path / "other" / "rkbench_wire"
    shutil.copytree(REPO / "device" / "rkbench_device", device, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO / "shared" / "rkbench_wire", wire, ignore=shutil.ignore_patterns("__pycache__"))
    constants = wire / "constants.py"
    constants.write_text(
        constants.read_text().replace(f"PROTOCOL_VERSION = {PROTOCOL_VERSION}", "PROTOCOL_VERSION = 99")
    )
    with pytest.raises(RunnerFailed) as err:
        run(ssh_board, spec, runner_dirs=[device, wire])
    msg = str(err.value)
    assert err.value.kind == "protocol"
    assert "protocol version 99 is not supported" in msg and f"version {PROTOCOL_VERSION}" in msg


def test_board_without_numpy_says_provision(ssh_board, sshd, spec, tmp_path):
    python = python_without_numpy(tmp_path / "bin")
    with pytest.raises(RunnerFailed) as err:
        run(ssh_board, spec, python=str(python))
    msg = str(err.value)
    assert err.value.kind == "numpy_missing"
    assert f"run `rkbench provision {sshd.board}`" in msg and "numpy" in msg


def test_board_without_python_says_so(ssh_board, spec):
    with pytest.raises(RunnerFailed) as err:
        run(ssh_board, spec, python="/nonexistent/python3")
    msg = str(err.value)
    assert err.value.kind == "python_missing" and err.value.exit_code == 3
    assert "/nonexistent/python3 is not on the board" in msg and "rkbench provision" in msg


def test_soc_mismatch_is_refused(local_board, spec):
    rk3588 = str(FIXTURES / "rk3588")
    pids = []
    with pytest.raises(UsageError) as err:
        run(
            local_board,
            spec,
            target="rk3566",
            sysfs_root=rk3588,
            on_event=lambda e: pids.append(e.pid) if e.type == "hello" else None,
        )
    msg = str(err.value)
    assert "rk3588 board" in msg and "built for rk3566" in msg and "--target rk3588" in msg
    deadline = time.monotonic() + 5
    while pid_alive(pids[0]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid_alive(pids[0])
    # the same family is accepted, and the hello tells the SoC
    out = run(local_board, spec, target="RK3588S", sysfs_root=rk3588)
    assert out.hello.soc == "rk3588"


def test_board_busy_says_another_host_is_measuring(ssh_board, spec):
    spec = replace(spec, lock_timeout_s=0.3)
    with open(spec.lock_path, "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        held.write("pid 4242 on another host\n")
        held.flush()
        with pytest.raises(RunnerFailed) as err:
            run(ssh_board, spec)
    msg = str(err.value)
    assert err.value.kind == "board_busy" and err.value.runner_exit_code == 75
    assert "busy" in msg and "another host" in msg and "wait" in msg


def test_runner_error_event_becomes_board_error(ssh_board, spec, tmp_path):
    wrong = tmp_path / "wrong.npy"
    np.save(wrong, np.zeros((1, 3, 5, 5), np.float32))
    with pytest.raises(RunnerFailed) as err:
        run(ssh_board, replace(spec, inputs=[[str(wrong)]]))
    assert err.value.kind == "bad_input" and isinstance(err.value, BoardError)
    assert "(bad_input)" in str(err.value) and "shape" in str(err.value)


def test_ctrl_c_closes_stdin_and_the_runner_exits(ssh_board, spec):
    spec = replace(spec, min_seconds=30.0, max_seconds=60.0)
    pids = []

    def on_event(event):
        if event.type == "hello":
            pids.append(event.pid)
        if event.type == "samples":
            raise KeyboardInterrupt

    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        run(ssh_board, spec, on_event=on_event)
    assert time.monotonic() - started < 10
    deadline = time.monotonic() + 5
    while pid_alive(pids[0]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid_alive(pids[0]), "the runner outlived Ctrl-C"


def test_spec_mistakes_are_usage_errors(local_board, spec):
    with pytest.raises(UsageError, match="--min-runs: must be >= 1"):  # the option, not the spec's field
        MeasureOptions(min_runs=0).spec(spec.model, spec.inputs)
    with pytest.raises(UsageError, match="--core-mask: contains duplicates"):
        MeasureOptions(core_masks=["0", "0"]).spec(spec.model, spec.inputs)
    with pytest.raises(InputFileError, match="does-not-exist.onnx"):
        run(local_board, replace(spec, model=ModelRef(onnx="/does-not-exist.onnx")))
    with pytest.raises(InputFileError, match=r"inputs\[0\]\[0\]: .*missing.npy"):
        run(local_board, replace(spec, inputs=[["/nowhere/missing.npy"]]))


def test_helpers():
    assert signal_of(137) == 9 and signal_of(-15) == 15 and signal_of(3) is None and signal_of(None) is None
    assert soc_matches("rk3566", "rk3568") and soc_matches("RK3588", "rk3588s")
    assert not soc_matches("rk3588", "rk3566")


def test_only_files_the_backend_uses_are_pushed(local_board, spec, tmp_path):
    big = tmp_path / "model.rknn"
    big.write_bytes(os.urandom(3_000_000))
    out = run(local_board, replace(spec, model=replace(spec.model, rknn=str(big))))
    assert out.spec.model.rknn is None and out.spec.model.onnx.endswith(".onnx")
    assert out.deploy.bytes_pushed < 3_000_000
