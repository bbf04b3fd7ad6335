"""`rkbench run --backend rknnrt` as a user runs it, on the local board with our stand-in
librknnrt (tests/standins/librknnrt: the real C ABI, a configurable NPU time; its versions say
stand-in). What the NPU runtime sees reaches the store, `rkbench show`, the terminal and the
JSON report: NPU time, where each iteration's time goes, NPU memory, the profiling pass."""

from __future__ import annotations

import json
import re

import pytest

from tests.standins.librknnrt import build_standin, make_board_root

from .helpers import explain, model_args, run_ids

RUN_US = 3000  # the stand-in's NPU time per run


@pytest.fixture(scope="module")
def npu_env(tmp_path_factory) -> dict:
    root = make_board_root(tmp_path_factory.mktemp("rk3588-root"), "rk3588")
    return {
        "RKBENCH_LIBRKNNRT": str(build_standin()),
        "RKNN_STANDIN_ROOT": str(root),
        "RKNN_STANDIN_RUN_US": str(RUN_US),
        "RKNN_STANDIN_QUIET": "1",
    }


def rknnrt_run(rk, cls_model, cls_dataset, isolated, npu_env, *extra):
    return rk(
        "run",
        *model_args(cls_model, cls_dataset),
        "--backend",
        "rknnrt",
        "--target",
        "rk3588",
        "--db",
        isolated["db"],
        "-o",
        isolated["out"],
        *extra,
        **npu_env,
    )


def test_npu_time_stages_and_memory_reach_the_store_and_reports(rk, cls_model, cls_dataset, isolated, npu_env):
    done = rknnrt_run(rk, cls_model, cls_dataset, isolated, npu_env, "--max-npu-mem-mb", "1000")
    assert done.returncode == 0, explain(done)
    assert "board: backend rknnrt (asked for" in done.stderr
    assert "NPU time" in done.stdout and "host share" in done.stdout and "NPU utilisation" in done.stdout
    assert "librknnrt" in done.stdout and "stand-in" in done.stdout  # the runtime names itself
    [run_id] = run_ids(done.stdout)
    shown = rk.show(isolated["db"], run_id)
    assert shown["backend"] == "rknnrt" and shown["io_mode"] == "copy"
    npu = shown["npu_stats"]
    assert RUN_US / 1000 * 0.95 <= npu["p50_ms"] <= RUN_US / 1000 * 1.5, npu  # the runtime's own figure
    assert shown["stats"]["p50_ms"] >= npu["p50_ms"]  # end to end holds the NPU time and the host's share
    assert set(shown["stage_stats"]) == {"inputs_set", "run", "npu", "outputs_get"}
    exported = json.loads(rk("export", run_id, "--format", "json", "--db", isolated["db"]).stdout)
    assert len(exported["stages_ns"]["npu"]) == len(exported["latency_ns"]) == shown["stats"]["n"]
    memory = shown["memory"]["npu"]
    assert memory["dma_bytes"] > 0 and memory["weight_bytes"] > 0
    [threshold] = [t for t in shown["thresholds"] if t["name"] == "max_npu_mem_mb"]
    assert threshold["passed"] and 0 < threshold["value"] < 1000
    report = json.loads((isolated["out"] / "report.json").read_text())
    split = report["runs"][0]["derived"]["npu_split"]
    assert 0 < split["utilisation"] <= 1 and split["host_ms"] >= 0
    text = rk("show", run_id, "--db", isolated["db"]).stdout
    assert "host share" in text and "NPU memory: DMA" in text


def test_zero_copy_and_the_profiling_pass(rk, cls_model, cls_dataset, isolated, npu_env):
    done = rknnrt_run(
        rk,
        cls_model,
        cls_dataset,
        isolated,
        npu_env,
        "--io",
        "zero-copy",
        "--profile-layers",
        "--max-npu-mem-mb",
        "0.001",
    )
    assert done.returncode == 1, explain(done)  # the NPU memory threshold is breached, and said so
    assert "max_npu_mem_mb" in done.stderr
    [run_id] = run_ids(done.stdout)
    shown = rk.show(isolated["db"], run_id)
    assert shown["io_mode"] == "zero_copy" and shown["status"] == "ok"
    profile = shown["npu_profile"]
    parsed = profile["profile"]
    assert profile["runs"] >= 1 and parsed["format"] == "current" and parsed["layers"] and not parsed["problems"]
    assert parsed["total_time_us"] > 0 and all(layer["time_us"] is not None for layer in parsed["layers"])
    assert re.search(r"NPU profile +slowest of \d+ layers", done.stdout)  # where the NPU spends its time
