"""Fixtures for the results store tests: a fresh store file per test and the CLI on it."""

from __future__ import annotations

import pytest

from rkbench.results.store import Store
from tests.results.helpers import Cli


@pytest.fixture
def db(tmp_path):
    return tmp_path / "results.db"


@pytest.fixture
def store(db):
    with Store(db) as s:
        yield s


@pytest.fixture
def store_cli(db) -> Cli:
    return Cli(db)
