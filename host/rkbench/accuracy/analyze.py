"""`rkbench analyze`: the simulator's per-layer error over several samples, and how far the
quantized model's final outputs stay from the fp32 model's (onnxruntime) on each."""

from __future__ import annotations

import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rkbench.accuracy.evalset import EvalSet, OutputAgreement, prepare_eval
from rkbench.accuracy.layers import LayerSummary, ParseError, parse_error_analysis, rank, summarize
from rkbench.errors import ToolkitCrash, UsageError
from rkbench.model.build import BuildOptions, Prepared, Say
from rkbench.model.dataset import discard_txt
from rkbench.toolkit.worker import run_job


@dataclass
class AnalyzeOptions:
    samples: int = 4  # how many dataset samples, spread over the set
    files: tuple | None = None  # or exactly these samples (e.g. the inputs a board measures)
    worst: int = 10
    keep_dumps: Path | None = None  # keep the simulator's whole dumps here
    # Keep what a board comparison needs, in `keep_dir`: the simulator's final outputs and
    # the golden/simulator dumps of these tensors (per sample), nothing else.
    keep_tensors: list[str] | None = None
    keep_dir: Path | None = None


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
    sim_outputs: list[list[str]] = field(default_factory=list)  # in keep_dir, per sample
    tensors: list[dict] = field(default_factory=list)  # per sample: name -> {golden, simulator}
    evalset: EvalSet | None = None

    def to_dict(self) -> dict:
        return {
            "model": self.model,
            "target": self.target,
            "quant": self.quant,
            "samples": self.samples,
            "golden": self.golden,
            "dumps": self.dumps,
            "outputs": [asdict(o) for o in self.outputs],
            "worst_layers": [layer.to_dict() for layer in self.worst],
            "layers": [layer.to_dict() for layer in self.layers],
        }


def analyze(
    prepared: Prepared, options: BuildOptions, what: AnalyzeOptions, say: Say = lambda _: None
) -> AnalysisReport:
    config = prepared.config
    if not config.quantized:
        raise UsageError("analyze measures quantization error: use --quant w8a8 (or another quantized dtype)")
    if prepared.dataset is None:
        raise UsageError("analyze needs --dataset to calibrate and to pick samples from")
    workdir = options.cache.workdir("analyze")
    try:
        report = _analyze_in(workdir, prepared, options, what, say)
    except BaseException:
        # The log of a failed run stays (the error names it); the dumps never do.
        discard_txt(workdir / "dataset.txt")
        for child in workdir.iterdir():
            if child.name != "toolkit.log":
                shutil.rmtree(child) if child.is_dir() else child.unlink()
        raise
    discard_txt(workdir / "dataset.txt")
    shutil.rmtree(workdir, ignore_errors=True)
    return report


def _analyze_in(
    workdir: Path, prepared: Prepared, options: BuildOptions, what: AnalyzeOptions, say: Say
) -> AnalysisReport:
    config = prepared.config
    picked = what.files or prepared.dataset.pick(what.samples)
    inputs_dir = what.keep_dir if what.keep_dir is not None else workdir
    inputs_dir.mkdir(parents=True, exist_ok=True)
    evalset = prepare_eval(prepared, picked, inputs_dir)
    output_dir = workdir / "analysis"
    output_dir.mkdir()
    request = {
        "job": "analyze",
        "recipe": config.recipe(prepared.dataset.write_txt(workdir / "dataset.txt")),
        "analysis": {
            "samples": [[str(f) for f in files] for files in picked],
            "output_dir": str(output_dir),
            "keep_dumps": what.keep_dumps is not None,
            "keep_tensors": what.keep_tensors,
        },
        "evaluate": evalset.request(output_dir),
    }
    say(f"analysing {config.model.name} on the simulator with {len(picked)} sample(s)")
    result = run_job(
        request,
        workdir,
        options.worker,
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
    outputs = evalset.agreement(result["outputs"])
    dumps = None
    if what.keep_dumps is not None:
        what.keep_dumps.mkdir(parents=True, exist_ok=True)
        for snapshot in sorted(output_dir.glob("snapshot_*")):
            shutil.move(str(snapshot), what.keep_dumps / snapshot.name)
        dumps = str(what.keep_dumps)
    report = AnalysisReport(
        model=str(config.model),
        target=config.target,
        quant=config.quant,
        samples=[[str(f) for f in files] for files in picked],
        layers=layers,
        worst=rank(layers)[: what.worst],
        outputs=outputs,
        golden="onnxruntime" if outputs else "none (TFLite source)",
        dumps=dumps,
        evalset=evalset,
    )
    if what.keep_dir is not None:
        report.sim_outputs = [[_move(p, what.keep_dir) for p in sample] for sample in result["outputs"]]
        for index, kept in enumerate(result.get("tensors", [])):
            moved = {}
            for name, sides in kept.items():
                moved[name] = {
                    side: _move(path, what.keep_dir / f"tensors_{index:04d}" / side) for side, path in sides.items()
                }
            report.tensors.append(moved)
    return report


def _move(path: str, directory: Path) -> str:
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / Path(path).name
    shutil.move(path, target)
    return str(target)
