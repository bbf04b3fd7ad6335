"""Fixtures for the fault suite: the bundled classifier built once for the session (so each
`rkbench run` costs its board time only), and loopback sshd boards."""

from __future__ import annotations

from pathlib import Path

import pytest

from rkbench.model import examples
from tests.run.helpers import Rk, explain, model_args
from tests.support.model_cli import CLS


@pytest.fixture(scope="session")
def cls_model() -> Path:
    return examples.model_path(CLS)


@pytest.fixture(scope="session")
def cls_dataset(tmp_path_factory) -> Path:
    return examples.write_calibration_set(CLS, tmp_path_factory.mktemp("faults-calib"), 8)


@pytest.fixture(scope="session")
def rk(tmp_path_factory) -> Rk:
    return Rk(tmp_path_factory.mktemp("faults-cache"), tmp_path_factory.mktemp("faults-home"))


@pytest.fixture(scope="session")
def warm(rk, cls_model, cls_dataset, tmp_path_factory) -> Path:
    """One run on the local board first: builds and analyses the model for the session.
    Returns its results store (one finished run)."""
    root = tmp_path_factory.mktemp("faults-warm")
    done = rk(
        "run", *model_args(cls_model, cls_dataset), "--backend", "onnxruntime", "--db", root / "r.db", "-o", root / "o"
    )
    assert done.returncode == 0, explain(done)
    return root / "r.db"
