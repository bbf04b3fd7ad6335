"""Whether a model fits a board: SoC family and toolkit vs runtime version, before any push."""

from __future__ import annotations

import pytest

from rkbench.errors import UsageError
from rkbench.model.compat import (
    check_fit,
    parse_version,
    require_fit,
    soc_matches,
    target_problem,
    version_problem,
)
from rkbench.model.rknn_file import read_rknn

STANDIN = "librknnrt version: 2.5.0 (stand-in standin@2026-12-01, not the vendor runtime)"


def test_soc_families():
    assert soc_matches("rk3566", "rk3568") and soc_matches("rk3568", "rk3566")
    assert soc_matches("RK3588", "rk3588s") and soc_matches(" rk3588s ", "RK3588")
    assert soc_matches("rk3576", "rk3576")
    assert not soc_matches("rk3588", "rk3566") and not soc_matches("rk3576", "rk3588")


def test_session_keeps_its_import():
    from rkbench.run import session

    assert session.soc_matches is soc_matches


@pytest.mark.parametrize(
    "text, numbers, standin",
    [
        ("librknnrt version: 2.5.0 (429f97ae6b@2025-04-09T09:09:27)", (2, 5, 0), False),
        ("2.3.2 (429f97ae6b@2025-04-09T09:09:27)", (2, 3, 2), False),  # rknn_query's api_version
        ("1.4.2b4 (ba1a7fe97@2023-03-06T22:00:24)", (1, 4, 2), False),  # a beta compiler
        ("1.3.4-source_code", (1, 3, 4), False),
        ("1.6", (1, 6, 0), False),
        (STANDIN, (2, 5, 0), True),
        ("2.5.0 (stand-in standin@2026-12-01)", (2, 5, 0), True),
    ],
)
def test_parse_version(text, numbers, standin):
    version = parse_version(text)
    assert (version.major, version.minor, version.patch) == numbers
    assert version.standin is standin and version.text == text.strip()


@pytest.mark.parametrize("text", [None, "", "librknnrt", "version unknown", "v."])
def test_parse_version_none(text):
    assert parse_version(text) is None


@pytest.mark.parametrize(
    "toolkit, runtime, refused",
    [
        ("2.5.0 (abc@2026-09-29)", "2.3.2 (def@2025-04-09)", True),  # newer toolkit minor
        ("2.5.0 (abc@2026-09-29)", "1.6.0 (def@2023-12-01)", True),  # older runtime major
        ("2.5.0", "2.5.3 (x@y)", False),  # patch releases do not matter
        ("2.5.3", "2.5.0 (x@y)", False),
        ("2.3.2", "2.5.0 (x@y)", False),  # a newer runtime runs older models
        ("1.4.2b4 (ba1a7fe97@2023-03-06)", "librknnrt version: 1.5.2 (c6b7b351a@2023-08-23T15:29:04)", False),
        ("2.5.0", STANDIN, False),
        ("2.5.0", None, False),  # unknown: not refused (a note says it)
        (None, "2.3.2", False),
    ],
)
def test_version_rule(toolkit, runtime, refused):
    problem = version_problem(toolkit, runtime, "m.rknn", "board7")
    assert (problem is not None) is refused
    if refused:
        assert "m.rknn" in problem and "board7" in problem
        assert "rkbench provision board7 --librknnrt PATH" in problem  # the fix, both ways
        assert "rebuild the model with rknn-toolkit2" in problem


def test_target_rule():
    assert target_problem(["rk3566"], "rk3568", "m.rknn", "b") is None
    assert target_problem(["rk3588"], None, "m.rknn", "b") is None  # unknown SoC: not checked here
    problem = target_problem(["rk3588"], "rk3566", "m.rknn", "board7")
    assert "built for rk3588" in problem and "board7 is an rk3566 board" in problem
    assert "--target rk3566" in problem


@pytest.mark.toolkit
def test_real_models_against_boards(rknn_models):
    rk3566 = read_rknn(rknn_models["tiny_rk3566"])
    rk3588 = read_rknn(rknn_models["tiny_rk3588"])
    runtime = "2.5.0 (429f97ae6b@2026-10-01T10:00:00)"

    assert check_fit(rk3566, "rk3568", runtime, "b").ok
    assert check_fit(rk3588, "rk3588s", runtime, "b").ok
    wrong_soc = check_fit(rk3588, "rk3566", runtime, "b")
    assert not wrong_soc.ok and len(wrong_soc.problems) == 1

    both = check_fit(rk3566, "rk3588", "librknnrt version: 2.3.2 (x@y)", "rk3566-board")
    assert len(both.problems) == 2
    with pytest.raises(UsageError) as err:
        require_fit(rk3566, "rk3588", "librknnrt version: 2.3.2 (x@y)", "rk3566-board")
    assert err.value.exit_code == 2 and "\n" not in str(err.value)
    assert "--target rk3588" in str(err.value) and "--librknnrt PATH" in str(err.value)

    unknown = require_fit(rk3588, None, None, "b")
    assert unknown.ok and len(unknown.notes) == 2  # neither the SoC nor the runtime is known
    assert any("stand-in" in note for note in check_fit(rk3588, "rk3588", STANDIN, "b").notes)
