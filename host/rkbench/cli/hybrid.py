"""`rkbench hybrid`: keep the layers that need it in float, found by measurement."""

from __future__ import annotations

import json
from pathlib import Path

import click

from rkbench.accuracy.hybrid.board import measure_on_board
from rkbench.accuracy.hybrid.candidates import Candidate, HybridRecord, best_of, json_safe
from rkbench.accuracy.hybrid.cfg import DTYPES, read_cfg
from rkbench.accuracy.hybrid.search import (
    check_dtypes,
    check_names,
    not_reached,
    search,
    with_partners,
    write_artifacts,
)
from rkbench.accuracy.hybrid.session import HybridSession, parallel_jobs
from rkbench.cli.boards import connection_options, labgrid_options
from rkbench.cli.model import build_options, config_from_options, model_options, progress_printer
from rkbench.errors import ConversionError, ToolkitCrash, UsageError
from rkbench.model.build import prepare
from rkbench.model.dataset import load_dataset
from rkbench.run.pipeline import BoardOptions


def parse_float_options(names: tuple[str, ...], dtype: str) -> tuple[dict[str, str], set[str]]:
    """--float NAME[:DTYPE] -> ({name: dtype}, the names whose dtype the user gave)."""
    layers, explicit = {}, set()
    for item in names:
        if item.rsplit(":", 1)[-1] in DTYPES:
            name, _, layer_dtype = item.rpartition(":")
            explicit.add(name)
        else:
            name, layer_dtype = item, dtype
        layers[name] = layer_dtype
    return layers, explicit


def _manual_dtypes(requested: dict[str, str], explicit: set[str], step1, say) -> dict[str, str]:
    """Names without a dtype take the one that works for them (said); names with one are
    checked before building."""
    chosen = {}
    for name, dtype in requested.items():
        if name in explicit:
            chosen[name] = dtype
            continue
        preferred = "float16" if dtype == "auto" else dtype
        works = step1.rules.dtype_for(name, preferred)
        if works is not None and works != preferred:
            say(f"{name}: {works}, not {preferred}: {step1.rules.refusal(name, preferred)}")
        chosen[name] = works or preferred
    check_dtypes(chosen, step1)
    return chosen


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
    type=click.Choice(["auto", "float16", "int16"]),
    default="auto",
    show_default=True,
    help="Type of the kept layers. auto: measured (--auto), float16 unless it cannot be (--float).",
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
    "--jobs",
    type=click.IntRange(1, 16),
    default=None,
    help="Candidates built at once, each in its own worker process. Default: the cores free now.",
)
@click.option(
    "--compare-vendor",
    is_flag=True,
    help="Also run the vendor's proposal and build(auto_hybrid=True) on the same data.",
)
@click.option(
    "--seed-proposal",
    is_flag=True,
    help="--auto: also try the groups of the vendor's proposal (one build) and shrink them when they "
    "pass with fewer entries than the ranked search finds.",
)
@click.option("-o", "--out", "out_dir", type=click.Path(path_type=Path), default=Path("hybrid-out"), show_default=True)
@click.option("--json", "as_json", is_flag=True)
@click.option("--board", help="Also measure every candidate's latency (and NPU time and memory) on this board's NPU.")
@click.option(
    "--board-backend",
    type=click.Choice(["auto", "rknnrt", "rknnlite"]),
    default="auto",
    show_default=True,
    help="Runner backend for --board; rknnrt (auto prefers it) adds the runtime's NPU time and memory to the table.",
)
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
    jobs: int | None,
    compare_vendor: bool,
    seed_proposal: bool,
    out_dir: Path,
    as_json: bool,
    board: str | None,
    board_backend: str,
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
    session = HybridSession(
        prepared, calibration, evaluation, build_options(opts), say, jobs=parallel_jobs(jobs) if mode == "auto" else 1
    )
    step1 = None
    try:
        step1 = session.step1(proposal=mode == "proposal")
        if mode == "auto":
            record.jobs = session.jobs
            if session.jobs > 1:
                say(f"building up to {session.jobs} candidates at once")
            seed = _proposal_seed(session, say) if seed_proposal else None
            record.chosen = search(session, step1, record, target_cos, max_builds, dtype, seed=seed)
        elif mode == "proposal":
            record.proposal, record.proposal_baseline = step1.cfg.proposal or [], step1.cfg.baseline_cos
            record.chosen = session.evaluate(step1, step1.cfg.custom, "vendor proposal")
            record.candidates.append(record.chosen)
        else:
            if mode == "manual":
                requested, explicit = parse_float_options(float_names, dtype)
            else:
                requested, explicit = read_cfg(cfg_path).custom, set(read_cfg(cfg_path).custom)
            check_names(list(requested), step1)
            requested = _manual_dtypes(requested, explicit, step1, say)
            layers, record.added = with_partners(requested, step1)
            for name, partners in record.added.items():
                say(
                    f"added {', '.join(partners)} with {name}: fused into one op, floating one alone "
                    "would not take effect"
                )
            record.chosen = session.evaluate(step1, layers, "manual" if mode == "manual" else f"cfg {cfg_path.name}")
            record.candidates.append(record.chosen)
        if record.chosen.meets_target is None:
            record.chosen.meets_target = record.chosen.feasible and record.chosen.cos_mean >= target_cos
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
                backend=board_backend,
            )
            paths = write_artifacts(record, step1, out_dir)
    except KeyboardInterrupt:
        # What was measured stays: hybrid.json with every candidate, and the best so far.
        record.interrupted = True
        record.builds = record.builds or session.builds
        if record.chosen is None or not record.chosen.feasible:
            record.chosen = best_of(record.candidates)
        record.notes.append("interrupted: the best candidate measured so far is written out")
        paths = write_artifacts(record, step1, out_dir)
        click.echo(format_tradeoff(record), err=True)
        click.echo(f"kept: {', '.join(str(p) for p in paths.values())}", err=True)
        raise
    finally:
        session.close()
    if as_json:
        click.echo(json.dumps(json_safe(record.to_dict()), indent=2))
    else:
        click.echo(format_tradeoff(record))
        click.echo("")
        for name, path in paths.items():
            click.echo(f"{name + ':':8} {path}")
    if mode == "auto" and not record.chosen.meets_target:
        raise not_reached(record, target_cos, max_builds)
    if mode != "auto" and record.chosen.failure:
        raise ConversionError(
            f"{record.chosen.label} could not be built: {record.chosen.failure} "
            f"(hybrid.json in {out_dir} says what was tried)"
        )


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


def _proposal_seed(session: HybridSession, say) -> list[str] | None:
    """The tensors of the vendor's proposal, to seed the search; without them it goes on."""
    try:
        return list(session.step1(proposal=True).cfg.custom)
    except (ConversionError, ToolkitCrash, UsageError) as err:
        say(f"--seed-proposal: the vendor's proposal failed ({err}); searching without it")
        return None


def _vendor_proposal(session: HybridSession, record: HybridRecord) -> Candidate:
    try:
        step1 = session.step1(proposal=True)
    except (ConversionError, ToolkitCrash, UsageError) as err:  # a result of the comparison
        return Candidate.failed("vendor proposal", {}, f"hybrid step 1 with proposal=True failed: {err}")
    record.proposal, record.proposal_baseline = step1.cfg.proposal or [], step1.cfg.baseline_cos
    candidate = session.evaluate(step1, step1.cfg.custom, "vendor proposal")
    candidate.meets_target = candidate.feasible and candidate.cos_mean >= (record.target_cos or 0)
    return candidate


def _dtypes(candidate: Candidate) -> str:
    counts: dict[str, int] = {}
    for dtype in candidate.layers.values():
        counts[dtype] = counts.get(dtype, 0) + 1
    return " ".join(f"{dtype[0] + dtype[-2:]}x{n}" for dtype, n in sorted(counts.items())) or "-"


def format_tradeoff(record: HybridRecord) -> str:
    lines = [
        f"Trade-off ({record.mode}; evaluation: {record.evaluation['samples']} sample(s) of "
        f"{record.evaluation['source']}, apart from calibration; target cos {record.target_cos}):"
    ]
    everyone = record.candidates + record.vendor
    board = any(c.board_p50_ms is not None for c in everyone)
    npu = any(c.npu_p50_ms is not None for c in everyone)
    memory = any(c.npu_mem_mb is not None for c in everyone)
    lines.append(
        f"    {'candidate':<30} {'entries':>7} {'dtypes':<14} {'float in model':>14} {'size KB':>8} "
        f"{'cos mean':>9} {'cos min':>9} {'top-1':>6}"
        + ("  board p50/p99 ms" if board else "")
        + ("  NPU p50 ms" if npu else "")
        + ("  NPU MB" if memory else "")
    )
    rows = [(c, "") for c in record.candidates] + [(c, " (vendor)") for c in record.vendor]
    failures = []
    for candidate, suffix in rows:
        mark = "*" if candidate is record.chosen else " "
        top = "-" if candidate.top1 is None else f"{candidate.top1:.0%}"
        hit = " (cached)" if candidate.cached else ""
        head = f"  {mark} {(candidate.label + suffix)[:30]:<30} {len(candidate.layers):>7} {_dtypes(candidate):<14} "
        if candidate.failure:
            failures.append(candidate)
            lines.append(head + f"{'-':>14} {'-':>8} {'failed':>9} {'[' + str(len(failures)) + ']':>9}{hit}")
            continue
        lines.append(
            head + f"{len(candidate.float_tensors):>14} {candidate.rknn_bytes / 1024:>8.1f} "
            f"{candidate.cos_mean:>9.5f} {candidate.cos_min:>9.5f} {top:>6}"
            + (
                f"  {candidate.board_p50_ms:>8.3f}/{candidate.board_p99_ms:.3f}"
                if candidate.board_p50_ms is not None
                else ("  " + " " * 16 if board else "")
            )
            + (
                f"  {candidate.npu_p50_ms:>10.3f}"
                if candidate.npu_p50_ms is not None
                else ("  " + " " * 10 if npu else "")
            )
            + (f"  {candidate.npu_mem_mb:>6.1f}" if candidate.npu_mem_mb is not None else "")
            + hit
        )
    for number, candidate in enumerate(failures, start=1):
        lines.append(f"    [{number}] {candidate.label}: {candidate.failure}")
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
        shown = chosen.groups[:12] + ([f"... {len(chosen.groups) - 12} more"] if len(chosen.groups) > 12 else [])
        groups = f"; groups (dtype:last tensor): {', '.join(shown)}" if chosen.groups else ""
        lines.append(
            f"Chosen: {chosen.label}: {len(chosen.layers)} entries ({_dtypes(chosen)})"
            + (
                f": {', '.join(f'{t}:{d}' for t, d in chosen.layers.items())}"
                if chosen.layers and len(chosen.layers) <= 24
                else ""
            )
            + groups
            + f"; output cos {chosen.cos_mean:.5f}; {record.builds} build(s) run"
            + (f" (+{record.vendor_builds} for the vendor's)" if record.vendor_builds else "")
        )
    for note in record.notes:
        lines.append(f"Note: {note}")
    return "\n".join(lines)


COMMANDS = [hybrid_command]
