"""The HTML report in a real browser: headless Chromium (Debian package `chromium`) over
the DevTools protocol. It must load without script errors, ask for nothing but itself,
show its charts as SVG, keep hostile names inert, and its one script must sort."""

from __future__ import annotations

import json

import pytest

from rkbench.report import write_html

from .chromium import Chromium, find_chromium
from .synthetic import edge_cases, run

pytestmark = pytest.mark.skipif(
    find_chromium() is None, reason="Chromium is not installed: apt-get install -y chromium (the browser tests need it)"
)


@pytest.fixture(scope="module")
def browser():
    with Chromium() as b:
        yield b


def test_renders_without_errors_or_requests(browser, html_report):
    page = browser.open(
        html_report,
        evaluate=[
            "document.querySelectorAll('svg.plot').length",
            "Array.from(document.querySelectorAll('svg.plot')).every(s => s.getBoundingClientRect().width > 300"
            " && s.getBoundingClientRect().height > 100)",
            "document.querySelectorAll('svg.plot path').length",
            "window.__pwned === undefined",
        ],
    )
    assert page.errors == []
    assert page.requests == [page.url]  # self-contained: nothing fetched
    n_plots, laid_out, paths, inert = page.values
    assert n_plots == page.counts["figures"] == 6
    assert laid_out  # the charts are drawn at a readable size
    assert paths > 50
    assert inert
    assert page.counts["title"] == "nightly <b>&</b> 'lab'"  # shown as text
    assert page.counts["scripts"] == 1
    assert page.load_ms is not None and page.load_ms < 5000


def test_hostile_script_in_a_model_name_does_not_run(browser, tmp_path):
    r = run(n=200, n_layers=6, model="<script>window.__pwned=1;document.title='pwned'</script>m")
    r.layers[0].tensor = '<img src=x onerror="window.__pwned=2">'
    r.board = '"><script>window.__pwned=3</script>'
    path = write_html([r], tmp_path / "hostile.html", title="</title><script>window.__pwned=4</script>")
    page = browser.open(
        path, evaluate=["window.__pwned === undefined", "document.querySelector('section.cell h2').textContent"]
    )
    assert page.errors == []
    assert page.requests == [page.url]  # the <img src=x> never became an image
    inert, heading = page.values
    assert inert
    assert heading.startswith("<script>window.__pwned=1")
    assert page.counts["title"] == "</title><script>window.__pwned=4</script>"


def test_the_hostile_check_catches_an_unescaped_page(browser, tmp_path):
    """Control for the test above: the same probe sees a script that was not escaped."""
    path = tmp_path / "raw.html"
    path.write_text("<!DOCTYPE html><html><body><h2><script>window.__pwned=1</script>m</h2></body></html>")
    assert browser.open(path, evaluate=["window.__pwned === undefined"]).values == [False]


def test_summary_table_sorts(browser, tmp_path):
    runs = [
        run(n=200, n_layers=4, core_mask=m, median_ms=ms, seed=i, run_id=i)
        for i, (m, ms) in enumerate((("0", 8.0), ("0_1", 3.0), ("0_1_2", 5.0)))
    ]
    path = write_html(runs, tmp_path / "sort.html")
    order = (
        "JSON.stringify(Array.from(document.querySelectorAll('table.summary tbody tr'))"
        ".map(r => r.cells[5].textContent))"
    )
    click = "document.querySelectorAll('table.summary th')[7].click()"  # p50 ms
    page = browser.open(path, evaluate=[order, click, order, click, order])
    assert page.errors == []
    before, _, ascending, _, descending = page.values
    assert json.loads(before) == ["0", "0_1", "0_1_2"]
    assert json.loads(ascending) == ["0_1", "0_1_2", "0"]
    assert json.loads(descending) == ["0", "0_1_2", "0_1"]


def test_ten_thousand_sample_report_loads_fast(browser, tmp_path):
    path = write_html([run(n=10_000, n_layers=300)], tmp_path / "big.html")
    browser.open("about:blank")
    page = browser.open(path)
    assert page.errors == []
    assert page.counts["svg"] == 3
    # the bench (python -m bench.bench_report) holds it to < 1 s; here only a loose bound
    assert page.load_ms < 3000, page.load_ms


# Every <text> of every chart, as laid out by the browser: inside its chart, and off every other.
TEXT_LAYOUT_JS = """
JSON.stringify(Array.from(document.querySelectorAll('svg.plot')).map(svg => {
  const box = svg.getBoundingClientRect();
  const texts = Array.from(svg.querySelectorAll('text')).map(t => [t.textContent, t.getBoundingClientRect()]);
  const problems = [];
  for (const [s, r] of texts) {
    if (r.width === 0) problems.push('empty: ' + s);
    if (r.left < box.left - 0.5 || r.right > box.right + 0.5 || r.top < box.top - 0.5 || r.bottom > box.bottom + 0.5)
      problems.push('clipped: ' + s);
  }
  for (let a = 0; a < texts.length; a++) for (let b = a + 1; b < texts.length; b++) {
    const r = texts[a][1], q = texts[b][1];
    const dx = Math.min(r.right, q.right) - Math.max(r.left, q.left);
    const dy = Math.min(r.bottom, q.bottom) - Math.max(r.top, q.top);
    if (dx > 0.5 && dy > 0.5) problems.push('overlap: ' + texts[a][0] + ' | ' + texts[b][0]);
  }
  return [svg.getAttribute('aria-label'), texts.length, problems];
}))
"""


@pytest.mark.parametrize("case", list(edge_cases()))
def test_chart_text_neither_overlaps_nor_clips(browser, tmp_path, case):
    results, history = edge_cases()[case]
    path = write_html(results, tmp_path / "case.html", history=history, title=case)
    page = browser.open(path, evaluate=[TEXT_LAYOUT_JS])
    assert page.errors == []
    charts = json.loads(page.values[0])
    assert len(charts) == page.counts["svg"] >= 3
    for label, n_texts, problems in charts:
        assert n_texts >= 8, label  # titles, axis labels, ticks, legend: there is text to check
        assert problems == [], (label, problems)


def test_the_layout_check_catches_overlapping_text(browser, tmp_path):
    """Control for the test above: two labels drawn on top of each other are seen."""
    path = tmp_path / "overlap.html"
    path.write_text(
        '<!DOCTYPE html><html><body><svg class="plot" viewBox="0 0 200 50" width="400">'
        '<text x="10" y="20">overlapping</text><text x="20" y="22">labels</text>'
        '<text x="150" y="45">clipped at the edge</text></svg></body></html>'
    )
    ((_, _, problems),) = json.loads(browser.open(path, evaluate=[TEXT_LAYOUT_JS]).values[0])
    assert any(p.startswith("overlap: overlapping | labels") for p in problems)
    assert any(p.startswith("clipped: clipped") for p in problems)
