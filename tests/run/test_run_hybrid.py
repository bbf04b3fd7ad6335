"""`rkbench run --hybrid-cfg`: the hybrid model a cfg describes, built and measured."""

import pytest

from tests.run.helpers import QUICK
from tests.support.outlier_model import make_outlier_model, write_inputs

pytestmark = pytest.mark.toolkit


@pytest.fixture(scope="module")
def outlier(tmp_path_factory):
    root = tmp_path_factory.mktemp("hybrid-run")
    model = make_outlier_model(root / "outlier.onnx", scale=1000.0)
    calib = write_inputs(root / "calib", 12, seed=1)
    cfg = root / "mine.cfg"
    cfg.write_text("custom_quantize_layers:\n    relu3: float16\n    relu2: float16\n")
    return model, calib, cfg


def test_hybrid_model_measured_and_compared_with_fp32(rk, outlier, tmp_path):
    model, calib, cfg = outlier
    db = tmp_path / "r.db"
    done = rk(
        "run",
        "--board",
        "local",
        "--model",
        model,
        "--dataset",
        calib,
        "--hybrid-cfg",
        cfg,
        "--backend",
        "onnxruntime",
        *QUICK,
        "--db",
        db,
        "-o",
        tmp_path / "out",
    )
    assert done.returncode == 0, done.stderr
    assert "float layer(s)" in done.stderr  # the hybrid build ran (fused partners added)
    (row,) = rk.history(db)
    run = rk.show(db, row["run_id"])
    plain = rk("build", model, "--dataset", calib, "--json", "-o", tmp_path / "plain")
    assert run["build_key"] and run["build_key"] not in plain.stdout  # not the int8 build
    assert [o["reference"] for o in run["outputs"]] == ["fp32"]  # no simulator side for hybrids


def test_hybrid_refuses_what_cannot_run_it(rk, outlier, tmp_path):
    model, calib, cfg = outlier
    done = rk(
        "run",
        "--board",
        "local",
        "--model",
        model,
        "--dataset",
        calib,
        "--hybrid-cfg",
        cfg,
        "--backend",
        "simulator",
        *QUICK,
        "--db",
        tmp_path / "r.db",
        "-o",
        tmp_path / "out",
    )
    assert done.returncode == 2
    assert "runs on the NPU (rknnlite)" in done.stderr
