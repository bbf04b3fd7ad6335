"""`rkbench inspect MODEL.rknn`, run as a user types it (the installed console script)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rkbench.model.rknn_file import read_rknn

RKBENCH = str(Path(sys.executable).with_name("rkbench"))


def inspect(*args, cwd=None) -> subprocess.CompletedProcess:
    done = subprocess.run([RKBENCH, "inspect", *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=60)
    assert "Traceback" not in done.stderr, done.stderr
    return done


@pytest.mark.toolkit
def test_prints_what_the_file_says(rknn_models):
    done = inspect(rknn_models["cls_rk3588"])
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith(f"{rknn_models['cls_rk3588']}: .rknn format 6, ")
    text = done.stdout
    assert "target platform  rk3588 (NPU code RKNPU v2)" in text
    info = read_rknn(rknn_models["cls_rk3588"])
    assert f"rknn-toolkit2 {info.toolkit_version}, compiler {info.compiler_version}" in text
    assert "on the CPU: InputOperator, OutputOperator, Reshape" in text
    # The input row: name, the runtime's dtype, layout and shape, the source shape, zp/scale, mean/std.
    row = next(line.split() for line in lines if line.split()[:2] == ["0", "x"])
    assert row[2:6] == ["int8", "NHWC", "[1,48,192,3]", "[1,3,48,192]"]
    assert row[6:9] == ["affine", "zp", str(info.inputs[0].zero_point)]
    assert row[-3:] == ["127.5,127.5,127.5", "/", "127.5,127.5,127.5"]
    assert "save_infer_model/scale_0.tmp_1  float16  NCHW" in text


@pytest.mark.toolkit
def test_dynamic_shapes_are_listed(rknn_models):
    done = inspect(rknn_models["dynamic_rk3568"])
    assert done.returncode == 0 and "shapes           dynamic" in done.stdout
    assert "accepts" in done.stdout and "[1,3,8,8]" in done.stdout and "[1,3,16,16]" in done.stdout


@pytest.mark.toolkit
def test_json_is_the_readers_record(rknn_models):
    done = inspect(rknn_models["tiny_rk3566"], "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == json.loads(json.dumps(read_rknn(rknn_models["tiny_rk3566"]).to_dict()))


def test_bad_files_exit_4_with_one_line(tmp_path):
    (tmp_path / "model.onnx").write_bytes(b"\x08\x07\x12\x07pytorch")
    (tmp_path / "cut.rknn").write_bytes(b"RKNN" + bytes(4) + (6).to_bytes(8, "little") + (10**6).to_bytes(8, "little"))
    for name, says in [
        ("model.onnx", "is not an .rknn model"),
        ("cut.rknn", "is truncated"),
        ("missing.rknn", "does not exist"),
    ]:
        done = inspect(name, cwd=tmp_path)
        assert done.returncode == 4, (name, done.stderr)
        assert done.stdout == ""
        (line,) = done.stderr.splitlines()
        assert line.startswith("rkbench: error: ") and name in line and says in line


def test_listed_among_the_commands():
    done = subprocess.run([RKBENCH, "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "inspect" in done.stdout
