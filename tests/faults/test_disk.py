"""The board's disk full: at upload (the model does not fit in the board cache) and while the
runner writes (its outputs do not fit). Exit 7, the free space the board really has, nothing
half-written left, nothing running or locked. The board cache is a small tmpfs that only the
board's sshd sees (a private mount namespace: needs root)."""

from __future__ import annotations

import os
import re

import numpy as np
import pytest

from rkbench.boards.connect import open_board
from rkbench.boards.deploy import runner_files, runner_tarball
from rkbench.boards.runner_command import BoardDiskFull
from rkbench.boards.transport.base import megabytes
from rkbench.run.session import run_on_board
from rkbench_wire import ModelRef, RunSpec
from tests.run.helpers import BOARD_PYTHON, explain, model_args, ssh_args

from .helpers import assert_board_clean


def _runner_footprint() -> int:
    """Bytes the runner takes in the board cache: its tarball plus the extracted tree (in pages)."""
    pages = sum(-(-os.path.getsize(path) // 4096) * 4096 for _, path in runner_files())
    return len(runner_tarball()) + pages + 64 * 4096


@pytest.fixture
def small_cache_board(sshd_factory, tmp_path):
    """An sshd board whose ~/.cache is a tmpfs of `size` bytes."""
    if os.getuid() != 0:
        pytest.skip("needs root to mount a small tmpfs in a private namespace")

    def make(size: int):
        cache = tmp_path / "sshd0" / "home" / ".cache"
        return sshd_factory(tmpfs=(str(cache), f"{size // 1024}k"))

    return make


def _free_on_board(transport, path: str) -> int:
    return transport.free_bytes(path)


def test_disk_full_at_upload_names_the_real_free_space(
    rk, warm, cls_model, cls_dataset, small_cache_board, ssh_home, ssh_client_key, tmp_path
):
    model_bytes = cls_model.stat().st_size
    server = small_cache_board(_runner_footprint() + model_bytes // 2)  # the runner fits, the model does not
    db, out = tmp_path / "r.db", tmp_path / "out"
    done = rk("run", *model_args(cls_model, cls_dataset), "--backend", "onnxruntime",
              *ssh_args(server, ssh_home, ssh_client_key, tmp_path), "--db", db, "-o", out, HOME=ssh_home)  # fmt: skip
    assert done.returncode == 7, explain(done)
    message = done.stderr.strip().splitlines()[-1]
    blobs = f"{server.home}/.cache/rkbench/blobs"
    assert f"disk full while uploading {cls_model.name} to {blobs}/" in message, message
    with open_board(server.board) as board:
        free = _free_on_board(board, blobs)
        # the free space named is what the board has now that the partial upload is gone
        said = re.search(r"\(([\d.]+) MB free, ([\d.]+) MB needed\)", message)
        assert said and float(said.group(2)) == float(megabytes(model_bytes).split()[0]), message
        # The runner, started ahead of the upload, writes its bytecode into the same cache
        # meanwhile: the free space named may differ from now's by that much, no more.
        bytecode = board.run(
            ["find", f"{server.home}/.cache/rkbench/runner", "-name", "*.pyc", "-exec", "du", "-k", "{}", "+"]
        ).stdout.split()[::2]
        slack = sum(int(kb) for kb in bytecode) * 1024
        assert abs(float(said.group(1)) - free / (1 << 20)) <= 0.1 + slack / (1 << 20), (message, free, slack)
        assert free > 0 and "0.0 MB free" not in message
        leftovers = board.run(["ls", "-A", blobs], check=True).stdout.decode().split()
        assert all(not re.search(r"\.tmp-", name) for name in leftovers), leftovers  # no partial file
        assert_board_clean(server.home, transport=board)
    assert not db.exists() or rk.history(db) == []  # nothing was measured, nothing stored


def _big_output_model(path):
    """image [1,3,8,8] tiled to [1,3,512,512]: a 3 MB output per sample."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    repeats = numpy_helper.from_array(np.array([1, 1, 64, 64], np.int64), "repeats")
    graph = helper.make_graph(
        [helper.make_node("Tile", ["image", "repeats"], ["big"])],
        "rkbench_big_output",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("big", TensorProto.FLOAT, [1, 3, 512, 512])],
        [repeats],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_disk_full_while_the_runner_writes_is_exit_7(small_cache_board, model_files, tmp_path):
    server = small_cache_board(_runner_footprint() + 512 * 1024)  # the outputs (3 MB) do not fit
    spec = RunSpec(
        model=ModelRef(onnx=str(_big_output_model(tmp_path / "big.onnx"))),
        inputs=[[str(p)] for p in model_files["inputs"][:1]],
        output_dir="out",
        backend="onnxruntime",
        warmup=1,
        min_runs=5,
        min_seconds=0.1,
        lock_timeout_s=5.0,
    )
    with open_board(server.board) as board:
        with pytest.raises(BoardDiskFull) as err:
            run_on_board(board, spec, python=BOARD_PYTHON, out_dir=tmp_path / "fetched")
        message = str(err.value)
        cache = f"{server.home}/.cache/rkbench"
        assert err.value.exit_code == 7 and err.value.kind == "disk_full"
        said = re.search(rf"the board's disk is full \(([\d.]+) MB free in {re.escape(cache)}\)", message)
        assert said, message
        # what the board has, once the failed write's leftovers are gone (not "0 MB")
        assert abs(float(said.group(1)) - board.free_bytes(cache) / (1 << 20)) <= 0.1 and float(said.group(1)) > 0.2
        assert "could not write outputs to" in message and "No space left on device" in message
        assert "internal" not in message and "\n" not in message
        assert_board_clean(server.home, transport=board)
        assert board.run(["ls", "-A", f"{cache}/runs"]).stdout.strip() == b""  # the partial outputs are gone
