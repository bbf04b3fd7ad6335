from pathlib import Path

import pytest

from rkbench.errors import InputFileError, UsageError
from rkbench.model.config import BuildConfig, from_rknn_convert_yaml, resolve
from rkbench.model.info import ModelInfo, TensorInfo

DYNAMIC = ModelInfo(Path("m.onnx"), "onnx", (TensorInfo("x", (None, 3, "h", "w"), "float"),), ())
FIXED = ModelInfo(Path("m.onnx"), "onnx", (TensorInfo("x", (1, 3, 32, 32), "float"),), ())


def config(**changes):
    base = dict(model=Path("m.onnx"), framework="onnx", target="rk3588", dataset=Path("d.txt"))
    return BuildConfig(**{**base, **changes})


def test_dynamic_model_needs_input_size():
    with pytest.raises(UsageError, match=r"dynamic input shapes \(x \[\?,3,h,w\]\).*--input-size"):
        resolve(config(), DYNAMIC)
    fixed = resolve(config(input_sizes=((1, 3, 48, 192),)), DYNAMIC)
    assert fixed.input_names == ("x",)
    assert fixed.recipe()["load"]["kwargs"]["input_size_list"] == [[1, 3, 48, 192]]


def test_input_size_cannot_change_a_fixed_dimension():
    with pytest.raises(UsageError, match="only dynamic dimensions"):
        resolve(config(input_sizes=((1, 1, 48, 192),)), DYNAMIC)


@pytest.mark.parametrize(
    "field,value,pattern",
    [
        ("target", "rk9999", "unknown --target 'rk9999'"),
        ("quant", "w3a3", "unknown --quant"),
        ("algorithm", "magic", "unknown --algorithm"),
    ],
)
def test_unknown_choices(field, value, pattern):
    with pytest.raises(UsageError, match=pattern):
        resolve(config(**{field: value}), FIXED)


def test_quantization_needs_a_dataset_and_float_does_not():
    with pytest.raises(UsageError, match="--dataset"):
        resolve(config(dataset=None), FIXED)
    recipe = resolve(config(dataset=None, quant="none"), FIXED).recipe()
    assert recipe["build"] == {"do_quantization": False, "dataset": None}
    assert "quantized_dtype" not in recipe["config"]


def test_mean_once_per_input():
    with pytest.raises(UsageError, match="--mean was given 2 time"):
        resolve(config(mean=((0, 0, 0), (1, 1, 1))), FIXED)


def test_rknn_convert_yaml(tmp_path):
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "net.onnx").write_bytes(b"")
    path = tmp_path / "model_config.yml"
    path.write_text("""
models:
    name: mobilenet
    platform: onnx
    model_file_path: ./models/net.onnx
    subgraphs:
      input_size_list:
        - 3,224,224
    quantize: true
    dataset: ./dataset.txt
    configs:
      quantized_dtype: asymmetric_quantized-8
      mean_values: [123.675, 116.28, 103.53]
      std_values: [58.82, 58.82, 58.82]
      quant_img_RGB2BGR: false
      quantized_algorithm: mmse
      quantized_method: layer
      optimization_level: 2
""")
    cfg = from_rknn_convert_yaml(path, target="rk3566")
    assert cfg.model == (tmp_path / "models" / "net.onnx").resolve()
    assert cfg.dataset == (tmp_path / "dataset.txt").resolve()
    assert (cfg.target, cfg.quant, cfg.algorithm, cfg.method) == ("rk3566", "w8a8", "mmse", "layer")
    assert cfg.mean == ((123.675, 116.28, 103.53),)
    assert cfg.input_sizes == ((1, 3, 224, 224),)
    assert cfg.optimization_level == 2
    assert cfg.extra_config == {"quant_img_RGB2BGR": False}


def test_rknn_convert_yaml_without_target_or_models(tmp_path):
    path = tmp_path / "c.yml"
    path.write_text("models:\n  platform: onnx\n  model_file_path: a.onnx\n  quantize: false\n")
    with pytest.raises(UsageError, match="--target"):
        from_rknn_convert_yaml(path, target=None)
    path.write_text("foo: 1\n")
    with pytest.raises(InputFileError, match="top-level 'models:'"):
        from_rknn_convert_yaml(path, target="rk3588")
