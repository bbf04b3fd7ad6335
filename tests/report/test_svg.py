"""report/svg.py on its own: ticks, scales, text fitting and escaping, every mark, stable
and small output, and SVG that is well-formed XML."""

from __future__ import annotations

import html
import math
import os
import subprocess
import sys
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from rkbench.report import svg
from rkbench.report.svg import Axis, Chart, linear_ticks, log_ticks, nice_step

NS = "{http://www.w3.org/2000/svg}"


def parse(text: str) -> ET.Element:
    """Inline SVG is also XML: a stray '<', '&' or control character would fail here."""
    return ET.fromstring(text)


def texts(root: ET.Element) -> list[str]:
    """What each <text> shows (its own text, not its <title> tooltip)."""
    return [t.text or "" for t in root.iter(NS + "text")]


# -- ticks -----------------------------------------------------------------------------


def test_nice_steps():
    assert nice_step(10, 5) == 2
    assert nice_step(1, 4) == 0.25
    assert nice_step(0.07, 5) == pytest.approx(0.02)
    assert nice_step(4500, 5) == 1000
    assert nice_step(3, 10, integer=True) == 1  # never below one
    assert nice_step(10, 4, integer=True) == 5  # never 2.5


def test_linear_ticks_are_round_and_inside():
    assert linear_ticks(0, 10, 5) == [(0, "0"), (2, "2"), (4, "4"), (6, "6"), (8, "8"), (10, "10")]
    assert [s for _, s in linear_ticks(0, 1, 4)] == ["0", "0.25", "0.50", "0.75", "1.00"]  # one format for all
    assert [s for _, s in linear_ticks(0, 1.01, 4)] == ["0", "0.5", "1.0"]  # at most about 4 parts
    assert [s for _, s in linear_ticks(-0.3, 0.3, 3)] == ["-0.2", "0", "0.2"]  # never "-0"
    assert [v for v, _ in linear_ticks(-1.5, 3.7, 10, integer=True)] == [-1, 0, 1, 2, 3]


def test_linear_ticks_on_random_ranges():
    rng = np.random.default_rng(7)
    for _ in range(500):
        scale = 10.0 ** rng.integers(-12, 12)
        lo = float(rng.normal(0, 10) * scale)
        hi = lo + float(10 ** rng.uniform(-3, 1.5) * scale)
        count = int(rng.integers(2, 10))
        ticks = linear_ticks(lo, hi, count)
        values, labels = [v for v, _ in ticks], [s for _, s in ticks]
        assert len(ticks) >= 2, (lo, hi, count)
        assert len(ticks) <= 2 * count + 2, (lo, hi, count, ticks)
        span = hi - lo
        assert all(lo - 1e-9 * span <= v <= hi + 1e-9 * span for v in values), (lo, hi, ticks)
        assert values == sorted(values)
        assert len(set(labels)) == len(labels), (lo, hi, ticks)  # every label says something different
        assert all(len(s) <= 12 for s in labels), labels


def test_big_and_tiny_numbers_get_one_exponent():
    assert [s for _, s in linear_ticks(0, 5e9, 5)] == ["0", "1e9", "2e9", "3e9", "4e9", "5e9"]
    assert [s for _, s in linear_ticks(-1.2e-9, 3.2e-9, 5)] == ["-1e-9", "0", "1e-9", "2e-9", "3e-9"]


def test_log_ticks():
    assert [s for _, s in log_ticks(1, 1e6, 7)] == ["1", "10", "100", "1000", "10000", "100000", "1e6"]
    assert [s for _, s in log_ticks(1e-9, 1e9, 5)] == ["1e-9", "1e-5", "0.1", "1000", "1e7"]  # every 4th decade
    assert [v for v, _ in log_ticks(0.8, 60, 5)] == [1, 10]  # two decades: powers of ten
    assert [v for v, _ in log_ticks(1.5, 6, 5)] == [2, 3, 4, 5, 6]  # under a decade: plain numbers
    assert all(v > 0 for v, _ in log_ticks(0.011, 0.4, 5))


def test_axis_limits_from_the_data():
    a = Axis(margin=0.1)
    a.fix_limits([np.array([1.0, np.nan, 3.0]), np.array([np.inf, 2.0])])
    assert (a.lo, a.hi) == pytest.approx((0.8, 3.2))  # NaN and inf ignored, 10% each side
    a = Axis(margin=0.1)
    a.fix_limits([np.array([2.0, 5.0])], sticky=[0.0])
    assert (a.lo, a.hi) == pytest.approx((0.0, 5.5))  # no margin below a bar's base
    a = Axis()
    a.fix_limits([np.array([8.0, 8.0])])
    assert a.lo < 8 < a.hi  # one value: a span around it
    a = Axis()
    a.fix_limits([])
    assert a.hi > a.lo  # nothing at all still gives an axis
    a = Axis(log=True, margin=0.0)
    a.fix_limits([np.array([-1.0, 0.0, 10.0, 1000.0])])
    assert (a.lo, a.hi) == pytest.approx((1.0, 3.0))  # log10 units, non-positive values left out
    a = Axis(lim=(0, None))
    a.fix_limits([np.array([-5.0, -2.0])])
    assert a.hi > a.lo == 0  # one fixed limit never reverses the axis
    a = Axis(lim=(10, 0))
    a.fix_limits([np.array([3.0])])
    assert (a.lo, a.hi) == (10, 0)  # both given: reversed on purpose
    assert a.to_px([10, 0], 0, 100).tolist() == [0, 100]


def test_axis_to_px():
    a = Axis(lim=(0, 10))
    a.fix_limits([])
    assert a.to_px([0, 5, 10], 100, 300).tolist() == [100, 200, 300]
    assert a.to_px([0, 10], 300, 100).tolist() == [300, 100]  # y axes grow upwards
    g = Axis(log=True, lim=(1, 100))
    g.fix_limits([])
    assert g.to_px([1, 10, 100], 0, 100).tolist() == pytest.approx([0, 50, 100])
    assert math.isnan(g.to_px([0.0], 0, 100)[0])  # a log axis cannot show 0


# -- text ------------------------------------------------------------------------------


def test_escape_follows_the_html_report_and_xml():
    for s in ("plain", "a<b>&c", "\"double\" 'single'", "]]>", "<![CDATA[x]]>", "caf\u00e9 \u6a21\u578b"):
        assert svg.escape(s) == html.escape(s, quote=True)  # html.py's rules
    assert svg.clean("a\x00b\x07c\x1b\x7fd\ud800e\ufffe") == "a?b?c??d?e?"
    assert svg.escape(None) == ""


def test_text_width_and_fit():
    assert svg.text_width("iii") < svg.text_width("MMM")
    assert svg.text_width("\u6a21\u578b") > svg.text_width("ab")  # wide characters count wide
    long = "model/backbone/stage4/block12/conv2d_depthwise_" * 3
    cut = svg.fit(long, 200)
    assert cut.endswith("\u2026") and long.startswith(cut[:-1])
    assert svg.text_width(cut) <= 200 < svg.text_width(cut[:-1] + long[len(cut) - 1] + "\u2026")
    assert svg.fit("short", 200) == "short"
    assert svg.fit("anything", 1) == ""
    lines = svg.wrap("one two three four five six seven eight nine ten " * 4, 150, 13, lines=2)
    assert len(lines) == 2 and lines[1].endswith("\u2026")
    assert all(svg.text_width(line, 13) <= 150 for line in lines)


# -- charts ----------------------------------------------------------------------------


def every_mark_chart(name: str = "chart") -> Chart:
    x = np.linspace(0, 10, 50)
    chart = Chart(name, sharex=True)
    top = chart.panel(0, title="all the marks <b>", ylabel="y & co", y2label="right", height=140)
    top.band(x, np.sin(x) - 0.3, np.sin(x) + 0.3, label="band")
    top.line(x, np.sin(x), label="line", marker="o")
    top.step(x[::10], np.arange(5), right=True, color=svg.DEPART, label="step")
    top.scatter([2, 4], [0.5, -0.5], marker="x", label="scatter")
    top.hline([0.0, 0.5])
    top.vline(5.0, dash="dot")
    top.annotate(4, -0.5, "a note")
    mid = chart.panel(1, ylabel="count", height=100)
    mid.stairs([1, 3, 2], [0, 3, 6, 9], label="stairs")
    mid.bars([1, 5], [2, 4], width=1.0, label="bars")
    bottom = chart.panel(2, xlabel="x (s)", ylabel="log", ylog=True, height=100)
    bottom.line(x, 10 ** (x / 2), dash="dash", label="10^(x/2)")
    side = Chart(name + " side")
    h = side.panel(0, 0, title="horizontal", xlabel="ms")
    h.bars(range(3), [3.0, 2.0, 1.0], horizontal=True, label="time")
    h.yticks(range(3), ["conv_1", "conv_2", "relu_3"])
    h.ylim(2.6, -0.6)
    side.panel(0, 1, title="categories").line([0, 1, 2], [1, 2, 3]).xticks([0, 1, 2], ["a", "b", "c"], rotate=30)
    chart.side = side  # type: ignore[attr-defined]
    return chart


def test_every_mark_draws_into_well_formed_svg():
    chart = every_mark_chart()
    for c in (chart, chart.side):
        text = c.svg()
        root = parse(text)
        assert root.tag == NS + "svg" and root.get("class") == "plot" and root.get("role") == "img"
        assert root.get("width") is None and root.get("viewBox").startswith("0 0 960 ")  # scales with the page
        assert "id=" not in text  # nothing that could clash with another chart on the page
        assert "NaN" not in text and "nan" not in text and "inf" not in text
    shown = texts(parse(chart.svg()))
    for expected in ("all the marks <b>", "y & co", "right", "band", "line", "step", "scatter", "a note", "x (s)"):
        assert expected in shown, expected
    assert {"conv_1", "conv_2", "relu_3", "a", "b", "c"} <= set(texts(parse(chart.side.svg())))


def test_shared_x_axis_labels_only_the_bottom_panel():
    root = parse(every_mark_chart().svg())
    plots = [e for e in root if e.tag == NS + "svg"]  # the clipped plot areas, one per panel
    assert len(plots) == 3
    lefts = {p.get("x") for p in plots}
    widths = {p.get("width") for p in plots}
    assert len(lefts) == 1 and len(widths) == 1  # one column, aligned
    assert texts(root).count("x (s)") == 1


def test_same_input_same_bytes_even_in_another_process():
    first = every_mark_chart().svg()
    assert first == every_mark_chart().svg()
    code = (
        "from tests.report.test_svg import every_mark_chart; import sys; "
        "c = every_mark_chart(); sys.stdout.write(c.svg() + c.side.svg())"
    )
    env = dict(os.environ, PYTHONHASHSEED="12345")
    other = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert other == first + every_mark_chart().side.svg()


def test_hostile_text_stays_text():
    nasty = "]]><script>x()</script> \"q\" 'a' <![CDATA[ & \x01\x1b end"
    chart = Chart(nasty)
    p = chart.panel(title=nasty, xlabel=nasty, ylabel=nasty, y2label=nasty)
    p.line([0, 1], [0, 1], label=nasty)
    p.line([0, 1], [1, 0], label="x", right=True)
    p.annotate(0.5, 0.5, nasty)
    p.xticks([0, 1], [nasty, "b"])
    text = chart.svg()
    root = parse(text)
    assert "<script" not in text and "]]>" not in text and "<![CDATA[" not in text
    assert root.get("aria-label") == svg.clean(nasty)
    assert not list(root.iter(NS + "script"))
    cleaned = svg.clean(nasty)
    shown = texts(root)
    assert cleaned in shown  # the title has room for all of it
    for t in shown:  # everything else is a cut of it, ending in an ellipsis
        if t in ("x", "b") or t.replace(".", "").isdigit():  # the other label, tick values
            continue
        assert t == cleaned or (t.endswith("\u2026") and cleaned.startswith(t[:-1])), t
    tips = [t.text for t in root.iter(NS + "title")]
    assert tips and all(t == cleaned for t in tips)  # cut labels carry the whole text as a tooltip


def test_labels_are_cut_to_their_room():
    chart = Chart("long")
    p = chart.panel(title="t " * 200, ylabel="y" * 300)
    p.line([0, 1], [0, 1], label="legend " * 100)
    root = parse(chart.svg())
    width, height = (float(v) for v in root.get("viewBox").split()[2:])
    for t in root.iter(NS + "text"):
        size = float(t.get("font-size", svg.FONT_PX))
        assert svg.text_width(t.text or "", size) <= width, t.text
    title_lines = [t for t in root.iter(NS + "text") if t.get("font-weight") == "bold"]
    assert len(title_lines) == 2  # wrapped once, then cut
    assert height < 400


def test_a_long_series_stays_small():
    rng = np.random.default_rng(0)
    x = np.arange(100_000.0)
    chart = Chart("long series")
    chart.panel().line(x, rng.normal(size=x.size))
    size = len(chart.svg())
    # rounded to 0.1 px and repeats dropped, but every point can be a new one: about 12 bytes each
    assert size < 100_000 * 14
    flat = Chart("flat")
    flat.panel().line(x, np.zeros(x.size))
    assert len(flat.svg()) < 5_000  # 100,000 points on one pixel row: one segment
    back = Chart("back")
    back.panel().line([0, 10, 5, 5], [1, 1, 1, 0])
    d = next(p.get("d") for p in parse(back.svg()).iter(NS + "path") if p.get("stroke") == svg.COLORS[0])
    assert len(d.split("L")[1].split()) == 6  # M + 3 points: where the line turns back is kept


def test_nan_breaks_a_line_and_a_lone_point_shows():
    chart = Chart("gaps")
    chart.panel().line([0, 1, 2, 3, 4], [1, 2, np.nan, 3, np.nan])
    text = chart.svg()
    path = next(p.get("d") for p in parse(text).iter(NS + "path") if p.get("stroke") == svg.COLORS[0])
    assert path.count("M") == 1  # one segment: 0-1; 3 stands alone...
    assert text.count(f'fill="{svg.COLORS[0]}" stroke="none"') == 1  # ...and is drawn as a dot


def test_stairs_need_one_more_edge():
    with pytest.raises(ValueError, match="3 values need 4 edges"):
        Chart("x").panel().stairs([1, 2, 3], [0, 1, 2])


def test_importing_the_report_loads_nothing_heavy():
    """`rkbench run` writes the report after every run: importing it costs the standard
    library, numpy (which the run has loaded already) and rkbench; no plotting library."""
    code = (
        "import sys; before = set(sys.modules); import rkbench.report; "
        "print(' '.join(sorted({m.split('.')[0] for m in set(sys.modules) - before})))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert "rkbench" in loaded
    ours = {"numpy", "cython_runtime", "rkbench", "rkbench_wire"}  # cython_runtime, _cython_*: numpy's
    outside = {m for m in loaded if m not in sys.stdlib_module_names and m not in ours and not m.startswith("_cython")}
    assert not outside, outside
