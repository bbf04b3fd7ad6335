"""The rknnrt backend end to end through the runner, against the x86_64 STAND-IN
librknnrt.so (tests/standins/librknnrt: our C implementation of the runtime's ABI, no NPU
behind it; it says "stand-in" in its versions and log lines) and real .rknn files built
by rknn-toolkit2. What this proves: our ctypes declarations and call sequence work against
a library speaking the C ABI, the stage split and NPU time reach the events, zero-copy,
the profile pass, memory, errors by name, degradation on an older runtime. What it cannot:
real NPU timing (the `board` tests do that)."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from device_testing import FIXTURES, REPO, latencies, run_runner, runner_env

RUN_US = 1500


def env_for(lib, soc="rk3588", **knobs):
    return runner_env(
        RKBENCH_LIBRKNNRT=str(lib),
        RKNN_STANDIN_ROOT=str(FIXTURES / soc),
        RKNN_STANDIN_RUN_US=str(knobs.pop("run_us", RUN_US)),
        **knobs,
    )


def spec_for(base_spec, model, tmp_path, model_dir, **changes):
    spec = dict(
        base_spec,
        backend="rknnrt",
        model={"rknn": str(model)},
        data_format=["nchw"],
        min_runs=30,
        min_seconds=0.1,
        save_outputs=True,
    )
    spec.update(changes)
    return spec


def run(spec, tmp_path, lib, soc="rk3588", **knobs):
    return run_runner(spec, tmp_path, args=["--root", str(FIXTURES / soc)], env=env_for(lib, soc, **knobs))


def stages(out, mask="any"):
    """The streamed stage lists of one core mask, joined, checked aligned with the latencies."""
    joined = {}
    for batch in out.of("samples"):
        if mask != "any" and batch.core_mask != mask:
            continue
        assert batch.stages_ns is not None
        for name, values in batch.stages_ns.items():
            assert len(values) == len(batch.latencies_ns)
            joined.setdefault(name, []).extend(values)
    return joined


def test_copy_mode_npu_time_stages_memory_versions(base_spec, tiny_rknn, standin, model_dir, tmp_path):
    spec = spec_for(base_spec, tiny_rknn("rk3588"), tmp_path, model_dir, core_masks=["0"])
    out = run(spec, tmp_path, standin())
    assert out.returncode == 0, out.dump()
    hello = out.one("hello")
    assert hello.backend == "rknnrt" and "stand-in" in hello.backend_versions["librknnrt"]
    result = out.one("result")
    assert result.backend == "rknnrt" and result.io_mode == "copy" and result.core_mask == "0"

    lat = latencies(out)
    split = stages(out)
    assert sorted(split) == ["inputs_set", "npu", "outputs_get", "run"]
    assert len(lat) == result.counts["runs"] == result.stats.n == len(split["npu"])
    # the NPU time is the runtime's own PERF_RUN: the stand-in's configured time
    assert result.npu_stats.p50_ms == pytest.approx(RUN_US / 1000, rel=0.02)
    assert set(result.stage_stats) == set(split) and result.stage_stats["npu"] == result.npu_stats
    # the stages are parts of each iteration: they sum to a little less than its latency
    for i, total in enumerate(lat):
        parts = split["inputs_set"][i] + split["run"][i] + split["outputs_get"][i]
        assert parts <= total and split["run"][i] >= split["npu"][i]
    shares = [(split["inputs_set"][i] + split["run"][i] + split["outputs_get"][i]) / lat[i] for i in range(len(lat))]
    assert statistics.median(shares) > 0.9

    npu = result.memory["npu"]
    assert set(npu) == {"weight_bytes", "internal_bytes", "dma_bytes", "sram_total_bytes", "sram_free_bytes"}
    assert npu["weight_bytes"] > 0 and npu["dma_bytes"] >= npu["weight_bytes"]
    assert result.versions["api_version"].startswith("2.5.0") and "stand-in" in result.versions["drv_version"]
    assert "stand-in" in result.versions["librknnrt"]
    assert result.inputs == [{"name": "image", "shape": [1, 16, 16, 3], "dtype": "int8", "data_format": "nchw"}]
    assert any("quantized with the input's zp" in s for s in result.input_conversion["steps"])
    assert any("NCHW -> native NHWC" in s for s in result.input_conversion["steps"])
    notes = "\n".join(result.timing_notes)
    assert "want_float=0" in notes and "RKNN_QUERY_PERF_RUN" in notes
    (saved,) = result.outputs[0]["files"]
    assert saved["name"] == "scores" and saved["shape"] == [1, 6] and saved["dtype"] == "float32"
    assert result.profile is None
    assert "[stand-in]" in out.stderr


def test_zero_copy_and_copy_both_run_and_agree(base_spec, tiny_rknn, standin, model_dir, tmp_path):
    results = {}
    for mode in ("copy", "zero_copy"):
        spec = spec_for(
            base_spec, tiny_rknn("rk3588"), tmp_path, model_dir, io_mode=mode, output_dir=str(tmp_path / mode)
        )
        out = run(spec, tmp_path, standin())
        assert out.returncode == 0, out.dump()
        results[mode] = out.one("result")
        assert results[mode].io_mode == mode
    zero = results["zero_copy"]
    assert set(zero.stage_stats) == {"inputs_set", "run", "npu"}  # outputs stay in their buffers
    assert "zero-copy (rknn_create_mem + rknn_set_io_mem)" in "\n".join(zero.timing_notes)
    assert zero.npu_stats.p50_ms == pytest.approx(RUN_US / 1000, rel=0.02)
    # the outputs the runtime converts (copy, want_float=1) and ours from the native buffers match
    for a, b in zip(results["copy"].outputs, zero.outputs):
        for fa, fb in zip(a["files"], b["files"]):
            assert fa["name"] == fb["name"]
            np.testing.assert_allclose(np.load(fa["path"]), np.load(fb["path"]), rtol=1e-6, atol=1e-6)


def test_profile_pass_writes_the_table_and_adds_no_sample(base_spec, tiny_rknn, standin, model_dir, tmp_path):
    spec = spec_for(
        base_spec,
        tiny_rknn("rk3588"),
        tmp_path,
        model_dir,
        profile_layers=True,
        profile_runs=4,
        core_masks=["0", "0_1"],
    )
    out = run(spec, tmp_path, standin())
    assert out.returncode == 0, out.dump()
    for result in out.of("result"):
        profile = result.profile
        assert profile["runs"] == 4 and profile["flags"] == 8 and profile["seconds"] > 0
        path = Path(profile["file"])
        assert path == tmp_path / "out" / ("core_%s" % result.core_mask) / "perf_detail.txt"
        text = path.read_text()
        assert "Network Layer Information Table" in text and "Total Operator Elapsed Per Frame Time(us)" in text
        assert "Conv:conv" in text
        # the timed loop holds exactly its own iterations, each with the plain context's NPU time
        lat = latencies(out, result.core_mask)
        assert len(lat) == result.counts["runs"] == result.stats.n
        assert len(stages(out, result.core_mask)["npu"]) == len(lat)
    # order: the profile comes after the last samples batch of its mask, before the result
    kinds = [(e.type, getattr(e, "stage", None)) for e in out.events]
    first_result = kinds.index(("result", None))
    last_samples = max(i for i, k in enumerate(kinds[:first_result]) if k[0] == "samples")
    assert ("progress", "profile") in kinds[last_samples:first_result]
    assert ("progress", "profile") not in kinds[:last_samples]


def test_unsupported_queries_degrade_and_the_run_goes_on(base_spec, tiny_rknn, standin, model_dir, tmp_path):
    spec = spec_for(base_spec, tiny_rknn("rk3588"), tmp_path, model_dir, profile_layers=True)
    out = run(spec, tmp_path, standin(), RKNN_STANDIN_UNSUPPORTED="MEM_SIZE,PERF_DETAIL")
    assert out.returncode == 0, out.dump()
    result = out.one("result")
    assert "rknn_query(RKNN_QUERY_MEM_SIZE) returned" in result.memory["npu"]["unsupported"]
    assert "rknn_query(RKNN_QUERY_PERF_DETAIL) returned" in result.profile["unsupported"]
    assert result.npu_stats is not None and result.counts["runs"] >= 30
    assert any("no per-layer profile" in p.message for p in out.of("progress"))


def test_model_for_another_soc_is_named(base_spec, tiny_rknn, standin, model_dir, tmp_path):
    spec = spec_for(base_spec, tiny_rknn("rk3566"), tmp_path, model_dir)
    out = run(spec, tmp_path, standin(), soc="rk3588")
    assert out.returncode == 1, out.dump()
    error = out.one("error")
    assert error.kind == "backend_failed" and error.core_mask == "auto"
    assert (
        "rknn_init returned -13 RKNN_ERR_TARGET_PLATFORM_UNMATCH: the model was built for another SoC" in error.message
    )
    assert "[stand-in]" in (error.detail or "")  # the runtime's own lines reach the error
    assert not out.of("result")


@pytest.mark.parametrize(
    "fail, words",
    [
        ("rknn_init=-3", "rknn_init returned -3 RKNN_ERR_DEVICE_UNAVAILABLE: the NPU device cannot be opened"),
        ("rknn_inputs_set=-8", "rknn_inputs_set returned -8 RKNN_ERR_INPUT_INVALID"),
        ("rknn_outputs_get=-9", "rknn_outputs_get(want_float=1) returned -9 RKNN_ERR_OUTPUT_INVALID"),
    ],
)
def test_failures_before_timing_are_named_with_the_runtime_lines(
    base_spec, tiny_rknn, standin, model_dir, tmp_path, fail, words
):
    spec = spec_for(base_spec, tiny_rknn("rk3588"), tmp_path, model_dir)
    out = run(spec, tmp_path, standin(), RKNN_STANDIN_FAIL=fail)
    assert out.returncode == 1, out.dump()
    error = out.one("error")
    assert error.kind == "backend_failed" and words in error.message
    assert "stand-in" in error.message  # which runtime said so
    assert "injected failure" in (error.detail or ""), error.detail
    assert not out.of("samples")


def test_failure_inside_the_timed_loop_keeps_what_was_measured(base_spec, tiny_rknn, standin, model_dir, tmp_path):
    spec = spec_for(base_spec, tiny_rknn("rk3588"), tmp_path, model_dir, min_runs=1000, min_seconds=5.0, warmup=1)
    # calls 1..3 warm up (each of the 3 inputs once), 4..40 are timed; the 41st rknn_run fails
    out = run(spec, tmp_path, standin(), RKNN_STANDIN_FAIL="rknn_run@41=-2")
    assert out.returncode == 1, out.dump()
    error = out.one("error")
    assert "rknn_run returned -2 RKNN_ERR_TIMEOUT" in error.message and error.core_mask == "auto"
    assert len(latencies(out)) == 37 and len(stages(out)["npu"]) == 37


def test_core_masks_on_rk3566(base_spec, tiny_rknn, standin, model_dir, tmp_path):
    spec = spec_for(base_spec, tiny_rknn("rk3566"), tmp_path, model_dir, core_masks=["auto", "0"])
    out = run(spec, tmp_path, standin(), soc="rk3566")
    assert out.returncode == 0, out.dump()
    assert [r.core_mask for r in out.of("result")] == ["auto", "0"]
    assert any("has one NPU core" in p.message for p in out.of("progress"))
    refused = run(dict(spec, core_masks=["0_1"]), tmp_path, standin(), soc="rk3566")
    error = refused.one("error")
    assert error.kind == "core_mask_refused" and "needs 2 NPU cores but rk3566 has 1" in error.message


def test_core_masks_on_rk3588_reach_the_runtime(base_spec, tiny_rknn, standin, model_dir, tmp_path):
    spec = spec_for(base_spec, tiny_rknn("rk3588"), tmp_path, model_dir, core_masks=["0", "0_1_2"], save_outputs=False)
    out = run(spec, tmp_path, standin())
    assert out.returncode == 0, out.dump()
    single, triple = out.of("result")
    # the stand-in spreads a multi-core run (with some overhead): its PERF_RUN is shorter
    assert triple.npu_stats.p50_ms < single.npu_stats.p50_ms


def test_old_runtime_degrades(base_spec, tiny_rknn, standin, model_dir, tmp_path):
    old = standin("old", "1.6.0")
    spec = spec_for(base_spec, tiny_rknn("rk3588"), tmp_path, model_dir)
    out = run(spec, tmp_path, old)
    assert out.returncode == 0, out.dump()
    assert out.one("result").versions["librknnrt"].startswith("1.6.0")
    out = run(dict(spec, io_mode="zero_copy"), tmp_path, old)
    assert out.returncode == 1, out.dump()
    error = out.one("error")
    assert error.kind == "backend_missing"
    assert "io_mode zero_copy needs rknn_create_mem, rknn_set_io_mem, rknn_destroy_mem" in error.message
    assert "librknnrt 1.6.0" in error.message and "run with --io copy" in error.message


def test_auto_prefers_rknnrt_and_says_so(base_spec, tiny_rknn, standin, model_dir, tmp_path):
    spec = spec_for(base_spec, tiny_rknn("rk3588"), tmp_path, model_dir, backend="auto", min_runs=5, save_outputs=False)
    spec["model"] = {"rknn": str(tiny_rknn("rk3588")), "onnx": base_spec["model"]["onnx"]}
    out = run(spec, tmp_path, standin())
    assert out.returncode == 0, out.dump()
    hello = out.one("hello")
    assert hello.backend == "rknnrt"
    assert hello.backend_reason.startswith("auto: the C API backend (NPU time, per-layer profile, NPU memory")
    assert "--backend rknnlite" in hello.backend_reason


def info(root, lib, *args):
    proc = subprocess.run(
        [sys.executable, "-m", "rkbench_device", "info", "--root", str(root)] + list(args),
        capture_output=True,
        text=True,
        env=env_for(lib),
        cwd=str(REPO),
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.splitlines()) == 1, proc.stdout  # the runtime's chatter stayed off stdout
    return json.loads(proc.stdout), proc.stderr


def test_info_probe_model_reports_the_runtime_versions(tiny_rknn, standin):
    data, stderr = info(FIXTURES / "rk3588", standin(), "--probe-model", str(tiny_rknn("rk3588")))
    probe = data["runtime_probe"]
    assert probe["api_version"].startswith("2.5.0") and "stand-in" in probe["drv_version"]
    assert probe["source"] == "rknn_query(RKNN_QUERY_SDK_VERSION)" and probe["error"] is None
    assert data["backends"]["rknnrt"]["available"] is True
    assert "[stand-in]" in stderr
    data, _ = info(FIXTURES / "rk3588", standin())
    assert data["runtime_probe"]["api_version"] is None
    assert "the librknnrt.so file only" in data["runtime_probe"]["source"]
    data, _ = info(FIXTURES / "rk3588", standin(), "--probe-model", str(tiny_rknn("rk3566")))
    assert "RKNN_ERR_TARGET_PLATFORM_UNMATCH" in data["runtime_probe"]["error"]


def test_contexts_in_threads_overlap_the_gil_is_released(tiny_rknn, standin, model_dir, monkeypatch):
    # ctypes.CDLL drops the GIL around each call: two contexts on two cores, one thread each,
    # take about as long as one alone (holding the GIL would make it twice as long)
    import threading
    import time

    from rkbench_device.backends.rknnrt_backend import RknnRtBackend
    from rkbench_wire import ModelRef

    for name, value in (
        ("RKBENCH_LIBRKNNRT", str(standin())),
        ("RKNN_STANDIN_ROOT", str(FIXTURES / "rk3588")),
        ("RKNN_STANDIN_RUN_US", "40000"),
        ("RKNN_STANDIN_QUIET", "1"),
    ):
        monkeypatch.setenv(name, value)
    backends, calls = [], []
    for mask in ("0", "1"):
        backend = RknnRtBackend()
        backend.npu_cores = 3
        backend.load(ModelRef(rknn=str(tiny_rknn("rk3588"))), mask, ["nchw"])
        backends.append(backend)
        calls.append(backend.bind(backend.prepare([np.load(model_dir / "input_0.npy")]).feed))
    try:

        def five(call):
            for _ in range(5):
                call()

        started = time.perf_counter()
        five(calls[0])
        alone = time.perf_counter() - started
        threads = [threading.Thread(target=five, args=(call,)) for call in calls]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        together = time.perf_counter() - started
    finally:
        for backend in backends:
            backend.close()
    assert alone >= 0.2
    assert together < 1.5 * alone, (alone, together)


@pytest.mark.parametrize("layout", ["nchw", "nhwc"])
def test_uint8_inputs_left_to_the_runtime_in_both_modes(base_spec, tiny_rknn, standin, model_dir, tmp_path, layout):
    # a uint8 image is not quantized by rkbench: the runtime converts it (inside the timed
    # call), in copy mode through rknn_inputs_set, in zero-copy from a buffer bound as uint8
    image = np.random.default_rng(3).integers(0, 256, (1, 3, 16, 16)).astype(np.uint8)
    np.save(tmp_path / "u8.npy", image if layout == "nchw" else image.transpose(0, 2, 3, 1))
    outputs = {}
    for mode in ("copy", "zero_copy"):
        spec = spec_for(
            base_spec,
            tiny_rknn("rk3588"),
            tmp_path,
            model_dir,
            io_mode=mode,
            data_format=[layout],
            inputs=[[str(tmp_path / "u8.npy")]],
            output_dir=str(tmp_path / mode),
        )
        out = run(spec, tmp_path, standin())
        assert out.returncode == 0, out.dump()
        result = out.one("result")
        (step,) = result.input_conversion["steps"]
        where = (
            "rknn_run, in the timed run stage"
            if mode == "zero_copy"
            else "rknn_inputs_set, in the timed inputs_set stage"
        )
        assert ("uint8 %s given to the runtime as it is" % layout.upper()) in step and where in step
        assert result.inputs[0]["dtype"] == "uint8"
        outputs[mode] = np.load(result.outputs[0]["files"][0]["path"])
    np.testing.assert_allclose(outputs["copy"], outputs["zero_copy"], rtol=1e-6, atol=1e-6)


def test_info_works_on_a_board_python_without_numpy(tiny_rknn, standin, tmp_path):
    # the host's doctor runs `info` first and provisions numpy when it says numpy: null;
    # loading librknnrt (availability, --probe-model) must not need numpy
    shadow = tmp_path / "no_numpy" / "numpy"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError(\"No module named 'numpy'\")\n")
    env = env_for(standin())
    env["PYTHONPATH"] = "%s:%s" % (shadow.parent, env["PYTHONPATH"])
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "rkbench_device",
            "info",
            "--root",
            str(FIXTURES / "rk3588"),
            "--probe-model",
            str(tiny_rknn("rk3588")),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=str(REPO),
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["numpy"] is None and data["backends"]["rknnrt"]["available"] is True
    assert data["runtime_probe"]["api_version"].startswith("2.5.0")
