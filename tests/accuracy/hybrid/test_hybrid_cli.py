"""`rkbench hybrid` with the real toolkit on a model whose int8 build is broken by an outlier."""

import json

import pytest

pytestmark = pytest.mark.toolkit


def run(cli, outlier, tmp_path, *args, env=None):
    model, calib, evaluation = outlier
    return cli(
        "hybrid", model, "--dataset", calib, "--eval", evaluation, "-o", tmp_path / "out", *args, cwd=tmp_path, env=env
    )


def test_auto_search_repairs_the_outlier(cli, outlier, tmp_path):
    done = run(cli, outlier, tmp_path, "--target-cos", "0.999", "--json")
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    int8 = record["candidates"][0]
    assert int8["label"] == "int8" and int8["cos_mean"] < 0.95
    chosen = record["chosen"]
    assert chosen["cos_mean"] >= 0.999 and chosen["meets_target"]
    # The outlier lives in relu2 (conv2's output); its reader conv3 must see it unquantized.
    assert {"conv2", "relu2", "conv3", "relu3"} <= set(chosen["layers"])
    assert len(chosen["layers"]) <= 6
    assert record["builds"] <= 12
    out = tmp_path / "out"
    cfg = (out / "hybrid.quantization.cfg").read_text()
    assert "custom_quantize_layers:\n    conv2: float16" in cfg and "quantize_parameters:" in cfg
    assert (out / "model.rknn").stat().st_size == chosen["rknn_bytes"]
    # Step 1 writes into the current directory in the vendor flow: not into the user's.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]

    again = run(cli, outlier, tmp_path, "--target-cos", "0.999", "--json")
    assert json.loads(again.stdout)["builds"] == 0  # all from the cache


def test_compare_vendor_side_by_side_and_seeded_by_the_proposal(cli, outlier, tmp_path):
    done = run(cli, outlier, tmp_path, "--target-cos", "0.999", "--compare-vendor", "--seed-proposal")
    assert done.returncode == 0, done.stderr
    assert "vendor proposal (vendor)" in done.stdout and "vendor auto_hybrid (vendor)" in done.stdout
    assert "The vendor's proposal (its own running output cosine" in done.stdout
    record = json.loads((tmp_path / "out" / "hybrid.json").read_text())
    proposal, auto_hybrid = record["vendor"]
    ours = record["chosen"]
    assert len(ours["layers"]) <= len(proposal["layers"])
    assert auto_hybrid["float_tensors"]  # read from the toolkit's own log of that build
    # The proposal's groups were one candidate of our search, measured like the others.
    [seeded] = [c for c in record["candidates"] if c["label"].startswith("proposal's ")]
    assert set(proposal["layers"]) <= set(seeded["layers"]) and seeded["cos_mean"] is not None


def test_manual_adds_fused_partners_and_says_so(cli, outlier, tmp_path):
    done = run(cli, outlier, tmp_path, "--float", "conv3", "--float", "relu2:int16", "--json")
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    assert record["chosen"]["layers"] == {"conv3": "float16", "relu3": "float16", "relu2": "int16", "conv2": "int16"}
    assert record["added_partners"] == {"conv3": ["relu3"], "relu2": ["conv2"]}
    assert "added relu3 with conv3: fused into one op" in done.stderr


def test_unknown_float_name_lists_the_nearest(cli, outlier, tmp_path):
    done = run(cli, outlier, tmp_path, "--float", "conv_3")
    assert done.returncode == 2
    assert "--float 'conv_3' is not a tensor" in done.stderr and "nearest: conv3" in done.stderr


def test_reusing_a_cfg_and_a_broken_one(cli, outlier, tmp_path):
    good = tmp_path / "mine.cfg"
    good.write_text("custom_quantize_layers:\n    relu3: float16\n    relu2: float16\n")
    done = run(cli, outlier, tmp_path, "--cfg", good, "--json")
    assert done.returncode == 0, done.stderr
    assert set(json.loads(done.stdout)["chosen"]["layers"]) == {"conv2", "relu2", "conv3", "relu3"}
    bad = tmp_path / "bad.cfg"
    bad.write_text("custom_quantize_layers:\n    relu3: float16\n    relu2: fp16\n")
    done = run(cli, outlier, tmp_path, "--cfg", bad)
    assert done.returncode == 4 and "bad.cfg line 3" in done.stderr


def test_unreachable_target_keeps_the_best_and_says_so(cli, outlier, tmp_path):
    done = run(cli, outlier, tmp_path, "--target-cos", "1.0", "--max-builds", "3")
    assert done.returncode == 8
    assert "not reached within 3 builds" in done.stderr and "best candidate" in done.stderr
    record = json.loads((tmp_path / "out" / "hybrid.json").read_text())
    assert record["builds"] <= 3 and (tmp_path / "out" / "model.rknn").exists()


def test_board_latency_needs_an_npu_and_keeps_the_search(cli, outlier, tmp_path):
    """On a board without an NPU (this machine) the latency column cannot be measured: a
    clear board error, and the search's artifacts are already written."""
    done = run(cli, outlier, tmp_path, "--target-cos", "0.999", "--board", "local")
    assert done.returncode == 3
    assert "rknnlite" in done.stderr and "rkbench provision" in done.stderr
    record = json.loads((tmp_path / "out" / "hybrid.json").read_text())
    assert record["chosen"]["cos_mean"] >= 0.999


def test_board_npu_time_and_memory_per_candidate(cli, outlier, tmp_path):
    """With an NPU runtime on the board (the stand-in librknnrt on the local board), every
    feasible candidate gets its latency, the runtime's NPU time and its DMA memory."""
    from tests.standins.librknnrt import build_standin, make_board_root

    env = {
        "RKBENCH_LIBRKNNRT": str(build_standin()),
        "RKNN_STANDIN_ROOT": str(make_board_root(tmp_path / "rk3588-root", "rk3588")),
        "RKNN_STANDIN_RUN_US": "2000",
        "RKNN_STANDIN_QUIET": "1",
    }
    done = run(cli, outlier, tmp_path, "--target-cos", "0.999", "--board", "local", env=env)
    assert done.returncode == 0, done.stderr
    assert "NPU p50 ms" in done.stdout and "NPU MB" in done.stdout
    rows = [line for line in done.stdout.splitlines() if line.lstrip("* ").startswith("int8")]
    assert rows, done.stdout
    npu_ms, npu_mb = (float(x) for x in rows[0].replace("(cached)", "").split()[-2:])
    assert 2.0 * 0.95 <= npu_ms <= 2.0 * 1.5 and npu_mb > 0  # the runtime's own figures
