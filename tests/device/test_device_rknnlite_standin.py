"""The rknnlite backend's code path without an NPU.

STAND-IN FOR HARDWARE: these tests put a FAKE `rknnlite` package (tests/device/fakes/,
see its README) on the path. It records calls and mimics the vendor API's failure
conventions; it proves what the runner asks of RKNNLite (core-mask values,
data_format, -1/None handling, stdout hygiene), not how a real NPU behaves. The real
thing is covered by the `board` test on hardware."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from device_testing import FAKES, FIXTURES, run_runner, runner_env
from rkbench_wire import CORE_MASK_VALUES, ModelRef


def calls(log: Path):
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines()]


@pytest.fixture
def fake_rknnlite(monkeypatch, tmp_path):
    """The fake on sys.path for in-process tests; call log in tmp_path/calls.jsonl."""
    log = tmp_path / "calls.jsonl"
    monkeypatch.setenv("FAKE_RKNNLITE_LOG", str(log))
    monkeypatch.delenv("FAKE_RKNNLITE_FAIL", raising=False)
    monkeypatch.syspath_prepend(str(FAKES))
    for name in [m for m in sys.modules if m == "rknnlite" or m.startswith("rknnlite.")]:
        monkeypatch.delitem(sys.modules, name)
    yield log
    for name in [m for m in sys.modules if m == "rknnlite" or m.startswith("rknnlite.")]:
        del sys.modules[name]


@pytest.fixture
def rknn_file(tmp_path):
    path = tmp_path / "model.rknn"
    path.write_bytes(b"RKNN fake model")
    return path


@pytest.mark.parametrize("mask", list(CORE_MASK_VALUES))
def test_core_mask_names_map_to_npu_core_values(fake_rknnlite, rknn_file, mask):
    from rkbench_device.backends.rknnlite_backend import RknnLiteBackend

    backend = RknnLiteBackend()
    backend.root = str(FIXTURES / "rk3588")  # lite2 reads the SoC from the device tree
    backend.load(ModelRef(rknn=str(rknn_file)), mask, ["nhwc"])
    init = [c for c in calls(fake_rknnlite) if c["call"] == "init_runtime"]
    assert init == [
        {"call": "init_runtime", "core_mask": {"auto": 0, "0": 1, "1": 2, "2": 4, "0_1": 3, "0_1_2": 7}[mask]}
    ]
    prepared = backend.prepare([np.ones((1, 4, 4, 3), np.uint8)])
    outputs = backend.infer(prepared.feed)
    assert outputs[0].tolist() == [[48.0, 1.0, 1.0]]
    backend.bind(prepared.feed)()
    inference = [c for c in calls(fake_rknnlite) if c["call"] == "inference"]
    # no data_format is ever passed: the real lite2 writes enums back into a list given to it
    assert inference[0]["data_format"] is None and inference[0]["dtypes"] == ["uint8"]
    assert backend.info()["versions"]["api_version"] == "2.3.0 (fake)"
    backend.close()
    assert calls(fake_rknnlite)[-1] == {"call": "release"}


@pytest.mark.parametrize(
    "fail, text",
    [
        ("load_rknn", "load_rknn("),
        ("init_runtime", "init_runtime(core_mask=0_1 [3]) returned -1"),
    ],
)
def test_minus_one_returns_become_clear_errors(fake_rknnlite, rknn_file, monkeypatch, fail, text):
    from rkbench_device.backends.rknnlite_backend import RknnLiteBackend
    from rkbench_device.errors import RunnerError

    monkeypatch.setenv("FAKE_RKNNLITE_FAIL", fail)
    backend = RknnLiteBackend()
    backend.root = str(FIXTURES / "rk3588")  # lite2 reads the SoC from the device tree
    with pytest.raises(RunnerError) as info:
        backend.load(ModelRef(rknn=str(rknn_file)), "0_1", [])
    assert info.value.kind == "backend_failed" and text in info.value.message
    assert "returned -1" in info.value.message


def test_none_and_exceptions_from_inference(fake_rknnlite, rknn_file, monkeypatch):
    from rkbench_device.backends.rknnlite_backend import RknnLiteBackend
    from rkbench_device.errors import RunnerError

    backend = RknnLiteBackend()
    backend.root = str(FIXTURES / "rk3588")  # lite2 reads the SoC from the device tree
    backend.load(ModelRef(rknn=str(rknn_file)), "auto", [None])
    feed = backend.prepare([np.zeros((1, 2, 2, 3), np.float32)]).feed
    monkeypatch.setenv("FAKE_RKNNLITE_FAIL", "inference")
    with pytest.raises(RunnerError, match=r"returned no outputs \(None\)"):
        backend.infer(feed)
    monkeypatch.setenv("FAKE_RKNNLITE_FAIL", "raise_inference")
    with pytest.raises(RunnerError, match="fake inference crash"):
        backend.infer(feed)
    inference = [c for c in calls(fake_rknnlite) if c["call"] == "inference"]
    assert inference[0]["data_format"] is None  # nothing set: the runtime's default


def test_missing_rknn_file(fake_rknnlite, tmp_path):
    from rkbench_device.backends.rknnlite_backend import RknnLiteBackend
    from rkbench_device.errors import RunnerError

    with pytest.raises(RunnerError) as info:
        RknnLiteBackend().load(ModelRef(rknn=str(tmp_path / "absent.rknn")), "auto", [])
    assert info.value.kind == "model_missing"
    assert calls(fake_rknnlite) == []


def test_no_device_tree_is_refused_before_lite2_is_asked(fake_rknnlite, rknn_file):
    from rkbench_device.backends.rknnlite_backend import RknnLiteBackend
    from rkbench_device.errors import RunnerError

    backend = RknnLiteBackend()
    backend.root = str(FIXTURES / "bare")
    with pytest.raises(RunnerError, match="no /proc/device-tree/compatible") as info:
        backend.load(ModelRef(rknn=str(rknn_file)), "auto", [])
    assert info.value.kind == "backend_failed" and "`rkbench doctor` checks the SoC" in info.value.message
    assert calls(fake_rknnlite) == []


def test_librknnrt_checks(tmp_path):
    from rkbench_device.backends.rknnlite_backend import library_check

    lib = tmp_path / "usr" / "lib" / "librknnrt.so"
    assert library_check(str(tmp_path)) == (
        None,
        "librknnrt.so is missing from /usr/lib (rknn-toolkit-lite2 loads "
        "/usr/lib/librknnrt.so at init_runtime); fix: rkbench provision BOARD "
        "--librknnrt PATH/TO/librknnrt.so (the x86_64 build)",
    )
    other = tmp_path / "usr" / "local" / "lib" / "librknnrt.so"
    other.parent.mkdir(parents=True)
    other.write_bytes(b"librknnrt version: 2.5.0")
    assert (
        "is at %s, but rknn-toolkit-lite2 loads only /usr/lib/librknnrt.so" % other in library_check(str(tmp_path))[1]
    )
    lib.parent.mkdir(parents=True)
    # an aarch64 ELF shared object (ELFCLASS64, little endian, ET_DYN, EM_AARCH64) on this x86_64 machine
    lib.write_bytes(b"\x7fELF\x02\x01\x01" + bytes(9) + (3).to_bytes(2, "little") + (183).to_bytes(2, "little"))
    found, why = library_check(str(tmp_path))
    assert found is None and "is built for aarch64, but this board is x86_64" in why and "--librknnrt" in why
    lib.write_bytes(b"not ELF: a fixture with a version string only")
    assert library_check(str(tmp_path)) == (str(lib), "")


# -- the whole runner with the fake, on fixture board trees ---------------------------------


def fake_env(tmp_path, **extra):
    return runner_env([FAKES], FAKE_RKNNLITE_LOG=str(tmp_path / "runner-calls.jsonl"), **extra)


def rknn_spec(base_spec, rknn_file, tmp_path, masks):
    np.save(tmp_path / "nhwc.npy", np.arange(16 * 16 * 3, dtype=np.uint8).reshape(1, 16, 16, 3))
    spec = dict(base_spec)
    spec.update(
        backend="auto",
        core_masks=masks,
        min_runs=5,
        min_seconds=0.05,
        model={"rknn": str(rknn_file), "onnx": None, "build_recipe": None},
        inputs=[[str(tmp_path / "nhwc.npy")]],
        data_format=["nhwc"],
    )
    return spec


def test_runner_on_rk3588_runs_each_core_mask(base_spec, rknn_file, tmp_path):
    spec = rknn_spec(base_spec, rknn_file, tmp_path, ["0", "0_1", "0_1_2"])
    out = run_runner(spec, tmp_path, args=["--root", str(FIXTURES / "rk3588")], env=fake_env(tmp_path))
    assert out.returncode == 0, out.dump()
    hello = out.one("hello")
    assert hello.backend == "rknnlite" and "librknnrt.so is present" in hello.backend_reason
    assert hello.backend_versions["librknnrt"] == "2.3.0 (c949ad889d@2024-11-07T11:35:33)"
    assert hello.backend_versions["npu_driver"] == "v0.9.8"
    results = out.of("result")
    assert [r.core_mask for r in results] == ["0", "0_1", "0_1_2"]
    assert all(r.core_mask_applicable and r.backend == "rknnlite" for r in results)
    log = calls(tmp_path / "runner-calls.jsonl")
    assert [c["core_mask"] for c in log if c["call"] == "init_runtime"] == [1, 3, 7]
    assert [c["call"] for c in log].count("release") == 3
    assert {c["data_format"] for c in log if c["call"] == "inference"} == {None}
    for r in results:  # several masks: outputs kept apart per mask
        path = Path(r.outputs[0]["files"][0]["path"])
        assert path.parent.name == "core_%s" % r.core_mask
        fed = np.load(tmp_path / "nhwc.npy").astype(np.float32)
        assert np.load(path).tolist() == [[fed.sum(), fed.mean(), fed.max()]]
        assert r.outputs[0]["files"][0]["name"] == "output0"
        assert r.counts["runs"] >= 5
    # the fake printed on stdout through Python and through fd 1: none of it reached the events
    assert "librknnrt loaded" in out.stderr and "(FAKE)" in out.stderr


def test_runner_refuses_multi_core_mask_on_rk3566(base_spec, rknn_file, tmp_path):
    spec = rknn_spec(base_spec, rknn_file, tmp_path, ["auto", "0_1"])
    out = run_runner(spec, tmp_path, args=["--root", str(FIXTURES / "rk3566")], env=fake_env(tmp_path))
    assert out.returncode == 1, out.dump()
    assert out.one("hello").soc == "rk3566"
    error = out.one("error")
    assert error.kind == "core_mask_refused" and error.core_mask == "0_1"
    assert "needs 2 NPU cores but rk3566 has 1" in error.message
    assert not out.of("result")
    assert calls(tmp_path / "runner-calls.jsonl") == []  # refused before touching the NPU


def test_runner_on_rk3566_core_0_uses_default_init(base_spec, rknn_file, tmp_path):
    spec = rknn_spec(base_spec, rknn_file, tmp_path, ["0"])
    out = run_runner(spec, tmp_path, args=["--root", str(FIXTURES / "rk3566")], env=fake_env(tmp_path))
    assert out.returncode == 0, out.dump()
    assert out.one("result").core_mask == "0"
    log = calls(tmp_path / "runner-calls.jsonl")
    assert [c["core_mask"] for c in log if c["call"] == "init_runtime"] == [0]
    assert any("has one NPU core" in p.message for p in out.of("progress"))


def test_runner_reports_init_failure_with_stderr_tail(base_spec, rknn_file, tmp_path):
    spec = rknn_spec(base_spec, rknn_file, tmp_path, ["0"])
    out = run_runner(
        spec,
        tmp_path,
        args=["--root", str(FIXTURES / "rk3588")],
        env=fake_env(tmp_path, FAKE_RKNNLITE_FAIL="init_runtime"),
    )
    assert out.returncode == 1
    error = out.one("error")
    assert error.kind == "backend_failed" and error.core_mask == "0"
    assert "failed to open rknpu module" in (error.detail or "")


def test_rknnlite_npu_time_from_the_internal_run_perf_and_notes(base_spec, rknn_file, tmp_path):
    spec = rknn_spec(base_spec, rknn_file, tmp_path, ["auto"])
    out = run_runner(
        spec, tmp_path, args=["--root", str(FIXTURES / "rk3588")], env=fake_env(tmp_path, FAKE_RKNNLITE_DELAY_S="0.002")
    )
    assert out.returncode == 0, out.dump()
    result = out.one("result")
    assert result.io_mode == "copy" and result.profile is None
    npu = [v for batch in out.of("samples") for v in batch.stages_ns["npu"]]
    assert npu == [2_000_000] * result.counts["runs"]  # the fake's 2000 us, one per timed iteration
    assert result.npu_stats.p50_ms == 2.0 and set(result.stage_stats) == {"npu"}
    notes = "\n".join(result.timing_notes)
    assert "all happen inside RKNNLite.inference()" in notes and "want_float=1" in notes
    assert "internal RKNNLite.rknn_runtime.get_run_perf()" in notes and "not a public API" in notes
    assert result.memory["npu"] == {
        "unsupported": "rknn-toolkit-lite2 has no NPU memory query on the board (use backend rknnrt)"
    }


def test_rknnlite_without_internal_runtime_says_no_npu_time(base_spec, rknn_file, tmp_path):
    spec = rknn_spec(base_spec, rknn_file, tmp_path, ["auto"])
    spec.update(data_format=["nchw"], profile_layers=True)
    np.save(tmp_path / "nhwc.npy", np.zeros((1, 3, 16, 16), np.float32))
    out = run_runner(
        spec, tmp_path, args=["--root", str(FIXTURES / "rk3588")], env=fake_env(tmp_path, FAKE_RKNNLITE_NO_RUN_PERF="1")
    )
    assert out.returncode == 0, out.dump()
    result = out.one("result")
    assert result.npu_stats is None and result.stage_stats == {}
    assert all(batch.stages_ns is None for batch in out.of("samples"))
    notes = "\n".join(result.timing_notes)
    assert (
        "no NPU time: rknn-toolkit-lite2" in notes and "has no internal RKNNLite.rknn_runtime.get_run_perf()" in notes
    )
    # the NCHW input is transposed once before timing, not by lite2 inside every call
    assert result.input_conversion["steps"] == [
        "input 0: NCHW -> NHWC (lite2 would transpose it in Python inside every inference() call)"
    ]
    assert {tuple(c["shapes"][0]) for c in calls(tmp_path / "runner-calls.jsonl") if c["call"] == "inference"} == {
        (1, 16, 16, 3)
    }
    assert result.profile == {"unsupported": "backend rknnlite has no per-layer NPU profile (use backend rknnrt)"}


def test_auto_skips_rknnlite_without_librknnrt(base_spec, tmp_path):
    # rknnlite importable (the fake) but no librknnrt.so under this root: onnxruntime is chosen
    spec = dict(base_spec, backend="auto", min_runs=3, min_seconds=0.0, save_outputs=False)
    spec["model"] = dict(spec["model"], rknn=str(tmp_path / "m.rknn"))
    out = run_runner(spec, tmp_path, args=["--root", str(FIXTURES / "bare")], env=fake_env(tmp_path))
    assert out.returncode == 0, out.dump()
    hello = out.one("hello")
    assert hello.backend == "onnxruntime"
    assert "librknnrt.so is missing" in hello.backend_reason
