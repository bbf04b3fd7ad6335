"""Fixtures for the `rkbench run` tests: the bundled PP-OCR classifier with the demo's own
calibration set (so `rkbench demo` hits the same cached build), one build cache for the
whole session, a warm first run on the local board, and the loopback sshd boards."""

from __future__ import annotations

from pathlib import Path

import pytest

from rkbench.model import examples
from tests.support.model_cli import CLS

from .helpers import Rk, explain, model_args

DEMO_CALIBRATION = 32  # what `rkbench demo` renders: same content, same build key


@pytest.fixture(scope="session")
def cls_model() -> Path:
    return examples.model_path(CLS)


@pytest.fixture(scope="session")
def cls_dataset(tmp_path_factory) -> Path:
    return examples.write_calibration_set(CLS, tmp_path_factory.mktemp("run-calib"), DEMO_CALIBRATION)


@pytest.fixture(scope="session")
def run_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("run-cache")


@pytest.fixture(scope="session")
def session_home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("run-home")


@pytest.fixture(scope="session")
def rk(run_cache, session_home) -> Rk:
    return Rk(run_cache, session_home)


@pytest.fixture(scope="session")
def warm_run(rk, cls_model, cls_dataset, tmp_path_factory) -> dict:
    """The first `rkbench run` on the local board (auto backend: the simulator): builds and
    analyses once for the session. Test 1 checks it; the others reuse its cache."""
    root = tmp_path_factory.mktemp("warm-run")
    db, out = root / "results.db", root / "out"
    done = rk("run", *model_args(cls_model, cls_dataset), "--db", db, "-o", out)
    assert done.returncode == 0, explain(done)
    return {"done": done, "db": db, "out": out}


@pytest.fixture
def isolated(tmp_path) -> dict:
    """A store and a report folder of the test's own."""
    return {"db": tmp_path / "results.db", "out": tmp_path / "out"}
