"""Builds the .rknn models the stand-in tests load, with the real rknn-toolkit2.

`built_models()` returns them, building once into ~/.cache/rkbench-test/standin-models/<key>/
(the key covers this file and the toolkit's version). The build itself runs this file as a
script in a child process (the toolkit is noisy and keeps global state):
    python model_builder.py OUT_DIR
which writes OUT_DIR/<name>.rknn for every entry of MODELS, then OUT_DIR/done.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

import numpy as np

CACHE = Path.home() / ".cache" / "rkbench-test" / "standin-models"

#: name -> (source, target platform). "tiny" is made here; "ppocr-cls" is the bundled real model.
MODELS = {
    "cls_rk3588": ("ppocr-cls", "rk3588"),
    "tiny_rk3588": ("tiny", "rk3588"),
    "tiny_rk3566": ("tiny", "rk3566"),
    "tiny_rk3576": ("tiny", "rk3576"),
}
TINY_SHAPE = (1, 3, 16, 16)
TINY_FEATURES = 20  # > 16 channels: the 4-D output's native NC1HWC2 layout has C1 = 2


def make_tiny(path: Path) -> None:
    """conv3x3(3->20)+relu ("feat", 4-D output) -> maxpool -> flatten -> gemm ("scores")."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(2026)
    weights = [
        numpy_helper.from_array(rng.normal(0, 0.4, (TINY_FEATURES, 3, 3, 3)).astype(np.float32), "conv_w"),
        numpy_helper.from_array(rng.normal(0, 0.1, (TINY_FEATURES,)).astype(np.float32), "conv_b"),
        numpy_helper.from_array(rng.normal(0, 0.2, (6, TINY_FEATURES * 64)).astype(np.float32), "fc_w"),
        numpy_helper.from_array(rng.normal(0, 0.1, (6,)).astype(np.float32), "fc_b"),
    ]
    nodes = [
        helper.make_node("Conv", ["image", "conv_w", "conv_b"], ["conv"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["conv"], ["feat"]),
        helper.make_node("MaxPool", ["feat"], ["pool"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Flatten", ["pool"], ["flat"], axis=1),
        helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["scores"], transB=1),
    ]
    graph = helper.make_graph(
        nodes,
        "rkbench_standin_tiny",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, list(TINY_SHAPE))],
        [
            helper.make_tensor_value_info("feat", TensorProto.FLOAT, [1, TINY_FEATURES, 16, 16]),
            helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, 6]),
        ],
        weights,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))


def built_models() -> dict:
    """name -> path of each model in MODELS, built on first use and cached."""
    key = hashlib.sha256(Path(__file__).read_bytes() + metadata.version("rknn-toolkit2").encode()).hexdigest()[:16]
    final = CACHE / key
    if not (final / "done").is_file():
        CACHE.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix="build-", dir=CACHE))
        (tmp / "work").mkdir()
        done = subprocess.run(
            [sys.executable, __file__, str(tmp)], cwd=tmp / "work", capture_output=True, text=True, timeout=600
        )
        if done.returncode != 0:
            shutil.rmtree(tmp, ignore_errors=True)
            raise RuntimeError("building the test models failed:\n" + done.stdout[-3000:] + done.stderr[-3000:])
        shutil.rmtree(tmp / "work")
        try:
            os.replace(tmp, final)
        except OSError:  # another process finished first
            shutil.rmtree(tmp, ignore_errors=True)
    return {name: final / f"{name}.rknn" for name in MODELS}


def main(out: Path) -> None:
    from rknn.api import RKNN

    from rkbench.model import examples

    work = out / "work"
    work.mkdir(parents=True, exist_ok=True)
    make_tiny(work / "tiny.onnx")
    rng = np.random.default_rng(7)
    lines = []
    for i in range(4):
        np.save(work / f"calib_{i}.npy", rng.uniform(0, 1, TINY_SHAPE).astype(np.float32))
        lines.append(str(work / f"calib_{i}.npy"))
    (work / "tiny.txt").write_text("\n".join(lines) + "\n")
    cls = examples.EXAMPLES["ppocr-cls"]
    cls_calib = examples.write_calibration_set(cls, work / "cls-calib", 4)

    for name, (source, target) in MODELS.items():
        rknn = RKNN(verbose=False)
        if source == "tiny":
            rknn.config(mean_values=[[0, 0, 0]], std_values=[[1, 1, 1]], target_platform=target)
            assert rknn.load_onnx(model=str(work / "tiny.onnx")) == 0
            dataset = work / "tiny.txt"
        else:
            rknn.config(mean_values=[list(cls.mean)], std_values=[list(cls.std)], target_platform=target)
            assert (
                rknn.load_onnx(
                    model=str(examples.model_path(cls)), inputs=["x"], input_size_list=[[1, 3, cls.height, cls.width]]
                )
                == 0
            )
            dataset = cls_calib
        assert rknn.build(do_quantization=True, dataset=str(dataset)) == 0, name
        assert rknn.export_rknn(str(out / f"{name}.rknn")) == 0, name
        rknn.release()
    (out / "done").write_text("ok\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
