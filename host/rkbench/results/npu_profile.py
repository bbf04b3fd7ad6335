"""The runtime's per-layer NPU profile (RKNN_QUERY_PERF_DETAIL), parsed and summarised.

    profile = parse_perf_detail(text)          # never raises: what it could not read is in .problems
    summary = summarize(profile, core_mask="0_1_2")
    summary.slowest[:10], summary.by_op_type, summary.cpu_layers, summary.single_core_layers

Two layouts exist (../shared/RKNN-FACTS.md; tests/fixtures/perf_detail/ shows both):
- current (2.x): `ID OpType DataType Target InputShape OutputShape Cycles(DDR/NPU/Total)
  Time(us) MacUsage(%) WorkLoad(0/1/2) RW(KB) FullName`, then `Total Operator Elapsed Per
  Frame Time(us): N`, `Total Memory Read/Write Per Frame Size(KB): N` and an `Operator Time
  Consuming Ranking Table`;
- old (1.x): three cycle columns, `WorkLoad(0/1/2)-ImproveTherical` as `a%/b%/c% - Up:x%`,
  `Task Number`, `Lut Number`, `Total Operator Elapsed Time(us)`, `Total Memory RW Amount(MB)`.
The columns are read from the table's own header (the build log's table has fewer), by token
rather than by position: values wider than their column push the rest right, and an empty
MacUsage leaves only spaces. Lines may carry the runtime's log prefix (`D RKNN: [time] `).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

#: Operators that only move data in and out; they always run on the CPU.
IO_OPERATORS = ("InputOperator", "OutputOperator")
MAX_PROBLEMS = 50

_LOG_PREFIX = re.compile(r"^\s*[DIWEV]\s+RKNN:\s*(?:\[[^\]]*\]\s?)?")
_INT = re.compile(r"^-?\d+$")
_NUMBER = re.compile(r"^-?\d+(?:\.\d+)?$")
_TRIPLE = re.compile(r"^(\d+)/(\d+)/(\d+)$")
_PERCENTS = re.compile(r"^\d+(?:\.\d+)?%(?:/\d+(?:\.\d+)?%)*$")
_MAC = re.compile(r"^\d+(?:\.\d+)?(?:/\d+(?:\.\d+)?)*$")
_UP = re.compile(r"^-?\s*Up:\s*(\d+(?:\.\d+)?)%?$")
_SHAPE = re.compile(r"\(([^()]*)\)")
_TOTAL_TIME = re.compile(r"Total Operator Elapsed(?: Per Frame)? Time\(us\)\s*:\s*(\d+(?:\.\d+)?)")
_MEMORY_KB = re.compile(r"Total Memory Read/Write Per Frame Size\(KB\)\s*:\s*(\d+(?:\.\d+)?)")
_MEMORY_MB = re.compile(r"Total Memory RW Amount\(MB\)\s*:\s*(\d+(?:\.\d+)?)")

# The layer table's columns as its header names them (spaces optional: the old layout
# writes "DDR Cycles", "Task Number").
_LAYER_COLUMNS = [
    ("id", r"ID"),
    ("op_type", r"Op\s?Type"),
    ("data_type", r"Data\s?Type"),
    ("target", r"Target"),
    ("input_shape", r"Input\s?Shape"),
    ("output_shape", r"Output\s?Shape"),
    ("cycles", r"Cycles\(DDR/NPU/Total\)"),
    ("ddr_cycles", r"DDR\s?Cycles"),
    ("npu_cycles", r"NPU\s?Cycles"),
    ("total_cycles", r"Total\s?Cycles"),
    ("time_us", r"Time\(us\)"),
    ("mac_usage", r"Mac\s?Usage\(%\)"),
    ("workload_up", r"Work\s?Load\([^)]*\)-Improve\w*"),
    ("workload", r"Work\s?Load\([^)]*\)"),
    ("task_number", r"Task\s?Number"),
    ("lut_number", r"Lut\s?Number"),
    ("rw_kb", r"RW\(KB\)"),
    ("full_name", r"Full\s?Name"),
]
_RANKING_COLUMNS = [
    ("op_type", r"Op\s?Type"),
    ("calls", r"Call\s?Number"),
    ("cpu_us", r"CPU\s?Time\(us\)"),
    ("gpu_us", r"GPU\s?Time\(us\)"),
    ("npu_us", r"NPU\s?Time\(us\)"),
    ("total_us", r"Total\s?Time\(us\)"),
    ("ratio_pct", r"Time\s?Ratio\(%\)"),
]


@dataclass
class LayerProfile:
    """One row of the layer table. Shapes as the runtime printed them ("(1,3,48,192),(8)",
    "..." where it cut the list; "" for none); mac_usage_pct and workload_pct have one entry
    per NPU core; improve_pct is the old layout's "Up:x%". A column the table lacks, or a
    "\\" in it, is None."""

    id: int
    op_type: str
    data_type: str | None = None
    target: str | None = None
    input_shape: str = ""
    output_shape: str = ""
    ddr_cycles: int | None = None
    npu_cycles: int | None = None
    total_cycles: int | None = None
    time_us: float | None = None
    mac_usage_pct: list[float] | None = None
    workload_pct: list[float] | None = None
    improve_pct: float | None = None
    task_number: int | None = None
    lut_number: int | None = None
    rw_kb: float | None = None
    full_name: str = ""

    @property
    def on_cpu(self) -> bool:
        return (self.target or "").upper() == "CPU"

    @property
    def input_shapes(self) -> list[tuple[int, ...]]:
        return _shapes(self.input_shape)

    @property
    def output_shapes(self) -> list[tuple[int, ...]]:
        return _shapes(self.output_shape)

    @property
    def cores_used(self) -> int | None:
        """How many NPU cores took a share of this layer's work (None: no WorkLoad column)."""
        return None if self.workload_pct is None else sum(1 for share in self.workload_pct if share > 0)


@dataclass
class OpTypeRanking:
    """One row of the runtime's own per-op-type table (its "Ranking" table)."""

    op_type: str
    calls: int | None = None
    cpu_us: float | None = None
    gpu_us: float | None = None
    npu_us: float | None = None
    total_us: float | None = None
    ratio_pct: float | None = None


@dataclass
class ParseProblem:
    """A line that could not be read (1-based line number in the text)."""

    line: int
    text: str
    reason: str


@dataclass
class NpuProfile:
    """The parsed table. format: "current" (2.x), "old" (1.x), "build" (the build log's,
    without times) or "unknown"; cores: entries of the WorkLoad column; total_time_us and
    memory_rw_kb: the runtime's per-frame totals (None where the text lacks them)."""

    format: str
    layers: list[LayerProfile] = field(default_factory=list)
    total_time_us: float | None = None
    memory_rw_kb: float | None = None
    cores: int | None = None
    ranking: list[OpTypeRanking] = field(default_factory=list)
    problems: list[ParseProblem] = field(default_factory=list)
    problems_left_out: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> NpuProfile:
        return cls(
            format=data.get("format", "unknown"),
            layers=[LayerProfile(**row) for row in data.get("layers", [])],
            total_time_us=data.get("total_time_us"),
            memory_rw_kb=data.get("memory_rw_kb"),
            cores=data.get("cores"),
            ranking=[OpTypeRanking(**row) for row in data.get("ranking", [])],
            problems=[ParseProblem(**row) for row in data.get("problems", [])],
            problems_left_out=data.get("problems_left_out", 0),
        )


@dataclass
class OpTypeTotal:
    """The layers of one op type: how many, their time, and its share of all layers' time."""

    op_type: str
    count: int
    time_us: float
    share: float
    cpu_count: int = 0


@dataclass
class ProfileSummary:
    """What the profile says, ranked. slowest: every timed layer, slowest first;
    cpu_layers: layers the NPU does not run (the Input/Output operators, which always run on
    the CPU, left out); single_core_layers: NPU layers whose work stayed on one core although
    a multi-core mask was asked (empty when it was not)."""

    layers_time_us: float
    total_time_us: float | None
    memory_rw_kb: float | None
    slowest: list[LayerProfile]
    by_op_type: list[OpTypeTotal]
    cpu_layers: list[LayerProfile]
    single_core_layers: list[LayerProfile]
    multi_core: bool
    problems: list[ParseProblem]


# ----------------------------------------------------------------------------------
# parsing
# ----------------------------------------------------------------------------------
def parse_perf_detail(text: str | bytes) -> NpuProfile:
    """The per-layer table in `text`, as far as it can be read. Never raises."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    profile = NpuProfile(format="unknown")
    layer_columns: list[tuple[str, int]] | None = None
    ranking_columns: list[str] | None = None
    in_ranking = False
    for number, raw in enumerate(str(text).splitlines(), 1):
        line = _LOG_PREFIX.sub("", raw.replace("\0", "")).rstrip()
        words = line.split()
        if not words or set(line.strip()) <= set("-=#*"):
            continue
        try:
            if words[0] == "ID" and len(words) > 1 and words[1].startswith("Op"):
                layer_columns, in_ranking = _header(line, _LAYER_LABELS), False
                profile.format, profile.cores = _layout(layer_columns)
            elif _totals(line, profile):
                in_ranking = False
            elif "Ranking" in line:
                in_ranking, ranking_columns = True, None
            elif in_ranking:
                if words[0] == "OpType" or line.lstrip().startswith("Op Type"):
                    ranking_columns = [name for name, _ in _header(line, _RANKING_LABELS)]
                elif ranking_columns is not None:
                    _ranking_row(words, ranking_columns, profile, number, raw)
            elif layer_columns is not None and _INT.match(words[0]):
                profile.layers.append(_layer_row(words, layer_columns))
        except _BadRow as err:
            _problem(profile, number, raw, str(err))
        except Exception as err:  # a table shaped like none we know: say so, go on with the next line
            _problem(profile, number, raw, f"could not be read ({type(err).__name__}: {err})")
    if not profile.layers and not profile.problems:
        reason = "no layer table (a header line starting 'ID OpType')" if layer_columns is None else "no layer rows"
        _problem(profile, 0, "", f"{reason} in the text")
    return profile


class _BadRow(Exception):
    pass


def _problem(profile: NpuProfile, number: int, raw: str, reason: str) -> None:
    if len(profile.problems) >= MAX_PROBLEMS:
        profile.problems_left_out += 1
        return
    profile.problems.append(ParseProblem(number, raw.strip()[:300], reason))


def _labels(known: list[tuple[str, str]]) -> re.Pattern:
    return re.compile("|".join(f"(?P<{name}>{regex})" for name, regex in known))


_LAYER_LABELS, _RANKING_LABELS = _labels(_LAYER_COLUMNS), _labels(_RANKING_COLUMNS)


def _header(line: str, pattern: re.Pattern) -> list[tuple[str, int]]:
    """The header's columns in order, as (name, cores) pairs; a label we do not know is a
    column of one token named "?label"."""
    columns: list[tuple[str, int]] = []
    pos, text = 0, line.strip()
    while pos < len(text):
        if text[pos].isspace():
            pos += 1
            continue
        found = pattern.match(text, pos)
        if found and found.lastgroup:
            label = found.group()
            cores = label[label.find("(") + 1 : label.find(")")].count("/") + 1 if "Load(" in label else 0
            columns.append((found.lastgroup, cores))
            pos = found.end()
        else:
            word = text[pos:].split(None, 1)[0]
            columns.append(("?" + word, 0))
            pos += len(word)
    return columns


def _layout(columns: list[tuple[str, int]]) -> tuple[str, int | None]:
    names = {name for name, _ in columns}
    cores = next((n for name, n in columns if name.startswith("workload")), None)
    if "time_us" not in names:
        return "build", cores
    if "cycles" in names:
        return "current", cores
    if "ddr_cycles" in names or "workload_up" in names:
        return "old", cores
    return "unknown", cores


def _layer_row(words: list[str], columns: list[tuple[str, int]]) -> LayerProfile:
    """One row, column by column. Columns that may be blank or absent (cycles, time, MAC
    usage, workload, counts, RW) are taken only when the next word looks like them; when one
    was not found, the full name must be one word, or the row is refused as not lining up."""
    layer = LayerProfile(id=int(words[0]), op_type="?")
    i = 1
    skipped: list[str] = []  # optional columns the row did not have
    for name, _ in columns[1:]:
        if name == "full_name":
            rest = words[i:]
            if skipped and len(rest) > 1:
                raise _BadRow(f"its words do not line up with the header's columns (no {', '.join(skipped)})")
            layer.full_name = " ".join(rest)
            return layer
        if i >= len(words):
            raise _BadRow(f"the row stops before its {name.lstrip('?')} column (cut short?)")
        taken = _take(name, words, i, layer)
        if taken == i:
            skipped.append(name)
        i = taken
    if i < len(words):
        raise _BadRow(f"{len(words) - i} words more than the header's columns")
    return layer


def _take(name: str, words: list[str], i: int, layer: LayerProfile) -> int:
    """Reads column `name` from words[i] into `layer`; the index of the next word (i itself
    when the word is not this column's)."""
    word = words[i]
    if name in ("op_type", "data_type", "target") or name.startswith("?"):
        if not name.startswith("?"):
            setattr(layer, name, word)
        return i + 1
    if name in ("input_shape", "output_shape"):
        setattr(layer, name, "" if word == "\\" else word)
        return i + 1
    if name == "workload" or name == "workload_up":
        return _workload(words, i, layer)
    if word == "\\":  # the runtime's "not applicable"
        return i + 1
    if name == "cycles" and _TRIPLE.match(word):
        layer.ddr_cycles, layer.npu_cycles, layer.total_cycles = (int(v) for v in word.split("/"))
    elif name in ("ddr_cycles", "npu_cycles", "total_cycles", "task_number", "lut_number") and _INT.match(word):
        setattr(layer, name, int(word))
    elif name in ("time_us", "rw_kb") and _NUMBER.match(word):
        setattr(layer, name, float(word))
    elif name == "mac_usage" and _MAC.match(word):
        layer.mac_usage_pct = [float(v) for v in word.split("/")]
    else:
        return i
    return i + 1


def _workload(words: list[str], i: int, layer: LayerProfile) -> int:
    """`a%/b%/c%`, in the old layout followed by `- Up:x%` (one, two or no more words)."""
    head, _, tail = words[i].partition("-")
    if not _PERCENTS.match(head):
        return i
    layer.workload_pct = [float(v.rstrip("%")) for v in head.split("/")]
    i += 1
    rest = [tail] if tail else []
    while i < len(words) and len(rest) < 2 and (words[i] == "-" or words[i].startswith(("Up:", "-Up:"))):
        rest.append(words[i])
        i += 1
    up = _UP.match(" ".join(w for w in rest if w != "-").strip())
    if up:
        layer.improve_pct = float(up.group(1))
    return i


def _ranking_row(words: list[str], columns: list[str], profile: NpuProfile, number: int, raw: str) -> None:
    values = [w.rstrip("%") for w in words[1:]]
    numeric = [c for c in columns if c != "op_type"]
    if len(values) != len(numeric) or not all(_NUMBER.match(v) for v in values):
        _problem(profile, number, raw, "a ranking row that does not match its header")
        return
    row = OpTypeRanking(op_type=words[0])
    for name, value in zip(numeric, values):
        if name.startswith("?"):
            continue
        setattr(row, name, int(float(value)) if name == "calls" else float(value))  # "18" or "18.0"
    profile.ranking.append(row)


def _totals(line: str, profile: NpuProfile) -> bool:
    found = _TOTAL_TIME.search(line)
    if found:
        profile.total_time_us = float(found.group(1))
        return True
    found = _MEMORY_KB.search(line)
    if found:
        profile.memory_rw_kb = float(found.group(1))
        return True
    found = _MEMORY_MB.search(line)
    if found:
        profile.memory_rw_kb = float(found.group(1)) * 1024
        return True
    return False


def _shapes(text: str) -> list[tuple[int, ...]]:
    shapes = []
    for inside in _SHAPE.findall(text):
        dims = [d.strip() for d in inside.split(",") if d.strip()]
        shapes.append(tuple(int(d) if _INT.match(d) else -1 for d in dims))
    return shapes


# ----------------------------------------------------------------------------------
# summary
# ----------------------------------------------------------------------------------
def cores_in_mask(core_mask: str | int | None) -> int:
    """NPU cores a core mask asks for: "0_1_2" / 7 -> 3; "auto" / 0 / None -> 1 (AUTO
    picks one core per run); "all" / 0xffff -> every core (counted as 3)."""
    if core_mask is None:
        return 1
    if isinstance(core_mask, int):
        return 3 if core_mask == 0xFFFF else max(1, bin(core_mask & 0xFF).count("1"))
    mask = str(core_mask).strip().lower()
    if mask in ("", "auto"):
        return 1
    if mask == "all":
        return 3
    return len({part for part in mask.split("_") if part.isdigit()}) or 1


def summarize(profile: NpuProfile, core_mask: str | int | None = None) -> ProfileSummary:
    """Layers ranked by time, totals per op type, CPU layers, and (for a multi-core mask)
    layers that stayed on one core."""
    timed = [layer for layer in profile.layers if layer.time_us is not None]
    total = sum((layer.time_us or 0.0 for layer in timed), 0.0)
    multi_core = cores_in_mask(core_mask) > 1
    single = [
        layer
        for layer in profile.layers
        if multi_core
        and not layer.on_cpu
        and layer.workload_pct is not None
        and len(layer.workload_pct) > 1
        and layer.cores_used == 1
    ]
    return ProfileSummary(
        layers_time_us=total,
        total_time_us=profile.total_time_us,
        memory_rw_kb=profile.memory_rw_kb,
        slowest=sorted(timed, key=lambda layer: (-(layer.time_us or 0.0), layer.id)),
        by_op_type=op_type_totals(profile.layers),
        cpu_layers=[layer for layer in profile.layers if layer.on_cpu and layer.op_type not in IO_OPERATORS],
        single_core_layers=single,
        multi_core=multi_core,
        problems=list(profile.problems),
    )


def op_type_totals(layers: Iterable[LayerProfile]) -> list[OpTypeTotal]:
    """Count, time and share of each op type, the most time first."""
    totals: dict[str, OpTypeTotal] = {}
    for layer in layers:
        entry = totals.setdefault(layer.op_type, OpTypeTotal(layer.op_type, 0, 0.0, 0.0))
        entry.count += 1
        entry.time_us += layer.time_us or 0.0
        entry.cpu_count += layer.on_cpu
    everything = sum(entry.time_us for entry in totals.values())
    for entry in totals.values():
        entry.share = entry.time_us / everything if everything else 0.0
    return sorted(totals.values(), key=lambda entry: (-entry.time_us, entry.op_type))
