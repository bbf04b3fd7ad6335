"""Throughput mode (N contexts in parallel, one thread each) through the runner against
the x86_64 STAND-IN librknnrt.so, which serialises runs per NPU core for RKNN_STANDIN_RUN_US
(tests/standins/librknnrt/README.md). What this proves: the threads really overlap (the C
calls release the GIL), every run is counted, the figures follow the stand-in's model,
contexts are dup'ed, masks the SoC lacks are refused, and contexts that do not fit stop
the sweep with what was measured kept. Not real NPU figures (the `board` tests)."""

from __future__ import annotations

import pytest

from device_testing import FIXTURES, run_runner, runner_env

RUN_US = 4000  # long next to the Python between the calls, so the model's figures dominate
SECONDS = 0.6


def env_for(lib, soc="rk3588", **knobs):
    return runner_env(
        RKBENCH_LIBRKNNRT=str(lib),
        RKNN_STANDIN_ROOT=str(FIXTURES / soc),
        RKNN_STANDIN_RUN_US=str(RUN_US),
        RKNN_STANDIN_IO_US="20",
        RKNN_STANDIN_QUIET="1",
        **knobs,
    )


def throughput_spec(base_spec, model, configs, seconds=SECONDS):
    spec = dict(
        base_spec, backend="rknnrt", model={"rknn": str(model)}, data_format=["nchw"], save_outputs=False, warmup=1
    )
    spec["throughput"] = {
        "seconds": seconds,
        "configs": [{"assignment": name, "core_masks": masks} for name, masks in configs],
    }
    return spec


def run(spec, tmp_path, lib, soc="rk3588", **knobs):
    return run_runner(spec, tmp_path, args=["--root", str(FIXTURES / soc)], env=env_for(lib, soc, **knobs))


def test_contexts_overlap_on_cores_and_every_run_is_counted(base_spec, tiny_rknn, standin, tmp_path):
    configs = [
        ("per-core", ["0"]),
        ("per-core", ["0", "1", "2"]),
        ("per-core", ["0", "1", "2", "0", "1", "2"]),
        ("0_1_2", ["0_1_2"]),
    ]
    out = run(throughput_spec(base_spec, tiny_rknn("rk3588"), configs), tmp_path, standin())
    assert out.returncode == 0, out.dump()
    events = out.of("throughput")
    assert [e.index for e in events] == [0, 1, 2, 3] and out.one("done").results == 4
    one, three, six, wide = events
    for event in events:
        assert event.out_of_memory is None and event.backend == "rknnrt"
        # every run of every context is counted, once, in the total and the pooled stats
        assert event.runs == sum(c["runs"] for c in event.contexts) == event.stats.n
        assert event.fps == pytest.approx(event.runs / event.elapsed_s)
        assert event.elapsed_s >= SECONDS and all(c["runs"] > 0 for c in event.contexts)
    # the stand-in's model: one run per core at a time for RUN_US
    ideal = 1e6 / RUN_US
    assert ideal * 0.6 < one.fps <= ideal * 1.05
    assert 2.2 < three.fps / one.fps <= 3.1
    assert six.fps <= three.fps * 1.15  # six contexts on three cores: no better than three
    assert six.stats.p50_ms > three.stats.p50_ms * 1.5  # they queue for the cores
    # one context on all three cores: RUN_US / 3 * 1.5 per run, less than three contexts
    assert 1.3 < wide.fps / one.fps < 2.2 and wide.fps < three.fps
    # contexts after the first are rknn_dup_context'ed: weights counted once
    creations = [c["creation"] for c in three.contexts]
    assert creations == ["init", "dup_context", "dup_context"]
    assert three.memory["weight_bytes"] == one.memory["weight_bytes"] > 0
    assert three.memory["dma_bytes"] > one.memory["dma_bytes"] and three.memory["vm_hwm_kb"] > 0


def test_share_weight_on_an_older_runtime_without_dup_context(base_spec, tiny_rknn, standin, tmp_path):
    configs = [("per-core", ["0", "1"])]
    out = run(throughput_spec(base_spec, tiny_rknn("rk3588"), configs, seconds=0.2), tmp_path, standin("old", "1.6.0"))
    assert out.returncode == 0, out.dump()
    event = out.one("throughput")
    assert [c["creation"] for c in event.contexts] == ["init", "share_weight"]


def test_contexts_that_do_not_fit_stop_the_sweep_keeping_what_was_measured(base_spec, tiny_rknn, standin, tmp_path):
    configs = [("auto", ["auto"] * n) for n in (1, 2, 3, 4)]
    out = run(
        throughput_spec(base_spec, tiny_rknn("rk3588"), configs, seconds=0.2),
        tmp_path,
        standin(),
        RKNN_STANDIN_MAX_CONTEXTS="2",
    )
    assert out.returncode == 0, out.dump()
    events = out.of("throughput")
    assert [len(e.core_masks) for e in events] == [1, 2, 3]  # the 4th is never tried
    assert all(e.out_of_memory is None and e.runs > 0 for e in events[:2])
    assert events[2].runs == 0 and "RKNN_ERR_MALLOC_FAIL" in events[2].out_of_memory
    assert "context 3 of 3" in events[2].out_of_memory
    stop = [p.message for p in out.of("progress") if "do not fit" in p.message]
    assert stop and "last configuration that fitted (2 context(s))" in stop[0]


def test_a_core_mask_the_soc_lacks_is_refused_before_running(base_spec, tiny_rknn, standin, tmp_path):
    configs = [("per-core", ["0"]), ("per-core", ["0", "1"])]
    out = run(throughput_spec(base_spec, tiny_rknn("rk3566"), configs), tmp_path, standin(), soc="rk3566")
    assert out.returncode != 0
    error = out.one("error")
    assert error.kind == "core_mask_refused" and "'1'" in error.message and "has 1" in error.message
    assert not out.of("throughput")


def test_single_core_soc_says_more_contexts_only_overlap_cpu_work(base_spec, tiny_rknn, standin, tmp_path):
    configs = [("auto", ["auto"]), ("auto", ["auto", "auto"])]
    out = run(throughput_spec(base_spec, tiny_rknn("rk3566"), configs, seconds=0.3), tmp_path, standin(), soc="rk3566")
    assert out.returncode == 0, out.dump()
    assert any("only overlap CPU-side work" in p.message for p in out.of("progress"))
    one, two = out.of("throughput")
    assert two.fps < one.fps * 1.25  # one NPU core: a second context adds (almost) nothing
