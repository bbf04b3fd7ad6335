"""Fixtures for commands on a model: the bundled real model (PP-OCR cls), a rendered calibration
set, an isolated build cache, and the CLI run as a user would run it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rkbench.model import examples
from tests.support.model_cli import CLS, Cli


@pytest.fixture(scope="session")
def cls_model() -> Path:
    return examples.model_path(CLS)


@pytest.fixture(scope="session")
def cls_dataset(tmp_path_factory) -> Path:
    return examples.write_calibration_set(CLS, tmp_path_factory.mktemp("cls-calib"), 8)


@pytest.fixture(scope="session")
def session_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("rkbench-cache")


@pytest.fixture
def cli(session_cache) -> Cli:
    return Cli({**os.environ, "RKBENCH_CACHE": str(session_cache)})


@pytest.fixture
def fresh_cli(tmp_path) -> Cli:
    """A CLI with a cache of its own, for tests that must not hit an earlier build."""
    return Cli({**os.environ, "RKBENCH_CACHE": str(tmp_path / "cache")})
