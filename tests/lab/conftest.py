from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.outlier_model import make_outlier_model, write_inputs


@pytest.fixture(scope="session")
def lab_files(tmp_path_factory):
    """A small model with calibration data, a suite over the local board, a shared cache."""
    root = tmp_path_factory.mktemp("lab")
    make_outlier_model(root / "m.onnx", scale=1.0, seed=11)
    write_inputs(root / "calib", 8, seed=5)
    return root


def write_lab(
    root: Path, boards: str, selectors: str = '["lab=desk"]', measure: str = "", seconds: float = 0.3
) -> tuple[Path, Path]:
    (root / "boards.toml").write_text(boards)
    (root / "suite.toml").write_text(f"""
name = "smoke"
[measure]
backend = "onnxruntime"
min_runs = 30
min_seconds = {seconds}
{measure}
[[models]]
name = "cnn"
path = "m.onnx"
dataset = "calib/dataset.txt"
boards = {selectors}
[models.thresholds]
min_cos_fp32 = 0.5
""")
    return root / "suite.toml", root / "boards.toml"


LOCAL = """
[boards.here]
address = "local"
soc = "rk3588"
tags = ["lab=desk"]
"""


class Nightly:
    def __init__(self, root: Path, cache: Path, db: Path):
        self.root, self.cache, self.db = root, cache, db

    def __call__(self, *args, timeout: float = 300) -> subprocess.CompletedProcess:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "rkbench",
                "nightly",
                "--suite",
                "suite.toml",
                "--boards",
                "boards.toml",
                "--db",
                str(self.db),
                *map(str, args),
            ],
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, "RKBENCH_CACHE": str(self.cache)},
        )
        assert "Traceback" not in done.stderr, done.stderr
        return done


@pytest.fixture
def nightly(lab_files, tmp_path_factory, tmp_path):
    """Builds and analyses are shared (cache); every test has its own results store."""
    return Nightly(lab_files, tmp_path_factory.getbasetemp() / "fleet-cache", tmp_path / "results.db")
