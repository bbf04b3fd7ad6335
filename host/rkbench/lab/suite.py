"""A regression suite (`suite.toml`): models x build configurations x boards x core masks,
with thresholds per model.

    name = "nightly"
    [measure]                      # defaults for every cell
    warmup = 10
    min_runs = 200
    min_seconds = 5.0

    [[models]]
    name = "ppocr-cls"
    path = "models/cls.onnx"         # .onnx, .tflite, an rknn_convert .yml; relative to this file
    dataset = "calib/dataset.txt"
    input_size = ["1,3,48,192"]
    mean = ["127.5,127.5,127.5"]
    std = ["127.5,127.5,127.5"]
    boards = ["soc=rk3588", "shelf2-b"] # selectors into boards.toml
    core_masks = ["auto", "0_1_2"]
    configs = [{name = "int8"}, {name = "mmse", algorithm = "mmse"},
               {name = "hybrid", hybrid_cfg = "cls.quantization.cfg"}]
    [models.thresholds]
    min_cos_fp32 = 0.99              # output cosine against the fp32 model
    max_latency_regression = 0.10    # vs the accepted baseline, decided by a rank test
    max_p99_ms = 20.0
    max_peak_rss_mb = 400
    max_npu_mem_mb = 64              # the NPU runtime's DMA allocation (rknnrt backend)

    [throughput]                     # optional: each cell also in throughput mode, FPS judged
    seconds = 3.0                    # (higher is better) against the baseline's; see lab/throughput.py
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from rkbench.errors import InputFileError
from rkbench.lab.inventory import Board, Inventory, load_toml
from rkbench.model.config import ALGORITHMS, METHODS, QUANT_DTYPES

CORE_MASKS = ("auto", "0", "1", "2", "0_1", "0_1_2")
MODEL_KEYS = {
    "name",
    "path",
    "dataset",
    "inputs",
    "input_size",
    "mean",
    "std",
    "boards",
    "core_masks",
    "configs",
    "thresholds",
    "target",
}
CONFIG_KEYS = {"name", "quant", "algorithm", "method", "hybrid_cfg"}
THRESHOLD_KEYS = {"min_cos_fp32", "max_latency_regression", "max_p99_ms", "max_peak_rss_mb", "max_npu_mem_mb"}
MEASURE_KEYS = {
    "warmup",
    "min_runs",
    "min_seconds",
    "max_seconds",
    "backend",
    "cpu_threads",
    "io",
    "profile_layers",
    "profile_runs",
}


@dataclass(frozen=True)
class ConfigSpec:
    name: str = "int8"
    quant: str = "w8a8"
    algorithm: str = "normal"
    method: str = "channel"
    hybrid_cfg: Path | None = None


@dataclass(frozen=True)
class Thresholds:
    min_cos_fp32: float | None = None
    max_latency_regression: float | None = None
    max_p99_ms: float | None = None
    max_peak_rss_mb: float | None = None
    max_npu_mem_mb: float | None = None


@dataclass(frozen=True)
class ModelSpec:
    name: str
    path: Path
    dataset: Path | None
    inputs: Path | None
    input_size: tuple[str, ...]
    mean: tuple[str, ...]
    std: tuple[str, ...]
    boards: tuple[str, ...]
    core_masks: tuple[str, ...]
    configs: tuple[ConfigSpec, ...]
    thresholds: Thresholds
    target: str | None = None


@dataclass(frozen=True)
class Cell:
    model: ModelSpec
    config: ConfigSpec
    board: Board
    core_mask: str

    @property
    def key(self) -> str:
        return f"{self.model.name}/{self.config.name}@{self.board.name}[{self.core_mask}]"


@dataclass
class Suite:
    name: str
    path: Path
    models: list[ModelSpec]
    measure: dict = field(default_factory=dict)
    throughput: dict | None = None  # [throughput]: each cell also measured in throughput mode (lab/throughput.py)

    def cells(self, inventory: Inventory) -> list[Cell]:
        cells = []
        for model in self.models:
            boards = inventory.select(list(model.boards), where=f"{self.path}: model '{model.name}': ")
            for config in model.configs:
                for board in boards:
                    for mask in model.core_masks:
                        cells.append(Cell(model, config, board, mask))
        return cells


def _check_keys(entry: dict, known: set[str], where: str) -> None:
    unknown = set(entry) - known
    if unknown:
        raise InputFileError(
            f"{where}: unknown key(s) {', '.join(sorted(unknown))} (known: {', '.join(sorted(known))})"
        )


def _strings(value, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise InputFileError(f"{where} must be a string or a list of strings")


def _choice(value, choices, where: str) -> str:
    if value not in choices:
        raise InputFileError(f"{where}: '{value}' is not one of {', '.join(choices)}")
    return value


def load_suite(path: Path) -> Suite:
    data = load_toml(path, "suite")
    base = path.parent
    _check_keys(data, {"name", "measure", "models", "throughput"}, str(path))
    measure = data.get("measure", {})
    _check_keys(measure, MEASURE_KEYS, f"{path}: [measure]")
    if "io" in measure:
        _choice(measure["io"], ("copy", "zero-copy"), f"{path}: [measure] io")
    models_data = data.get("models")
    if not isinstance(models_data, list) or not models_data:
        raise InputFileError(f"{path}: no [[models]] entries")
    models, names = [], set()
    for number, entry in enumerate(models_data, start=1):
        where = f"{path}: [[models]] #{number}"
        _check_keys(entry, MODEL_KEYS, where)
        if "path" not in entry:
            raise InputFileError(f"{where}: 'path' is missing")
        name = entry.get("name") or Path(entry["path"]).stem
        if name in names:
            raise InputFileError(f"{where}: model name '{name}' is used twice")
        names.add(name)
        where = f"{path}: model '{name}'"
        model_path = (base / entry["path"]).resolve()
        if not model_path.exists():
            raise InputFileError(f"{where}: {model_path} does not exist")
        configs = []
        for config in entry.get("configs", [{"name": "int8"}]):
            _check_keys(config, CONFIG_KEYS, f"{where}: configs")
            hybrid = config.get("hybrid_cfg")
            configs.append(
                ConfigSpec(
                    name=config.get("name", "int8"),
                    quant=_choice(config.get("quant", "w8a8"), QUANT_DTYPES, f"{where}: quant"),
                    algorithm=_choice(config.get("algorithm", "normal"), ALGORITHMS, f"{where}: algorithm"),
                    method=_choice(config.get("method", "channel"), METHODS, f"{where}: method"),
                    hybrid_cfg=(base / hybrid).resolve() if hybrid else None,
                )
            )
        thresholds = entry.get("thresholds", {})
        _check_keys(thresholds, THRESHOLD_KEYS, f"{where}: thresholds")
        masks = _strings(entry.get("core_masks", ["auto"]), f"{where}: core_masks")
        for mask in masks:
            _choice(mask, CORE_MASKS, f"{where}: core_masks")
        if "boards" not in entry:
            raise InputFileError(f"{where}: 'boards' is missing (names or tags from boards.toml)")
        models.append(
            ModelSpec(
                name=name,
                path=model_path,
                dataset=(base / entry["dataset"]).resolve() if entry.get("dataset") else None,
                inputs=(base / entry["inputs"]).resolve() if entry.get("inputs") else None,
                input_size=_strings(entry.get("input_size", []), f"{where}: input_size"),
                mean=_strings(entry.get("mean", []), f"{where}: mean"),
                std=_strings(entry.get("std", []), f"{where}: std"),
                boards=_strings(entry["boards"], f"{where}: boards"),
                core_masks=masks,
                configs=tuple(configs),
                thresholds=Thresholds(**{k: float(v) for k, v in thresholds.items()}),
                target=entry.get("target"),
            )
        )
    throughput = None
    if "throughput" in data:
        from rkbench.lab.throughput import check_section

        throughput = check_section(data["throughput"], f"{path}: [throughput]")
    return Suite(data.get("name", path.stem), path, models, dict(measure), throughput)
