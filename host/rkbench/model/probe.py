"""A tiny model for asking a board's NPU runtime who it is.

rknn_query(RKNN_QUERY_SDK_VERSION) needs a context, and a context needs a model built for
the board's SoC: `board info` and `doctor` push this one (a single convolution, float, built
once per SoC and toolkit version in the build cache) and the runner initialises it
(`rkbench_device info --probe-model`) to read the runtime's api and driver versions.
"""

from __future__ import annotations

from pathlib import Path

from rkbench.model.build import BuildOptions, Prepared, build
from rkbench.model.cache import file_sha256
from rkbench.model.config import BuildConfig
from rkbench.model.info import ModelInfo, TensorInfo

INPUT_SHAPE = (1, 3, 8, 8)


def _write_onnx(path: Path) -> Path:
    """One 3x3 convolution with fixed weights: the same bytes every time (a stable cache key)."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weights = numpy_helper.from_array(np.full((4, 3, 3, 3), 0.1, dtype=np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])],
        "rkbench_probe",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(INPUT_SHAPE))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8])],
        [weights],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="rkbench")
    model.ir_version = 8
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    onnx.save(model, str(tmp))
    tmp.replace(path)
    return path


def probe_model(soc: str, options: BuildOptions) -> Path:
    """The probe .rknn for `soc` (built with the host's toolkit the first time, then cached)."""
    onnx_path = options.cache.root / "probe" / "probe.onnx"
    if not onnx_path.is_file():
        _write_onnx(onnx_path)
    info = ModelInfo(
        onnx_path, "onnx", (TensorInfo("x", INPUT_SHAPE, "float"),), (TensorInfo("y", (1, 4, 8, 8), "float"),)
    )
    config = BuildConfig(model=onnx_path, framework="onnx", target=soc, quant="none", name="rkbench-probe")
    return build(Prepared(config, info, None, file_sha256(onnx_path)), options).rknn
