"""More .rknn files from the real rknn-toolkit2, for the reader's tests: the kinds of file the
stand-in models (tests/standins/model_builder.py: int8 for rk3588, rk3566, rk3576) do not
cover. Built once into ~/.cache/rkbench-test/rknn-variants/<key>/ (the key covers this file,
model_builder.py and the toolkit's version), in a child process:
    python rknn_variants.py OUT_DIR

    float_rk3566     no quantization: float16 inputs and outputs
    dfp_rk3588       w16a16i_dfp: int16, dynamic fixed point
    dynamic_rk3568   two inputs, two input shapes (dynamic_input); target rk3568
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

from tests.standins import model_builder

CACHE = Path.home() / ".cache" / "rkbench-test" / "rknn-variants"
VARIANTS = ("float_rk3566", "dfp_rk3588", "dynamic_rk3568")
TWO_INPUT_SHAPES = ([[1, 3, 8, 8], [1, 4, 8, 8]], [[1, 3, 16, 16], [1, 4, 16, 16]])


def built_variants() -> dict[str, Path]:
    """name -> path of each file in VARIANTS, built on first use and cached."""
    sources = Path(__file__).read_bytes() + Path(model_builder.__file__).read_bytes()
    key = hashlib.sha256(sources + metadata.version("rknn-toolkit2").encode()).hexdigest()[:16]
    final = CACHE / key
    if not (final / "done").is_file():
        CACHE.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix="build-", dir=CACHE))
        (tmp / "work").mkdir()
        root = str(Path(__file__).resolve().parents[2])
        done = subprocess.run(
            [sys.executable, "-m", "tests.model.rknn_variants", str(tmp)],
            cwd=tmp / "work",  # the toolkit leaves files in its working directory
            env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))},
            capture_output=True,
            text=True,
            timeout=600,
        )
        if done.returncode != 0:
            shutil.rmtree(tmp, ignore_errors=True)
            raise RuntimeError("building the .rknn variants failed:\n" + done.stdout[-3000:] + done.stderr[-3000:])
        shutil.rmtree(tmp / "work", ignore_errors=True)
        try:
            os.replace(tmp, final)
        except OSError:  # another process finished first
            shutil.rmtree(tmp, ignore_errors=True)
    return {name: final / f"{name}.rknn" for name in VARIANTS}


def _two_input_model(path: Path) -> None:
    """conv3x3(image: 3 -> 4 channels) + bias (a second input): fully convolutional, so it
    takes any spatial size."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = np.random.default_rng(3).normal(0, 0.3, (4, 3, 3, 3)).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["image", "w"], ["conv"], pads=[1, 1, 1, 1]),
            helper.make_node("Add", ["conv", "bias"], ["sum"]),
        ],
        "rkbench_two_inputs",
        [
            helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, "h", "w"]),
            helper.make_tensor_value_info("bias", TensorProto.FLOAT, [1, 4, "h", "w"]),
        ],
        [helper.make_tensor_value_info("sum", TensorProto.FLOAT, [1, 4, "h", "w"])],
        [numpy_helper.from_array(weight, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))


def main(out: Path) -> None:
    from rknn.api import RKNN

    work = out / "work"
    work.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(11)
    model_builder.make_tiny(work / "tiny.onnx")
    _two_input_model(work / "two.onnx")
    tiny_lines, two_lines = [], []
    for i in range(3):
        np.save(work / f"tiny_{i}.npy", rng.uniform(0, 1, model_builder.TINY_SHAPE).astype(np.float32))
        tiny_lines.append(str(work / f"tiny_{i}.npy"))
        pair = []
        for k, shape in enumerate(TWO_INPUT_SHAPES[1]):
            np.save(work / f"two_{i}_{k}.npy", rng.uniform(0, 1, shape).astype(np.float32))
            pair.append(str(work / f"two_{i}_{k}.npy"))
        two_lines.append(" ".join(pair))
    (work / "tiny.txt").write_text("\n".join(tiny_lines) + "\n")
    (work / "two.txt").write_text("\n".join(two_lines) + "\n")
    plain = {"mean_values": [[0, 0, 0]], "std_values": [[1, 1, 1]]}
    builds = {
        "float_rk3566": ("tiny.onnx", None, {"target_platform": "rk3566", **plain}),
        "dfp_rk3588": (
            "tiny.onnx",
            "tiny.txt",
            {"target_platform": "rk3588", "quantized_dtype": "w16a16i_dfp", **plain},
        ),
        "dynamic_rk3568": (
            "two.onnx",
            "two.txt",
            {"target_platform": "rk3568", "dynamic_input": [list(shapes) for shapes in TWO_INPUT_SHAPES]},
        ),
    }
    for name, (source, dataset, config) in builds.items():
        rknn = RKNN(verbose=False)
        rknn.config(**config)
        assert rknn.load_onnx(model=str(work / source)) == 0, name
        assert rknn.build(do_quantization=dataset is not None, dataset=str(work / dataset) if dataset else None) == 0
        assert rknn.export_rknn(str(out / f"{name}.rknn")) == 0, name
        rknn.release()
    (out / "done").write_text("ok\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
