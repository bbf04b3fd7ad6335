"""The rknnrt backend (our ctypes on librknnrt's C API, branch rknnrt) on the emulated
board over SSH: the board's Python under qemu, the aarch64 stand-in runtime, pushed and
driven by the host's session code. NPU time, the stage split, the per-layer profile and
NPU memory come back from the board."""

from __future__ import annotations

import numpy as np
import pytest

from rkbench.boards.connect import open_board
from rkbench.run.session import run_on_board
from rkbench_wire import ModelRef, RunSpec
from tests.run.helpers import explain, run_ids

pytestmark = pytest.mark.emulated


def board_transport(server, files):
    return open_board(
        server.board,
        known_hosts=str(files.known_hosts),
        identity_files=[str(files.key)],
        ssh_config=str(files.config) if files.config.exists() else None,
    )


@pytest.mark.parametrize(
    "io_mode, stages",
    [
        ("copy", {"inputs_set", "run", "npu", "outputs_get"}),
        ("zero_copy", {"inputs_set", "run", "npu"}),
    ],
)
def test_rknnrt_runner_on_the_emulated_board(rk3588_sshd, ssh_files, models, tmp_path, io_mode, stages):
    image = tmp_path / "image.npy"
    np.save(image, np.random.default_rng(3).uniform(0, 1, (1, 3, 16, 16)).astype(np.float32))
    # backend auto: the board's runner prefers rknnrt when librknnrt loads
    spec = RunSpec(
        model=ModelRef(rknn=str(models["tiny_rk3588"])),
        inputs=[[str(image)]],
        output_dir="out",
        backend="auto",
        data_format=["nchw"],
        io_mode=io_mode,
        warmup=2,
        min_runs=20,
        min_seconds=0.2,
        max_seconds=30.0,
        telemetry_interval_s=0.2,
        profile_layers=True,
        profile_runs=2,
    )
    with board_transport(rk3588_sshd, ssh_files) as board:
        out = run_on_board(board, spec, target="rk3588", out_dir=tmp_path / "outputs")
    assert out.backend == "rknnrt" and out.hello.soc == "rk3588"
    assert out.hello.backend_reason.startswith("auto: the C API backend")
    [mask] = out.results
    result = mask.result
    assert result.io_mode == io_mode
    assert result.npu_stats.p50_ms == 2.0 and result.npu_stats.n == result.stats.n  # PERF_RUN, every run
    assert set(result.stage_stats) == stages and result.stage_stats["npu"] == result.npu_stats
    npu = result.memory["npu"]
    assert npu["weight_bytes"] > 0 and npu["dma_bytes"] >= npu["weight_bytes"] + npu["internal_bytes"]
    assert result.versions["api_version"].startswith("2.5.0 (standin@")
    assert result.profile["runs"] == 2 and result.profile["flags"] == 8
    table = mask.profile_path.read_text()  # fetched from the board
    assert "Operator Time Consuming Ranking Table" in table and "Conv" in table
    # both outputs fetched back, float32 in the model's layout
    assert [(o.shape, o.dtype) for o in mask.outputs] == [([1, 20, 16, 16], "float32"), ([1, 6], "float32")]
    assert np.load(mask.outputs[1].local_path).shape == (1, 6)


def test_rkbench_run_backend_rknnrt_over_ssh(rk, rk3588_sshd, ssh_files, tiny_onnx, tmp_path):
    done = rk(
        "run",
        "--board",
        rk3588_sshd.board,
        "--backend",
        "rknnrt",
        "--profile-layers",
        *ssh_files.options(),
        "--model",
        tiny_onnx["model"],
        "--dataset",
        tiny_onnx["dataset"],
        "--input-count",
        "2",
        "--min-runs",
        "20",
        "--min-seconds",
        "0.3",
        "--db",
        tmp_path / "results.db",
        "-o",
        tmp_path / "out",
    )
    assert done.returncode == 0, explain(done)
    shown = rk.show(tmp_path / "results.db", run_ids(done.stdout)[0])
    assert shown["backend"] == "rknnrt" and shown["npu_stats"]["p50_ms"] == 2.0
    assert "stand-in" in shown["versions"]["librknnrt"]
    assert "NPU time" in done.stdout
