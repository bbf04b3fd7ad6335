"""`rkbench analyze`: the simulator's per-layer error over several samples, and how far the
quantized model's final outputs stay from the fp32 model's (onnxruntime) on each."""

from __future__ import annotations

import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .analysis import LayerSummary, ParseError, parse_error_analysis, rank, summarize
from .build import BuildOptions, Prepared, Say
from .dataset import prepare_sample
from .errors import ToolkitCrash, UsageError
from .golden import GoldenModel
from .metrics import cosine, euclidean, is_class_vector, max_abs, top1
from .worker import run_job


@dataclass
class OutputAgreement:
    """One output tensor of the quantized simulator model against the fp32 golden."""

    name: str
    shape: list[int]
    cos_mean: float
    cos_min: float
    euc_mean: float
    max_abs: float
    top1_agreement: float | None  # fraction of samples whose arg-max matches; class outputs only


@dataclass
class AnalysisReport:
    model: str
    target: str
    quant: str
    samples: list[list[str]]
    layers: list[LayerSummary]
    worst: list[LayerSummary]
    outputs: list[OutputAgreement] = field(default_factory=list)
    golden: str = "onnxruntime"
    dumps: str | None = None

    def to_dict(self) -> dict:
        return {
            "model": self.model, "target": self.target, "quant": self.quant,
            "samples": self.samples, "golden": self.golden, "dumps": self.dumps,
            "outputs": [asdict(o) for o in self.outputs],
            "worst_layers": [layer.to_dict() for layer in self.worst],
            "layers": [layer.to_dict() for layer in self.layers],
        }


def analyze(prepared: Prepared, options: BuildOptions, samples: int, keep_dumps: Path | None,
            say: Say = lambda _: None, worst: int = 10) -> AnalysisReport:
    config = prepared.config
    if not config.quantized:
        raise UsageError("analyze measures quantization error: use --quant w8a8 (or another quantized dtype)")
    if prepared.dataset is None:
        raise UsageError("analyze needs --dataset to calibrate and to pick samples from")
    workdir = options.cache.workdir("analyze")
    try:
        report = _analyze_in(workdir, prepared, options, samples, keep_dumps, say, worst)
    except BaseException:
        # The log of a failed run stays (the error names it); the dumps never do.
        for child in workdir.iterdir():
            if child.name != "toolkit.log":
                shutil.rmtree(child) if child.is_dir() else child.unlink()
        raise
    shutil.rmtree(workdir, ignore_errors=True)
    return report


def _analyze_in(workdir: Path, prepared: Prepared, options: BuildOptions, samples: int,
                keep_dumps: Path | None, say: Say, worst: int) -> AnalysisReport:
    config = prepared.config
    picked = prepared.dataset.pick(samples)
    arrays, golden_inputs, formats = [], [], None
    for index, files in enumerate(picked):
        sample = prepare_sample(files, prepared.info, prepared.shapes, config.mean, config.std)
        paths = []
        for k, array in enumerate(sample.device):
            path = workdir / f"input_{index:04d}_{k}.npy"
            np.save(path, array)
            paths.append(str(path))
        arrays.append(paths)
        golden_inputs.append(sample.golden)
        formats = sample.data_format
    output_dir = workdir / "analysis"
    output_dir.mkdir()
    request = {
        "job": "analyze",
        "recipe": config.recipe(prepared.dataset.write_txt(workdir / "dataset.txt")),
        "analysis": {
            "samples": [[str(f) for f in files] for files in picked],
            "arrays": arrays,
            "data_format": formats,
            "output_dir": str(output_dir),
            "keep_dumps": keep_dumps is not None,
        },
    }
    say(f"analysing {config.model.name} on the simulator with {len(picked)} sample(s)")
    result = run_job(
        request, workdir, options.worker,
        on_step=lambda step, detail: say(f"toolkit: {step}" + (f" ({detail})" if detail else "")),
        what=str(config.model),
    )
    per_sample = []
    for report in result["reports"]:
        try:
            per_sample.append(parse_error_analysis(Path(report).read_text()))
        except ParseError as err:
            raise ToolkitCrash(f"cannot read the toolkit's {report}: {err}") from None
    layers = summarize(per_sample)
    outputs = []
    if prepared.info.framework == "onnx":
        say("computing fp32 golden outputs with onnxruntime")
        outputs = _agreement(GoldenModel(config.model), golden_inputs, result["outputs"])
    dumps = None
    if keep_dumps is not None:
        keep_dumps.mkdir(parents=True, exist_ok=True)
        for snapshot in sorted(output_dir.glob("snapshot_*")):
            shutil.move(str(snapshot), keep_dumps / snapshot.name)
        dumps = str(keep_dumps)
    return AnalysisReport(
        model=str(config.model), target=config.target, quant=config.quant,
        samples=[[str(f) for f in files] for files in picked],
        layers=layers, worst=rank(layers)[:worst], outputs=outputs,
        golden="onnxruntime" if outputs else "none (TFLite source)", dumps=dumps,
    )


def _agreement(golden: GoldenModel, golden_inputs, sim_outputs) -> list[OutputAgreement]:
    per_output: dict[int, dict[str, list]] = {}
    shapes: dict[int, list[int]] = {}
    for inputs, sim_paths in zip(golden_inputs, sim_outputs):
        reference = golden.run(inputs)
        for k, (ref, path) in enumerate(zip(reference, sim_paths)):
            sim = np.load(path)
            stats = per_output.setdefault(k, {"cos": [], "euc": [], "max": [], "top1": []})
            shapes[k] = list(ref.shape)
            if sim.size != ref.size:
                raise ToolkitCrash(
                    f"simulator output {k} has {sim.size} values but the fp32 output "
                    f"{golden.output_names[k]} has {ref.size}: the outputs do not line up"
                )
            stats["cos"].append(cosine(ref, sim))
            stats["euc"].append(euclidean(ref, sim))
            stats["max"].append(max_abs(ref, sim))
            if is_class_vector(ref.shape):
                stats["top1"].append(top1(ref) == top1(sim))
    agreements = []
    for k, stats in sorted(per_output.items()):
        agreements.append(OutputAgreement(
            name=golden.output_names[k], shape=shapes[k],
            cos_mean=float(np.mean(stats["cos"])), cos_min=float(np.min(stats["cos"])),
            euc_mean=float(np.mean(stats["euc"])), max_abs=float(np.max(stats["max"])),
            top1_agreement=float(np.mean(stats["top1"])) if stats["top1"] else None,
        ))
    return agreements
