"""Fixtures for board sessions: a tiny model with inputs, a run spec for it, the local board and
an SSH board (a real sshd on loopback) opened as transports."""

from __future__ import annotations

import pytest

from rkbench.boards.connect import open_board
from rkbench_wire import ModelRef, RunSpec
from tests.support.boards import make_inputs, make_model


@pytest.fixture(scope="session")
def model_files(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("session_model")
    model = make_model(root / "tiny.onnx")
    inputs = make_inputs(root)
    return {"model": model, "inputs": inputs}


@pytest.fixture
def spec(model_files, tmp_path) -> RunSpec:
    """A run spec for run_on_board (files named by their host paths): onnxruntime, short
    timings, a test-local lock."""
    return RunSpec(
        model=ModelRef(onnx=str(model_files["model"])),
        inputs=[[str(path)] for path in model_files["inputs"]],
        output_dir="out",
        backend="onnxruntime",
        warmup=2,
        min_runs=20,
        min_seconds=0.2,
        max_seconds=20.0,
        telemetry_interval_s=0.1,
        lock_path=str(tmp_path / "board.lock"),
        lock_timeout_s=5.0,
    )


@pytest.fixture
def ssh_board(sshd):
    with open_board(sshd.board) as transport:
        yield transport


@pytest.fixture
def local_board(tmp_path):
    with open_board("local", home=str(tmp_path / "local-board-home")) as transport:
        yield transport
