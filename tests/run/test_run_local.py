"""`rkbench run` on the local board as a user runs it: reports, store, thresholds,
per-layer, core masks, an already built .rknn, and `rkbench demo`.

The local board is this machine: no NPU, so `--backend auto` picks the simulator
(rknn-toolkit2 on x86 runs the quantized build), and the board's outputs are the
simulator's own: against the simulator they agree exactly."""

from __future__ import annotations

import json
import re

import numpy as np

from .helpers import deploy_line, explain, junit_cases, model_args, outputs_vs, run_ids


# 1 ------------------------------------------------------------------------------------
def test_local_run_reports_stores_and_compares(rk, warm_run):
    done, db, out = warm_run["done"], warm_run["db"], warm_run["out"]
    # the summary names the backend that produced the figures, and why the board has no SoC
    assert re.search(r"backend simulator\s+core mask n/a", done.stdout), done.stdout
    assert "board: backend simulator (auto:" in done.stderr
    assert "PASS: every run met its thresholds" in done.stdout
    for name in ("report.html", "report.json", "junit.xml"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    assert f"HTML report: {(out / 'report.html').resolve()}" in done.stdout

    # one testcase per core mask: the default (auto) is one run
    cases = junit_cases(out / "junit.xml")
    assert len(cases) == 1
    assert cases[0].get("name").endswith("[n/a]")
    assert cases[0].find("failure") is None and cases[0].find("error") is None

    [run_id] = run_ids(done.stdout)
    rows = rk.history(db)
    assert [r["run_id"] for r in rows] == [run_id]
    assert rows[0]["status"] == "ok" and rows[0]["backend"] == "simulator" and rows[0]["board"] == "local"

    shown = rk.show(db, run_id)
    assert shown["status"] == "ok" and shown["error"] is None
    assert shown["backend"] == "simulator" and shown["target"] == "rk3588" and shown["core_mask"] is None
    raw = rk.export(db, run_id)["latency_ns"]
    assert len(raw) == shown["stats"]["n"] == rows[0]["sample_count"] >= 20
    assert abs(np.median(raw) / 1e6 - shown["stats"]["p50_ms"]) < 1e-6 * max(1.0, shown["stats"]["p50_ms"]) + 1e-3
    assert shown["settings"]["elapsed_s"] >= 0.3 and shown["settings"]["inputs"] == 2

    fp32, sim = outputs_vs(shown, "fp32"), outputs_vs(shown, "simulator")
    assert len(fp32) == len(sim) == 1
    # the board IS the simulator here: identical outputs; fp32 is close but not equal (int8)
    assert sim[0]["cos_min"] > 0.99999 and sim[0]["max_abs"] < 1e-4 and sim[0]["top1_agreement"] == 1.0
    assert 0.99 < fp32[0]["cos_min"] <= fp32[0]["cos_mean"] < 1.0
    assert fp32[0]["max_abs"] > 0

    report = json.loads((out / "report.json").read_text())
    assert report["summary"] == {"runs": 1, "passed": 1, "failed": 0, "errors": 0}
    assert report["runs"][0]["run_id"] == run_id and report["runs"][0]["backend"] == "simulator"
    html = (out / "report.html").read_text()
    assert "simulator" in html and "<svg" in html


# 2 ------------------------------------------------------------------------------------
def test_threshold_failure_exits_1_but_keeps_the_run(rk, warm_run, cls_model, cls_dataset, isolated):
    db, out = isolated["db"], isolated["out"]
    done = rk(
        "run",
        *model_args(cls_model, cls_dataset),
        "--backend",
        "onnxruntime",
        "--max-p99-ms",
        "0.0001",
        "--min-cos",
        "0.5",
        "--db",
        db,
        "-o",
        out,
    )
    assert done.returncode == 1, explain(done)
    assert "rkbench: error: threshold(s) not met: max_p99_ms" in done.stderr
    assert "min_cos_fp32" not in done.stderr.split("threshold(s) not met:")[1].split(";")[0]
    assert "breached" in done.stdout and "max_p99_ms" in done.stdout

    [row] = rk.history(db)
    assert row["status"] == "ok" and row["sample_count"] >= 20  # measured fine, judged failed
    shown = rk.show(db, row["run_id"])
    verdicts = {t["name"]: t for t in shown["thresholds"]}
    assert verdicts["max_p99_ms"]["passed"] is False and verdicts["max_p99_ms"]["limit"] == 0.0001
    assert verdicts["max_p99_ms"]["value"] == shown["stats"]["p99_ms"] > 0.0001
    assert verdicts["min_cos_fp32"]["passed"] is True  # onnxruntime runs the fp32 model: cos 1

    for name in ("report.html", "report.json", "junit.xml"):
        assert (out / name).is_file(), name
    [case] = junit_cases(out / "junit.xml")
    failure = case.find("failure")
    assert failure is not None and failure.get("type") == "threshold" and "max_p99_ms" in failure.get("message")
    assert json.loads((out / "report.json").read_text())["summary"]["failed"] == 1


# 4 ------------------------------------------------------------------------------------
def test_per_layer_on_the_local_board(rk, warm_run, cls_model, cls_dataset, isolated):
    db, out = isolated["db"], isolated["out"]
    done = rk("run", *model_args(cls_model, cls_dataset), "--per-layer", "--db", db, "-o", out)
    assert done.returncode == 0, explain(done)
    assert "per-layer: debug build 1" in done.stderr

    [row] = rk.history(db)
    layers = rk.show(db, row["run_id"])["layers"]
    assert len(layers) > 50
    both = [layer for layer in layers if layer["sim_entire_cos"] is not None and layer["rt_entire_cos"] is not None]
    assert len(both) >= 0.7 * len(layers), f"{len(both)} of {len(layers)} layers have both columns"
    # the local board's simulator IS the reference: nothing departs from it
    assert not [layer for layer in layers if layer["board_departs"]]
    assert all(layer["rt_single_sim_cos"] > 0.999 for layer in both)
    # board vs fp32 follows the simulator vs fp32 on most layers (a debug build that exposes a
    # tensor can stop a fusion, so a few layers compute slightly differently: see perlayer.py)
    close = [layer for layer in both if abs(layer["rt_entire_cos"] - layer["sim_entire_cos"]) < 0.01]
    assert len(close) >= 0.9 * len(both)
    assert f"the board follows the simulator on all {len(layers)} layers" in done.stdout

    html = (out / "report.html").read_text()
    assert "per-layer cosine: simulator vs board" in html
    assert f"per-layer error, {len(layers)} layers (0 where the board departs" in html


def test_per_layer_refused_for_onnxruntime(rk, cls_model, cls_dataset, isolated):
    done = rk(
        "run",
        *model_args(cls_model, cls_dataset),
        "--per-layer",
        "--backend",
        "onnxruntime",
        "--db",
        isolated["db"],
        "-o",
        isolated["out"],
    )
    assert done.returncode == 2, explain(done)
    assert "--per-layer" in done.stderr and "onnxruntime" in done.stderr
    assert not isolated["db"].exists()


# 5 ------------------------------------------------------------------------------------
def test_core_masks_on_a_board_without_npu_run_once(rk, warm_run, cls_model, cls_dataset, isolated):
    """Core masks are an NPU (rknnlite) setting: the onnxruntime/simulator backends have
    none. rkbench says so, measures once, and reports core mask n/a (one JUnit case)."""
    db, out = isolated["db"], isolated["out"]
    done = rk(
        "run",
        *model_args(cls_model, cls_dataset),
        "--backend",
        "onnxruntime",
        "--core-mask",
        "0",
        "--core-mask",
        "1",
        "--db",
        db,
        "-o",
        out,
    )
    assert done.returncode == 0, explain(done)
    assert "core masks ['0', '1'] do not apply to backend onnxruntime: running once" in done.stderr
    assert "core mask n/a" in done.stdout
    [row] = rk.history(db)
    assert row["core_mask"] is None and row["backend"] == "onnxruntime" and row["status"] == "ok"
    [case] = junit_cases(out / "junit.xml")
    assert case.get("name").endswith("[n/a]")
    # an unknown mask is refused by the CLI before anything runs
    bad = rk("run", *model_args(cls_model, cls_dataset), "--core-mask", "3", "--db", db)
    assert bad.returncode == 2 and "--core-mask" in bad.stderr


# 7 ------------------------------------------------------------------------------------
def test_already_built_rknn_on_a_board_without_npu(rk, warm_run, cls_model, cls_dataset, tmp_path, isolated):
    """An .rknn only runs on an NPU (rknnlite). The local board has none (and no
    rknn-toolkit-lite2): a clear board error naming the missing backend, exit 3; the
    simulator/onnxruntime backends need the source model, said before anything runs."""
    from tests.support.model_cli import CLS_OPTIONS

    built = rk("build", cls_model, "--dataset", cls_dataset, *CLS_OPTIONS, "-o", tmp_path / "built")
    assert built.returncode == 0, explain(built)
    rknn = tmp_path / "built" / "model.rknn"
    assert rknn.is_file() and "from the cache" in built.stdout  # the warm run built it
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    rng = np.random.default_rng(3)
    for i in range(3):
        np.save(inputs / f"in{i}.npy", rng.integers(0, 256, (1, 48, 192, 3), dtype=np.uint8))
    db, out = isolated["db"], isolated["out"]

    done = rk(
        "run",
        "--model",
        rknn,
        "--inputs",
        inputs,
        "--input-count",
        "2",
        "--min-runs",
        "20",
        "--min-seconds",
        "0.3",
        "--db",
        db,
        "-o",
        out,
    )
    assert done.returncode == 3, explain(done)
    error = [line for line in done.stderr.splitlines() if line.startswith("rkbench: error:")]
    assert len(error) == 1, done.stderr
    assert "backend_missing" in error[0] and "rknnlite" in error[0] and "rknn-toolkit-lite2" in error[0]
    assert "not installed" in error[0]
    assert "building for" not in done.stderr  # nothing is built for an .rknn
    assert not (out / "report.html").exists()
    assert not db.exists() or not rk.history(db)  # no samples, no run row

    for backend in ("simulator", "onnxruntime"):
        refused = rk("run", "--model", rknn, "--inputs", inputs, "--backend", backend, "--db", db)
        assert refused.returncode == 2, explain(refused)
        assert "already built .rknn" in refused.stderr and "rknnlite" in refused.stderr
        assert f"--backend {backend}" in refused.stderr

    missing = rk("run", "--model", rknn, "--db", db)
    assert missing.returncode == 2 and "needs --inputs" in missing.stderr


# 9 ------------------------------------------------------------------------------------
def test_demo_end_to_end(rk, warm_run, tmp_path):
    out = tmp_path / "demo"
    done = rk("demo", "-o", out)
    assert done.returncode == 0, explain(done)
    match = re.search(r"^HTML report: (.+)$", done.stdout, re.M)
    assert match, done.stdout
    html = (out / "report.html").resolve()
    assert match.group(1) == str(html) and html.is_file()
    assert "per-layer cosine: simulator vs board" in html.read_text()
    assert (out / "results.db").is_file() and (out / "junit.xml").is_file()
    assert "cache hit" in done.stderr  # the demo's build is the one the warm run made
    assert "thresholds  1 of 1 passed: min_cos_fp32" in done.stdout
    deploy_line(done.stdout)
