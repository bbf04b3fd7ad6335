"""Per-layer board error without rknn_server.

The vendor gives per-layer runtime error only over adb with rknn_server running. We build
a debug variant of the model whose intermediate tensors are extra outputs
(`load_onnx(outputs=...)`, in chunks), run it on the board through our own transport, and
compare each tensor with the fp32 golden and with the simulator on the same inputs (both
from the simulator's accuracy analysis dumps). A layer where the board departs from the
simulator points at the runtime or driver, not at quantization.

Tensors fused away inside the NPU graph cannot be outputs: asked-for names may be missing;
we read which outputs a debug build really has from the toolkit's verbose log. Making a
tensor an output can also stop it from being fused with its neighbour, so a debug build
computes a few layers slightly differently from the real one; the simulator columns come
from the real build.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from rkbench.accuracy.evalset import EvalSet
from rkbench.accuracy.layers import LayerSummary
from rkbench.accuracy.metrics import cosine
from rkbench.model.build import BuildOptions, Prepared, Say
from rkbench.results.model import LayerError
from rkbench.toolkit.worker import run_job

OUTPUT_OPERATOR = re.compile(r"OutputOperator:(\S+)")
# Board vs simulator on the same debug graph: the simulator models the NPU's integer
# arithmetic, so a correct runtime stays very close; under this the board computes
# something else.
DEPARTS_BELOW = 0.99


@dataclass(frozen=True)
class DebugModel:
    rknn: Path
    outputs: list[str]  # the names of the model's outputs, in order, as built
    simulator: list[dict[str, str]]  # per sample: output name -> the simulator's .npy


def onnx_node_outputs(model: Path) -> set[str]:
    import onnx

    graph = onnx.load(str(model), load_external_data=False).graph
    return {out for node in graph.node for out in node.output}


def tensors_to_expose(layers: list[LayerSummary], model: Path, final_outputs: list[str]) -> list[str]:
    """The measured (not fused) layers whose tensors the source model names, graph order."""
    named = onnx_node_outputs(model)
    return [
        layer.tensor
        for layer in sorted(layers, key=lambda layer: layer.index)
        if not layer.fused and layer.tensor in named and layer.tensor not in final_outputs
    ]


def build_debug_models(
    prepared: Prepared,
    tensors: list[str],
    final_outputs: list[str],
    evalset: EvalSet,
    options: BuildOptions,
    workdir: Path,
    say: Say,
    chunk: int = 64,
) -> list[DebugModel]:
    """Build each chunk's debug variant and run it on the simulator on the same inputs:
    board and simulator are then compared on the same compiled graph."""
    models = []
    for number, start in enumerate(range(0, len(tensors), chunk), start=1):
        part = tensors[start : start + chunk]
        config = replace(prepared.config, outputs=tuple(part + final_outputs))
        say(f"per-layer: debug build {number} with {len(part)} intermediate outputs")
        job = workdir / f"debug_{number:03d}"
        (job / "outputs").mkdir(parents=True)
        result = run_job(
            {
                "job": "build",
                "recipe": config.recipe(prepared.dataset.write_txt(job / "dataset.txt")),
                "export_path": str(job / "model.rknn"),
                "verbose": True,
                "evaluate": evalset.request(job / "outputs"),
            },
            job,
            options.worker,
            what=f"{prepared.config.model} (per-layer debug build {number})",
        )
        names = []
        for name in OUTPUT_OPERATOR.findall((job / "toolkit.log").read_text(errors="replace")):
            if name not in names:
                names.append(name)
        simulator = [dict(zip(names, sample)) for sample in result["outputs"]]
        models.append(DebugModel(job / "model.rknn", names, simulator))
    return models


def _aligned(board: np.ndarray, reference: np.ndarray) -> np.ndarray | None:
    """The board tensor in the reference's layout (NCHW vs NHWC), or None if they differ."""
    if board.size != reference.size:
        return None
    if board.shape == reference.shape or board.ndim != 4:
        return board.reshape(reference.shape)
    if board.transpose(0, 3, 1, 2).shape == reference.shape:
        return board.transpose(0, 3, 1, 2)
    return board.reshape(reference.shape)


def compare_layers(
    layers: list[LayerSummary], kept: list[dict], simulator: list[dict[str, str]], board: list[dict[str, str]]
) -> list[LayerError]:
    """Rows as the vendor prints them: simulator_error next to runtime_error, per layer.

    kept: per sample {tensor: {"golden": npy, ...}} from the real model's analysis;
    simulator / board: per sample {tensor: npy} of the debug builds on each.
    """
    rows = []
    for layer in sorted(layers, key=lambda layer: layer.index):
        if layer.fused:
            continue
        vs_golden, vs_sim = [], []
        for sample_kept, sample_sim, sample_board in zip(kept, simulator, board):
            name = layer.tensor
            if name not in sample_kept or name not in sample_board or name not in sample_sim:
                continue
            golden = np.load(sample_kept[name]["golden"])
            measured = _aligned(np.load(sample_board[name]), golden)
            reference = _aligned(np.load(sample_sim[name]), golden)
            if measured is None or reference is None:
                continue
            vs_golden.append(cosine(golden, measured))
            vs_sim.append(cosine(reference, measured))
        rt_entire = float(np.mean(vs_golden)) if vs_golden else None
        rt_sim = float(np.mean(vs_sim)) if vs_sim else None
        rows.append(
            LayerError(
                index=layer.index,
                op=layer.op,
                tensor=layer.tensor,
                sim_entire_cos=layer.entire_cos_mean,
                sim_single_cos=layer.single_cos_mean,
                rt_entire_cos=rt_entire,
                rt_single_sim_cos=rt_sim,
                board_departs=rt_sim is not None and rt_sim < DEPARTS_BELOW,
            )
        )
    return rows


RunDebug = Callable[[DebugModel], list[dict[str, str]]]  # per sample: output name -> local npy


def per_layer_errors(
    prepared: Prepared,
    layers: list[LayerSummary],
    kept: list[dict],
    final_outputs: list[str],
    evalset: EvalSet,
    options: BuildOptions,
    run_debug: RunDebug,
    workdir: Path,
    say: Say,
    chunk: int = 64,
) -> list[LayerError]:
    tensors = tensors_to_expose(layers, prepared.config.model, final_outputs)
    simulator: list[dict[str, str]] = [dict() for _ in kept]
    board: list[dict[str, str]] = [dict() for _ in kept]
    for model in build_debug_models(prepared, tensors, final_outputs, evalset, options, workdir, say, chunk):
        for index, outputs in enumerate(run_debug(model)[: len(board)]):
            board[index].update(outputs)
            simulator[index].update(model.simulator[index])
    rows = compare_layers(layers, kept, simulator, board)
    missing = sum(1 for row in rows if row.rt_entire_cos is None)
    if missing:
        say(
            f"per-layer: {missing} layer(s) have no board figures (toolkit-internal tensors, or fused inside the NPU graph)"
        )
    return rows
