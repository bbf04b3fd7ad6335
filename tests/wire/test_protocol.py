"""rkbench_wire: the run spec, the events, the stats helper."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from rkbench_wire import (
    BACKENDS,
    EVENT_TYPES,
    IO_MODES,
    PROTOCOL_VERSION,
    STAGES,
    BuildRecipe,
    Done,
    Error,
    Hello,
    ModelRef,
    Progress,
    ProtocolError,
    Result,
    RunSpec,
    Samples,
    Telemetry,
    Throughput,
    decode_board_info,
    decode_event,
    encode_board_info,
    encode_event,
    percentile,
    summarize_ns,
)


def spec_dict():
    return {
        "v": PROTOCOL_VERSION,
        "model": {
            "rknn": "/b/m.rknn",
            "onnx": "/b/m.onnx",
            "build_recipe": {
                "config": {"target_platform": "rk3566", "mean_values": [[0, 0, 0]]},
                "load": {"kind": "onnx", "kwargs": {"outputs": ["scores"]}},
                "build": {"do_quantization": True, "dataset": "/b/ds.txt"},
            },
        },
        "inputs": [["/b/a.npy", "/b/b.npy"], ["/b/c.npy", "/b/d.npy"]],
        "output_dir": "/b/out",
        "backend": "auto",
        "core_masks": ["auto", "0_1"],
        "data_format": ["nhwc", None],
    }


def test_run_spec_v2_fields():
    spec = RunSpec.from_dict(spec_dict())
    assert (spec.io_mode, spec.profile_layers, spec.profile_runs) == ("copy", False, 3)
    data = dict(spec_dict(), backend="rknnrt", io_mode="zero_copy", profile_layers=True, profile_runs=5)
    again = RunSpec.from_json(RunSpec.from_dict(data).to_json())
    assert (again.backend, again.io_mode, again.profile_layers, again.profile_runs) == ("rknnrt", "zero_copy", True, 5)
    assert "rknnrt" in BACKENDS and IO_MODES == ("copy", "zero_copy")


def test_run_spec_round_trip_keeps_every_field():
    spec = RunSpec.from_dict(spec_dict())
    line = spec.to_json()
    assert "\n" not in line
    again = RunSpec.from_json(line)
    assert again == spec
    assert again.model.build_recipe == BuildRecipe(
        config={"target_platform": "rk3566", "mean_values": [[0, 0, 0]]},
        load_kind="onnx",
        load_kwargs={"outputs": ["scores"]},
        do_quantization=True,
        dataset="/b/ds.txt",
    )
    assert json.loads(line)["v"] == PROTOCOL_VERSION
    assert again.core_masks == ["auto", "0_1"] and again.data_format == ["nhwc", None]
    # defaults filled in for what the host left out
    assert again.warmup == 3 and again.min_runs == 10 and again.lock_path.endswith("board.lock")


@pytest.mark.parametrize(
    "mutate, field",
    [
        (lambda d: d.pop("output_dir"), "run spec.output_dir"),
        (lambda d: d.pop("model"), "run spec.model"),
        (lambda d: d.update(min_runs="ten"), "min_runs"),
        (lambda d: d.update(min_runs=0), "min_runs"),
        (lambda d: d.update(max_runs=5, min_runs=10), "max_runs"),
        (lambda d: d.update(min_seconds=-1), "min_seconds"),
        (lambda d: d.update(backend="tensorrt"), "backend"),
        (lambda d: d.update(core_masks=["0_2"]), "core_masks[0]"),
        (lambda d: d.update(core_masks=[]), "core_masks"),
        (lambda d: d.update(inputs=[]), "inputs"),
        (lambda d: d.update(inputs=[["/a.npy"], ["/b.npy", "/c.npy"]]), "inputs[1]"),
        (lambda d: d.update(inputs=[["/a.npy", 3]]), "inputs[0][1]"),
        (lambda d: d.update(data_format=["nhwc"]), "data_format"),
        (lambda d: d.update(data_format=["hwcn", None]), "data_format[0]"),
        (lambda d: d.update(save_outputs="yes"), "save_outputs"),
        (lambda d: d.update(min_runs=True), "min_runs"),
        (lambda d: d.update(surprise=1), "surprise"),
        (lambda d: d["model"].update(rknn=None, onnx=None), "model"),
        (lambda d: d["model"]["build_recipe"]["build"].update(dataset=None), "model.build_recipe.build.dataset"),
        (lambda d: d["model"]["build_recipe"]["load"].update(kind="tflite"), "model.build_recipe.load.kind"),
        (lambda d: d.update(backend="rknnlite", model={"onnx": "/m.onnx"}), "model.rknn"),
        (lambda d: d.update(backend="rknnrt", model={"onnx": "/m.onnx"}), "model.rknn"),
        (lambda d: d.update(io_mode="zero-copy"), "io_mode"),
        (lambda d: d.update(io_mode="zero_copy", backend="rknnlite"), "io_mode: 'zero_copy' needs backend 'rknnrt'"),
        (lambda d: d.update(profile_layers="yes"), "profile_layers"),
        (lambda d: d.update(profile_runs=0), "profile_runs"),
    ],
)
def test_run_spec_rejects_bad_fields_naming_them(mutate, field):
    data = copy.deepcopy(spec_dict())
    mutate(data)
    with pytest.raises(ProtocolError) as info:
        RunSpec.from_json(json.dumps(data))
    assert field in str(info.value)


@pytest.mark.parametrize("version", [0, 1, 99, "2", None])
def test_run_spec_rejects_other_protocol_versions(version):
    data = spec_dict()
    data["v"] = version
    with pytest.raises(ProtocolError) as info:
        RunSpec.from_json(json.dumps(data))
    assert "run spec.v" in str(info.value)


def test_run_spec_without_version_or_not_json():
    data = spec_dict()
    del data["v"]
    with pytest.raises(ProtocolError, match=r"run spec\.v: missing"):
        RunSpec.from_json(json.dumps(data))
    with pytest.raises(ProtocolError, match="not valid JSON"):
        RunSpec.from_json("{not json")
    with pytest.raises(ProtocolError, match="empty"):
        RunSpec.from_json("")


def all_events():
    stats = summarize_ns([1_000_000, 2_000_000, 4_000_000])
    return [
        Hello(
            runner_version="0.1.0",
            python="3.8.10",
            numpy="1.24.4",
            soc="rk3588",
            backend="rknnlite",
            backend_reason="auto: ...",
            soc_compatible=["rockchip,rk3588"],
            npu_cores=3,
            backend_versions={"librknnrt": "2.3.0", "rknn_toolkit_lite2": None},
            pid=12,
            hostname="b",
        ),
        Progress(stage="load", message="loading"),
        Samples(core_mask="0_1", offset=10, latencies_ns=[1, 2, 3]),
        Samples(
            core_mask="0",
            offset=0,
            latencies_ns=[10, 20],
            stages_ns={"inputs_set": [1, 2], "run": [7, 15], "npu": [6, 14], "outputs_get": [1, 2]},
        ),
        Telemetry(
            timestamp=1.5,
            npu_load_pct=[21, 11, 0],
            npu_freq_hz=1_000_000_000,
            npu_governor="userspace",
            cpu=[{"policy": "policy0", "cur_khz": 1800000}],
            temperatures_c={"soc-thermal": 45.2},
        ),
        Result(
            core_mask=None,
            backend="onnxruntime",
            counts={"warmup": 3, "runs": 3, "distinct_inputs": 1},
            stats=stats,
            memory={"after_load": {"vm_hwm_kb": 1, "vm_rss_kb": 1}},
            throttled=True,
            throttle_reasons=["x"],
            outputs=[{"sample": 0, "files": []}],
            load_s=0.5,
        ),
        Result(
            core_mask="0_1",
            backend="rknnrt",
            counts={"warmup": 3, "runs": 3, "distinct_inputs": 1},
            stats=stats,
            npu_stats=stats,
            stage_stats={"run": stats, "npu": stats},
            io_mode="zero_copy",
            timing_notes=["zero-copy: ..."],
            memory={
                "after_load": None,
                "after_runs": None,
                "npu": {
                    "weight_bytes": 1,
                    "internal_bytes": 2,
                    "dma_bytes": 3,
                    "sram_total_bytes": 0,
                    "sram_free_bytes": 0,
                },
            },
            profile={"file": "/b/out/perf_detail.txt", "runs": 3, "seconds": 0.2, "flags": 8},
        ),
        Result(
            core_mask=None,
            backend="rknnlite",
            counts={},
            stats=stats,
            io_mode="copy",
            memory={"npu": {"unsupported": "rknn_query(RKNN_QUERY_MEM_SIZE) returned -5 ..."}},
            profile={"unsupported": "backend rknnlite has no per-layer NPU profile"},
        ),
        Throughput(
            index=0,
            assignment="per-core",
            core_masks=["0", "1"],
            backend="rknnrt",
            runs=10,
            elapsed_s=0.5,
            fps=20.0,
            stats=stats,
            contexts=[
                {
                    "core_mask": "0",
                    "creation": "init",
                    "runs": 5,
                    "fps": 10.0,
                    "p50_ms": 1.0,
                    "p99_ms": 2.0,
                    "mean_ms": 1.1,
                },
                {
                    "core_mask": "1",
                    "creation": "dup_context",
                    "runs": 5,
                    "fps": 10.0,
                    "p50_ms": 1.0,
                    "p99_ms": 2.0,
                    "mean_ms": 1.1,
                },
            ],  # fmt: skip
            npu_load_pct=[50.0, 49.5, 0.0],
            memory={"dma_bytes": 3, "weight_bytes": 1, "vm_hwm_kb": 100, "vm_rss_kb": 90},
            board={
                "temp_max_c": 40.5,
                "npu_freq_hz_min": None,
                "npu_freq_hz_max": None,
                "cpu_khz_min": 1,
                "cpu_khz_max": 2,
            },  # fmt: skip
        ),
        Throughput(
            index=1,
            assignment="auto",
            core_masks=["auto"] * 3,
            backend="rknnrt",
            out_of_memory="context 3 of 3 could not be created: ...",
        ),  # fmt: skip
        Error(kind="board_busy", message="busy", detail="tail"),
        Done(ok=True, exit_code=0, results=1),
    ]


def test_every_event_type_round_trips():
    events = all_events()
    assert sorted(set(e.type for e in events)) == sorted(EVENT_TYPES)
    for event in events:
        line = encode_event(event)
        assert "\n" not in line
        data = json.loads(line)
        assert data["v"] == PROTOCOL_VERSION and data["type"] == event.type
        assert decode_event(line) == event
        assert decode_event(line.encode()) == event


@pytest.mark.parametrize("version", [1, 0, 2, 4, "3"])
def test_decoder_rejects_unknown_versions(version):
    data = json.loads(encode_event(Done(ok=True, exit_code=0)))
    data["v"] = version
    with pytest.raises(ProtocolError, match=r"event\.v"):
        decode_event(json.dumps(data))
    del data["v"]
    with pytest.raises(ProtocolError, match=r"event\.v: missing"):
        decode_event(json.dumps(data))


def test_decoder_rejects_unknown_types_and_bad_fields():
    with pytest.raises(ProtocolError, match="unknown event type 'reboot'"):
        decode_event('{"v": 3, "type": "reboot"}')
    with pytest.raises(ProtocolError, match=r"samples\.latencies_ns: missing"):
        decode_event('{"v": 3, "type": "samples", "core_mask": null, "offset": 0}')
    with pytest.raises(ProtocolError, match=r"samples\.latencies_ns\[1\]"):
        decode_event('{"v": 3, "type": "samples", "core_mask": null, "offset": 0, "latencies_ns": [1, "2"]}')
    with pytest.raises(ProtocolError, match=r"result\.stats\.p99_ms: missing"):
        decode_event(
            '{"v": 3, "type": "result", "core_mask": null, "backend": "x", "counts": {},'
            ' "stats": {"n": 1, "min_ms": 1, "mean_ms": 1, "std_ms": 0, "p50_ms": 1, "p90_ms": 1,'
            ' "max_ms": 1}}'
        )
    with pytest.raises(ProtocolError, match="not valid JSON"):
        decode_event("Loading model... done")
    with pytest.raises(ProtocolError, match="expected a JSON object"):
        decode_event("[1, 2]")


def _result_line(**changes):
    data = json.loads(encode_event(all_events()[6]))
    data.update(changes)
    return json.dumps(data)


@pytest.mark.parametrize(
    "line, field",
    [
        (
            '{"v": 3, "type": "samples", "core_mask": null, "offset": 0, "latencies_ns": [1, 2],'
            ' "stages_ns": {"run": [1]}}',
            r"samples\.stages_ns\.run: 1 values for 2 latencies",
        ),
        (
            '{"v": 3, "type": "samples", "core_mask": null, "offset": 0, "latencies_ns": [1],'
            ' "stages_ns": {"decode": [1]}}',
            r"samples\.stages_ns: unknown stage\(s\) decode",
        ),
        (
            '{"v": 3, "type": "samples", "core_mask": null, "offset": 0, "latencies_ns": [1],'
            ' "stages_ns": {"npu": [1.5]}}',
            r"samples\.stages_ns\.npu\[0\]",
        ),
        ('{"v": 3, "type": "done", "ok": true, "exit_code": 0, "surprise": 1}', r"done: unknown field\(s\) 'surprise'"),
        (_result_line(io_mode="dma"), r"result\.io_mode"),
        (_result_line(stage_stats={"run": {"n": 1}}), r"result\.stage_stats\.run\.min_ms: missing"),
        (_result_line(profile={"runs": 3, "seconds": 1.0, "flags": 8}), r"result\.profile\.file: missing"),
        (_result_line(profile={"file": "/p", "runs": 0, "seconds": 1.0, "flags": 8}), r"result\.profile\.runs"),
        (_result_line(memory={"npu": {"weight_bytes": 1}}), r"result\.memory\.npu\.internal_bytes: missing"),
        (_result_line(memory={"npu": {"unsupported": 5}}), r"result\.memory\.npu\.unsupported"),
        (_result_line(timing_notes="one"), r"result\.timing_notes"),
    ],
)
def test_v2_fields_are_checked(line, field):
    with pytest.raises(ProtocolError, match=field):
        decode_event(line)


def test_stages_are_the_documented_ones():
    assert STAGES == ("inputs_set", "run", "npu", "outputs_get")
    with pytest.raises(ProtocolError, match="aligned"):
        Samples(core_mask=None, offset=0, latencies_ns=[1, 2], stages_ns={"npu": [1]})


def test_board_info_envelope_is_versioned():
    line = encode_board_info(
        {
            k: None
            for k in (
                "runner_version",
                "soc",
                "soc_compatible",
                "npu_cores",
                "kernel",
                "os",
                "python",
                "numpy",
                "rknn_toolkit_lite2",
                "librknnrt",
                "npu_driver",
                "npu_devfreq",
                "cpufreq",
                "temperatures_c",
                "memory",
                "cache_dir",
                "disk_free_bytes",
                "backends",
                "runtime_probe",
            )
        }
    )
    assert decode_board_info(line)["type"] == "board_info"
    data = json.loads(line)
    data["v"] = 1
    with pytest.raises(ProtocolError, match=r"board info\.v"):
        decode_board_info(json.dumps(data))
    del data["v"], data["soc"]
    data["v"] = PROTOCOL_VERSION
    with pytest.raises(ProtocolError, match=r"board info\.soc: missing"):
        decode_board_info(json.dumps(data))


@pytest.mark.parametrize("n", [1, 2, 3, 10, 101, 1000])
def test_percentiles_match_numpy_linear_interpolation(n):
    rng = np.random.default_rng(n)
    values = sorted(rng.lognormal(0, 1, n).tolist())
    for q in (0, 1, 25, 50, 90, 99, 99.9, 100):
        assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)), rel=1e-12, abs=1e-12)


def test_summarize_ns_in_milliseconds():
    samples = [3_000_000, 1_000_000, 2_000_000, 10_000_000]
    stats = summarize_ns(samples)
    arr = np.array(samples, dtype=float) / 1e6
    assert stats.n == 4
    assert stats.min_ms == 1.0 and stats.max_ms == 10.0
    assert stats.mean_ms == pytest.approx(arr.mean())
    assert stats.std_ms == pytest.approx(arr.std(ddof=1))
    assert stats.p50_ms == pytest.approx(2.5)
    assert stats.p90_ms == pytest.approx(np.percentile(arr, 90))
    assert summarize_ns([5]).std_ms == 0.0
    with pytest.raises(ValueError):
        summarize_ns([])
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_model_ref_needs_a_path():
    with pytest.raises(ProtocolError, match="model"):
        ModelRef.from_dict({})


def test_throughput_section_of_the_spec():
    base = {"model": ModelRef(rknn="/b/m.rknn"), "inputs": [["/b/a.npy"]], "output_dir": "/b/out"}
    spec = RunSpec(**base, throughput={"seconds": 2, "configs": [{"assignment": "per-core", "core_masks": ["0", "1"]}]})
    again = RunSpec.from_json(spec.to_json())
    assert again.throughput == {"seconds": 2.0, "configs": [{"assignment": "per-core", "core_masks": ["0", "1"]}]}
    for bad, where in (
        ({"seconds": 1, "configs": []}, r"throughput\.configs: needs at least one"),
        ({"seconds": 1, "configs": [{"assignment": "x", "core_masks": ["3"]}]}, r"configs\[0\]\.core_masks\[0\]"),
        ({"seconds": 1, "configs": [{"assignment": "x", "core_masks": []}]}, r"0 contexts"),
        ({"seconds": -1, "configs": [{"assignment": "x", "core_masks": ["0"]}]}, r"throughput\.seconds"),
        ({"seconds": 1, "configs": [], "extra": 1}, r"unknown field"),
    ):
        with pytest.raises(ProtocolError, match=where):
            RunSpec(**base, throughput=bad)
