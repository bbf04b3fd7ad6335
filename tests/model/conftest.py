"""Fixtures for the model commands: the bundled real model, a rendered calibration set,
an isolated build cache, and a way to run the CLI as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from rkbench import examples

CLS = examples.EXAMPLES["ppocr-cls"]
CLS_OPTIONS = ["--input-size", "1,3,48,192", "--mean", "127.5,127.5,127.5", "--std", "127.5,127.5,127.5"]


@dataclass
class Cli:
    env: dict

    def __call__(self, *args, cwd=None, env=None, timeout=600) -> subprocess.CompletedProcess:
        done = subprocess.run(
            [sys.executable, "-m", "rkbench", *map(str, args)],
            capture_output=True, text=True, cwd=cwd, env={**self.env, **(env or {})}, timeout=timeout,
        )
        # No user mistake or toolkit failure may end in a Python traceback.
        assert "Traceback" not in done.stderr, done.stderr
        return done


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
