"""The runner end to end as a subprocess with the onnxruntime backend (real model,
real onnxruntime): events, stats against the raw samples, saved outputs, stop rules,
error events."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from device_testing import FIXTURES, latencies, run_runner
from rkbench_wire import PROTOCOL_VERSION, summarize_ns


def ort_outputs(onnx_path, array):
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    return session.run(None, {"image": array})


def test_onnxruntime_end_to_end(base_spec, model_dir, tmp_path):
    base_spec["min_runs"] = 25
    base_spec["min_seconds"] = 0.4
    out = run_runner(base_spec, tmp_path)
    assert out.returncode == 0, out.dump()
    kinds = [e.type for e in out.events]
    assert kinds[0] == "hello" and kinds[-1] == "done" and kinds.count("result") == 1
    assert "error" not in kinds

    hello = out.one("hello")
    assert hello.backend == "onnxruntime" and "asked for" in hello.backend_reason
    assert hello.backend_versions["onnxruntime"]
    assert hello.protocol_version == PROTOCOL_VERSION == 3 and hello.numpy == np.__version__

    result = out.one("result")
    assert result.backend == "onnxruntime"
    assert result.core_mask is None and result.core_mask_applicable is False
    # stop rule: BOTH min_runs and min_seconds met, stopped as soon as they were
    assert result.counts["runs"] >= 25 and result.elapsed_s >= 0.4 and result.stopped_by == "min_reached"
    assert result.counts == {"warmup": 3, "runs": result.counts["runs"], "distinct_inputs": 3}

    raw = latencies(out)
    assert len(raw) == result.counts["runs"] == result.stats.n
    assert len(out.of("samples")) >= 2  # streamed in batches while running, not only at the end
    expected = summarize_ns(raw)
    assert result.stats == expected
    arr = np.array(raw, dtype=float) / 1e6
    assert result.stats.p50_ms == pytest.approx(np.percentile(arr, 50))
    assert result.stats.p99_ms == pytest.approx(np.percentile(arr, 99))
    assert result.stats.min_ms <= result.stats.p50_ms <= result.stats.p90_ms <= result.stats.max_ms
    assert sum(raw) / 1e9 <= result.elapsed_s

    # outputs: each distinct input saved once, equal to onnxruntime's own
    assert [o["sample"] for o in result.outputs] == [0, 1, 2]
    for entry, paths in zip(result.outputs, base_spec["inputs"]):
        (meta,) = entry["files"]
        assert meta["name"] == "scores" and meta["shape"] == [1, 6] and meta["dtype"] == "float32"
        assert Path(meta["path"]) == tmp_path / "out" / ("out_%d_0.npy" % entry["sample"])
        saved = np.load(meta["path"])
        (want,) = ort_outputs(model_dir / "tiny.onnx", np.load(paths[0]))
        np.testing.assert_array_equal(saved, want)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["out_0_0.npy", "out_1_0.npy", "out_2_0.npy"]

    assert result.inputs == [{"name": "image", "shape": [1, 3, 16, 16], "dtype": "float32", "data_format": "nchw"}]
    assert result.input_conversion is None
    mem = result.memory
    assert mem["after_load"]["vm_rss_kb"] > 10_000
    assert mem["after_runs"]["vm_hwm_kb"] >= mem["after_load"]["vm_hwm_kb"]
    assert mem["npu"] is None and result.npu_stats is None
    assert out.of("telemetry"), "telemetry readings are streamed"
    done = out.one("done")
    assert done.ok and done.exit_code == 0 and done.results == 1


def test_min_runs_dominates_then_caps(base_spec, tmp_path):
    # min_runs far above what min_seconds needs: stops at exactly min_runs
    base_spec.update(min_runs=3000, min_seconds=0.01, telemetry_interval_s=0)
    out = run_runner(base_spec, tmp_path)
    result = out.one("result")
    assert result.counts["runs"] == 3000 and result.stopped_by == "min_reached" and result.elapsed_s >= 0.01
    # max_runs caps a min_seconds that would take long
    base_spec.update(min_runs=10, min_seconds=30, max_runs=200, max_seconds=40, save_outputs=False)
    out = run_runner(base_spec, tmp_path)
    result = out.one("result")
    assert result.counts["runs"] == 200 and result.stopped_by == "max_runs" and result.outputs == []
    # max_seconds caps it too
    base_spec.update(min_runs=10**8, min_seconds=0.2, max_runs=10**9, max_seconds=0.3)
    out = run_runner(base_spec, tmp_path)
    result = out.one("result")
    assert result.stopped_by == "max_seconds" and 0.3 <= result.elapsed_s < 2.0


def test_nhwc_uint8_inputs_are_converted_once_and_reported(base_spec, model_dir, tmp_path):
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (1, 16, 16, 3), dtype=np.uint8)
    np.save(tmp_path / "img.npy", image)
    base_spec["inputs"] = [[str(tmp_path / "img.npy")]]
    base_spec["data_format"] = ["nhwc"]
    base_spec["model"]["build_recipe"] = {
        "config": {"mean_values": [[0, 0, 0]], "std_values": [[255, 255, 255]], "target_platform": "rk3566"},
        "load": {"kind": "onnx", "kwargs": {}},
        "build": {"do_quantization": False, "dataset": None},
    }
    out = run_runner(base_spec, tmp_path)
    assert out.returncode == 0, out.dump()
    result = out.one("result")
    conv = result.input_conversion
    assert conv is not None and conv["seconds"] >= 0
    assert conv["steps"] == [
        "input 0 (image): NHWC -> NCHW",
        "input 0 (image): uint8 -> float32 with mean/std of the build recipe",
    ]
    assert result.inputs[0]["shape"] == [1, 3, 16, 16] and result.inputs[0]["dtype"] == "float32"
    want = ort_outputs(
        model_dir / "tiny.onnx", (image.transpose(0, 3, 1, 2).astype(np.float32) / 255.0).astype(np.float32)
    )[0]
    np.testing.assert_allclose(np.load(result.outputs[0]["files"][0]["path"]), want, rtol=1e-5, atol=1e-6)


def test_telemetry_from_board_tree_and_temperature_limit(base_spec, tmp_path):
    base_spec.update(min_runs=5, min_seconds=0.2, temp_limit_c=45.0, save_outputs=False)
    out = run_runner(base_spec, tmp_path, args=["--root", str(FIXTURES / "rk3588")])
    assert out.returncode == 0, out.dump()
    hello = out.one("hello")
    assert hello.soc == "rk3588" and hello.npu_cores == 3
    readings = out.of("telemetry")
    assert len(readings) >= 2
    assert readings[0].npu_load_pct == [21, 11, 0] and readings[0].npu_freq_hz == 1_000_000_000
    result = out.one("result")
    # soc-thermal and littlecore-thermal are at 45.23 C in the tree, the limit is 45.0
    assert result.throttled is True
    assert result.throttle_reasons == [
        "littlecore-thermal reached 45.2 C (limit 45.0 C)",
        "soc-thermal reached 45.2 C (limit 45.0 C)",
    ]
    base_spec["temp_limit_c"] = 85.0
    out = run_runner(base_spec, tmp_path, args=["--root", str(FIXTURES / "rk3588")])
    assert out.one("result").throttled is False


def test_core_masks_do_not_apply_to_onnxruntime(base_spec, tmp_path):
    base_spec.update(core_masks=["0", "0_1"], min_runs=3, min_seconds=0.0, save_outputs=False)
    out = run_runner(base_spec, tmp_path)
    assert out.returncode == 0, out.dump()
    assert len(out.of("result")) == 1 and out.one("result").core_mask is None
    assert any("do not apply to backend onnxruntime" in p.message for p in out.of("progress"))


@pytest.mark.parametrize(
    "change, kind, text",
    [
        (lambda s, t: s["model"].update(onnx=str(t / "nope.onnx")), "model_missing", "nope.onnx"),
        (lambda s, t: s.update(inputs=[[str(t / "missing.npy")]]), "input_missing", "missing.npy"),
        (
            lambda s, t: (
                np.save(t / "wrong.npy", np.zeros((1, 3, 8, 8), np.float32)),
                s.update(inputs=[[str(t / "wrong.npy")]]),
            ),
            "bad_input",
            "[1, 3, 8, 8]",
        ),
        (
            lambda s, t: ((t / "junk.npy").write_text("not numpy"), s.update(inputs=[[str(t / "junk.npy")]])),
            "bad_input",
            "junk.npy",
        ),
        (
            lambda s, t: s.update(backend="rknnlite", model={"rknn": str(t / "m.rknn")}),
            "backend_missing",
            "rkbench provision",
        ),
    ],
)
def test_failures_become_error_events(base_spec, tmp_path, change, kind, text):
    change(base_spec, tmp_path)
    out = run_runner(base_spec, tmp_path)
    assert out.returncode == 1, out.dump()
    error = out.one("error")
    assert error.kind == kind and text in error.message, error
    assert out.events[-1].type == "done" and out.events[-1].ok is False and out.events[-1].exit_code == 1
    assert not out.of("result")
    assert "Traceback" not in "\n".join(out.lines)
    hello = out.one("hello")  # even a failed run says what board and backend it saw
    assert hello.backend == ("none" if kind == "backend_missing" else "onnxruntime")


@pytest.mark.parametrize(
    "line, expect",
    [
        (lambda s: dict(s, v=1), "run spec.v: protocol version 1 is not supported"),
        (lambda s: dict(s, min_runs="many"), "min_runs: expected an integer"),
        (lambda s: "this is not json", "not valid JSON"),
    ],
)
def test_runner_rejects_bad_specs(base_spec, tmp_path, line, expect):
    spec = line(base_spec)
    out = run_runner(spec if isinstance(spec, str) else json.dumps(spec), tmp_path)
    assert out.returncode == 2
    assert [e.type for e in out.events] == ["error", "done"]
    error = out.one("error")
    assert error.kind == "protocol" and expect in error.message
    assert not (tmp_path / "board.lock").exists()


def test_cpu_threads_fix_the_onnxruntime_thread_count(model_dir):
    from rkbench_device.backends.ort_backend import OnnxRuntimeBackend
    from rkbench_wire import ModelRef

    backend = OnnxRuntimeBackend()
    backend.cpu_threads = 1
    backend.load(ModelRef(onnx=str(model_dir / "tiny.onnx")))
    assert backend._session.get_session_options().intra_op_num_threads == 1


def test_cpu_threads_in_the_spec(base_spec, tmp_path):
    assert run_runner(dict(base_spec, cpu_threads=1), tmp_path).returncode == 0
    bad = run_runner(dict(base_spec, cpu_threads=-1), tmp_path)
    assert bad.returncode != 0 and "cpu_threads" in "\n".join(bad.lines)
