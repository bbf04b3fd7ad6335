"""Model commands: build, analyze, inspect."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click

from rkbench.model import examples
from rkbench.model.build import BuildOptions, build, prepare, write_outputs
from rkbench.model.cache import BuildCache
from rkbench.model.config import ALGORITHMS, METHODS, QUANT_DTYPES, BuildConfig, from_rknn_convert_yaml, parse_numbers
from rkbench.model.info import check_readable, framework_of
from rkbench.model.rknn_file import RknnInfo, TensorInfo, read_rknn
from rkbench.toolkit.worker import WorkerOptions


def progress_printer(quiet: bool = False):
    started = time.monotonic()

    def say(message: str) -> None:
        if not quiet:
            click.echo(f"[{time.monotonic() - started:6.1f}s] {message}", err=True)

    return say


def model_options(func, positional: bool = True):
    """Options shared by build and analyze (and other commands that build)."""
    options = [
        click.argument("model", type=click.Path(path_type=Path))
        if positional
        else click.option(
            "--model",
            "model",
            type=click.Path(path_type=Path),
            required=True,
            help="The model: .onnx, .tflite, an rknn_convert .yml, or an already built .rknn.",
        ),
        click.option(
            "--target",
            help="Target SoC (rk3588, rk3576, rk3568, rk3566, rk3562, ...). "
            "Default rk3588, or the one in an rknn_convert .yml.",
        ),
        click.option(
            "--dataset",
            type=click.Path(path_type=Path),
            help="Calibration data: the vendor's dataset.txt, or a folder of images/.npy.",
        ),
        click.option("--quant", help=f"Quantization: {', '.join(QUANT_DTYPES)} (default w8a8)."),
        click.option("--algorithm", help=f"Quantization algorithm: {', '.join(ALGORITHMS)}."),
        click.option("--method", help=f"Quantization method: {', '.join(METHODS)}."),
        click.option(
            "--mean", multiple=True, help="Mean values of an input, e.g. 123.675,116.28,103.53 (once per input)."
        ),
        click.option("--std", multiple=True, help="Std values of an input, e.g. 58.395,57.12,57.375."),
        click.option(
            "--input-size", multiple=True, help="Fixed shape for a dynamic input, e.g. 1,3,640,640 (once per input)."
        ),
        click.option("--outputs", help="Comma-separated tensor names to cut the graph at (ONNX)."),
        click.option("--optimization-level", type=click.IntRange(0, 3)),
        click.option(
            "--toolkit-python",
            envvar="RKBENCH_TOOLKIT_PYTHON",
            help="Interpreter that has rknn-toolkit2 (default: this one).",
        ),
        click.option(
            "--timeout",
            type=float,
            default=1800.0,
            show_default=True,
            help="Seconds a toolkit step may stay silent before it is stopped.",
        ),
        click.option("--no-cache", is_flag=True, help="Build again even if the cache has this build."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def config_from_options(model: Path, opts: dict) -> BuildConfig:
    if model.suffix.lower() in (".yml", ".yaml"):
        check_readable(model, "rknn_convert config")
        config = from_rknn_convert_yaml(model, opts.get("target"))
    else:
        check_readable(model)
        config = BuildConfig(
            model=model.resolve(),
            framework=framework_of(model),
            target=(opts.get("target") or "rk3588").lower(),
            name=model.stem,
        )
    changes: dict = {}
    if opts.get("target"):
        changes["target"] = opts["target"].lower()
    for key in ("quant", "algorithm", "method", "optimization_level"):
        if opts.get(key) is not None:
            changes[key] = opts[key]
    if opts.get("dataset") is not None:
        changes["dataset"] = opts["dataset"]
    if opts.get("mean"):
        changes["mean"] = tuple(parse_numbers(m, "--mean") for m in opts["mean"])
    if opts.get("std"):
        changes["std"] = tuple(parse_numbers(s, "--std") for s in opts["std"])
    if opts.get("input_size"):
        changes["input_sizes"] = tuple(parse_numbers(s, "--input-size", int) for s in opts["input_size"])
    if opts.get("outputs"):
        changes["outputs"] = tuple(n.strip() for n in opts["outputs"].split(",") if n.strip())
    return _replace(config, changes)


def _replace(config: BuildConfig, changes: dict) -> BuildConfig:
    from dataclasses import replace

    return replace(config, **changes)


def build_options(opts: dict) -> BuildOptions:
    python = opts.get("toolkit_python") or sys.executable
    return BuildOptions(
        worker=WorkerOptions(python=python, step_timeout=opts.get("timeout") or 1800.0),
        cache=BuildCache(),
        use_cache=not opts.get("no_cache"),
    )


@click.command("build")
@model_options
@click.option(
    "-o",
    "--out",
    "out_dir",
    type=click.Path(path_type=Path),
    default=Path("."),
    show_default=True,
    help="Where to write model.rknn and build.json.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the build record as JSON.")
def build_command(model: Path, out_dir: Path, as_json: bool, **opts) -> None:
    """Build MODEL (.onnx, .tflite, or an rknn_convert .yml) into an RKNN model."""
    say = progress_printer()
    prepared = prepare(config_from_options(model, opts))
    result = build(prepared, build_options(opts), say)
    paths = write_outputs(result, out_dir)
    if as_json:
        click.echo(
            json.dumps(
                {
                    **result.record,
                    "cache": "hit" if result.cached else "miss",
                    "outputs": {k: str(v) for k, v in paths.items()},
                },
                indent=2,
            )
        )
    else:
        click.echo(
            f"{paths['rknn']}  ({result.record['rknn']['bytes']} bytes, "
            f"{'from the cache' if result.cached else 'built'}; record in {paths['build_json']})"
        )


@click.command("analyze")
@model_options
@click.option(
    "--samples",
    type=click.IntRange(1, 1000),
    default=4,
    show_default=True,
    help="How many dataset samples to analyse (spread over the set).",
)
@click.option(
    "--keep-dumps",
    type=click.Path(path_type=Path),
    help="Keep the simulator's per-tensor dumps in this folder (they can reach gigabytes).",
)
@click.option("--worst", type=click.IntRange(1, 10000), default=10, show_default=True, help="How many layers to list.")
@click.option(
    "-o",
    "--out",
    "out_file",
    type=click.Path(path_type=Path),
    help="Also write the full analysis as JSON to this file.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the analysis as JSON.")
def analyze_command(
    model: Path, samples: int, keep_dumps: Path | None, worst: int, out_file: Path | None, as_json: bool, **opts
) -> None:
    """Per-layer quantization error of MODEL on the simulator, and its outputs against fp32."""
    say = progress_printer()
    prepared = prepare(config_from_options(model, opts))
    from rkbench.accuracy.analyze import AnalyzeOptions, analyze

    report = analyze(
        prepared, build_options(opts), AnalyzeOptions(samples=samples, worst=worst, keep_dumps=keep_dumps), say
    )
    document = report.to_dict()
    if out_file is not None:
        out_file.parent.mkdir(parents=True, exist_ok=True)
        out_file.write_text(json.dumps(document, indent=2))
    if as_json:
        click.echo(json.dumps(document, indent=2))
    else:
        click.echo(format_report(report))


def _num(value, digits: int = 5) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def format_report(report) -> str:  # an accuracy.analyze.AnalysisReport
    lines = [
        f"{report.model}  target {report.target}  {report.quant}  {len(report.samples)} sample(s) on the simulator"
    ]
    if report.outputs:
        lines.append("")
        lines.append(f"Final outputs, quantized simulator vs fp32 ({report.golden}):")
        lines.append(f"  {'output':<32} {'shape':<16} {'cos mean':>9} {'cos min':>9} {'max abs':>9}  top-1")
        for out in report.outputs:
            top = "-" if out.top1_agreement is None else f"{out.top1_agreement:.0%}"
            lines.append(
                f"  {out.name[:32]:<32} {str(out.shape):<16} {_num(out.cos_mean):>9} "
                f"{_num(out.cos_min):>9} {_num(out.max_abs, 4):>9}  {top}"
            )
    lines.append("")
    lines.append("Layers losing accuracy, worst own (single) error first; 'entire' adds what the layers before lost:")
    lines.append(
        f"  {'#':>4} {'op':<14} {'tensor':<36} {'single cos':>10} {'entire cos':>10} "
        f"{'single euc':>10}  (min over samples)"
    )
    for layer in report.worst:
        marks = f"  {','.join(layer.markers)}" if layer.markers else ""
        lines.append(
            f"  {layer.index:>4} {layer.op[:14]:<14} {layer.tensor[:36]:<36} "
            f"{_num(layer.single_cos_min):>10} {_num(layer.entire_cos_min):>10} "
            f"{_num(layer.single_euc_mean, 3):>10}{marks}"
        )
    if report.dumps:
        lines.append("")
        lines.append(f"Simulator dumps kept in {report.dumps}")
    return "\n".join(lines)


@click.command("inspect")
@click.argument("model", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print what the file says as JSON.")
def inspect_command(model: Path, as_json: bool) -> None:
    """What an .rknn file says: target platform, toolkit version, inputs and outputs."""
    info = read_rknn(model)
    click.echo(json.dumps(info.to_dict(), indent=2) if as_json else format_rknn_info(info))


def _numbers(values: list[float] | None) -> str:
    return ",".join(f"{v:g}" for v in values) if values is not None else "?"


def _dims(shape: list[int]) -> str:
    return "[" + ",".join(str(d) for d in shape) + "]"


def _quantization(t: TensorInfo) -> str:
    if t.quantization == "none":
        return "none (float)"
    text = f"{t.quantization} zp {t.zero_point} scale {t.scale:.6g}" if t.scale is not None else t.quantization
    if t.calibrated_range:
        text += f" range {t.calibrated_range[0]:.4g}..{t.calibrated_range[1]:.4g}"
    return text


def _tensor_rows(tensors: list[TensorInfo], inputs: bool) -> list[str]:
    header = ["#", "name", "dtype", "layout", "shape", "model shape", "quantization"] + (
        ["mean / std"] if inputs else []
    )
    rows = [header]
    for t in tensors:
        row = [str(t.index), t.name, t.dtype, t.layout or "?", _dims(t.runtime_shape), _dims(t.shape), _quantization(t)]
        if inputs:
            row.append(f"{_numbers(t.mean)} / {_numbers(t.std)}" if t.mean is not None else "-")
        rows.append(row)
        if t.dynamic_shapes:
            rows.append(["", "  accepts", "", "", "", " ".join(_dims(s) for s in t.dynamic_shapes), ""] + [""] * inputs)
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return ["  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]


def format_rknn_info(info: RknnInfo) -> str:
    cpu = ", ".join(f"{op} x{n}" if n > 1 else op for op, n in sorted(info.cpu_operators.items()))
    npu_code = f" (NPU code {info.npu_format})" if info.npu_format else ""
    lines = [
        f"{info.path}: .rknn format {info.format_version}, {info.file_bytes:,} bytes",
        f"  target platform  {', '.join(info.target_platforms) or '? (the file names none)'}{npu_code}",
        f"  built by         rknn-toolkit2 {info.toolkit_version or '?'}, compiler {info.compiler_version or '?'}",
        f"  source           {info.source_framework or '?'}",
        f"  shapes           {'dynamic' if info.dynamic_shape else 'static'}",
    ]
    if info.operators is not None:
        lines.append(f"  operators        {info.operators}" + (f"; on the CPU: {cpu}" if cpu else ""))
    lines.append("inputs (as the runtime presents them; model shape: as in the source model)")
    lines += _tensor_rows(info.inputs, inputs=True)
    lines.append("outputs")
    lines += _tensor_rows(info.outputs, inputs=False)
    lines += [f"note: {note}" for note in info.notes]
    return "\n".join(lines)


def example_config(example: examples.Example, workdir: Path, count: int) -> BuildConfig:
    dataset = examples.write_calibration_set(example, workdir / "calibration", count)
    model = examples.model_path(example)
    return BuildConfig(
        model=model,
        framework="onnx",
        target="rk3588",
        quant="w8a8",
        mean=(example.mean,),
        std=(example.std,),
        input_sizes=((1, 3, example.height, example.width),),
        dataset=dataset,
        name=example.name,
    )


COMMANDS = [build_command, analyze_command, inspect_command]
