"""Fixtures for the report tests: one suite of runs (two core masks of a model whose name
and tensor names are hostile HTML, one failed board), its history, and its HTML report
written once per session."""

from __future__ import annotations

import pytest

from rkbench.report import write_html

from .synthetic import HOSTILE_MODEL, history_for, suite


@pytest.fixture(scope="session")
def results():
    runs = suite(n=2000, n_layers=40)
    for r in runs[:2]:
        r.model = HOSTILE_MODEL
    return runs


@pytest.fixture(scope="session")
def history(results):
    return history_for(results)


@pytest.fixture(scope="session")
def html_report(results, history, tmp_path_factory):
    path = tmp_path_factory.mktemp("report") / "report.html"
    write_html(results, path, history=history, title="nightly <b>&</b> 'lab'")
    return path
