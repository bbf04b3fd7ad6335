"""Fixtures for the board-side runner tests; helpers live in device_testing.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Optional

import numpy as np
import pytest

# pytest puts this folder (no __init__.py) on sys.path for its test modules and this conftest.
from device_testing import INPUT_SHAPE, build_tiny_rknn, make_tiny_classifier
from rkbench_wire import PROTOCOL_VERSION


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model, a few float32 NCHW inputs, and a calibration list."""
    root = tmp_path_factory.mktemp("tiny_model")
    make_tiny_classifier(root / "tiny.onnx")
    rng = np.random.default_rng(7)
    for i in range(3):
        np.save(root / ("input_%d.npy" % i), rng.uniform(0, 1, INPUT_SHAPE).astype(np.float32))
    for i in range(8):
        np.save(root / ("calib_%d.npy" % i), rng.uniform(0, 1, INPUT_SHAPE).astype(np.float32))
    (root / "dataset.txt").write_text("".join("%s\n" % (root / ("calib_%d.npy" % i)) for i in range(8)))
    return root


@pytest.fixture
def base_spec(model_dir: Path, tmp_path: Path) -> Dict[str, Any]:
    """A run spec (as the JSON dict the host sends) for onnxruntime, short timings."""
    return {
        "v": PROTOCOL_VERSION,
        "model": {"rknn": None, "onnx": str(model_dir / "tiny.onnx"), "build_recipe": None},
        "inputs": [[str(model_dir / ("input_%d.npy" % i))] for i in range(3)],
        "output_dir": str(tmp_path / "out"),
        "backend": "onnxruntime",
        "core_masks": ["auto"],
        "warmup": 2,
        "min_runs": 20,
        "min_seconds": 0.3,
        "max_runs": 1000000,
        "max_seconds": 20.0,
        "data_format": [None],
        "save_outputs": True,
        "telemetry_interval_s": 0.1,
        "temp_limit_c": 85.0,
        "lock_path": str(tmp_path / "board.lock"),
        "lock_timeout_s": 5.0,
    }


@pytest.fixture(scope="session")
def tiny_rknn(model_dir: Path):
    """tiny_rknn("rk3588") -> the tiny model built by the real rknn-toolkit2 for that SoC
    (cached, see device_testing.build_tiny_rknn). Skips without the toolkit."""
    import importlib.util

    if importlib.util.find_spec("rknn") is None:
        pytest.skip("rknn-toolkit2 is not installed: no .rknn to run")
    built: Dict[str, Path] = {}

    def get(soc: str) -> Path:
        if soc not in built:
            built[soc] = build_tiny_rknn(model_dir, soc)
        return built[soc]

    return get


@pytest.fixture(scope="session")
def standin():
    """The x86_64 stand-in librknnrt.so (tests/standins/librknnrt, NOT the vendor runtime):
    standin() for the current runtime, standin("old", "1.6.0") for an older one."""
    from tests.standins.librknnrt import StandinBuildError, build_standin

    def get(variant: str = "current", version: Optional[str] = None) -> Path:
        try:
            return build_standin(None, variant, **({"version": version} if version else {}))
        except StandinBuildError as exc:
            pytest.skip("stand-in librknnrt cannot be built here: %s" % exc)

    return get
