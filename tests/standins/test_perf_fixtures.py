"""The committed PERF_DETAIL fixtures are what the stand-in prints today."""

from __future__ import annotations

import pytest

from tests.standins import perf_fixtures

pytestmark = pytest.mark.toolkit


@pytest.mark.parametrize("fmt", ["current", "old"])
def test_fixture_is_current(rt, models, monkeypatch, fmt):
    for name, value in perf_fixtures.SETTINGS.items():
        monkeypatch.setenv(name, value)
    text = perf_fixtures.render(rt, models[perf_fixtures.MODEL], fmt)
    committed = (perf_fixtures.FIXTURES / f"{fmt}.txt").read_text()
    assert text == committed, "regenerate: .venv/bin/python -m tests.standins.perf_fixtures"
    assert len(text.splitlines()) > 100  # the real model's 98 operators, not the generic list
