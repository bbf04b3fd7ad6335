"""What a hybrid search measures and keeps: candidates (feasible or not) and the record."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from rkbench.accuracy.evalset import OutputAgreement
from rkbench.accuracy.hybrid.cfg import ProposalEntry


@dataclass
class Candidate:
    label: str
    layers: dict[str, str]  # custom_quantize_layers entries (tensor -> dtype)
    float_tensors: list[str]  # what the built model reports it keeps in float ("Meet hybrid type")
    rknn_bytes: int
    cos_mean: float
    cos_min: float
    top1: float | None
    outputs: list[OutputAgreement]
    cached: bool
    rknn: str | None = None
    meets_target: bool | None = None
    board_p50_ms: float | None = None  # measured on a board, when one is given
    board_p99_ms: float | None = None
    npu_p50_ms: float | None = None  # the runtime's own NPU time, where the backend reports it
    npu_mem_mb: float | None = None  # the runtime's total DMA memory (RKNN_QUERY_MEM_SIZE), where reported
    key: str | None = None  # its build-cache key
    # A candidate the toolkit crashed on, hung on, refused, or whose outputs were not finite:
    # why, in the toolkit's own words where it said any. It is a result, not the end.
    failure: str | None = None
    groups: list[str] = field(default_factory=list)  # "dtype:first tensor" of each repair group

    @property
    def feasible(self) -> bool:
        return self.failure is None and math.isfinite(self.cos_mean)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["outputs"] = [asdict(o) for o in self.outputs]
        data["feasible"] = self.feasible
        return data

    @classmethod
    def failed(cls, label: str, layers: dict[str, str], reason: str) -> Candidate:
        return cls(
            label, dict(layers), [], 0, math.nan, math.nan, None, [], cached=False, failure=reason, meets_target=False
        )


def json_safe(value):
    """NaN and infinities (a candidate that overflowed) as null: JSON has no NaN."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def best_of(candidates: list[Candidate]) -> Candidate | None:
    """The feasible candidate with the highest output cosine (fewer entries on a tie)."""
    feasible = [c for c in candidates if c.feasible]
    return max(feasible, key=lambda c: (c.cos_mean, -len(c.layers)), default=None)


@dataclass
class HybridRecord:
    mode: str
    target_cos: float | None
    calibration: dict
    evaluation: dict
    builds: int = 0
    candidates: list[Candidate] = field(default_factory=list)
    chosen: Candidate | None = None
    vendor: list[Candidate] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    added: dict[str, list[str]] = field(default_factory=dict)  # user name -> partners we added
    vendor_builds: int = 0
    proposal: list[ProposalEntry] = field(default_factory=list)  # the vendor's, with running cos
    proposal_baseline: float | None = None
    interrupted: bool = False
    jobs: int = 1  # candidates built at once (parallel worker processes)

    def to_dict(self) -> dict:
        return {
            "mode": self.mode,
            "target_cos": self.target_cos,
            "builds": self.builds,
            "calibration": self.calibration,
            "evaluation": self.evaluation,
            "candidates": [c.to_dict() for c in self.candidates],
            "chosen": self.chosen.to_dict() if self.chosen else None,
            "vendor": [c.to_dict() for c in self.vendor],
            "vendor_builds": self.vendor_builds,
            "added_partners": self.added,
            "notes": self.notes,
            "proposal": {"int8_cos": self.proposal_baseline, "entries": [asdict(e) for e in self.proposal]},
            "interrupted": self.interrupted,
            "jobs": self.jobs,
        }
