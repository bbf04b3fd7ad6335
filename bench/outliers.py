"""Activation outliers injected into a real ONNX model, with the fp32 function kept.

Real networks carry a few channels whose activations are hundreds of times larger than
the rest (a BatchNorm folded with a large scale); per-tensor int8 then crushes every other
channel of that tensor. To make such variants of a real detector without retraining it,
`inject()` scales some output channels of one convolution by `scale` and divides the
weights that read those channels downstream by the same factor, so the fp32 outputs stay
those of the original model (to float rounding) while the activation's range is `scale`
times wider:

- Conv -> Relu / LeakyRelu (positively homogeneous): relu(s*x) = s*relu(x), nothing to add.
- Conv -> SiLU (x * Sigmoid(x), as PyTorch exports it): the gate must see the unscaled x,
  so a per-channel Mul by 1/s is put in front of the Sigmoid; the product carries the
  outlier. The graph gains one elementwise Mul.
- The scaled tensor may pass through Concat (channels shifted), MaxPool, Resize, Slice on
  spatial axes, before reaching the convolutions that read it; those are compensated
  (grouped convolutions too). Any other reader (Add, an output, ...) cannot be compensated
  exactly and the convolution is refused as a site (`sites()` lists the ones that work).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

PASS_THROUGH = {"MaxPool", "Resize", "Upsample"}


class NotCompensable(ValueError):
    pass


@dataclass(frozen=True)
class Outlier:
    conv: int  # index among the model's Conv nodes, in graph order
    channels: tuple[int, ...]
    scale: float


def _constants_to_initializers(graph) -> None:
    """Paddle2ONNX exports weights as Constant nodes; make them initializers."""
    from onnx import helper

    for node in [n for n in graph.node if n.op_type == "Constant"]:
        value = next((a for a in node.attribute if a.name == "value"), None)
        if value is None:
            continue
        tensor = helper.get_attribute_value(value)
        tensor.name = node.output[0]
        graph.initializer.append(tensor)
        graph.node.remove(node)


def _graph_maps(graph):
    from onnx import numpy_helper

    _constants_to_initializers(graph)
    inits = {i.name: i for i in graph.initializer}
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    outputs = {o.name for o in graph.output}
    return inits, consumers, outputs, numpy_helper


def _activation(node, consumers):
    """('relu', out) | ('silu', sigmoid node, mul node) | ('linear', None)."""
    readers = consumers.get(node.output[0], [])
    if len(readers) == 1 and readers[0].op_type in ("Relu", "LeakyRelu"):
        return "relu", readers[0]
    ops = sorted(r.op_type for r in readers)
    if ops == ["Mul", "Sigmoid"]:
        sigmoid = next(r for r in readers if r.op_type == "Sigmoid")
        mul = next(r for r in readers if r.op_type == "Mul")
        if consumers.get(sigmoid.output[0]) == [mul]:
            return "silu", (sigmoid, mul)
    return "linear", None


def _carrier(conv, kind: str, parts) -> str:
    """The tensor that carries the scaled channels: the activation's output, or the conv's."""
    if kind == "relu":
        return parts.output[0]
    if kind == "silu":
        return parts[1].output[0]
    return conv.output[0]


def _channel_count(graph, inits, numpy_helper, conv):
    return numpy_helper.to_array(inits[conv.input[1]]).shape[0]


def _readers(tensor: str, channels: list[int], graph, inits, consumers, outputs, numpy_helper, plan):
    """Collect (conv, input channels) to compensate; raise if a reader is not compensable."""
    if tensor in outputs:
        raise NotCompensable(f"{tensor} is a model output")
    for reader in consumers.get(tensor, []):
        op = reader.op_type
        if op == "Conv" and reader.input[0] == tensor:
            plan.append((reader, list(channels)))
        elif op in PASS_THROUGH and reader.input[0] == tensor:
            _readers(reader.output[0], channels, graph, inits, consumers, outputs, numpy_helper, plan)
        elif op == "Concat" and _attr(reader, "axis") in (1, -3):
            offset = 0
            for name in reader.input:
                if name == tensor:
                    break
                offset += _channels_of(name, graph, inits, numpy_helper)
            _readers(
                reader.output[0], [offset + c for c in channels], graph, inits, consumers, outputs, numpy_helper, plan
            )
        else:
            raise NotCompensable(f"{tensor} is read by {op} {reader.name}")


def _attr(node, name):
    from onnx import helper

    for attribute in node.attribute:
        if attribute.name == name:
            return helper.get_attribute_value(attribute)
    return None


def _channels_of(tensor, graph, inits, numpy_helper):
    """Channel count of a tensor: from shape inference (filled in by `inject`)."""
    for info in list(graph.value_info) + list(graph.output) + list(graph.input):
        if info.name == tensor:
            dims = info.type.tensor_type.shape.dim
            if len(dims) >= 2 and dims[1].dim_value:
                return dims[1].dim_value
    raise NotCompensable(f"the channel count of {tensor} is unknown")


def inject(source: Path, target: Path, outliers: list[Outlier]) -> Path:
    import onnx
    from onnx import helper, shape_inference

    model = shape_inference.infer_shapes(onnx.load(str(source)))
    graph = model.graph
    inits, consumers, outputs, numpy_helper = _graph_maps(graph)
    convs = [n for n in graph.node if n.op_type == "Conv"]
    added = []
    for number, outlier in enumerate(outliers):
        conv = convs[outlier.conv]
        count = _channel_count(graph, inits, numpy_helper, conv)
        channels = [c for c in outlier.channels if c < count]
        factor = np.ones(count, np.float32)
        factor[channels] = outlier.scale
        kind, parts = _activation(conv, consumers)
        carrier = _carrier(conv, kind, parts)
        plan: list = []
        _readers(carrier, channels, graph, inits, consumers, outputs, numpy_helper, plan)
        _scale_outputs(conv, factor, inits, numpy_helper)
        if kind == "silu":
            sigmoid = parts[0]
            name = f"outlier{number}_unscale"
            shape = [1, count, 1, 1]
            graph.initializer.append(numpy_helper.from_array((1.0 / factor).reshape(shape), name + "_k"))
            added.append((sigmoid, helper.make_node("Mul", [conv.output[0], name + "_k"], [name], name=name)))
            sigmoid.input[0] = name
        for reader, reader_channels in plan:
            _scale_inputs(reader, reader_channels, outlier.scale, inits, numpy_helper)
    for before, node in added:  # the unscale Mul right before its Sigmoid (topological order)
        nodes = list(graph.node)
        index = nodes.index(before)
        graph.node.insert(index, node)
    del graph.value_info[:]
    onnx.checker.check_model(model)
    onnx.save(model, str(target))
    return target


def _replace(inits, numpy_helper, name, array):
    init = inits[name]
    init.CopyFrom(numpy_helper.from_array(array.astype(np.float32), name))


def _scale_outputs(conv, factor, inits, numpy_helper):
    weight = numpy_helper.to_array(inits[conv.input[1]]).copy()
    weight *= factor.reshape(-1, *([1] * (weight.ndim - 1)))
    _replace(inits, numpy_helper, conv.input[1], weight)
    if len(conv.input) > 2 and conv.input[2]:
        bias = numpy_helper.to_array(inits[conv.input[2]]).copy() * factor
        _replace(inits, numpy_helper, conv.input[2], bias)


def _scale_inputs(conv, channels, scale, inits, numpy_helper):
    weight = numpy_helper.to_array(inits[conv.input[1]]).copy()
    group = _attr(conv, "group") or 1
    per_group = weight.shape[1]
    for c in channels:
        if group == 1:
            weight[:, c] /= scale
        else:  # channel c belongs to group c // per_group, input slot c % per_group
            out_per_group = weight.shape[0] // group
            g = c // per_group
            weight[g * out_per_group : (g + 1) * out_per_group, c % per_group] /= scale
    _replace(inits, numpy_helper, conv.input[1], weight)


def sites(source: Path) -> list[int]:
    """Indices of the convolutions whose outputs can carry an exact outlier."""
    import onnx
    from onnx import shape_inference

    graph = shape_inference.infer_shapes(onnx.load(str(source))).graph
    inits, consumers, outputs, numpy_helper = _graph_maps(graph)
    found = []
    for index, conv in enumerate(n for n in graph.node if n.op_type == "Conv"):
        if conv.input[1] not in inits:
            continue
        kind, parts = _activation(conv, consumers)
        carrier = _carrier(conv, kind, parts)
        try:
            _readers(carrier, [0], graph, inits, consumers, outputs, numpy_helper, [])
        except NotCompensable:
            continue
        found.append(index)
    return found
