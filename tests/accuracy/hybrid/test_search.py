"""The search strategy on a scripted model of accuracy: our algorithm, not the toolkit's.
(The toolkit-backed search runs in test_hybrid_cli.py.)"""

import math

import pytest

from rkbench.accuracy.hybrid.search import Candidate, HybridRecord, search

GROUPS = [[f"t{i}a", f"t{i}b"] for i in range(10)]


class ScriptedSession:
    def __init__(self, score, baseline=0.5):
        self.score = score
        self.baseline = baseline
        self.builds = 0
        self.tried = []

    def ranked_groups(self, step1):
        self.builds += 1
        return GROUPS, Candidate("int8", {}, [], 100, self.baseline, self.baseline, None, [], False)

    def evaluate(self, step1, layers, label):
        self.builds += 1
        self.tried.append(dict(layers))
        cos = self.score(layers)
        return Candidate(label, dict(layers), list(layers), 100 + len(layers), cos, cos, None, [], False)


def record():
    return HybridRecord(mode="auto", target_cos=0.99, calibration={}, evaluation={})


def needs(*groups):
    """Accuracy reaches 0.999 only when every named group is floated."""
    wanted = {t for g in groups for t in GROUPS[g]}
    return lambda layers: 0.999 if wanted <= set(layers) else 0.9


def test_geometric_growth_then_bisect_finds_the_smallest_prefix():
    session = ScriptedSession(needs(0, 4))
    best = search(session, None, record(), 0.99, max_builds=12, dtype="float16")
    assert set(best.layers) == {t for g in (0, 4) for t in GROUPS[g]}
    # Prefixes tried: 1, 2, 4, 8 (pass), then 6, 5 (pass); then dropping groups 3..1.
    sizes = [len(t) // 2 for t in session.tried]
    assert sizes[:6] == [1, 2, 4, 8, 6, 5]
    assert session.builds <= 12


def test_budget_is_a_hard_bound():
    session = ScriptedSession(needs(9))
    rec = record()
    best = search(session, None, rec, 0.99, max_builds=3, dtype="float16")
    assert session.builds == 3
    assert best.cos_mean == 0.9  # not reached: the best candidate found is returned


def test_int8_that_meets_the_target_stops_at_once():
    session = ScriptedSession(needs(0), baseline=0.999)
    rec = record()
    best = search(session, None, rec, 0.99, max_builds=12, dtype="float16")
    assert best.label == "int8" and session.tried == []
    assert "int8 already meets the target" in rec.notes[0]


def test_float16_overflow_switches_to_int16():
    def score(layers):
        if "t0a" in layers and layers["t0a"] == "float16":
            return math.nan
        return 0.999 if "t0a" in layers else 0.9

    session = ScriptedSession(score)
    rec = record()
    best = search(session, None, rec, 0.99, max_builds=12, dtype="float16")
    assert set(best.layers.values()) == {"int16"} and best.cos_mean == 0.999
    assert any("switching to int16" in note for note in rec.notes)


@pytest.mark.parametrize("max_builds", [1, 2])
def test_tiny_budgets(max_builds):
    session = ScriptedSession(needs(0))
    search(session, None, record(), 0.99, max_builds=max_builds, dtype="float16")
    assert session.builds <= max(max_builds, 1)
