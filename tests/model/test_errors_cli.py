"""Each mistake a user makes gets one clear line and its own exit code, no traceback."""

import importlib.util
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

from tests.support.model_cli import CLS_OPTIONS

HERE = Path(__file__).parent


def tiny_onnx(path: Path, op: str = "Relu", domain: str = "") -> Path:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    w = numpy_helper.from_array(np.full((4, 3, 3, 3), 0.1, np.float32), "w")
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node(op, ["c"], ["y"], domain=domain),
    ]
    opsets = [helper.make_opsetid("", 13)] + ([helper.make_opsetid(domain, 1)] if domain else [])
    onnx.save(helper.make_model(helper.make_graph(nodes, "g", [x], [y], [w]), opset_imports=opsets), path)
    return path


def expect(done, code: int, *fragments: str):
    assert done.returncode == code, (done.returncode, done.stderr)
    message = done.stderr.strip().splitlines()[-1]
    assert message.startswith("rkbench: error: ")
    for fragment in fragments:
        assert fragment in message, message


def test_missing_model(cli, tmp_path):
    expect(cli("build", tmp_path / "nope.onnx", "--quant", "none"), 4, "nope.onnx does not exist")


def test_unreadable_model(cli, tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root reads files whatever their mode")
    path = tmp_path / "locked.onnx"
    path.write_bytes(b"x")
    path.chmod(0)
    expect(cli("build", path, "--quant", "none"), 4, "cannot read model file")


def test_not_onnx(cli, tmp_path):
    path = tmp_path / "fake.onnx"
    path.write_bytes(b"this is not a protobuf \x00\xff" * 100)
    expect(cli("build", path, "--quant", "none"), 4, "fake.onnx is not a valid ONNX model")


def test_unknown_model_type(cli, tmp_path):
    path = tmp_path / "model.pt"
    path.write_bytes(b"x")
    expect(cli("build", path, "--quant", "none"), 4, "unsupported model type '.pt'")


def test_tflite_without_tensorflow_says_what_to_install(cli, tmp_path):
    if importlib.util.find_spec("tensorflow") is not None:
        pytest.skip("TensorFlow is installed here")
    path = tmp_path / "model.tflite"
    path.write_bytes(b"TFL3" + b"\0" * 64)
    expect(cli("build", path, "--quant", "none"), 2, "tensorflow-cpu")


def test_unknown_target(cli, tmp_path):
    model = tiny_onnx(tmp_path / "m.onnx")
    expect(cli("build", model, "--quant", "none", "--target", "rk9999"), 2, "unknown --target 'rk9999'", "rk3588")


def test_dynamic_shape_without_input_size(cli, cls_model, cls_dataset):
    expect(cli("build", cls_model, "--dataset", cls_dataset), 2, "dynamic input shapes", "--input-size")


def test_dataset_listing_missing_files(cli, cls_model, tmp_path):
    (tmp_path / "dataset.txt").write_text("one.png\n")
    expect(
        cli("build", cls_model, "--dataset", tmp_path / "dataset.txt", *CLS_OPTIONS),
        4,
        "dataset.txt line 1: one.png does not exist",
    )


def test_wrong_image_size(cli, cls_model, tmp_path):
    Image.new("RGB", (100, 40), (200, 200, 200)).save(tmp_path / "small.png")
    expect(cli("build", cls_model, "--dataset", tmp_path, *CLS_OPTIONS), 4, "is 100x40", "needs 192x48")


def test_wrong_channel_count(cli, cls_model, tmp_path):
    Image.new("L", (192, 48), 200).save(tmp_path / "gray.png")
    expect(cli("build", cls_model, "--dataset", tmp_path, *CLS_OPTIONS), 4, "has 1 channel(s)", "needs 3")


@pytest.mark.toolkit
def test_quantization_the_target_refuses(cli, cls_model, cls_dataset):
    expect(
        cli("build", cls_model, "--dataset", cls_dataset, *CLS_OPTIONS, "--quant", "w8a16"),
        2,
        "refused",
        "w8a16",
        "rk3588",
    )


@pytest.mark.toolkit
def test_op_the_toolkit_cannot_convert_quotes_its_reason(fresh_cli, tmp_path):
    model = tiny_onnx(tmp_path / "custom.onnx", op="FooBarOp", domain="com.example")
    done = fresh_cli("build", model, "--quant", "none")
    expect(done, 5, "rknn-toolkit2 could not", "FooBarOp", "full log: ")
    log = Path(done.stderr.strip().split("full log: ")[-1].rstrip(")"))
    assert log.is_file() and "FooBarOp" in log.read_text()


def fault_interpreter(tmp_path: Path) -> Path:
    """A toolkit interpreter (--toolkit-python) that is this Python with the fault hook on its path."""
    script = tmp_path / "python-with-faults"
    script.write_text(f'#!/bin/sh\nPYTHONPATH="{HERE / "faults"}" exec "{sys.executable}" "$@"\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script


@pytest.mark.toolkit
def test_toolkit_crash_names_step_and_log(fresh_cli, tmp_path):
    model = tiny_onnx(tmp_path / "m.onnx")
    done = fresh_cli(
        "build",
        model,
        "--quant",
        "none",
        "--toolkit-python",
        fault_interpreter(tmp_path),
        env={"RKBENCH_TEST_TOOLKIT_FAULT": "segfault"},
    )
    expect(done, 6, "crashed (SIGSEGV) in step 'build'", "toolkit.log")


@pytest.mark.toolkit
def test_toolkit_hang_is_stopped(fresh_cli, tmp_path):
    model = tiny_onnx(tmp_path / "m.onnx")
    done = fresh_cli(
        "build",
        model,
        "--quant",
        "none",
        "--toolkit-python",
        fault_interpreter(tmp_path),
        "--timeout",
        "15",  # each step's silence limit: importing the toolkit alone takes ~6 s on a loaded 2-core host
        env={"RKBENCH_TEST_TOOLKIT_FAULT": "hang"},
    )
    expect(done, 6, "hung in step 'build'", "more than 15 s", "toolkit.log")
    # The hung worker was killed with its process group: no python sleeps on in the background.
    left = subprocess.run(["pgrep", "-f", str(tmp_path / "m.onnx")], capture_output=True, text=True)
    assert left.stdout.strip() == ""


def test_interpreter_without_the_toolkit(cli, tmp_path):
    bare = shutil.which("python3", path="/usr/bin:/bin")
    if bare is None:
        pytest.skip("no system python3")
    if subprocess.run([bare, "-c", "import rknn"], capture_output=True).returncode == 0:
        pytest.skip("the system python has rknn-toolkit2")
    model = tiny_onnx(tmp_path / "m.onnx")
    expect(
        cli("build", model, "--quant", "none", "--toolkit-python", bare),
        2,
        "rknn-toolkit2 is not installed",
        "--toolkit-python",
    )


@pytest.fixture
def tiny_disk(tmp_path):
    mount = tmp_path / "tiny"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)], capture_output=True, text=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.mark.toolkit
def test_disk_full_while_building(cli, cls_model, cls_dataset, tiny_disk):
    done = cli(
        "build",
        cls_model,
        "--dataset",
        cls_dataset,
        *CLS_OPTIONS,
        "-o",
        tiny_disk / "out",
        env={"RKBENCH_CACHE": str(tiny_disk / "cache")},
    )
    expect(done, 7, "disk full")


def test_outputs_that_are_not_tensors_of_the_graph(cli, tmp_path):
    """--outputs is checked against the graph before the toolkit loads it (it would refuse late, exit 5)."""
    model = tiny_onnx(tmp_path / "tiny.onnx")
    expect(
        cli("build", model, "--quant", "none", "--outputs", "cc", "-o", tmp_path / "out"),
        2,
        "--outputs 'cc' is not a tensor of",
        "nearest: c",
        "graph outputs are y",
    )
    done = cli("build", model, "--quant", "none", "--outputs", "c", "-o", tmp_path / "out")
    assert done.returncode == 0, done.stderr  # cutting at an inner tensor is fine
