"""The simulator backend end to end: a real rknn-toolkit2 build of the tiny model (int8,
rk3566) run by the runner on the toolkit's simulator."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from device_testing import run_runner


def cosine(a, b):
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.mark.toolkit
@pytest.mark.skipif(importlib.util.find_spec("rknn") is None, reason="rknn-toolkit2 is not installed")
def test_simulator_end_to_end(base_spec, model_dir, tmp_path):
    import onnxruntime as ort

    spec = dict(base_spec)
    spec.update(backend="auto", min_runs=10, min_seconds=0.2, data_format=["nchw"], telemetry_interval_s=0.5)
    spec["model"] = {
        "rknn": None,
        "onnx": str(model_dir / "tiny.onnx"),
        "build_recipe": {
            "config": {"mean_values": [[0, 0, 0]], "std_values": [[1, 1, 1]], "target_platform": "rk3566"},
            "load": {"kind": "onnx", "kwargs": {}},
            "build": {"do_quantization": True, "dataset": str(model_dir / "dataset.txt")},
        },
    }
    out = run_runner(spec, tmp_path, timeout=120)
    assert out.returncode == 0, out.dump()
    hello = out.one("hello")
    assert hello.backend == "simulator" and "rknn-toolkit2" in hello.backend_reason
    assert hello.backend_versions["rknn_toolkit2"] == "2.5.0"
    result = out.one("result")
    assert result.backend == "simulator" and result.core_mask is None
    assert result.counts["runs"] >= 10 and result.elapsed_s >= 0.2
    # the toolkit prints a lot (and blank lines on fd 1 from C): all of it went to stderr
    assert "rknn building" in out.stderr or "I rknn" in out.stderr

    session = ort.InferenceSession(str(model_dir / "tiny.onnx"), providers=["CPUExecutionProvider"])
    for entry, paths in zip(result.outputs, spec["inputs"]):
        (meta,) = entry["files"]
        assert meta["name"] == "scores" and meta["shape"] == [1, 6]
        quantized = np.load(meta["path"])
        (fp32,) = session.run(None, {"image": np.load(paths[0])})
        # real int8 outputs: close to fp32, but not bit-identical
        assert cosine(quantized, fp32) > 0.99
        assert not np.array_equal(quantized, fp32)
