"""Per-layer quantization error: parse the toolkit's error_analysis.txt, combine samples,
rank the layers that lose accuracy."""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass

ANSI = re.compile(r"\x1b\[[0-9;]*m")
ROW = re.compile(r"^\[(?P<op>[^\]]+)\]\s+(?P<tensor>\S+)\s*(?P<rest>.*)$")
# The toolkit prints every value with 5 decimals in fixed-width columns; a euclidean value
# wider than its column runs into the next cosine ("13815.800780.98377"): two values.
FUSED_VALUES = re.compile(r"(?:-?\d+\.\d{5}){2,}")
VALUE = re.compile(r"-?\d+\.\d{5}")


@dataclass(frozen=True)
class LayerRow:
    """One row of error_analysis.txt. Values are None where the toolkit printed none:
    a layer fused into the next one has an empty row, and markers such as q_nan stand
    where a number would."""

    index: int
    op: str
    tensor: str
    fused: bool
    entire_cos: float | None = None
    entire_euc: float | None = None
    single_cos: float | None = None
    single_euc: float | None = None
    # Two more pairs appear when the analysis ran on a board (runtime_error columns).
    runtime_entire_cos: float | None = None
    runtime_entire_euc: float | None = None
    runtime_single_cos: float | None = None
    runtime_single_euc: float | None = None
    markers: tuple[str, ...] = ()


COLUMNS = (
    "entire_cos",
    "entire_euc",
    "single_cos",
    "single_euc",
    "runtime_entire_cos",
    "runtime_entire_euc",
    "runtime_single_cos",
    "runtime_single_euc",
)


class ParseError(ValueError):
    pass


def parse_error_analysis(text: str) -> list[LayerRow]:
    text = ANSI.sub("", text)
    lines = text.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.startswith("-----")) + 1
    except StopIteration:
        raise ParseError("no table found (the dashed line under the header is missing)") from None
    rows = []
    for line in lines[start:]:
        line = line.rstrip()
        if not line.strip():
            continue
        match = ROW.match(line.strip())
        if not match:
            raise ParseError(f"unexpected row: {line.strip()[:120]}")
        tokens = []
        for token in match["rest"].replace("|", " ").split():
            tokens += VALUE.findall(token) if FUSED_VALUES.fullmatch(token) else [token]
        values, markers = [], []
        for token in tokens:
            try:
                values.append(float(token))
            except ValueError:
                values.append(None)
                markers.append(token)
        fields = dict(zip(COLUMNS, values))
        rows.append(
            LayerRow(len(rows), match["op"], match["tensor"], fused=not tokens, markers=tuple(markers), **fields)
        )
    return rows


@dataclass(frozen=True)
class LayerSummary:
    """A layer over all analysed samples: mean and worst (min) cosine, mean euclidean."""

    index: int
    op: str
    tensor: str
    fused: bool
    samples: int
    entire_cos_mean: float | None
    entire_cos_min: float | None
    single_cos_mean: float | None
    single_cos_min: float | None
    entire_euc_mean: float | None
    single_euc_mean: float | None
    markers: tuple[str, ...]

    @property
    def single_loss(self) -> float:
        """How much this layer alone loses (1 - worst single cosine); fused rows lose nothing."""
        return 0.0 if self.single_cos_min is None else 1.0 - self.single_cos_min

    def to_dict(self) -> dict:
        return dict(asdict(self), single_loss=self.single_loss)


def summarize(per_sample: list[list[LayerRow]]) -> list[LayerSummary]:
    """Combine the rows of several samples by tensor name, in the graph's order."""
    order: dict[str, LayerRow] = {}
    grouped: dict[str, list[LayerRow]] = {}
    for rows in per_sample:
        for row in rows:
            order.setdefault(row.tensor, row)
            grouped.setdefault(row.tensor, []).append(row)
    summaries = []
    for tensor, first in order.items():
        rows = grouped[tensor]
        summaries.append(
            LayerSummary(
                index=first.index,
                op=first.op,
                tensor=tensor,
                fused=all(r.fused for r in rows),
                samples=len(rows),
                entire_cos_mean=_mean(r.entire_cos for r in rows),
                entire_cos_min=_min(r.entire_cos for r in rows),
                single_cos_mean=_mean(r.single_cos for r in rows),
                single_cos_min=_min(r.single_cos for r in rows),
                entire_euc_mean=_mean(r.entire_euc for r in rows),
                single_euc_mean=_mean(r.single_euc for r in rows),
                markers=tuple(sorted({m for r in rows for m in r.markers})),
            )
        )
    return summaries


def rank(layers: list[LayerSummary]) -> list[LayerSummary]:
    """Worst first by the layer's own (single) error: that is what the layer itself loses;
    the entire error also carries what every layer before it lost. A layer with a NaN
    marker comes first of all."""
    measured = [layer for layer in layers if not layer.fused]
    return sorted(measured, key=lambda layer: (not layer.markers, -layer.single_loss, layer.index))


def _clean(values) -> list[float]:
    return [v for v in values if v is not None and not math.isnan(v)]


def _mean(values) -> float | None:
    values = _clean(values)
    return sum(values) / len(values) if values else None


def _min(values) -> float | None:
    values = _clean(values)
    return min(values) if values else None
