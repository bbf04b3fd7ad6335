"""The statistics that tell a regression from noise: the rank test against reference values,
the Hodges-Lehmann interval against brute force, and verdicts on NPU-shaped latencies."""

from __future__ import annotations

import time
from collections import Counter

import numpy as np
import pytest

from rkbench.results.stats import (
    DIFFERENT,
    IMPROVEMENT,
    REGRESSION,
    SAME,
    UNKNOWN,
    compare_latency,
    hodges_lehmann_shift,
    mann_whitney_u,
    summarize,
    variance_inflation,
)
from tests.results.synthetic import npu_latencies

# --------------------------------------------------------------------------- summarize


def test_summarize_matches_numpy_linear_percentiles():
    ns = np.random.default_rng(0).integers(5_000_000, 9_000_000, 1001)
    s = summarize(ns)
    ms = ns / 1e6
    assert s.n == 1001
    assert s.p50_ms == pytest.approx(np.percentile(ms, 50))
    assert s.p90_ms == pytest.approx(np.percentile(ms, 90))
    assert s.p99_ms == pytest.approx(np.percentile(ms, 99))
    assert s.mean_ms == pytest.approx(ms.mean()) and s.std_ms == pytest.approx(ms.std(ddof=1))
    assert (s.min_ms, s.max_ms) == (pytest.approx(ms.min()), pytest.approx(ms.max()))


def test_summarize_by_hand():
    s = summarize([1_000_000, 2_000_000, 3_000_000, 4_000_000])
    assert s.p50_ms == 2.5  # between the 2nd and 3rd value
    assert s.p90_ms == pytest.approx(3.7)  # position 0.9 * 3 = 2.7
    assert summarize([5_000_000]).std_ms == 0.0
    with pytest.raises(ValueError):
        summarize([])


# --------------------------------------------------------------------------- Mann-Whitney U


def test_u_by_hand():
    # a = [1, 2, 3], b = [4, 5]: no a beats any b. The exact two-sided p is 2 * 1 / C(5, 2).
    u, p = mann_whitney_u([1, 2, 3], [4, 5])
    assert u == 0.0 and p == pytest.approx(0.2)
    # Ties count one half: a = [1, 2], b = [2, 3]: only the pair (2, 2) scores, half a point.
    u, _ = mann_whitney_u([1, 2], [2, 3])
    assert u == 0.5
    # Textbook normal approximation (no ties): n = 4 + 4, U = 1
    # mu = 8, sigma = sqrt(16 * 9 / 12) = sqrt(12); z = (|1 - 8| - 0.5) / sqrt(12)
    from math import erfc, sqrt

    u, p = mann_whitney_u([1, 2, 3, 5], [4, 6, 7, 8], method="asymptotic")
    assert u == 1.0
    assert p == pytest.approx(erfc(6.5 / sqrt(12) / sqrt(2)))


def test_u_symmetry_and_identical_samples():
    a, b = [3.0, 1.0, 4.0, 1.5, 5.0, 9.0], [2.0, 6.0, 5.5, 3.5]
    u_ab, p_ab = mann_whitney_u(a, b)
    u_ba, p_ba = mann_whitney_u(b, a)
    assert u_ab + u_ba == len(a) * len(b) and p_ab == pytest.approx(p_ba)
    assert mann_whitney_u([7, 7, 7], [7, 7])[1] == 1.0  # nothing tells them apart


@pytest.mark.parametrize(
    "n_a,n_b,ties,method",
    [
        (5, 7, False, "exact"),
        (8, 8, False, "exact"),
        (20, 30, False, "exact"),
        (3, 40, False, "exact"),
        (5, 7, False, "asymptotic"),
        (20, 30, True, "asymptotic"),
        (300, 400, True, "asymptotic"),
        (2000, 1500, True, "asymptotic"),
    ],
)
def test_u_and_p_against_scipy(n_a, n_b, ties, method):
    stats = pytest.importorskip("scipy.stats")  # reference values only; rkbench never imports scipy
    rng = np.random.default_rng(n_a * 1000 + n_b)
    for shift in (0.0, 0.3, 1.0):
        a = rng.normal(0.0, 1.0, n_a)
        b = rng.normal(shift, 1.0, n_b)
        if ties:
            a, b = np.round(a, 1), np.round(b, 1)
        u, p = mann_whitney_u(a, b, method=method)
        ref = stats.mannwhitneyu(a, b, alternative="two-sided", method=method, use_continuity=True)
        assert u == pytest.approx(ref.statistic)
        assert p == pytest.approx(ref.pvalue, rel=1e-9, abs=1e-300)


def test_exact_refuses_ties():
    with pytest.raises(ValueError, match="without ties"):
        mann_whitney_u([1, 2, 2], [3, 4], method="exact")


# --------------------------------------------------------------------------- Hodges-Lehmann


@pytest.mark.parametrize("n_a,n_b", [(7, 9), (40, 31), (300, 250)])
def test_hodges_lehmann_is_the_median_of_pairwise_differences(n_a, n_b):
    rng = np.random.default_rng(n_a)
    a = rng.lognormal(0.0, 0.3, n_a)
    b = rng.lognormal(0.2, 0.3, n_b)
    diffs = np.sort((b[None, :] - a[:, None]).ravel())
    shift = hodges_lehmann_shift(a, b, confidence=0.95)
    assert shift.estimate == pytest.approx(np.median(diffs), rel=1e-12, abs=1e-12)
    assert shift.ci_low in diffs and shift.ci_high in diffs  # interval ends are real differences
    assert shift.ci_low <= shift.estimate <= shift.ci_high


def test_hodges_lehmann_exact_interval_by_hand():
    # a = 0..4, b = 10..14: differences 6..14; C(10, 5) = 252 arrangements, alpha/2 = 0.025
    # -> P(U <= 2) = (1 + 1 + 2) / 252 = 0.0159, P(U <= 3) = 7 / 252 = 0.0278: k = 3.
    a, b = np.arange(5.0), np.arange(10.0, 15.0)
    diffs = np.sort((b[None, :] - a[:, None]).ravel())
    shift = hodges_lehmann_shift(a, b, confidence=0.95)
    assert shift.estimate == 10.0
    assert (shift.ci_low, shift.ci_high) == (diffs[2], diffs[25 - 3])


def test_hodges_lehmann_interval_covers_the_true_shift():
    """A 90% interval covers the true shift in about 90% of repetitions (exact and normal)."""
    rng = np.random.default_rng(11)
    for n in (12, 200):
        hits = 0
        for _ in range(300):
            a = rng.standard_normal(n)
            b = rng.standard_normal(n) + 0.5
            s = hodges_lehmann_shift(a, b, confidence=0.90)
            hits += s.ci_low <= 0.5 <= s.ci_high
        assert 0.85 <= hits / 300 <= 0.96, (n, hits)


def test_hodges_lehmann_10k_is_fast():
    rng = np.random.default_rng(5)
    a, b = rng.lognormal(0, 0.05, 10_000), rng.lognormal(0.01, 0.05, 10_000)
    started = time.perf_counter()
    shift = hodges_lehmann_shift(np.log(a), np.log(b))
    assert time.perf_counter() - started < 2.0
    assert shift.ci_low < 0.01 < shift.ci_high


# --------------------------------------------------------------------------- autocorrelation


def test_variance_inflation():
    rng = np.random.default_rng(2)
    assert variance_inflation(rng.standard_normal(5000)) < 1.5  # independent: ~1
    x = np.empty(5000)
    x[0] = 0.0
    for i in range(1, 5000):
        x[i] = 0.8 * x[i - 1] + rng.standard_normal()
    assert 5.0 < variance_inflation(x) < 15.0  # AR(1) 0.8: (1 + 0.8) / (1 - 0.8) = 9
    assert variance_inflation(x[:50]) == 1.0  # too few to tell


# --------------------------------------------------------------------------- verdicts

N = 1000


def _verdicts(scale: float, trials: int = 20, n: int = N, min_effect: float = 0.05, **kw) -> Counter:
    out = Counter()
    for t in range(trials):
        a = npu_latencies(n, seed=1000 + 2 * t, **kw)
        b = npu_latencies(n, seed=1001 + 2 * t, scale=scale, **kw)
        v = compare_latency(a, b, min_effect=min_effect)
        out[(v.kind, v.direction)] += 1
    return out


def test_a_a_never_different():
    counts = _verdicts(1.0) + _verdicts(1.01)  # same distribution; and a 1% day-to-day drift
    assert sum(c for (kind, _), c in counts.items() if kind == DIFFERENT) == 0, counts


def test_ten_percent_slowdown_is_a_regression():
    counts = _verdicts(1.10)
    assert counts[(DIFFERENT, REGRESSION)] >= 19, counts


def test_ten_percent_speedup_is_an_improvement():
    counts = _verdicts(1 / 1.10, trials=5)
    assert counts[(DIFFERENT, IMPROVEMENT)] == 5, counts


def test_two_percent_slowdown_is_below_the_minimum_effect():
    counts = _verdicts(1.02)
    assert sum(c for (kind, _), c in counts.items() if kind == DIFFERENT) == 0, counts
    assert counts[(SAME, None)] >= 15, counts


def test_two_percent_counts_with_a_smaller_minimum_effect():
    counts = _verdicts(1.02, trials=5, n=3000, min_effect=0.01, ar=0.2, sigma=0.02, drift=0.0)
    assert counts[(DIFFERENT, REGRESSION)] == 5, counts


def test_noisy_small_runs_are_unknown_rather_than_guessed():
    v = compare_latency(npu_latencies(15, seed=1, sigma=0.15), npu_latencies(15, seed=2, sigma=0.15, scale=1.08))
    assert v.kind == UNKNOWN and "more samples" in v.reason


def test_verdict_fields():
    a = npu_latencies(2000, seed=1)
    b = npu_latencies(2000, seed=2, scale=1.10)
    v = compare_latency(a, b)
    assert v.kind == DIFFERENT and v.direction == REGRESSION
    assert v.ci_low <= v.effect <= v.ci_high and v.ci_low > 0.05
    assert v.effect == pytest.approx(0.10, abs=0.02)
    assert v.median_b_ms / v.median_a_ms - 1 == pytest.approx(v.effect, abs=0.01)
    assert (v.n_a, v.n_b) == (2000, 2000) and v.p_value < 0.01 and v.inflation >= 1.0
    assert v.to_dict()["kind"] == DIFFERENT


def test_degenerate_inputs_give_unknown():
    assert compare_latency([], [1, 2, 3]).kind == UNKNOWN
    assert "too few" in compare_latency([1] * 5, [1] * 50).reason
    assert "positive" in compare_latency([0] * 20, [1] * 20).reason
    same = compare_latency([8_000_000] * 50, [8_000_000] * 50)
    assert same.kind == SAME and same.effect == 0.0


def test_compare_10k_against_10k_is_fast():
    a, b = npu_latencies(10_000, seed=1), npu_latencies(10_000, seed=2, scale=1.03)
    started = time.perf_counter()
    v = compare_latency(a, b)
    assert time.perf_counter() - started < 2.0
    assert v.kind == SAME
