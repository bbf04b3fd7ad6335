"""`rkbench analyze`: the simulator's per-layer error over several samples, and how far the
quantized model's final outputs stay from the fp32 model's (onnxruntime) on each."""

from __future__ import annotations

import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .analysis import LayerSummary, ParseError, parse_error_analysis, rank, summarize
from .build import BuildOptions, Prepared, Say
from .errors import ToolkitCrash, UsageError
from .evalset import OutputAgreement, prepare_eval
from .worker import run_job


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
    evalset = prepare_eval(prepared, picked, workdir)
    output_dir = workdir / "analysis"
    output_dir.mkdir()
    request = {
        "job": "analyze",
        "recipe": config.recipe(prepared.dataset.write_txt(workdir / "dataset.txt")),
        "analysis": {
            "samples": [[str(f) for f in files] for files in picked],
            "output_dir": str(output_dir),
            "keep_dumps": keep_dumps is not None,
        },
        "evaluate": evalset.request(output_dir),
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
    outputs = evalset.agreement(result["outputs"])
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
