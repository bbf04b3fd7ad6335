"""A failed candidate is only a failed candidate: real toolkit crashes, hangs and refusals
during `rkbench hybrid`, said before building where they can be, kept when interrupted."""

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from rkbench.accuracy.hybrid.session import HybridSession
from rkbench.model.build import BuildOptions, prepare
from rkbench.model.cache import BuildCache
from rkbench.model.config import BuildConfig
from tests.accuracy.hybrid.yolo_head import make_yolo_head_model

pytestmark = pytest.mark.toolkit
FAULTS = Path(__file__).parent / "faults"


@pytest.fixture(scope="module")
def yolo_head(tmp_path_factory):
    root = tmp_path_factory.mktemp("yolo-head")
    model = make_yolo_head_model(root / "yolo_head.onnx")
    rng = np.random.default_rng(1)
    for i in range(8):
        np.save(root / f"s{i}.npy", rng.uniform(0, 1, (1, 3, 64, 64)).astype(np.float32))
    (root / "dataset.txt").write_text("".join(f"s{i}.npy\n" for i in range(8)))
    return model, root / "dataset.txt"


def run(cli, outlier, tmp_path, *args, **kwargs):
    model, calib, evaluation = outlier
    return cli(
        "hybrid", model, "--dataset", calib, "--eval", evaluation, "-o", tmp_path / "out", *args, cwd=tmp_path, **kwargs
    )


def fault_interpreter(tmp_path: Path) -> Path:
    script = tmp_path / "python-with-hybrid-faults"
    script.write_text(f'#!/bin/sh\nPYTHONPATH="{FAULTS}" exec "{sys.executable}" "$@"\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script


def test_refused_dtype_is_said_before_building(cli, yolo_head, tmp_path, hybrid_cache):
    model, data = yolo_head
    done = cli("hybrid", model, "--dataset", data, "--float", "x1y1-rs:int16", "-o", tmp_path / "out", cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    message = done.stderr.strip().splitlines()[-1]
    assert "'x1y1-rs' cannot be int16" in message and "anchor_points" in message and "use x1y1-rs:float16" in message
    assert "build 1:" not in done.stderr  # nothing was built
    # Without a dtype the name gets the one that works, and says why.
    done = cli(
        "hybrid",
        model,
        "--dataset",
        data,
        "--float",
        "x1y1-rs",
        "--dtype",
        "int16",
        "--json",
        "-o",
        tmp_path / "out",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["chosen"]["layers"]["x1y1-rs"] == "float16"
    assert "x1y1-rs: float16, not int16" in done.stderr


def test_real_toolkit_crash_is_an_infeasible_candidate_that_teaches(yolo_head, tmp_path):
    """int16 on the layers that read the anchors makes the real toolkit die (SIGILL): the
    candidate comes back failed with the toolkit's own line, and the layers it names are
    kept out of int16 from then on."""
    model, data = yolo_head
    prepared = prepare(BuildConfig(model=model, framework="onnx", target="rk3588", dataset=data))
    options = BuildOptions(cache=BuildCache(tmp_path / "cache"))
    session = HybridSession(prepared, prepared.dataset, prepared.dataset.subset(range(2)), options, lambda _: None)
    try:
        step1 = session.step1()
        # The rule would have said so before building; ask the toolkit anyway.
        candidate = session.evaluate(step1, {"x1y1-rs": "int16", "x2y2-rs": "int16", "c3": "int16"}, "int16 head")
    finally:
        session.close()
    assert not candidate.feasible
    assert "crashed (SIG" in candidate.failure
    assert "Meet unsupported tensor dtype in Sub, tensor name is: anchor_points" in candidate.failure
    # The toolkit names the constant the Sub reads; that Sub is kept out of int16, nothing else.
    assert set(step1.rules.learned["int16"]) == {"x1y1-rs"}
    assert step1.rules.dtype_for("x1y1-rs", "int16") == "float16"
    # The Add reads a copy of the constant (the toolkit duplicates it): the rule knew before building.
    assert "int32" in step1.rules.refusal("x2y2-rs", "int16")


@pytest.mark.parametrize("fault", ["segfault-int16", pytest.param("hang-int16", marks=pytest.mark.slow)])
def test_search_goes_on_after_a_crash_or_a_hang(cli, outlier, tmp_path, fault):
    done = run(
        cli,
        outlier,
        tmp_path,
        "--target-cos",
        "0.999",
        "--max-builds",
        "8",
        "--jobs",
        "1",
        "--toolkit-python",
        fault_interpreter(tmp_path),
        "--timeout",
        "20",
        "--no-cache",
        env={"RKBENCH_TEST_HYBRID_FAULT": fault, "RKBENCH_CACHE": str(tmp_path / "cache")},
    )
    assert done.returncode == 0, done.stderr
    record = json.loads((tmp_path / "out" / "hybrid.json").read_text())
    failed = [c for c in record["candidates"] if not c["feasible"]]
    assert failed and failed[0]["label"] == "all layers int16"
    assert ("crashed (SIGSEGV)" if fault.startswith("segfault") else "hung in step 'hybrid_step2'") in failed[0][
        "failure"
    ]
    assert "the toolkit said: E RKNN: [test] Meet unsupported tensor dtype in Conv" in failed[0]["failure"]
    assert record["chosen"]["meets_target"] and "int16" not in record["chosen"]["layers"].values()
    assert "failed" in done.stdout and "[1] all layers int16:" in done.stdout


def test_parallel_candidates_overlap_in_time(cli, outlier, tmp_path):
    cache = tmp_path / "cache"
    done = run(
        cli,
        outlier,
        tmp_path,
        "--target-cos",
        "0.999",
        "--jobs",
        "2",
        "--max-builds",
        "5",
        env={"RKBENCH_CACHE": str(cache)},
    )
    assert done.returncode in (0, 8), done.stderr
    assert "building up to 2 candidates at once" in done.stderr
    walls = [json.loads(p.read_text()).get("wall_time") for p in cache.glob("builds/*/build.json")]
    walls = sorted(w for w in walls if w)
    assert len(walls) >= 2
    assert any(b[0] < a[1] for a, b in zip(walls, walls[1:])), walls  # a build started before the last ended


@pytest.mark.slow
def test_ctrl_c_keeps_what_was_measured(outlier, tmp_path):
    model, calib, evaluation = outlier
    env = {**os.environ, "RKBENCH_CACHE": str(tmp_path / "cache")}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "rkbench",
            "hybrid",
            model,
            "--dataset",
            calib,
            "--eval",
            evaluation,
            "--target-cos",
            "0.999",
            "--jobs",
            "2",
            "-o",
            tmp_path / "out",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    seen = ""
    deadline = time.monotonic() + 300
    while "build 2:" not in seen and time.monotonic() < deadline:
        seen += proc.stderr.readline()
    time.sleep(2)  # the ceilings are being built in two workers now
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, seen + err
    record = json.loads((tmp_path / "out" / "hybrid.json").read_text())
    assert record["interrupted"] and record["candidates"][0]["label"] == "int8"
    assert record["chosen"] is not None and (tmp_path / "out" / "model.rknn").exists()
    left = subprocess.run(["pgrep", "-f", str(tmp_path / "cache")], capture_output=True, text=True)
    assert left.stdout.strip() == ""  # no toolkit worker left running
    # the builds killed by the interrupt are not cached as failures: a rerun builds them
    assert not list((tmp_path / "cache").glob("builds/*/failure.json"))
