"""Fixtures for board sessions: a tiny model with inputs, a run spec for it, the local board and
an SSH board (a real sshd on loopback) opened as transports."""

from __future__ import annotations

import pytest

from rkbench.boards.connect import open_board
from tests.support.boards import make_inputs, make_model


@pytest.fixture(scope="session")
def model_files(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("session_model")
    model = make_model(root / "tiny.onnx")
    inputs = make_inputs(root)
    return {"model": model, "inputs": inputs}


@pytest.fixture
def spec(model_files, tmp_path) -> dict:
    """spec_fields for run_on_board: onnxruntime, short timings, a test-local lock."""
    return {
        "backend": "onnxruntime",
        "model": {"onnx": "model"},
        "inputs": [[f"in{i}"] for i in range(len(model_files["inputs"]))],
        "warmup": 2,
        "min_runs": 20,
        "min_seconds": 0.2,
        "max_seconds": 20.0,
        "telemetry_interval_s": 0.1,
        "lock_path": str(tmp_path / "board.lock"),
        "lock_timeout_s": 5.0,
    }


@pytest.fixture
def files(model_files) -> dict:
    out = {"model": model_files["model"]}
    out.update({f"in{i}": p for i, p in enumerate(model_files["inputs"])})
    return out


@pytest.fixture
def ssh_board(sshd):  # noqa: F811 (the fixture imported above)
    with open_board(sshd.board) as transport:
        yield transport


@pytest.fixture
def local_board(tmp_path):
    with open_board("local", home=str(tmp_path / "local-board-home")) as transport:
        yield transport
