"""Samples prepared once for the simulator and for the fp32 reference, and the agreement of
simulator outputs with that reference (cosine, euclidean, max abs error, top-1)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rkbench.accuracy.golden import GoldenModel
from rkbench.accuracy.metrics import Agreement
from rkbench.errors import ToolkitCrash
from rkbench.model.dataset import prepare_sample


@dataclass
class OutputAgreement:
    """One output tensor of a quantized simulator model against the fp32 golden."""

    name: str
    shape: list[int]
    cos_mean: float
    cos_min: float
    euc_mean: float
    max_abs: float
    top1_agreement: float | None  # fraction of samples whose arg-max matches; class outputs only


@dataclass
class EvalSet:
    files: tuple[tuple[Path, ...], ...]
    arrays: list[list[str]]  # .npy per input per sample, as the simulator (and a board) gets them
    data_format: list[str | None]
    golden: list[list[np.ndarray]] | None  # fp32 outputs per sample (None for TFLite sources)
    output_names: list[str]
    digest: str  # of the sample files: part of cached evaluation keys

    def request(self, output_dir: Path) -> dict:
        """The toolkit worker's `evaluate` section for these samples."""
        return {"arrays": self.arrays, "data_format": self.data_format, "output_dir": str(output_dir)}

    def agreement(self, sim_outputs: list[list[str]]) -> list[OutputAgreement]:
        if self.golden is None:
            return []
        agreement = Agreement()
        for reference, paths in zip(self.golden, sim_outputs):
            for k, (ref, path) in enumerate(zip(reference, paths)):
                sim = np.load(path)
                if sim.size != ref.size:
                    raise ToolkitCrash(
                        f"simulator output {k} has {sim.size} values but the fp32 output "
                        f"{self.output_names[k]} has {ref.size}: the outputs do not line up"
                    )
                agreement.add(k, ref, sim)
        return [OutputAgreement(name=self.output_names[k], **row) for k, row in agreement.summary()]


def prepare_eval(prepared, samples, workdir: Path) -> EvalSet:
    """Write each sample's simulator inputs as .npy in workdir and compute its fp32 outputs."""
    config = prepared.config
    golden_model = GoldenModel(config.model) if prepared.info.framework == "onnx" else None
    arrays, golden, formats = [], [], []
    digest = hashlib.sha256()
    for index, files in enumerate(samples):
        sample = prepare_sample(files, prepared.info, prepared.shapes, config.mean, config.std)
        paths = []
        for k, array in enumerate(sample.device):
            path = workdir / f"input_{index:04d}_{k}.npy"
            np.save(path, array)
            paths.append(str(path))
            digest.update(array.tobytes())
        arrays.append(paths)
        formats = sample.data_format
        if golden_model is not None:
            golden.append(golden_model.run(sample.golden))
    return EvalSet(
        files=tuple(samples),
        arrays=arrays,
        data_format=formats,
        golden=golden if golden_model is not None else None,
        output_names=golden_model.output_names if golden_model else [],
        digest=digest.hexdigest(),
    )


def summary_cos(agreements: list[OutputAgreement]) -> tuple[float, float]:
    """(mean, min) output cosine over all outputs: the figure a search aims at."""
    if not agreements:
        return float("nan"), float("nan")
    return (float(np.mean([a.cos_mean for a in agreements])), float(min(a.cos_min for a in agreements)))
