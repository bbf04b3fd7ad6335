"""Small SVG charts written as text: panels with "nice" ticks on linear or log axes, line,
step, stairs (histogram), min-max band, bar (vertical or horizontal), scatter, reference
lines, annotations and legends; several panels side by side or stacked on a shared x axis.
No plotting library: importing this costs what numpy costs, drawing a chart milliseconds.

    chart = Chart("latency over time")              # aria-label of the <svg>
    top = chart.panel(title="latency", ylabel="ms", y2label="NPU clock (MHz)")
    top.band(t, low, high, color=COLORS[0], label="min-max")
    top.line(t, median, color=COLORS[0], label="median")
    top.step(t_npu, mhz, color=DEPART, right=True, label="NPU clock")
    chart.panel(row=1, xlabel="s", ylabel="C").line(t, temp, color=COLORS[1])
    svg_text = chart.svg()                            # inline <svg>, same input -> same bytes

Layout is computed, not guessed at: text widths come from DejaVu Sans' advance widths
(the font named first; Verdana, the usual fallback, is as wide), every label is cut with
an ellipsis to the room it has (the full text then in a <title> tooltip), legends sit
above their plot, never over the data, and each row of panels is as tall as its tallest
title, legend and tick labels need. Data are clipped to their plot by a nested <svg>, so
the output holds no ids that could clash when several charts share a page.

Every piece of text is escaped like report/html.py escapes (html.escape with quotes),
after characters XML forbids (control characters, lone surrogates, U+FFFE/U+FFFF) are
replaced by "?". Coordinates are rounded to 0.1 px and repeated points dropped, so a
series of thousands of points costs a few kB.
"""

from __future__ import annotations

import html
import math
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

FONT_FAMILY = "DejaVu Sans,Verdana,sans-serif"
FONT_PX = 12  # axis labels, legends
TICK_PX = 11  # tick labels
TITLE_PX = 13
NOTE_PX = 10  # annotations
WIDTH = 960  # the viewBox; the page scales it (svg.plot{width:100%})
PLOT_HEIGHT = 170  # a panel's plot area unless told

COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
DEPART = "#d62728"
GRID = "#e6e6e6"
AXIS = "#444"
TEXT = "#222"
DASHES = {"solid": None, "dash": "5 3", "dot": "1.5 2.5", "dashdot": "6 2.5 1.5 2.5"}

_PAD = 8  # around a panel's cell
_TICK = 4  # tick length
_GAP = 4  # tick to label
_LEGEND_ROW = 17
_SWATCH = 20

# -- text ------------------------------------------------------------------------------

_NOT_XML = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")

# DejaVu Sans advance widths of " " .. "~" in hundredths of an em.
_ASCII_WIDTHS = (
    (32, 40, 46, 84, 64, 95, 78, 27, 39, 39, 50, 84, 32, 36, 32, 34, 64, 64, 64, 64, 64, 64, 64, 64)
    + (64, 64, 34, 34, 84, 84, 84, 53, 100, 68, 69, 70, 77, 63, 58, 77, 75, 29, 29, 66, 56, 86, 75, 79)
    + (60, 79, 69, 63, 61, 73, 68, 99, 69, 61, 69, 39, 34, 39, 84, 50, 50, 61, 63, 55, 63, 62, 35, 63)
    + (63, 28, 28, 58, 28, 97, 63, 61, 63, 63, 41, 52, 39, 63, 59, 82, 59, 59, 52, 64, 34, 64, 84)
)


def clean(text: object) -> str:
    """Text that XML (and so inline SVG) can hold: forbidden characters become "?"."""
    return _NOT_XML.sub("?", "" if text is None else str(text))


def escape(text: object) -> str:
    """For SVG text and attribute values: html.py's rules (html.escape, quotes too) on clean()ed text."""
    return html.escape(clean(text), quote=True)


def text_width(text: str, px: float = FONT_PX) -> float:
    """Estimated rendered width in px, a little generous (5%) so estimates err on the side of room."""
    units = 0
    for ch in text:
        o = ord(ch)
        if 32 <= o < 127:
            units += _ASCII_WIDTHS[o - 32]
        elif unicodedata.east_asian_width(ch) in "WF":
            units += 100
        else:
            units += 70
    return units * px / 100 * 1.05


def fit(text: str, room: float, px: float = FONT_PX) -> str:
    """`text` cut with an ellipsis so it fits `room` px ("" if not even the ellipsis fits)."""
    if text_width(text, px) <= room:
        return text
    lo, hi = 0, len(text)
    while lo < hi:  # the longest prefix that fits with the ellipsis
        mid = (lo + hi + 1) // 2
        if text_width(text[:mid] + "\u2026", px) <= room:
            lo = mid
        else:
            hi = mid - 1
    return text[:lo] + "\u2026" if text_width("\u2026", px) <= room else ""


def wrap(text: str, room: float, px: float, lines: int = 2) -> list[str]:
    """Up to `lines` lines broken at spaces, the last one cut to fit."""
    out: list[str] = []
    words = text.split(" ")
    while words and len(out) < lines - 1:
        line = words[0]
        taken = 1
        for w in words[1:]:
            if text_width(line + " " + w, px) > room:
                break
            line += " " + w
            taken += 1
        if taken == len(words) or text_width(line, px) > room:
            break
        out.append(line)
        words = words[taken:]
    if words:
        out.append(fit(" ".join(words), room, px))
    return out


# -- ticks -----------------------------------------------------------------------------


def nice_step(span: float, count: int, integer: bool = False) -> float:
    """The step of 1, 2, 2.5 or 5 times a power of ten that cuts `span` into at most about
    `count` parts (integer: a whole number, so no 2.5 and nothing below 1)."""
    raw = span / max(1, count)
    if integer and raw <= 1:
        return 1.0
    mag = 10.0 ** math.floor(math.log10(raw))
    for m in (1.0, 2.0, 2.5, 5.0, 10.0):
        if integer and (m * mag) % 1:
            continue
        if m * mag >= raw * (1 - 1e-9):
            return m * mag
    return 10.0 * mag


def _decimals(step: float) -> int:
    for d in range(0, 16):
        scaled = step * 10**d
        if round(scaled) >= 1 and abs(scaled - round(scaled)) < 1e-6 * scaled:
            return d
    return 15


def linear_ticks(lo: float, hi: float, count: int = 5, integer: bool = False) -> list[tuple[float, str]]:
    """(value, label) of the nice ticks within [lo, hi] (at least two where the step allows),
    labels with as many decimals as the step needs."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [(lo, _fmt(lo, 3))] if math.isfinite(lo) else []
    for more in range(0, 8):
        step = nice_step(hi - lo, count + more, integer)
        first, last = math.ceil(lo / step - 1e-9), math.floor(hi / step + 1e-9)
        if last > first or (integer and step == 1):
            break
    d = _decimals(step)
    values = [round(k * step, d + 1) for k in range(first, last + 1)]
    big = max(abs(lo), abs(hi))
    if big >= 1e7 or big < 1e-4:  # long runs of digits: one exponent for all, mantissas as the step needs
        e = math.floor(math.log10(big))
        md = _decimals(step / 10.0**e)
        return [(v, "0" if v == 0 else f"{v / 10.0**e:.{md}f}e{e}") for v in values]
    return [(v, _fmt(v, d)) for v in values]


def _fmt(v: float, decimals: int) -> str:
    s = f"{v:.{decimals}f}"
    return "0" if s.strip("-0.") == "" else s


def log_ticks(lo: float, hi: float, count: int = 5) -> list[tuple[float, str]]:
    """Powers of ten within [lo, hi] (every k-th when there are many decades); with fewer
    than two, 1-2-5 multiples; with fewer than three of those, linear ticks."""
    if not (lo > 0 and hi > lo and math.isfinite(hi)):
        return linear_ticks(lo, hi, count)
    e0, e1 = math.ceil(math.log10(lo) - 1e-9), math.floor(math.log10(hi) + 1e-9)
    exps = list(range(e0, e1 + 1))
    if len(exps) >= 2:
        every = math.ceil(len(exps) / max(1, count))
        values = [10.0**e for e in exps[::every]]
    else:
        values = [
            m * 10.0**e
            for e in range(e0 - 1, e1 + 2)
            for m in (1, 2, 5)
            if lo * (1 - 1e-9) <= m * 10.0**e <= hi * (1 + 1e-9)
        ]
        if len(values) < 3:  # less than a decade: plain numbers say more
            return linear_ticks(lo, hi, count)
    return [(v, _fmt_log(v)) for v in values]


def _fmt_log(v: float) -> str:
    if 1e-4 <= v < 1e6:
        return f"{v:g}"
    e = math.floor(math.log10(v) + 1e-9)
    m = v / 10.0**e
    return f"{m:g}e{e}" if abs(m - 1) > 1e-9 else f"1e{e}"


# -- scales ----------------------------------------------------------------------------


@dataclass
class Axis:
    """One axis of a panel: its scale, limits (fixed or from the data), label and ticks."""

    label: str = ""
    log: bool = False
    lim: tuple[float | None, float | None] = (None, None)
    margin: float = 0.05  # of the data's span, each side, when the limit comes from the data
    ticks: list[tuple[float, str]] | None = None  # fixed (value, label), e.g. categories
    rotate: float = 0.0  # tick labels, degrees (x axis only)
    integer: bool = False  # whole-number ticks only (indices, counts)
    color: str = TEXT
    lo: float = 0.0
    hi: float = 1.0

    def transform(self, v) -> np.ndarray:
        v = np.asarray(v, dtype=np.float64)
        if self.log:
            with np.errstate(divide="ignore", invalid="ignore"):
                return np.log10(np.where(v > 0, v, np.nan))
        return v

    def fix_limits(self, data: Sequence[np.ndarray], sticky: Sequence[float] = ()) -> None:
        """Limits from the data (finite values, positive ones on a log axis) unless fixed;
        `sticky` values (a bar's base) get no margin beyond them."""
        vals = [self.transform(d).ravel() for d in data]
        vals = [v[np.isfinite(v)] for v in vals]
        vals = [v for v in vals if v.size]
        sticky_t = [float(s) for s in self.transform(list(sticky)) if np.isfinite(s)]
        lo, hi = (min(v.min() for v in vals), max(v.max() for v in vals)) if vals else (0.0, 1.0)
        lo, hi = min([lo, *sticky_t]), max([hi, *sticky_t])
        if hi == lo:  # one value: a span around it
            d = abs(lo) * 0.05 if lo and not self.log else (0.5 if self.log else 1.0)
            lo, hi = lo - d, hi + d
        pad = (hi - lo) * self.margin
        if not any(abs(lo - s) < 1e-12 for s in sticky_t):
            lo -= pad
        if not any(abs(hi - s) < 1e-12 for s in sticky_t):
            hi += pad
        fixed_lo, fixed_hi = (None if x is None else float(self.transform(x)) for x in self.lim)
        lo = fixed_lo if fixed_lo is not None and np.isfinite(fixed_lo) else lo
        hi = fixed_hi if fixed_hi is not None and np.isfinite(fixed_hi) else hi
        if hi == lo or (hi < lo and None in self.lim):  # only both limits given can reverse the axis
            lo, hi = (lo, lo + 1.0) if fixed_lo is not None else (hi - 1.0, hi)
        self.lo, self.hi = lo, hi  # in transformed units (log10 on a log axis); lo > hi: reversed

    def tick_marks(self, count: int) -> list[tuple[float, str]]:
        """(value, label) of the ticks inside the limits."""
        lo, hi = sorted((self.lo, self.hi))
        if self.ticks is not None:
            lo, hi = (10**lo, 10**hi) if self.log else (lo, hi)
            return [(v, s) for v, s in self.ticks if lo - 1e-12 <= v <= hi + 1e-12]
        if self.log:
            return log_ticks(10**lo, 10**hi, count)
        return linear_ticks(lo, hi, count, self.integer)

    def to_px(self, v, p0: float, p1: float) -> np.ndarray:
        """Data -> px: `lo` at p0, `hi` at p1 (p0 > p1 for a y axis)."""
        return p0 + (self.transform(v) - self.lo) / (self.hi - self.lo) * (p1 - p0)


# -- marks -----------------------------------------------------------------------------


@dataclass
class _Mark:
    kind: str  # line, step, stairs, band, bars, hbars, scatter, hline, vline
    x: np.ndarray
    y: np.ndarray
    base: np.ndarray | None = None  # band: the low edge; bars, stairs: the base
    color: str = COLORS[0]
    width: float = 1.5
    dash: str | None = None
    opacity: float = 1.0
    fill: float = 0.0  # fill opacity under stairs
    marker: str | None = None
    size: float = 3.0
    label: str | None = None
    right: bool = False  # on the right y axis
    bar_width: float = 0.8

    def x_extent(self) -> list[np.ndarray]:
        if self.kind == "hline":
            return []
        if self.kind == "bars":
            return [self.x - self.bar_width / 2, self.x + self.bar_width / 2]
        if self.kind == "hbars":
            return [self.y, self.base]
        return [self.x]

    def y_extent(self) -> list[np.ndarray]:
        if self.kind == "vline":
            return []
        if self.kind == "hbars":
            return [self.x - self.bar_width / 2, self.x + self.bar_width / 2]
        if self.kind in ("band", "bars", "stairs"):
            return [self.y, self.base]
        return [self.y]


@dataclass
class _Note:
    x: float
    y: float
    text: str
    color: str
    dx: float
    dy: float
    right: bool


def _arr(v) -> np.ndarray:
    return np.asarray(v, dtype=np.float64).ravel()


def _dash(dash: str | None) -> str | None:
    return DASHES.get(dash, dash) if dash else None


@dataclass
class Panel:
    """One plot with its axes. Add marks with the methods below; Chart.svg() lays it out."""

    title: str = ""
    xlabel: str = ""
    ylabel: str = ""
    y2label: str = ""
    xlog: bool = False
    ylog: bool = False
    y2log: bool = False
    xinteger: bool = False
    height: float = PLOT_HEIGHT
    x: Axis = field(init=False)
    y: Axis = field(init=False)
    y2: Axis = field(init=False)
    marks: list[_Mark] = field(default_factory=list, init=False)
    notes: list[_Note] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        self.x = Axis(self.xlabel, self.xlog, margin=0.0, integer=self.xinteger)
        self.y = Axis(self.ylabel, self.ylog)
        self.y2 = Axis(self.y2label, self.y2log)

    def _add(self, kind: str, x, y, base=None, dash=None, label=None, **style) -> Panel:
        self.marks.append(
            _Mark(kind, _arr(x), _arr(y), None if base is None else _arr(base), dash=_dash(dash), label=label, **style)
        )
        return self

    # marks
    def line(self, x, y, color=COLORS[0], width=1.5, dash=None, label=None, right=False, marker=None, size=3.0):
        """A polyline through the points; NaN breaks it; a lone point shows as a dot.
        `marker` ("o", "x", "s", "d") also marks every point, `size` its radius in px."""
        return self._add(
            "line", x, y, color=color, width=width, dash=dash, label=label, right=right, marker=marker, size=size
        )

    def step(self, x, y, color=COLORS[0], width=1.5, dash=None, label=None, right=False):
        """Steps: each value holds from its x until the next x (matplotlib's where="post")."""
        return self._add("step", x, y, color=color, width=width, dash=dash, label=label, right=right)

    def stairs(self, values, edges, color=COLORS[0], width=1.2, fill=0.3, label=None):
        """A histogram: values[i] between edges[i] and edges[i+1], outlined and filled (`fill` opacity) down to 0."""
        if np.size(edges) != np.size(values) + 1:
            raise ValueError(f"stairs: {np.size(values)} values need {np.size(values) + 1} edges, got {np.size(edges)}")
        return self._add("stairs", edges, values, base=np.zeros(1), color=color, width=width, fill=fill, label=label)

    def band(self, x, low, high, color=COLORS[0], opacity=0.25, label=None, right=False):
        """The area between `low` and `high` (a min-max band)."""
        return self._add("band", x, high, base=_arr(low), color=color, opacity=opacity, label=label, right=right)

    def bars(self, x, heights, color=COLORS[0], width=0.8, base=0.0, label=None, horizontal=False, opacity=0.85):
        """Bars centred on `x` (categories: 0, 1, 2 ... named with xticks), `width` in data
        units, from `base`. horizontal=True: bars along x at y positions `x` (name them with yticks)."""
        heights = _arr(heights)
        kind = "hbars" if horizontal else "bars"
        return self._add(
            kind,
            x,
            heights,
            base=np.full(heights.shape, float(base)),
            color=color,
            opacity=opacity,
            label=label,
            bar_width=width,
        )

    def scatter(self, x, y, color=COLORS[0], marker="o", size=3.5, label=None, right=False):
        """Markers ("o" circle, "x" cross, "s" square, "d" diamond), `size` the radius in px."""
        return self._add("scatter", x, y, color=color, marker=marker, size=size, label=label, right=right)

    def hline(self, y, color=AXIS, width=0.8, dash="dash", right=False, label=None):
        """Horizontal reference lines (y a value or a list) across the plot."""
        return self._add("hline", [0.0], y, color=color, width=width, dash=dash, right=right, label=label)

    def vline(self, x, color=AXIS, width=0.8, dash="dash", opacity=1.0, label=None):
        """Vertical reference lines (x a value or a list) across the plot."""
        return self._add("vline", x, [0.0], color=color, width=width, dash=dash, opacity=opacity, label=label)

    def annotate(self, x, y, text, color=TEXT, dx=6.0, dy=12.0, right=False):
        """A note at data (x, y), offset by (dx, dy) px; moved to stay inside the plot and off other notes."""
        self.notes.append(_Note(float(x), float(y), clean(text), color, dx, dy, right))
        return self

    # axes
    def xlim(self, lo=None, hi=None):
        """Fixed limits (None: from the data); lo > hi reverses the axis."""
        self.x.lim = (lo, hi)
        return self

    def ylim(self, lo=None, hi=None, right=False):
        """Fixed limits of the left (or right) y axis; lo > hi reverses it (categories read top-down)."""
        (self.y2 if right else self.y).lim = (lo, hi)
        return self

    def xticks(self, positions, labels=None, rotate=0.0):
        """Fixed ticks (categories); labels default to the positions."""
        labels = [str(p) for p in positions] if labels is None else labels
        self.x.ticks = [(float(p), clean(s)) for p, s in zip(positions, labels)]
        self.x.rotate = float(rotate)
        return self

    def yticks(self, positions, labels=None):
        labels = [str(p) for p in positions] if labels is None else labels
        self.y.ticks = [(float(p), clean(s)) for p, s in zip(positions, labels)]
        return self

    def axis_color(self, color, right=True):
        """Colour the right (or left) axis' label and tick labels, to tie it to its series."""
        (self.y2 if right else self.y).color = color
        return self

    @property
    def has_right(self) -> bool:
        return bool(self.y2label) or any(m.right for m in self.marks)


# -- the chart -------------------------------------------------------------------------


@dataclass
class _Box:
    """Where a panel goes: its cell and plot area, in px."""

    cx: float = 0.0
    cy: float = 0.0
    cw: float = 0.0
    left: float = 0.0
    right: float = 0.0
    top: float = 0.0
    bottom: float = 0.0
    title: list[str] = field(default_factory=list)
    legend: list[list[tuple[_Mark, str, float]]] = field(default_factory=list)  # rows of (mark, text, width)
    xt: list[tuple[float, str]] = field(default_factory=list)
    yt: list[tuple[float, str]] = field(default_factory=list)
    y2t: list[tuple[float, str]] = field(default_factory=list)
    x_labels: bool = True  # tick labels and label under this panel (the bottom one of a shared column)

    @property
    def px0(self) -> float:
        return self.cx + self.left

    @property
    def px1(self) -> float:
        return self.cx + self.cw - self.right

    @property
    def py0(self) -> float:
        return self.cy + self.top


class Chart:
    """Panels on a grid: `panel(row, col)` adds one; sharex=True gives each column one x
    axis (limits from all its panels, tick labels only under the bottom one)."""

    def __init__(self, label: str, width: float = WIDTH, sharex: bool = False) -> None:
        self.label = label
        self.width = float(width)
        self.sharex = sharex
        self.grid: dict[tuple[int, int], Panel] = {}
        self.height = 0.0  # set by the layout: the rows' heights added up

    def panel(self, row: int = 0, col: int = 0, **kw) -> Panel:
        """A new Panel at (row, col); keywords as Panel's (title, xlabel, ylabel, y2label, xlog, ylog, y2log, height)."""
        p = Panel(**kw)
        self.grid[(row, col)] = p
        return p

    # layout ---------------------------------------------------------------------------
    def _layout(self) -> dict[tuple[int, int], _Box]:
        rows = sorted({r for r, _ in self.grid})
        cols = sorted({c for _, c in self.grid})
        cw = self.width / len(cols)
        boxes = {k: _Box(cw=cw) for k in self.grid}
        for p in self.grid.values():
            self._y_limits(p)
        columns = {c: [(r, self.grid[(r, c)]) for r in rows if (r, c) in self.grid] for c in cols}
        for c, members in columns.items():
            groups = [members] if self.sharex else [[m] for m in members]
            for group in groups:
                self._x_layout([p for _, p in group], [boxes[(r, c)] for r, _ in group], cw)
                for r, _ in group[:-1]:
                    boxes[(r, c)].x_labels = False
        y = 0.0
        for r in rows:
            row = [(c, self.grid[(r, c)], boxes[(r, c)]) for c in cols if (r, c) in self.grid]
            for _, p, b in row:
                self._top(p, b)
            top = max(b.top for _, _, b in row)
            bottom = max(b.bottom for _, _, b in row)
            height = max(p.height for _, p, _ in row)
            for c, p, b in row:
                b.cx, b.cy, b.top, b.bottom = cols.index(c) * cw, y, top, bottom
                p.height = height
            y += top + height + bottom
        self.height = y
        return boxes

    def _y_limits(self, p: Panel) -> None:
        for axis, right in ((p.y, False), (p.y2, True)):
            marks = [m for m in p.marks if m.right == right]
            data = [d for m in marks for d in m.y_extent()] + [np.array([n.y]) for n in p.notes if n.right == right]
            sticky = sorted({v for m in marks if m.kind in ("bars", "stairs") for v in m.base.tolist()})
            axis.fix_limits(data, sticky)

    def _x_layout(self, panels: list[Panel], boxes: list[_Box], cw: float) -> None:
        """Margins and x ticks of panels sharing one x axis: y tick labels decide the left
        margin, a right axis the right one, then as many x ticks as fit without touching."""
        for p, b in zip(panels, boxes):
            count = max(2, int(p.height / 30))
            b.yt = p.y.tick_marks(count)
            b.y2t = p.y2.tick_marks(count) if p.has_right else []
        ylab_room = cw * 0.3
        left = max(_PAD + _side_width(b.yt, p.ylabel, ylab_room) for p, b in zip(panels, boxes))
        right = max(
            (_PAD + _side_width(b.y2t, p.y2label, ylab_room)) if p.has_right else _PAD + 6
            for p, b in zip(panels, boxes)
        )
        xs = [d for p in panels for m in p.marks for d in m.x_extent()] + [
            np.array([n.x]) for p in panels for n in p.notes
        ]
        sticky = sorted({v for p in panels for m in p.marks if m.kind == "hbars" for v in m.base.tolist()})
        ref = panels[0].x
        margin = max(p.x.margin for p in panels)
        if any(m.kind in ("scatter", "bars", "hbars") for p in panels for m in p.marks):
            margin = max(margin, 0.04)
        ref.margin = margin
        ref.lim = next((p.x.lim for p in panels if p.x.lim != (None, None)), ref.lim)
        ref.ticks = next((p.x.ticks for p in panels if p.x.ticks is not None), ref.ticks)
        ref.rotate = max(p.x.rotate for p in panels)
        ref.integer = any(p.x.integer for p in panels)
        ref.fix_limits(xs, sticky)
        for _ in range(2):  # the last tick label may need more room on the right
            width = cw - left - right
            xt = _fitting_x_ticks(ref, width)
            need = 0.0
            if xt and not ref.rotate:
                last_px = ref.to_px(xt[-1][0], 0, width)
                need = text_width(xt[-1][1], TICK_PX) / 2 - (width - last_px) + _PAD
            if need <= right:
                break
            right = need
        if ref.rotate and xt:  # rotated labels hang left of their tick
            first_px = float(ref.to_px(xt[0][0], 0, cw - left - right))
            hang = _rotated_extent(xt[0][1], ref.rotate)[0]
            left = max(left, _PAD + hang - first_px)
            xt = _fitting_x_ticks(ref, cw - left - right)
        for p, b in zip(panels, boxes):
            p.x = ref
            b.left, b.right, b.xt = left, right, xt
            b.bottom = _TICK + _GAP
            if b is boxes[-1]:
                if xt:
                    b.bottom += max(_rotated_extent(s, ref.rotate)[1] for _, s in xt) if ref.rotate else TICK_PX * 1.25
                if p.xlabel:
                    b.bottom += FONT_PX * 1.5
                b.bottom += _PAD / 2

    def _top(self, p: Panel, b: _Box) -> None:
        room = b.cw - b.left - b.right
        b.title = wrap(clean(p.title), room, TITLE_PX) if p.title else []
        entries = [m for m in p.marks if m.label]
        rows: list[list[tuple[_Mark, str, float]]] = []
        x = 0.0
        avail = b.cw - b.left - _PAD
        for m in entries:
            text = fit(clean(m.label), avail - _SWATCH - 6, FONT_PX)
            w = _SWATCH + 5 + text_width(text, FONT_PX)
            if not rows or x + w > avail:
                rows.append([])
                x = 0.0
            rows[-1].append((m, text, w))
            x += w + 14
        b.legend = rows
        b.top = _PAD + len(b.title) * TITLE_PX * 1.3 + len(rows) * _LEGEND_ROW + (6 if b.title or rows else 0)

    # drawing --------------------------------------------------------------------------
    def svg(self) -> str:
        """The chart as an inline <svg> element (scales with the page through its viewBox)."""
        boxes = self._layout()
        out = [
            f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_n(self.width)} {_n(self.height)}" '
            f'role="img" aria-label="{escape(self.label)}" class="plot" font-family="{FONT_FAMILY}" '
            f'font-size="{FONT_PX}" fill="{TEXT}">'
        ]
        for key in sorted(self.grid):
            out.extend(_draw_panel(self.grid[key], boxes[key]))
        out.append("</svg>")
        return "".join(out)


def _side_width(ticks: list[tuple[float, str]], label: str, room: float) -> float:
    """Width a y axis needs beside the plot: tick, gap, the widest tick label, the axis label."""
    widest = max((text_width(s, TICK_PX) for _, s in ticks), default=0.0)
    return _TICK + _GAP + min(widest, room) + (FONT_PX * 1.5 if label else 0) + 2


def _rotated_extent(text: str, degrees: float) -> tuple[float, float]:
    """(width to the left, height below) of a tick label rotated by `degrees`, anchored at its end."""
    a = math.radians(abs(degrees))
    w, h = text_width(text, TICK_PX), TICK_PX
    return w * math.cos(a) + h * math.sin(a) / 2, w * math.sin(a) + h * math.cos(a)


def _fitting_x_ticks(axis: Axis, width: float) -> list[tuple[float, str]]:
    """As many ticks as fit without their labels touching (of fixed ticks every k-th, the last always)."""
    if axis.ticks is not None:
        ticks = axis.tick_marks(0)
        for every in range(1, len(ticks) + 1):
            shown = ticks[(len(ticks) - 1) % every :: every]
            if _spaced(axis, shown, width):
                return shown
        return ticks[:1]
    count = max(2, int(width / 70))
    while True:
        ticks = axis.tick_marks(count)
        if count <= 2 or _spaced(axis, ticks, width):
            return ticks
        count -= 1


def _spaced(axis: Axis, ticks: list[tuple[float, str]], width: float) -> bool:
    if len(ticks) < 2:
        return True
    pos = axis.to_px([v for v, _ in ticks], 0, width)
    gaps = np.abs(np.diff(pos))
    if axis.rotate:
        need = [TICK_PX * 1.3 / math.sin(math.radians(abs(axis.rotate)))] * len(gaps)
    else:
        widths = [text_width(s, TICK_PX) for _, s in ticks]
        need = [(a + b) / 2 + 10 for a, b in zip(widths, widths[1:])]
    return bool(np.all(gaps >= np.array(need)))


# -- drawing ---------------------------------------------------------------------------


def _n(v: float) -> str:
    """A coordinate: 0.1 px, no trailing .0, never -0."""
    s = f"{v:.1f}"
    if s.endswith(".0"):
        s = s[:-2]
    return "0" if s == "-0" else s


def _stroke(m: _Mark) -> str:
    s = f' fill="none" stroke="{escape(m.color)}" stroke-width="{m.width:g}"'
    if m.dash:
        s += f' stroke-dasharray="{escape(m.dash)}"'
    if m.opacity < 1:
        s += f' stroke-opacity="{m.opacity:g}"'
    return s + ' stroke-linejoin="round"'


def _polyline(px: np.ndarray, py: np.ndarray) -> tuple[str, list[tuple[float, float]]]:
    """Path data through the finite points (NaN breaks the line) at 0.1 px, dropping what
    adds nothing: repeated points and points inside a straight horizontal or vertical run;
    and the lone points (runs of one), which a line would not show."""
    ok = np.isfinite(px) & np.isfinite(py)
    starts = np.flatnonzero(ok & ~np.concatenate([[False], ok[:-1]]))
    ends = np.flatnonzero(ok & ~np.concatenate([ok[1:], [False]])) + 1
    parts: list[str] = []
    lone: list[tuple[float, float]] = []
    for i, j in zip(starts.tolist(), ends.tolist()):
        if j - i == 1:
            lone.append((float(px[i]), float(py[i])))
            continue
        x, y = np.round(px[i:j], 1), np.round(py[i:j], 1)
        new = np.concatenate([[True], (np.diff(x) != 0) | (np.diff(y) != 0)])
        x, y = x[new], y[new]
        if x.size > 2:
            keep = np.concatenate([[True], ~(_inside_run(x, y) | _inside_run(y, x)), [True]])
            x, y = x[keep], y[keep]
        xs, ys = [_n(v) for v in x.tolist()], [_n(v) for v in y.tolist()]
        if len(xs) == 1:
            parts.append(f"M{xs[0]} {ys[0]}h0.01")
        else:
            parts.append(f"M{xs[0]} {ys[0]}L" + " ".join(f"{u} {v}" for u, v in zip(xs[1:], ys[1:])))
    return "".join(parts), lone


def _inside_run(along: np.ndarray, across: np.ndarray) -> np.ndarray:
    """For each interior point: its neighbours share its `across` value and it lies between
    them along the run (a point where the line turns back is kept)."""
    a, b, c = along[:-2], along[1:-1], along[2:]
    flat = (across[:-2] == across[1:-1]) & (across[1:-1] == across[2:])
    return flat & ((a - b) * (b - c) >= 0)


def _marker_path(points: list[tuple[float, float]], marker: str, r: float) -> str:
    d = []
    for x, y in points:
        if marker == "x":
            d.append(f"M{_n(x - r)} {_n(y - r)}l{_n(2 * r)} {_n(2 * r)}m0 {_n(-2 * r)}l{_n(-2 * r)} {_n(2 * r)}")
        elif marker == "s":
            d.append(f"M{_n(x - r)} {_n(y - r)}h{_n(2 * r)}v{_n(2 * r)}h{_n(-2 * r)}z")
        elif marker == "d":
            d.append(
                f"M{_n(x)} {_n(y - r * 1.3)}l{_n(r)} {_n(r * 1.3)}l{_n(-r)} {_n(r * 1.3)}l{_n(-r)} {_n(-r * 1.3)}z"
            )
        else:
            d.append(f"M{_n(x - r)} {_n(y)}a{_n(r)} {_n(r)} 0 1 0 {_n(2 * r)} 0a{_n(r)} {_n(r)} 0 1 0 {_n(-2 * r)} 0")
    return "".join(d)


def _markers(points: list[tuple[float, float]], marker: str, r: float, color: str) -> str:
    if not points:
        return ""
    c = escape(color)
    if marker == "x":
        return f'<path d="{_marker_path(points, marker, r)}" fill="none" stroke="{c}" stroke-width="1.6"/>'
    return f'<path d="{_marker_path(points, marker, r)}" fill="{c}" stroke="none"/>'


def _draw_mark(m: _Mark, p: Panel, b: _Box) -> tuple[str, str]:
    """(clipped SVG, unclipped SVG) of one mark."""
    x0, x1, y0, y1 = b.px0, b.px1, b.py0 + p.height, b.py0
    ya = p.y2 if m.right else p.y
    X = lambda v: p.x.to_px(v, x0, x1)  # noqa: E731
    Y = lambda v: ya.to_px(v, y0, y1)  # noqa: E731
    if m.kind in ("line", "step"):
        px, py = X(m.x), Y(m.y)
        if m.kind == "step" and px.size > 1:
            px = np.repeat(px, 2)[1:]
            py = np.repeat(py, 2)[:-1]
        d, lone = _polyline(px, py)
        clipped = f'<path d="{d}"{_stroke(m)}/>' if d else ""
        if m.marker:
            ok = np.isfinite(px) & np.isfinite(py)
            return clipped, _markers(_inside(px[ok], py[ok], b, p), m.marker, m.size, m.color)
        dots = np.array(lone).reshape(-1, 2)
        return clipped, _markers(_inside(dots[:, 0], dots[:, 1], b, p), "o", m.width + 1, m.color)
    if m.kind == "stairs":
        ex, vy, base = X(m.x), Y(m.y), float(Y(0.0)) if not ya.log else y0
        xs = np.repeat(ex, 2)
        ys = np.concatenate([[base], np.repeat(vy, 2), [base]])
        d, _ = _polyline(xs, ys)
        fill = f'<path d="{d}z" fill="{escape(m.color)}" fill-opacity="{m.fill:g}" stroke="none"/>' if m.fill else ""
        return fill + f'<path d="{d}"{_stroke(m)}/>', ""
    if m.kind == "band":
        px, hi, lo = X(m.x), Y(m.y), Y(m.base)
        ok = np.isfinite(px) & np.isfinite(hi) & np.isfinite(lo)
        if ok.sum() < 2:
            return "", ""
        d, _ = _polyline(np.concatenate([px[ok], px[ok][::-1]]), np.concatenate([hi[ok], lo[ok][::-1]]))
        return f'<path d="{d}z" fill="{escape(m.color)}" fill-opacity="{m.opacity:g}" stroke="none"/>', ""
    if m.kind in ("bars", "hbars"):
        w = m.bar_width / 2
        d = []
        for pos, h, base in zip(m.x, m.y, m.base):
            if not (np.isfinite(pos) and np.isfinite(h)):
                continue
            # a base a log axis cannot show (0) is the plot's edge
            if m.kind == "bars":
                (a, c), (e, f) = X([pos - w, pos + w]), np.nan_to_num(Y([base, h]), nan=y0)
            else:
                (a, c), (e, f) = np.nan_to_num(X([base, h]), nan=x0), Y([pos - w, pos + w])
            if np.isfinite([a, c, e, f]).all():
                d.append(f"M{_n(min(a, c))} {_n(min(e, f))}h{_n(abs(c - a))}v{_n(abs(f - e))}h{_n(-abs(c - a))}z")
        if not d:
            return "", ""
        return f'<path d="{"".join(d)}" fill="{escape(m.color)}" fill-opacity="{m.opacity:g}" stroke="none"/>', ""
    if m.kind == "scatter":
        px, py = X(m.x), Y(m.y)
        ok = np.isfinite(px) & np.isfinite(py)
        return "", _markers(_inside(px[ok], py[ok], b, p), m.marker or "o", m.size, m.color)
    if m.kind == "hline":
        d = "".join(f"M{_n(x0)} {_n(v)}H{_n(x1)}" for v in Y(m.y) if np.isfinite(v) and y1 <= v <= y0)
        return (f'<path d="{d}"{_stroke(m)}/>' if d else ""), ""
    if m.kind == "vline":
        d = "".join(f"M{_n(v)} {_n(y0)}V{_n(y1)}" for v in X(m.x) if np.isfinite(v) and x0 <= v <= x1)
        return (f'<path d="{d}"{_stroke(m)}/>' if d else ""), ""
    raise ValueError(f"unknown mark {m.kind!r}")


def _inside(px: np.ndarray, py: np.ndarray, b: _Box, p: Panel) -> list[tuple[float, float]]:
    keep = (px >= b.px0 - 0.5) & (px <= b.px1 + 0.5) & (py >= b.py0 - 0.5) & (py <= b.py0 + p.height + 0.5)
    return list(zip(px[keep].tolist(), py[keep].tolist()))


def _text(x: float, y: float, text: str, px: float, anchor: str = "start", color: str = TEXT, extra: str = "") -> str:
    """One <text>; `text` is already fitted (clean()ed), escaped here."""
    a = "" if anchor == "start" else f' text-anchor="{anchor}"'
    c = "" if color == TEXT else f' fill="{escape(color)}"'
    s = "" if px == FONT_PX else f' font-size="{_n(px)}"'
    return f'<text x="{_n(x)}" y="{_n(y)}"{a}{c}{s}{extra}>{escape(text)}</text>'


def _label(x, y, full: str, room: float, px: float, anchor="start", color=TEXT, extra="") -> str:
    """A label cut to `room`; when cut, the whole text as its tooltip."""
    full = clean(full)
    shown = fit(full, room, px)
    if not shown:
        return ""
    t = _text(x, y, shown, px, anchor, color, extra)
    if shown != full:
        t = t[: -len("</text>")] + f"<title>{escape(full)}</title></text>"
    return t


def _draw_panel(p: Panel, b: _Box) -> list[str]:
    x0, x1, yt, yb = b.px0, b.px1, b.py0, b.py0 + p.height
    out: list[str] = []
    xpx = [(float(p.x.to_px(v, x0, x1)), s) for v, s in b.xt]
    ypx = [(float(p.y.to_px(v, yb, yt)), s) for v, s in b.yt]
    y2px = [(float(p.y2.to_px(v, yb, yt)), s) for v, s in b.y2t]
    grid = "".join(f"M{_n(x)} {_n(yt)}V{_n(yb)}" for x, _ in xpx) + "".join(
        f"M{_n(x0)} {_n(y)}H{_n(x1)}" for y, _ in ypx
    )
    if grid:
        out.append(f'<path d="{grid}" stroke="{GRID}" stroke-width="1" fill="none"/>')
    clipped, loose = [], []
    for m in p.marks:
        a, c = _draw_mark(m, p, b)
        clipped.append(a)
        loose.append(c)
    if any(clipped):
        out.append(
            f'<svg x="{_n(x0)}" y="{_n(yt)}" width="{_n(x1 - x0)}" height="{_n(p.height)}" '
            f'viewBox="{_n(x0)} {_n(yt)} {_n(x1 - x0)} {_n(p.height)}">' + "".join(clipped) + "</svg>"
        )
    out.extend(s for s in loose if s)
    # axes: left and bottom lines (right too with a right axis), ticks, tick labels
    frame = f"M{_n(x0)} {_n(yt)}V{_n(yb)}H{_n(x1)}" + (f"V{_n(yt)}" if p.has_right else "")
    ticks = "".join(f"M{_n(x)} {_n(yb)}v{_TICK}" for x, _ in xpx)
    ticks += "".join(f"M{_n(x0)} {_n(y)}h-{_TICK}" for y, _ in ypx)
    ticks += "".join(f"M{_n(x1)} {_n(y)}h{_TICK}" for y, _ in y2px)
    out.append(f'<path d="{frame}{ticks}" stroke="{AXIS}" stroke-width="1" fill="none"/>')
    room_y = b.left - _PAD - _TICK - _GAP - (FONT_PX * 1.5 if p.ylabel else 0)
    for y, s in ypx:
        out.append(_label(x0 - _TICK - _GAP, y + TICK_PX * 0.35, s, room_y, TICK_PX, "end", p.y.color))
    room_y2 = b.right - _PAD - _TICK - _GAP - (FONT_PX * 1.5 if p.y2label else 0)
    for y, s in y2px:
        out.append(_label(x1 + _TICK + _GAP, y + TICK_PX * 0.35, s, room_y2, TICK_PX, "start", p.y2.color))
    if b.x_labels:
        ty = yb + _TICK + _GAP + TICK_PX * 0.9
        for i, (x, s) in enumerate(xpx):
            if p.x.rotate:
                rot = f' transform="rotate({_n(-abs(p.x.rotate))} {_n(x)} {_n(yb + _TICK + _GAP)})"'
                out.append(_text(x + TICK_PX * 0.3, ty - TICK_PX * 0.25, s, TICK_PX, "end", extra=rot))
            else:
                half = text_width(s, TICK_PX) / 2
                anchor = "end" if x + half > b.cx + b.cw and i == len(xpx) - 1 else "middle"
                out.append(_text(x, ty, s, TICK_PX, anchor))
        if p.xlabel:
            out.append(
                _label(
                    (x0 + x1) / 2,
                    b.cy + b.top + p.height + b.bottom - _PAD / 2 - 3,
                    p.xlabel,
                    x1 - x0,
                    FONT_PX,
                    "middle",
                )
            )
    mid = (yt + yb) / 2
    if p.ylabel:
        lx = b.cx + _PAD + FONT_PX * 0.85
        out.append(
            _label(
                lx,
                mid,
                p.ylabel,
                p.height,
                FONT_PX,
                "middle",
                p.y.color,
                f' transform="rotate(-90 {_n(lx)} {_n(mid)})"',
            )
        )
    if p.y2label:
        rx = b.cx + b.cw - _PAD - FONT_PX * 0.85
        out.append(
            _label(
                rx,
                mid,
                p.y2label,
                p.height,
                FONT_PX,
                "middle",
                p.y2.color,
                f' transform="rotate(90 {_n(rx)} {_n(mid)})"',
            )
        )
    # title and legend above the plot
    y = b.cy + _PAD
    for line in b.title:
        y += TITLE_PX * 1.3
        out.append(_text((x0 + x1) / 2, y - TITLE_PX * 0.3, line, TITLE_PX, "middle", extra=' font-weight="bold"'))
    for row in b.legend:
        x = x0
        cy = y + _LEGEND_ROW / 2 + 1
        for m, text, w in row:
            out.append(_swatch(m, x, cy))
            out.append(_text(x + _SWATCH + 5, cy + FONT_PX * 0.35, text, FONT_PX))
            x += w + 14
        y += _LEGEND_ROW
    out.extend(_draw_notes(p, b))
    return out


def _swatch(m: _Mark, x: float, cy: float) -> str:
    c = escape(m.color)
    if m.kind in ("band", "bars", "hbars") or (m.kind == "stairs" and m.fill):
        op = m.opacity if m.kind != "stairs" else max(m.fill, 0.3)
        edge = f' stroke="{c}"' if m.kind == "stairs" else ""
        return (
            f'<rect x="{_n(x)}" y="{_n(cy - 5)}" width="{_SWATCH}" height="10" fill="{c}" fill-opacity="{op:g}"{edge}/>'
        )
    if m.kind == "scatter":
        return _markers([(x + _SWATCH / 2, cy)], m.marker or "o", min(m.size, 5), m.color)
    line = f'<path d="M{_n(x)} {_n(cy)}h{_SWATCH}"{_stroke(m)}/>'
    if m.marker:
        line += _markers([(x + _SWATCH / 2, cy)], m.marker, min(m.size, 4), m.color)
    return line


def _draw_notes(p: Panel, b: _Box) -> list[str]:
    """Annotations kept inside the plot, each moved down (or up) off the ones before."""
    out, taken = [], []
    x0, x1, yt, yb = b.px0, b.px1, b.py0, b.py0 + p.height
    for n in p.notes:
        ax = float(p.x.to_px(n.x, x0, x1))
        ay = float((p.y2 if n.right else p.y).to_px(n.y, yb, yt))
        if not (np.isfinite(ax) and np.isfinite(ay)):
            continue
        text = fit(n.text, (x1 - x0) / 2, NOTE_PX)
        w, h = text_width(text, NOTE_PX), NOTE_PX * 1.25
        if ax + n.dx + w <= x1:
            left = ax + n.dx
        else:
            left = max(x0 + 2, ax - n.dx - w)
        top = min(max(ay + n.dy - h * 0.8, yt + 1), yb - h - 1)
        for _ in range(len(taken) + 1):
            hit = next((t for t in taken if left < t[2] and t[0] < left + w and top < t[3] and t[1] < top + h), None)
            if hit is None:
                break
            top = hit[3] + 1 if hit[3] + h + 1 <= yb else hit[1] - h - 1
        taken.append((left, top, left + w, top + h))
        out.append(_text(left, top + h * 0.8, text, NOTE_PX, color=n.color))
    return out
