import onnx
from onnx import TensorProto, helper

from rkbench.accuracy.hybrid.groups import read_layer_graph


def graph_file(tmp_path):
    """input -> conv1 -> relu1 -> conv2 -> relu2 -> add(relu2, relu1) -> conv3 (no activation)"""
    nodes = [
        helper.make_node("Conv", ["input", "w1"], ["conv1"]),
        helper.make_node("Relu", ["conv1"], ["relu1"]),
        helper.make_node("Conv", ["relu1", "w2"], ["conv2"]),
        helper.make_node("Relu", ["conv2"], ["relu2"]),
        helper.make_node("Add", ["relu2", "relu1"], ["add"]),
        helper.make_node("Conv", ["add", "w3"], ["conv3"]),
    ]
    weights = [helper.make_tensor(n, TensorProto.FLOAT, [1], [1.0]) for n in ("w1", "w2", "w3")]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("conv3", TensorProto.FLOAT, [1])],
        weights,
    )
    path = tmp_path / "step1.model"
    onnx.save(helper.make_model(graph), path)
    return path


KNOWN = ["input", "conv1", "relu1", "conv2", "relu2", "add", "conv3"]


def test_fused_partners_in_graph_order(tmp_path):
    graph = read_layer_graph(graph_file(tmp_path), KNOWN)
    assert graph.unit("relu2") == ["conv2", "relu2"]
    assert graph.unit("conv2") == ["conv2", "relu2"]
    assert graph.unit("add") == ["add"]
    # relu1 has two readers: conv2 and add, so it is not fused away... but conv1 only feeds relu1.
    assert graph.unit("conv1") == ["conv1", "relu1"]


def test_repair_group_brings_the_producers(tmp_path):
    graph = read_layer_graph(graph_file(tmp_path), KNOWN)
    assert graph.repair_group("relu2") == ["conv1", "relu1", "conv2", "relu2"]
    assert graph.repair_group("add") == ["conv1", "relu1", "conv2", "relu2", "add"]  # graph order
    assert graph.repair_group("conv1") == ["conv1", "relu1"]  # the model input is not floated


def test_only_names_the_toolkit_knows(tmp_path):
    graph = read_layer_graph(graph_file(tmp_path), ["conv2", "relu2", "conv3"])
    assert graph.unit("relu2") == ["conv2", "relu2"]
    assert graph.repair_group("conv3") == ["conv3"]


def test_repair_reaches_through_a_concat_to_what_it_carries(tmp_path):
    """An outlier channel from relu1 reaches conv3 through a Concat: floating conv3 and the
    Concat leaves relu1 quantized, so relu1's layer joins the group."""
    nodes = [
        helper.make_node("Conv", ["input", "w1"], ["conv1"]),
        helper.make_node("Relu", ["conv1"], ["relu1"]),
        helper.make_node("Conv", ["input", "w2"], ["conv2"]),
        helper.make_node("Concat", ["relu1", "conv2"], ["cat"], axis=1),
        helper.make_node("Conv", ["cat", "w3"], ["conv3"]),
    ]
    weights = [helper.make_tensor(n, TensorProto.FLOAT, [1], [1.0]) for n in ("w1", "w2", "w3")]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("conv3", TensorProto.FLOAT, [1])],
        weights,
    )
    path = tmp_path / "cat.model"
    onnx.save(helper.make_model(graph), path)
    layers = read_layer_graph(path, ["conv1", "relu1", "conv2", "cat", "conv3"])
    assert layers.repair_group("conv3") == ["conv1", "relu1", "conv2", "cat", "conv3"]
    assert layers.readers()["cat"] == ["conv3"] and layers.operands["conv3"] == ("cat", "w3")
