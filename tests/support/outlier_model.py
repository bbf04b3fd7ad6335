"""A small CNN with a deliberate activation outlier, for hybrid-quantization tests and benchmarks.

One output channel of a middle convolution is scaled by `scale` (its weights and bias) and
the next convolution's weights for that channel by 1/scale, so the fp32 function is the
same as without the outlier, but the middle activation's range is `scale` times wider:
per-tensor int8 quantization of that activation then crushes every other channel. This is
the failure hybrid quantization exists for. Weights are seeded, not trained: this model is
for the search machinery, never the product's main example.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def conv(rng, out_c, in_c, k=3):
    fan_in = in_c * k * k
    return (rng.standard_normal((out_c, in_c, k, k)) * np.sqrt(2.0 / fan_in)).astype(np.float32), (
        rng.standard_normal(out_c) * 0.05
    ).astype(np.float32)


def make_outlier_model(path: Path, scale: float = 1000.0, seed: int = 7, size: int = 32, classes: int = 10) -> Path:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    widths = [3, 16, 24, 32, 32]
    weights = [conv(rng, widths[i + 1], widths[i]) for i in range(4)]
    # The outlier: channel 0 of conv2's output (scaled), compensated in conv3's input.
    w2, b2 = weights[1]
    w2[0] *= scale
    b2[0] *= scale
    w3, _ = weights[2]
    w3[:, 0] /= scale
    fc = (rng.standard_normal((classes, widths[-1])) * np.sqrt(1.0 / widths[-1])).astype(np.float32)
    fc_b = np.zeros(classes, np.float32)

    inits, nodes, current = [], [], "input"
    for i, (w, b) in enumerate(weights, start=1):
        inits += [numpy_helper.from_array(w, f"conv{i}_w"), numpy_helper.from_array(b, f"conv{i}_b")]
        stride = 2 if i in (2, 4) else 1
        nodes.append(
            helper.make_node(
                "Conv", [current, f"conv{i}_w", f"conv{i}_b"], [f"conv{i}"], pads=[1, 1, 1, 1], strides=[stride, stride]
            )
        )
        nodes.append(helper.make_node("Relu", [f"conv{i}"], [f"relu{i}"]))
        current = f"relu{i}"
    nodes.append(helper.make_node("GlobalAveragePool", [current], ["pool"]))
    nodes.append(helper.make_node("Flatten", ["pool"], ["flat"]))
    inits += [numpy_helper.from_array(fc, "fc_w"), numpy_helper.from_array(fc_b, "fc_b")]
    nodes.append(helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["logits"], transB=1))
    graph = helper.make_graph(
        nodes,
        "outlier_cnn",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, size, size])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, classes])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def write_inputs(folder: Path, count: int, seed: int, size: int = 32) -> Path:
    """`count` NCHW float inputs as .npy, and the dataset.txt naming them."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    names = []
    for i in range(count):
        # Smooth random images: low-frequency noise upsampled, like natural image statistics.
        coarse = rng.standard_normal((1, 3, size // 8, size // 8)).astype(np.float32)
        image = np.kron(coarse, np.ones((1, 1, 8, 8), np.float32))
        image += 0.3 * rng.standard_normal(image.shape).astype(np.float32)
        names.append(f"sample_{i:03d}.npy")
        np.save(folder / names[-1], image)
    (folder / "dataset.txt").write_text("\n".join(names) + "\n")
    return folder / "dataset.txt"
