"""A small detector with a YOLOv8-style head (DFL decode, anchor points as a constant read
by Sub and Add), the structure on which rknn-toolkit2 2.5 dies in hybrid step 2 when those
layers are int16 ("Meet unsupported tensor dtype in Sub, tensor name is: <anchors>")."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def make_yolo_head_model(path: Path, size: int = 64, classes: int = 4, seed: int = 0) -> Path:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    nodes, inits = [], []

    def const(name, array):
        inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def conv(x, cin, cout, name, k=3, stride=1, silu=True):
        w = const(name + "_w", (rng.standard_normal((cout, cin, k, k)) * np.sqrt(2 / (cin * k * k))).astype(np.float32))
        b = const(name + "_b", (rng.standard_normal(cout) * 0.05).astype(np.float32))
        nodes.append(helper.make_node("Conv", [x, w, b], [name], pads=[k // 2] * 4, strides=[stride, stride]))
        if not silu:
            return name
        nodes.append(helper.make_node("Sigmoid", [name], [name + "_sig"]))
        nodes.append(helper.make_node("Mul", [name, name + "_sig"], [name + "_silu"]))
        return name + "_silu"

    x = conv("images", 3, 16, "c1", stride=2)
    x = conv(x, 16, 32, "c2", stride=2)
    x = conv(x, 32, 32, "c3", stride=2)
    grid = size // 8
    anchors = grid * grid
    box = conv(x, 32, 64, "box", k=1, silu=False)
    cls = conv(x, 32, classes, "cls", k=1, silu=False)
    i64 = np.int64
    nodes += [
        helper.make_node("Reshape", [box, const("s1", np.array([1, 4, 16, anchors], i64))], ["b4"]),
        helper.make_node("Transpose", ["b4"], ["b4t"], perm=[0, 2, 1, 3]),
        helper.make_node("Softmax", ["b4t"], ["sm"], axis=1),
        helper.make_node("Conv", ["sm", const("dfl_w", np.arange(16, dtype=np.float32).reshape(1, 16, 1, 1))], ["dfl"]),
        helper.make_node("Reshape", ["dfl", const("s2", np.array([1, 4, anchors], i64))], ["dist"]),
        helper.make_node("Split", ["dist", const("sp", np.array([2, 2], i64))], ["lt", "rb"], axis=1),
    ]
    ys, xs = np.meshgrid(np.arange(grid) + 0.5, np.arange(grid) + 0.5, indexing="ij")
    points = np.stack([xs.ravel(), ys.ravel()]).astype(np.float32)
    nodes += [
        helper.make_node("Unsqueeze", [const("anchors", points), const("ax0", np.array([0], i64))], ["anchor_points"]),
        helper.make_node("Sub", ["anchor_points", "lt"], ["x1y1"]),
        helper.make_node("Add", ["anchor_points", "rb"], ["x2y2"]),
        helper.make_node("Add", ["x1y1", "x2y2"], ["sxy"]),
        helper.make_node("Div", ["sxy", const("two", np.array(2.0, np.float32))], ["cxy"]),
        helper.make_node("Sub", ["x2y2", "x1y1"], ["wh"]),
        helper.make_node("Concat", ["cxy", "wh"], ["xywh"], axis=1),
        helper.make_node("Mul", ["xywh", const("stride", np.array(8.0, np.float32))], ["boxes"]),
        helper.make_node("Reshape", [cls, const("s3", np.array([1, classes, anchors], i64))], ["cls_r"]),
        helper.make_node("Sigmoid", ["cls_r"], ["scores"]),
        helper.make_node("Concat", ["boxes", "scores"], ["output0"], axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "yolo_head",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, size, size])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, 4 + classes, anchors])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path
