"""Which tensors must go to float together for a hybrid entry to take effect.

Read from the graph hybrid step 1 writes (`<name>.model`, an ONNX graph in the toolkit's
own tensor names, the names `custom_quantize_layers` takes):
- a layer and the activation fused into it (Conv + Relu run as one NPU op: floating one
  without the other changes nothing, the complaint users make about the vendor flow);
- to repair a layer that loses accuracy, its input must reach it unquantized too, so the
  layer's producers go with it (measured: floating only the consumer, or only the
  producer, of an outlier activation leaves the output cosine where int8 had it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from rkbench.errors import InputFileError

ACTIVATIONS = frozenset(
    {
        "Relu",
        "LeakyRelu",
        "Clip",
        "Sigmoid",
        "HardSigmoid",
        "HardSwish",
        "PRelu",
        "Tanh",
        "Elu",
        "Selu",
        "Softplus",
        "Gelu",
        "Mish",
        "Swish",
        "Relu6",
        # the toolkit's own fused activations in the step-1 graph (SiLU becomes exSwish)
        "exSwish",
        "exHardSwish",
        "exGelu",
        "exMish",
        "exSoftplus",
        "exElu",
        "exSelu",
    }
)


# Ops that move or gather values without computing new ones: an outlier channel passes
# through them unchanged, so the repair of a reader reaches back through them.
PASS_THROUGH = frozenset(
    {
        "Concat",
        "Split",
        "Slice",
        "MaxPool",
        "Resize",
        "Upsample",
        "Reshape",
        "Transpose",
        "Flatten",
        "Squeeze",
        "Unsqueeze",
        "Identity",
        "Gather",
    }
)


@dataclass(frozen=True)
class LayerGraph:
    producers: dict[str, tuple[str, ...]]  # tensor -> the computed tensors its node reads
    partners: dict[str, tuple[str, ...]]  # tensor -> tensors fused with it into one op
    known: frozenset[str]  # tensors custom_quantize_layers accepts (the cfg's parameters)
    graph_inputs: frozenset[str]
    order: dict[str, int]  # tensor -> position of its node in the graph
    operands: dict[str, tuple[str, ...]] = field(
        default_factory=dict
    )  # tensor -> every input of its node, constants too
    ops: dict[str, str] = field(default_factory=dict)  # tensor -> op type of the node computing it

    def readers(self) -> dict[str, list[str]]:
        """tensor -> the tensors computed by the nodes that read it."""
        found: dict[str, list[str]] = {}
        for tensor, inputs in self.operands.items():
            for name in inputs:
                found.setdefault(name, []).append(tensor)
        return found

    def unit(self, tensor: str) -> list[str]:
        """The tensor with its fused partners, in graph order (producer first, as the vendor
        lists them)."""
        members = {tensor, *self.partners.get(tensor, ())}
        return sorted((t for t in members if t in self.known), key=lambda t: self.order.get(t, 0))

    def repair_group(self, tensor: str) -> list[str]:
        """What to float so `tensor`'s layer computes from unquantized inputs in float: its
        producers, and through pass-through ops (a Concat carrying an outlier channel) the
        layers that computed what they pass on."""
        unit = self.unit(tensor)
        first = unit[0] if unit else tensor  # the op that reads the layer's inputs
        group: list[str] = []

        def take(source: str, depth: int) -> None:
            if source in self.graph_inputs or source in group:
                return
            group.extend(t for t in self.unit(source) if t not in group)
            if depth and self.ops.get(source) in PASS_THROUGH:
                for upstream in self.producers.get(source, ()):
                    take(upstream, depth - 1)

        for source in self.producers.get(first, ()):
            take(source, 3)
        return sorted(group, key=lambda t: self.order.get(t, 0)) + [t for t in unit if t not in group]


def read_layer_graph(model_path: Path, known) -> LayerGraph:
    import onnx

    try:
        model = onnx.load(str(model_path), load_external_data=False)
    except Exception as err:  # protobuf decode errors have several types
        raise InputFileError(f"cannot read the hybrid step-1 graph {model_path}: {err}") from None
    graph = model.graph
    initializers = {init.name for init in graph.initializer}
    made_by = {out: node for node in graph.node for out in node.output}
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    graph_inputs = frozenset(i.name for i in graph.input if i.name not in initializers and i.name not in made_by)
    producers, operands = {}, {}
    for node in graph.node:
        computed = tuple(n for n in node.input if n in made_by or n in graph_inputs)
        for out in node.output:
            producers[out] = computed
            operands[out] = tuple(n for n in node.input if n)
    partners: dict[str, tuple[str, ...]] = {}
    for node in graph.node:
        for out in node.output:
            readers = consumers.get(out, [])
            if len(readers) == 1 and readers[0].op_type in ACTIVATIONS and node.op_type not in ACTIVATIONS:
                activation = readers[0].output[0]
                partners[out] = partners.get(out, ()) + (activation,)
                partners[activation] = partners.get(activation, ()) + (out,)
    order = {out: index for index, node in enumerate(graph.node) for out in node.output}
    ops = {out: node.op_type for node in graph.node for out in node.output}
    return LayerGraph(producers, partners, frozenset(known), graph_inputs, order, operands, ops)
