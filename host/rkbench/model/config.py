"""A build configuration as plain data: from command-line options or from the vendor's
rknn_convert YAML, checked against the model, and turned into the toolkit recipe."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from rkbench.errors import InputFileError, UsageError
from rkbench.model.info import ModelInfo, TensorInfo

# target_platform values rknn-toolkit2 2.5 accepts (its RKNN.config docstring).
TARGETS = (
    "rk3588",
    "rk3576",
    "rk3568",
    "rk3566",
    "rk3562",
    "rv1103",
    "rv1103b",
    "rv1106",
    "rv1106b",
    "rv1126b",
    "rk2118",
)
# Our names for quantization; "none" builds float16. w8a16/w4a16 go to the toolkit,
# which refuses them on the SoCs that cannot run them (e.g. rk3588).
QUANT_DTYPES = ("w8a8", "w16a16i_dfp", "w8a16", "w4a16", "none")
ALGORITHMS = ("normal", "mmse", "kl_divergence", "gdq")
METHODS = ("channel", "layer")
# Older toolkit/rknn_convert names for the same dtypes.
QUANT_ALIASES = {
    "asymmetric_quantized-8": "w8a8",
    "asymmetric_quantized-u8": "w8a8",
    "dynamic_fixed_point-i16": "w16a16i_dfp",
}


@dataclass(frozen=True)
class BuildConfig:
    model: Path
    framework: str
    target: str
    quant: str = "w8a8"
    algorithm: str = "normal"
    method: str = "channel"
    mean: tuple[tuple[float, ...], ...] | None = None
    std: tuple[tuple[float, ...], ...] | None = None
    input_names: tuple[str, ...] | None = None
    input_sizes: tuple[tuple[int, ...], ...] | None = None
    outputs: tuple[str, ...] | None = None
    optimization_level: int = 3
    extra_config: dict = field(default_factory=dict)  # other RKNN.config kwargs (from YAML)
    dataset: Path | None = None  # the vendor's dataset.txt
    name: str = "model"

    @property
    def quantized(self) -> bool:
        return self.quant != "none"

    def recipe(self, dataset_txt: Path | None = None) -> dict:
        """The toolkit recipe: the worker and the board-side simulator backend both run it."""
        config = {
            "target_platform": self.target,
            "optimization_level": self.optimization_level,
            "quantized_algorithm": self.algorithm,
            "quantized_method": self.method,
        }
        if self.quantized:
            config["quantized_dtype"] = self.quant
        if self.mean is not None:
            config["mean_values"] = [list(m) for m in self.mean]
        if self.std is not None:
            config["std_values"] = [list(s) for s in self.std]
        config.update(self.extra_config)
        load_kwargs: dict = {"model": str(self.model)}
        if self.framework == "onnx":
            if self.input_sizes is not None:
                load_kwargs["inputs"] = list(self.input_names or ())
                load_kwargs["input_size_list"] = [list(s) for s in self.input_sizes]
            if self.outputs:
                load_kwargs["outputs"] = list(self.outputs)
        dataset = dataset_txt or self.dataset
        return {
            "config": config,
            "load": {"kind": self.framework, "kwargs": load_kwargs},
            "build": {
                "do_quantization": self.quantized,
                "dataset": str(dataset) if (self.quantized and dataset) else None,
            },
        }

    def input_shapes(self, info: ModelInfo) -> list[tuple[int, ...]]:
        """The fixed shape of each input the build uses."""
        if self.input_sizes is not None:
            return [tuple(s) for s in self.input_sizes]
        return [tuple(t.shape) for t in info.inputs]


def check_choice(value: str, choices: tuple[str, ...], option: str) -> str:
    if value not in choices:
        raise UsageError(f"unknown {option} '{value}': choose one of {', '.join(choices)}")
    return value


def parse_numbers(text: str, option: str, kind=float) -> tuple:
    try:
        return tuple(kind(x) for x in text.replace(" ", ",").split(",") if x != "")
    except ValueError:
        raise UsageError(f"{option} '{text}' is not a comma-separated list of numbers") from None


def resolve(config: BuildConfig, info: ModelInfo) -> BuildConfig:
    """Check the configuration against the model and fill in what follows from it."""
    check_choice(config.target, TARGETS, "--target")
    check_choice(config.quant, QUANT_DTYPES, "--quant")
    check_choice(config.algorithm, ALGORITHMS, "--algorithm")
    check_choice(config.method, METHODS, "--method")
    if config.framework != "onnx" and config.input_sizes is not None:
        raise UsageError("--input-size applies to ONNX models only")
    inputs = info.inputs
    if config.input_sizes is not None:
        if len(config.input_sizes) != len(inputs):
            raise UsageError(
                f"{info.path} has {len(inputs)} input(s) ({', '.join(t.name for t in inputs)}) "
                f"but {len(config.input_sizes)} --input-size was given: give one per input"
            )
        for tensor, size in zip(inputs, config.input_sizes):
            _check_size(info, tensor, size)
        config = replace(config, input_names=tuple(t.name for t in inputs))
    else:
        dynamic = [t for t in inputs if t.dynamic]
        if dynamic:
            described = ", ".join(f"{t.name} {_shape_text(t.shape)}" for t in dynamic)
            raise UsageError(
                f"{info.path} has dynamic input shapes ({described}): fix them with --input-size "
                f"(e.g. --input-size {_example_size(dynamic[0])}), one per input"
            )
    for option, values in (("--mean", config.mean), ("--std", config.std)):
        if values is not None and len(values) != len(inputs):
            raise UsageError(
                f"{option} was given {len(values)} time(s) for a model with {len(inputs)} "
                "input(s): give it once per input"
            )
    if config.outputs and info.tensors is not None:
        _check_outputs(info, config.outputs)
    if config.quantized and config.dataset is None:
        raise UsageError(
            "quantization needs calibration data: give --dataset (the vendor's dataset.txt or a "
            "folder of images/.npy), or build float with --quant none"
        )
    return config


def _check_outputs(info: ModelInfo, outputs: tuple[str, ...]) -> None:
    """--outputs names tensors of the graph: said before the toolkit loads it (it refuses late)."""
    import difflib

    known = set(info.tensors or ())
    for name in outputs:
        if name not in known:
            near = difflib.get_close_matches(name, list(info.tensors or ()), n=3, cutoff=0.5)
            finals = ", ".join(t.name for t in info.outputs)
            raise UsageError(
                f"--outputs '{name}' is not a tensor of {info.path}"
                + (f" (nearest: {', '.join(near)})" if near else "")
                + f"; its graph outputs are {finals}"
            )


def _check_size(info: ModelInfo, tensor: TensorInfo, size: tuple[int, ...]) -> None:
    if len(size) != len(tensor.shape):
        raise UsageError(
            f"--input-size {','.join(map(str, size))} has {len(size)} dimensions but input "
            f"'{tensor.name}' of {info.path} has {len(tensor.shape)} {_shape_text(tensor.shape)}"
        )
    for dim, fixed in zip(tensor.shape, size):
        if isinstance(dim, int) and dim > 0 and dim != fixed:
            raise UsageError(
                f"--input-size {','.join(map(str, size))} does not match input '{tensor.name}' "
                f"{_shape_text(tensor.shape)} of {info.path}: only dynamic dimensions can be set"
            )


def _shape_text(shape: tuple) -> str:
    return "[" + ",".join(str(d) if d not in (None, "") else "?" for d in shape) + "]"


def _example_size(tensor: TensorInfo) -> str:
    guess = {0: 1}
    return ",".join(
        str(d) if isinstance(d, int) and d > 0 else str(guess.get(i, 224)) for i, d in enumerate(tensor.shape)
    )


def from_rknn_convert_yaml(path: Path, target: str | None) -> BuildConfig:
    """Read the vendor's rknn_convert model description (`models:` with `configs:` etc.).

    Paths in it are relative to the YAML file, as rknn_convert resolves them.
    """
    import yaml

    try:
        document = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise InputFileError(f"{path}: not a readable YAML file ({err})") from None
    if not isinstance(document, dict) or not isinstance(document.get("models"), dict):
        raise InputFileError(
            f"{path}: not an rknn_convert model description: expected a top-level 'models:' "
            "mapping with name, platform, model_file_path, quantize, dataset, configs"
        )
    model = document["models"]
    base = path.parent
    platform = str(model.get("platform", "onnx")).lower()
    if platform not in ("onnx", "tflite"):
        raise InputFileError(f"{path}: models.platform '{platform}' is not supported: use onnx or tflite")
    if "model_file_path" not in model:
        raise InputFileError(f"{path}: models.model_file_path is missing")
    configs = dict(model.get("configs") or {})
    target = target or configs.pop("target_platform", None) or model.get("RK_device_platform")
    configs.pop("target_platform", None)
    if not target:
        raise UsageError(f"{path} names no target platform: give --target")
    quant = "none"
    if _truthy(model.get("quantize", False)):
        dtype = str(configs.pop("quantized_dtype", "w8a8"))
        quant = QUANT_ALIASES.get(dtype, dtype)
    else:
        configs.pop("quantized_dtype", None)
    mean, std = _mean_std(configs, path)
    subgraphs = model.get("subgraphs") or {}
    sizes = subgraphs.get("input_size_list") or subgraphs.get("input-size-list")
    input_sizes = None
    if sizes:
        input_sizes = []
        for text in sizes:
            size = parse_numbers(str(text), f"{path}: subgraphs.input_size_list", int)
            input_sizes.append((1, *size) if len(size) == 3 else size)
        input_sizes = tuple(input_sizes)
    outputs = subgraphs.get("outputs")
    dataset = model.get("dataset")
    extra = {}
    for key in (
        "quant_img_RGB2BGR",
        "model_pruning",
        "single_core_mode",
        "compress_weight",
        "float_dtype",
        "quantized_hybrid_level",
        "sparse_infer",
        "enable_flash_attention",
    ):
        if key in configs:
            value = configs.pop(key)
            extra[key] = _truthy(value) if isinstance(value, str) and value.lower() in ("true", "false") else value
    return BuildConfig(
        model=(base / str(model["model_file_path"])).resolve(),
        framework=platform,
        target=str(target).lower(),
        quant=quant,
        algorithm=str(configs.pop("quantized_algorithm", "normal")),
        method=str(configs.pop("quantized_method", "channel")),
        mean=mean,
        std=std,
        input_sizes=input_sizes,
        outputs=tuple(outputs) if outputs else None,
        optimization_level=int(configs.pop("optimization_level", 3)),
        extra_config=extra,
        dataset=(base / str(dataset)).resolve() if dataset else None,
        name=str(model.get("name", path.stem)),
    )


def _truthy(value) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "yes", "1", "y", "t")
    return bool(value)


def _mean_std(configs: dict, path: Path):
    if "mean_values" in configs or "std_values" in configs:
        return _per_input(configs.pop("mean_values", None)), _per_input(configs.pop("std_values", None))
    legacy = configs.pop("channel_mean_value", None)
    if legacy is None:
        return None, None
    values = parse_numbers(str(legacy), f"{path}: configs.channel_mean_value")
    means, scale = values[:-1], values[-1]
    return (tuple(means),), (tuple([scale] * len(means)),)


def _per_input(values):
    """Mean/std as one list per input; a flat list means a single input."""
    if values is None:
        return None
    if isinstance(values, str):
        return (parse_numbers(values, "mean/std"),)
    if values and all(isinstance(v, (int, float)) for v in values):
        return (tuple(float(v) for v in values),)
    return tuple(tuple(float(x) for x in v) for v in values)
