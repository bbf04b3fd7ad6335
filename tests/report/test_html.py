"""The HTML report read as a document: escaped, self-contained, plots present, small."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import numpy as np

from rkbench.report import plots, svg, write_html
from rkbench_wire import summarize_ns

from .synthetic import HOSTILE_MODEL, HOSTILE_TENSOR, run


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_startendtag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def parse(path) -> Tags:
    p = Tags()
    p.feed(path.read_text(encoding="utf-8"))
    return p


def test_hostile_strings_are_escaped(html_report):
    source = html_report.read_text(encoding="utf-8")
    doc = parse(html_report)
    names = [t for t, _ in doc.tags]
    assert names.count("script") == 1  # ours, at the end
    assert source.count("<script") == 1 and source.rstrip().endswith("</script>\n</body></html>")
    assert "img" not in names
    assert not [(t, a) for t, a in doc.tags for k in a if k.lower().startswith("on")]  # no event handlers
    assert "<b>&</b>" not in source  # the title
    # ... and the text is still there for the reader, once unescaped
    text = "".join(doc.text)
    assert HOSTILE_MODEL in text
    assert HOSTILE_TENSOR in text
    assert "nightly <b>&</b> 'lab'" in text


def test_self_contained(html_report):
    source = html_report.read_text(encoding="utf-8")
    doc = parse(html_report)
    for tag, attrs in doc.tags:
        for key in ("src", "href", "xlink:href", "action", "srcset", "poster", "data"):
            value = attrs.get(key)
            if value is not None:
                assert value.startswith(("#", "data:")), (tag, key, value)
        assert tag not in ("link", "iframe", "object", "embed", "img")
    assert "@import" not in source and "url(http" not in source
    csp = [a["content"] for t, a in doc.tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy"]
    assert csp and csp[0].startswith("default-src 'none'")


def test_sections_and_plots(html_report, results):
    source = html_report.read_text(encoding="utf-8")
    doc = parse(html_report)
    svgs = [a for t, a in doc.tags if t == "svg"]
    labels = [a.get("aria-label") for a in svgs]
    # one cell (two core masks of the hostile model) with samples, one failed board:
    # distribution + history for the cell, timeline + layers per measured run
    assert labels.count("latency histogram and CDF") == 1
    assert labels.count("latency history") == 1
    assert labels.count("latency over time with telemetry") == 2
    assert labels.count("per-layer cosine: simulator vs board") == 2
    for heading in (
        "Summary",
        "Thresholds",
        "Latency (ms)",
        "Output errors",
        "Layers where the board departs from the simulator (1)",
        "Versions, settings",
    ):
        assert heading in source
    text = "".join(parse(html_report).text)
    assert "board lost during the runs" in text  # the failed run's error
    assert "max_p99_ms" in text and "rknn_toolkit2" in text and "elapsed_s" in text
    p50 = results[0].stats.p50_ms
    assert f"{p50:.3f}" in text
    assert "+3.1% vs run 34" in text


def test_ten_thousand_samples_stay_small(tmp_path):
    r = run(n=10_000, n_layers=300)
    path = write_html([r], tmp_path / "big.html")
    size = path.stat().st_size
    assert size < 2_000_000, size
    # nothing like one element per sample: the timeline is decimated, the CDF quantiles
    assert path.read_text().count("<path") < 400


def test_decimation_limits():
    ms = np.random.default_rng(0).lognormal(2, 0.1, 10_000)
    x, q = plots.cdf_points(ms)
    assert x.size == q.size == plots.CDF_POINTS
    assert np.all(np.diff(x) >= 0) and q[0] == 0 and q[-1] == 1
    assert x[0] == ms.min() and x[-1] == ms.max()
    t = np.cumsum(ms)
    tt, lo, med, hi = plots.decimate_series(t, ms)
    assert tt.size == plots.TIME_BINS
    assert lo.min() == ms.min() and hi.max() == ms.max()  # spikes survive
    assert tt[-1] == t[-1]
    small = np.arange(50.0)
    assert plots.decimate_series(small, small)[0].size == 50
    assert len(plots._thin(list(range(2000)))) <= plots.TELEMETRY_POINTS + 1


def test_sample_times_follow_the_loop_wall_time():
    r = run(n=1000)
    t = plots.sample_times(r)
    assert abs(t[-1] - r.settings["elapsed_s"]) < 1e-9
    r.settings.pop("elapsed_s")
    assert abs(plots.sample_times(r)[-1] - sum(r.latency_ns) / 1e9) < 1e-9


def test_mathtext_and_odd_labels_do_not_break_the_plots(tmp_path):
    r = run(n=300, model="$\\frac{a}{$ model $$", n_layers=12)
    for layer in r.layers:
        layer.tensor = "$x_{" + layer.tensor + "$"
    r.core_mask = "$0$"
    r.telemetry[0].temperatures_c["$zone$"] = 40.0
    path = write_html([r], tmp_path / "odd.html")
    assert path.read_text().count('class="plot"') == 3


def test_runs_without_samples_layers_or_telemetry(tmp_path):
    r = run(n=100)
    r.latency_ns, r.layers, r.telemetry, r.outputs, r.thresholds = [], [], [], [], []
    r.stats = None
    r.npu_stats = None
    r.memory = {}
    path = write_html([r], tmp_path / "bare.html", history={})
    source = path.read_text()
    assert "<svg" not in source and "none set" in source
    assert write_html([], tmp_path / "empty.html").read_text().count("<table") == 1


def test_charts_are_well_formed_xml_whatever_the_names(tmp_path):
    """Inline SVG is read by the HTML parser in its foreign-content mode, where <![CDATA[
    and ]]> mean something: names with them, quotes and control characters must arrive
    as text, and each chart must also be well-formed XML (so no raw < & or control
    characters anywhere in it)."""
    nasty = "]]><![CDATA[<script>window.__pwned=1</script>]]> \"dq\" 'sq' \x01\x08\x1b\x7f end"
    r = run(n=500, n_layers=8, model=nasty, core_mask=nasty)
    r.layers[4].tensor = nasty
    r.telemetry[0].temperatures_c[nasty] = 45.0
    r.telemetry[0].cpu_freq_hz[nasty] = 1.2e9
    history = {plots.c.run_key(r): [plots.c.HistoryPoint(run_id=1, started=nasty, p50_ms=8.0, p99_ms=9.0)]}
    source = write_html([r], tmp_path / "nasty.html", history=history).read_text(encoding="utf-8")
    charts = re.findall(r"<figure>(.*?)<figcaption>", source, flags=re.S)
    assert len(charts) == 4
    shown = []
    for chart in charts:
        assert not re.search("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", chart)
        assert "]]>" not in chart and "<![CDATA[" not in chart and "<script" not in chart
        root = ET.fromstring(chart)
        shown += ["".join(t.itertext()) for t in root.iter("{http://www.w3.org/2000/svg}text")]
    start = svg.clean(nasty)[:15]  # charts shorten names (plots.label); what they show is the text itself
    assert start == "]]><![CDATA[<sc"
    for where, prefix in (("legend", "core "), ("annotation", "#4 "), ("telemetry legend", ""), ("CPU legend", "CPU ")):
        assert any(t.startswith(prefix + start) for t in shown), where


def test_the_npu_view_of_a_run(tmp_path):
    """NPU time next to end to end, the host's share, utilisation, stages, memory, runtime."""
    r = run(backend="rknnrt", n=500)
    npu = [int(ns * 0.8) for ns in r.latency_ns]
    r.stages_ns = {"npu": npu}
    r.npu_stats = summarize_ns(npu)
    r.stage_stats = {"npu": r.npu_stats, "inputs_set": summarize_ns([50_000] * 500)}
    r.io_mode, r.timing_notes = "zero_copy", ["outputs are read from the NPU buffers after the loop"]
    r.memory = dict(r.memory, npu={"dma_bytes": 6 << 20, "weight_bytes": 4 << 20, "internal_bytes": 1 << 20})
    r.versions = dict(r.versions, api_version="2.5.0 (abc@2026)", drv_version="0.9.8")
    text = write_html([r], tmp_path / "r.html").read_text()
    assert "NPU only (RKNN_QUERY_PERF_RUN)" in text and "stage: inputs_set" in text
    assert "NPU utilisation <b>80%</b>" in text and "io mode zero_copy" in text
    assert "DMA 6.0 MiB, weights 4.0 MiB, internal 1.0 MiB" in text and "librknnrt 2.5.0 (abc@2026)" in text
    assert "outputs are read from the NPU buffers" in text
