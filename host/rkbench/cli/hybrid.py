"""`rkbench hybrid`: keep the layers that need it in float, found by measurement."""

from __future__ import annotations

import json
from pathlib import Path

import click

from rkbench.accuracy.hybrid.cfg import DTYPES, read_cfg
from rkbench.accuracy.hybrid.search import (
    Candidate,
    HybridRecord,
    HybridSession,
    check_names,
    measure_on_board,
    not_reached,
    search,
    with_partners,
    write_artifacts,
)
from rkbench.cli.boards import connection_options, labgrid_options
from rkbench.cli.model import build_options, config_from_options, model_options, progress_printer
from rkbench.errors import UsageError
from rkbench.model.build import prepare
from rkbench.model.dataset import load_dataset
from rkbench.run.pipeline import BoardOptions


def parse_float_options(names: tuple[str, ...], dtype: str) -> dict[str, str]:
    layers = {}
    for item in names:
        name, _, layer_dtype = item.rpartition(":") if item.rsplit(":", 1)[-1] in DTYPES else (item, "", dtype)
        layers[name or item] = layer_dtype or dtype
    return layers


@click.command("hybrid")
@model_options
@click.option(
    "--eval",
    "eval_path",
    type=click.Path(path_type=Path),
    help="Evaluation set (dataset.txt or folder), kept apart from calibration. "
    "Default: every 4th sample of --dataset is held out.",
)
@click.option(
    "--auto",
    "mode",
    flag_value="auto",
    default=True,
    help="Search the smallest set of float layers reaching --target-cos (default).",
)
@click.option("--proposal", "mode", flag_value="proposal", help="The vendor's proposal, evaluated.")
@click.option(
    "--float",
    "float_names",
    multiple=True,
    metavar="TENSOR[:DTYPE]",
    help="Keep this tensor's layer in float (manual mode); repeat. Fused partners are added.",
)
@click.option(
    "--cfg",
    "cfg_path",
    type=click.Path(path_type=Path),
    help="Re-use the custom_quantize_layers of a cfg (ours or the vendor's).",
)
@click.option(
    "--dtype",
    type=click.Choice(["float16", "int16"]),
    default="float16",
    show_default=True,
    help="Type for float layers (int16 where an outlier overflows float16).",
)
@click.option(
    "--target-cos",
    type=click.FloatRange(-1, 1),
    default=0.995,
    show_default=True,
    help="Output cosine against fp32 to reach (mean over the evaluation set).",
)
@click.option("--max-builds", type=click.IntRange(1, 200), default=12, show_default=True)
@click.option(
    "--compare-vendor",
    is_flag=True,
    help="Also run the vendor's proposal and build(auto_hybrid=True) on the same data.",
)
@click.option("-o", "--out", "out_dir", type=click.Path(path_type=Path), default=Path("hybrid-out"), show_default=True)
@click.option("--json", "as_json", is_flag=True)
@click.option("--board", help="Also measure every candidate's latency on this board's NPU (rknnlite).")
@connection_options
def hybrid_command(
    model: Path,
    eval_path: Path | None,
    mode: str,
    float_names: tuple[str, ...],
    cfg_path: Path | None,
    dtype: str,
    target_cos: float,
    max_builds: int,
    compare_vendor: bool,
    out_dir: Path,
    as_json: bool,
    board: str | None,
    **opts,
) -> None:
    """Hybrid quantization of MODEL: which layers to keep in float, and what it buys."""
    say = progress_printer()
    prepared = prepare(config_from_options(model, opts))
    if not prepared.config.quantized or prepared.dataset is None:
        raise UsageError("hybrid quantization needs a quantized build: give --dataset and a --quant other than none")
    if float_names:
        mode = "manual"
    elif cfg_path is not None:
        mode = "cfg"
    calibration, evaluation = _split(prepared, eval_path)
    record = HybridRecord(
        mode=mode,
        target_cos=target_cos,
        calibration={"source": str(calibration.source), "samples": len(calibration.samples)},
        evaluation={"source": str(evaluation.source), "samples": min(16, len(evaluation.samples))},
    )
    session = HybridSession(prepared, calibration, evaluation, build_options(opts), say)
    try:
        step1 = session.step1(proposal=mode == "proposal")
        if mode == "auto":
            record.chosen = search(session, step1, record, target_cos, max_builds, dtype)
        elif mode == "proposal":
            record.proposal, record.proposal_baseline = step1.cfg.proposal or [], step1.cfg.baseline_cos
            record.chosen = session.evaluate(step1, step1.cfg.custom, "vendor proposal")
            record.candidates.append(record.chosen)
        else:
            requested = parse_float_options(float_names, dtype) if mode == "manual" else read_cfg(cfg_path).custom
            check_names(list(requested), step1)
            layers, record.added = with_partners(requested, step1)
            for name, partners in record.added.items():
                say(
                    f"added {', '.join(partners)} with {name}: fused into one op, floating one alone "
                    "would not take effect"
                )
            record.chosen = session.evaluate(step1, layers, "manual" if mode == "manual" else f"cfg {cfg_path.name}")
            record.candidates.append(record.chosen)
        if record.chosen.meets_target is None:
            record.chosen.meets_target = record.chosen.cos_mean >= target_cos
        record.builds = session.builds
        if compare_vendor:
            record.vendor.append(_vendor_proposal(session, record))
            record.vendor.append(session.vendor_auto_hybrid())
            record.vendor_builds = session.builds - record.builds
        paths = write_artifacts(record, step1, out_dir)  # kept even if the board fails below
        if board:
            measure_on_board(
                record.candidates + record.vendor,
                session.evalset,
                BoardOptions(
                    board=board,
                    trust_new=opts["trust_new"],
                    known_hosts=opts.get("known_hosts"),
                    identity=tuple(opts.get("identity") or ()),
                    ssh_config=opts.get("ssh_config"),
                    connect_timeout=opts["connect_timeout"],
                    python=opts.get("python"),
                    labgrid=labgrid_options(opts),
                ),
                say,
            )
            paths = write_artifacts(record, step1, out_dir)
    finally:
        session.close()
    if as_json:
        click.echo(json.dumps(record.to_dict(), indent=2))
    else:
        click.echo(format_tradeoff(record))
        click.echo("")
        for name, path in paths.items():
            click.echo(f"{name + ':':8} {path}")
    if mode == "auto" and not record.chosen.meets_target:
        raise not_reached(record, target_cos, max_builds)


def _split(prepared, eval_path):
    if eval_path is not None:
        evaluation = load_dataset(eval_path, prepared.info, prepared.shapes)
        return prepared.dataset, evaluation
    if len(prepared.dataset.samples) < 4:
        raise UsageError(
            f"{prepared.dataset.source} has {len(prepared.dataset.samples)} sample(s): give "
            "--eval with a separate evaluation set, or at least 4 samples to hold some out"
        )
    return prepared.dataset.split_holdout()


def _vendor_proposal(session: HybridSession, record: HybridRecord) -> Candidate:
    step1 = session.step1(proposal=True)
    record.proposal, record.proposal_baseline = step1.cfg.proposal or [], step1.cfg.baseline_cos
    candidate = session.evaluate(step1, step1.cfg.custom, "vendor proposal")
    candidate.meets_target = candidate.cos_mean >= (record.target_cos or 0)
    return candidate


def format_tradeoff(record: HybridRecord) -> str:
    lines = [
        f"Trade-off ({record.mode}; evaluation: {record.evaluation['samples']} sample(s) of "
        f"{record.evaluation['source']}, apart from calibration; target cos {record.target_cos}):"
    ]
    measured = any(c.board_p50_ms is not None for c in record.candidates + record.vendor)
    lines.append(
        f"    {'candidate':<28} {'cfg layers':>10} {'float in model':>14} {'size KB':>8} "
        f"{'cos mean':>9} {'cos min':>9} {'top-1':>6}" + ("   board p50/p99 ms" if measured else "")
    )
    rows = [(c, "") for c in record.candidates] + [(c, " (vendor)") for c in record.vendor]
    for candidate, suffix in rows:
        mark = "*" if candidate is record.chosen else " "
        top = "-" if candidate.top1 is None else f"{candidate.top1:.0%}"
        hit = " (cached)" if candidate.cached else ""
        lines.append(
            f"  {mark} {(candidate.label + suffix)[:28]:<28} {len(candidate.layers):>10} "
            f"{len(candidate.float_tensors):>14} {candidate.rknn_bytes / 1024:>8.1f} "
            f"{candidate.cos_mean:>9.5f} {candidate.cos_min:>9.5f} {top:>6}"
            + (
                f"   {candidate.board_p50_ms:.3f}/{candidate.board_p99_ms:.3f}"
                if candidate.board_p50_ms is not None
                else ""
            )
            + hit
        )
    if record.proposal:
        baseline = "?" if record.proposal_baseline is None else f"{record.proposal_baseline:.5f}"
        lines.append("")
        lines.append(f"The vendor's proposal (its own running output cosine; int8 alone: {baseline}):")
        for entry in record.proposal:
            note = "" if entry.running_cos is None else f"{entry.running_cos:.5f}"
            lines.append(f"    {entry.tensor[:48]:<48} {entry.dtype:<8} {note}")
    chosen = record.chosen
    if chosen is not None:
        lines.append("")
        lines.append(
            f"Chosen: {chosen.label}: {len(chosen.layers)} float layer(s)"
            + (f": {', '.join(chosen.layers)}" if chosen.layers else "")
            + f"; output cos {chosen.cos_mean:.5f}; {record.builds} build(s) run"
            + (f" (+{record.vendor_builds} for the vendor's)" if record.vendor_builds else "")
        )
    for note in record.notes:
        lines.append(f"Note: {note}")
    return "\n".join(lines)


COMMANDS = [hybrid_command]
