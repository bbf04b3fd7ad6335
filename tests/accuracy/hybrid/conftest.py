from __future__ import annotations

import os

import pytest

from tests.support.model_cli import Cli
from tests.support.outlier_model import make_outlier_model, write_inputs


@pytest.fixture(scope="session")
def outlier(tmp_path_factory):
    """The outlier CNN with a calibration set and a separate evaluation set."""
    root = tmp_path_factory.mktemp("outlier")
    model = make_outlier_model(root / "outlier.onnx", scale=1000.0)
    return model, write_inputs(root / "calib", 16, seed=1), write_inputs(root / "eval", 8, seed=2)


@pytest.fixture(scope="session")
def hybrid_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("hybrid-cache")


@pytest.fixture
def cli(hybrid_cache) -> Cli:
    return Cli({**os.environ, "RKBENCH_CACHE": str(hybrid_cache)})
