"""The search strategy on a scripted model of accuracy: our algorithm, not the toolkit's.
(The toolkit-backed search runs in test_hybrid_cli.py and test_hybrid_failures.py.)"""

import math

import pytest

from rkbench.accuracy.hybrid.candidates import Candidate, HybridRecord
from rkbench.accuracy.hybrid.dtypes import DtypeRules
from rkbench.accuracy.hybrid.groups import LayerGraph
from rkbench.accuracy.hybrid.search import search
from rkbench.accuracy.hybrid.session import Step1

GROUPS = [[f"t{i}a", f"t{i}b"] for i in range(40)]
TENSORS = [t for g in GROUPS for t in g]


def step1(magnitude=None, int32_constants=None):
    graph = LayerGraph({}, {}, frozenset(TENSORS), frozenset(), {t: i for i, t in enumerate(TENSORS)})
    rules = DtypeRules(list(TENSORS), {t: (magnitude or {}).get(t, 1.0) for t in TENSORS}, dict(int32_constants or {}))
    return Step1(None, None, None, graph, rules)


class ScriptedSession:
    """Scores a candidate with `score(layers)`: a float, or a string (the build fails so)."""

    def __init__(self, score, baseline=0.5, jobs=1):
        self.score = score
        self.baseline = baseline
        self.builds = 0
        self.jobs = jobs
        self.rounds = []

    def ranked_groups(self, step1):
        self.builds += 1
        return GROUPS, Candidate("int8", {}, [], 100, self.baseline, self.baseline, None, [], False)

    def is_cached(self, layers):
        return False

    def evaluate_many(self, step1, wanted):
        self.rounds.append([dict(layers) for layers, _ in wanted])
        found = []
        for layers, label in wanted:
            self.builds += 1
            score = self.score(layers)
            if isinstance(score, str):
                found.append(Candidate.failed(label, layers, score))
            else:
                found.append(Candidate(label, dict(layers), [], 100 + len(layers), score, score, None, [], False))
        return found

    @property
    def tried(self):
        return [layers for batch in self.rounds for layers in batch]


def record():
    return HybridRecord(mode="auto", target_cos=0.99, calibration={}, evaluation={})


def needs(*groups, dtype=None):
    """0.999 when every named group is kept (in `dtype`, if given), else 0.9."""
    wanted = {t for g in groups for t in GROUPS[g]}

    def score(layers):
        ok = wanted <= set(layers) and (dtype is None or all(layers[t] == dtype for t in wanted))
        return 0.999 if ok else 0.9

    return score


def test_finds_the_groups_that_matter_with_fewer_entries_than_all_layers():
    session = ScriptedSession(needs(0, 3))
    best = search(session, step1(), record(), 0.99, max_builds=12)
    assert best.meets_target and set(best.layers) == {t for g in (0, 3) for t in GROUPS[g]}
    assert session.builds <= 12
    # the two ceilings came first: every layer in float16, every layer in int16
    assert [len(layers) for layers in session.tried[:2]] == [80, 80]
    assert set(session.tried[0].values()) == {"float16"} and set(session.tried[1].values()) == {"int16"}


def test_no_assumption_that_more_float_is_better():
    """Accuracy falls when layers beyond the needed ones are kept: the search follows the
    measurements and never keeps a larger set because it is larger."""

    def score(layers):
        if not {"t1a", "t1b"} <= set(layers):
            return 0.9
        return 0.999 - 0.0001 * max(0, len(layers) - 2) if len(layers) < 60 else 0.995

    session = ScriptedSession(score)
    rec = record()
    best = search(session, step1(), rec, 0.99, max_builds=12)
    assert best.meets_target and len(best.layers) < 20


def test_dtype_chosen_by_measurement_when_float16_hurts():
    session = ScriptedSession(needs(2, dtype="int16"))
    rec = record()
    best = search(session, step1(), rec, 0.99, max_builds=12)
    assert best.meets_target and set(best.layers.values()) == {"int16"}
    assert any("int16 chosen over float16 by measurement" in note for note in rec.notes)
    assert best.groups and all(g.startswith("int16:") for g in best.groups)


def test_float16_overflow_known_from_ranges_goes_to_int16():
    rules_step1 = step1(magnitude={"t5a": 120000.0})
    session = ScriptedSession(needs(5))
    search(session, rules_step1, record(), 0.99, max_builds=12)
    float16_ceiling = session.tried[0]
    assert float16_ceiling["t5a"] == "int16" and float16_ceiling["t5b"] == "float16"


def test_int16_refused_where_a_layer_reads_an_int32_constant():
    rules_step1 = step1(int32_constants={"t7b": "anchors"})
    session = ScriptedSession(needs(7))
    search(session, rules_step1, record(), 0.99, max_builds=12)
    int16_ceiling = session.tried[1]
    assert int16_ceiling["t7b"] == "float16" and int16_ceiling["t7a"] == "int16"


def test_a_failed_candidate_is_a_result_and_what_it_names_is_kept_out():
    graph_step1 = step1()

    def score(layers):
        if layers.get("t3a") == "int16":
            return "rknn-toolkit2 crashed (SIGILL)"
        return needs(3)(layers)

    def learn_from_failure(original):
        def evaluate_many(step1, wanted):
            found = original(step1, wanted)
            for candidate in found:
                if candidate.failure:
                    step1.rules.learned["int16"]["t3a"] = "the toolkit refused it"
            return found

        return evaluate_many

    session = ScriptedSession(score)
    session.evaluate_many = learn_from_failure(session.evaluate_many)
    rec = record()
    best = search(session, graph_step1, rec, 0.99, max_builds=12)
    failed = [c for c in rec.candidates if c.failure]
    assert failed and failed[0].label == "all layers int16" and not failed[0].feasible
    assert best.meets_target
    assert all(layers.get("t3a") != "int16" for layers in session.tried[session.tried.index(failed[0].layers) + 1 :])


def test_parallel_rounds_build_several_candidates_at_once():
    session = ScriptedSession(needs(6), jobs=2)
    best = search(session, step1(), record(), 0.99, max_builds=12)
    assert best.meets_target and session.builds <= 12
    assert max(len(batch) for batch in session.rounds) == 2


def test_budget_is_a_hard_bound_and_the_best_is_kept():
    session = ScriptedSession(lambda layers: 0.95 if len(layers) > 40 else 0.9)
    rec = record()
    best = search(session, step1(), rec, 0.99, max_builds=3)
    assert session.builds == 3 and best.cos_mean == 0.95


def test_unreachable_target_says_so_and_keeps_the_best():
    session = ScriptedSession(lambda layers: 0.97 if len(layers) == 80 else 0.9)
    rec = record()
    best = search(session, step1(), rec, 0.99, max_builds=12)
    assert best.cos_mean == 0.97 and not best.meets_target
    assert any("out of reach" in note for note in rec.notes)


def test_nan_everywhere_keeps_int8():
    session = ScriptedSession(lambda layers: math.nan)
    rec = record()
    best = search(session, step1(), rec, 0.99, max_builds=12)
    assert best.label == "int8"


def test_int8_that_meets_the_target_stops_at_once():
    session = ScriptedSession(needs(0), baseline=0.999)
    rec = record()
    best = search(session, step1(), rec, 0.99, max_builds=12)
    assert best.label == "int8" and session.tried == []
    assert "int8 already meets the target" in rec.notes[0]


@pytest.mark.parametrize("max_builds", [1, 2, 3])
def test_tiny_budgets(max_builds):
    session = ScriptedSession(needs(0), jobs=2)
    search(session, step1(), record(), 0.99, max_builds=max_builds)
    assert session.builds <= max_builds


def test_out_of_reach_still_looks_for_fewer_entries_near_the_ceiling():
    def score(layers):
        return 0.98 if {"t0a", "t0b", "t1a", "t1b"} <= set(layers) else 0.9

    session = ScriptedSession(score)
    rec = record()
    best = search(session, step1(), rec, 0.99, max_builds=12)
    assert not best.meets_target and best.cos_mean == 0.98 and len(best.layers) < 20
