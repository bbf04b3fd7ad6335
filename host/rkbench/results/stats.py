"""Latency statistics: summaries, and the rule that tells a regression from noise.

Pure numpy and the standard library (no scipy).

How two runs are compared (`compare_latency(a, b)`, b is the new run, a the reference)
-------------------------------------------------------------------------------------
A bare threshold on means flags every outlier burst and misses a slowdown hidden in a
noisy run. Like asv and Chromium's Pinpoint we decide with a rank test *and* a minimum
effect size:

1. Work on log latencies, so a change is a ratio: "b is 7% slower" whatever the scale.
2. Mann-Whitney U (two-sided; normal approximation with tie and continuity correction,
   exact distribution for small samples without ties) gives the p-value: is b shifted
   against a at all? Ranks make one 40 ms hiccup weigh no more than any other slow sample.
3. The Hodges-Lehmann estimate (median of all pairwise differences log b_j - log a_i)
   gives the effect, with its distribution-free confidence interval at level 1 - alpha
   (the order statistics of those differences that the same U distribution selects).
   effect = exp(shift) - 1 is the relative change of the median, b against a: +0.10 means
   b is 10% slower. (For a pure change of scale it is exactly the ratio of medians - 1.)
4. Raw samples within one run are autocorrelated (clocks, thermals, other load move in
   slow waves), so n samples carry less information than n independent ones. For runs of
   at least 100 samples the variance of U is inflated by each run's variance inflation
   factor, estimated by batch means of its ranks in time order (never below 1). This
   widens the p-value and the interval honestly instead of trusting 10 000 "independent"
   samples.
5. Verdict, with m = min_effect:
     DIFFERENT  p < alpha and the whole interval lies beyond +m (regression: b slower)
                or beyond -m (improvement: b faster);
     SAME       the whole interval lies within [-m, +m]; or the test is clearly not
                significant (p >= max(0.1, 10 alpha)), |effect| < m / 2 and the interval
                at least lies within [-2m, +2m] (no evidence of a change, and no room for
                a large one);
     UNKNOWN    anything else (too few samples, or an interval straddling m): measure
                again with more samples rather than guess.
   Runs measured on different days differ by a little systematic drift (a degree of
   temperature, a background daemon) that no within-run statistic can see; the minimum
   effect is what absorbs it, so it stays a parameter (default 5%).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from statistics import NormalDist

import numpy as np

from rkbench.results.model import LatencyStats

SAME = "SAME"
DIFFERENT = "DIFFERENT"
UNKNOWN = "UNKNOWN"
REGRESSION = "regression"
IMPROVEMENT = "improvement"

EXACT_MAX_PAIRS = 2500  # exact U distribution when n_a * n_b <= this and there are no ties
MIN_SAMPLES = 10  # fewer samples in a run: UNKNOWN
AUTOCORR_MIN_SAMPLES = 100  # below this the variance inflation cannot be estimated: assume 1


# --------------------------------------------------------------------------- summaries


def summarize(latency_ns: Sequence[int] | np.ndarray) -> LatencyStats:
    """Count, min, mean, std (n - 1), p50/p90/p99 (linear interpolation), max, in ms."""
    x = np.asarray(latency_ns, dtype=np.float64)
    if x.size == 0:
        raise ValueError("no latency samples to summarize")
    ms = x * 1e-6
    p50, p90, p99 = np.percentile(ms, [50, 90, 99])
    return LatencyStats(
        n=int(ms.size),
        min_ms=float(ms.min()),
        mean_ms=float(ms.mean()),
        std_ms=float(ms.std(ddof=1)) if ms.size > 1 else 0.0,
        p50_ms=float(p50),
        p90_ms=float(p90),
        p99_ms=float(p99),
        max_ms=float(ms.max()),
    )


# --------------------------------------------------------------------------- ranks


def _rank_with_ties(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Average ranks (1-based) of x, and the sizes of its groups of equal values."""
    _, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    upper = np.cumsum(counts).astype(np.float64)  # rank of the last member of each group
    average = upper - (counts - 1) / 2.0
    return average[inverse.reshape(-1)], counts


def _u_counts(m: int, n: int) -> list[int]:
    """How many of the C(m+n, m) arrangements give U = 0..m*n (no ties).

    The coefficients of the Gaussian binomial [m+n choose m]_q, computed as power series
    modulo q^(mn+1): prod_{i=1..m} (1 - q^(n+i)) / (1 - q^i). Exact integers.
    """
    size = m * n + 1
    c = [0] * size
    c[0] = 1
    for i in range(1, m + 1):
        k = n + i
        for j in range(size - 1, k - 1, -1):
            c[j] -= c[j - k]
        for j in range(i, size):
            c[j] += c[j - i]
    return c


def _normal_sf(z: float) -> float:
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def _mwu(a: np.ndarray, b: np.ndarray, inflation: float = 1.0, exact: bool | None = None) -> tuple[float, float, bool]:
    """U of a, two-sided p, and whether the exact distribution was used."""
    n1, n2 = a.size, b.size
    ranks, ties = _rank_with_ties(np.concatenate([a, b]))
    u1 = float(ranks[:n1].sum() - n1 * (n1 + 1) / 2.0)
    u = max(u1, n1 * n2 - u1)
    has_ties = bool((ties > 1).any())
    if exact is None:
        exact = not has_ties and n1 * n2 <= EXACT_MAX_PAIRS and inflation == 1.0
    if exact:
        if has_ties:
            raise ValueError("the exact Mann-Whitney distribution needs samples without ties")
        if min(n1, n2) * n1 * n2 > 5_000_000:
            raise ValueError(f"{n1} x {n2} samples are too many for the exact distribution: use the asymptotic method")
        counts = _u_counts(min(n1, n2), max(n1, n2))
        tail = sum(counts[int(round(u)) :])
        return u1, min(1.0, 2.0 * tail / math.comb(n1 + n2, n1)), True
    n = n1 + n2
    tie_term = float((ties.astype(np.float64) ** 3 - ties).sum())
    var = n1 * n2 / 12.0 * ((n + 1) - tie_term / (n * (n - 1)))
    var *= inflation
    if var <= 0.0:  # every value equal: nothing tells the samples apart
        return u1, 1.0, False
    z = (u - n1 * n2 / 2.0 - 0.5) / math.sqrt(var)
    return u1, min(1.0, max(0.0, 2.0 * _normal_sf(z))), False


def mann_whitney_u(a: Sequence[float], b: Sequence[float], method: str = "auto") -> tuple[float, float]:
    """Mann-Whitney U test, two-sided: (U of a, p).

    U counts the pairs (a_i, b_j) with a_i > b_j, ties counting one half (scipy's
    `mannwhitneyu(a, b).statistic`). method: "asymptotic" (normal approximation with
    tie and continuity correction), "exact" (no ties allowed), or "auto": exact when
    there are no ties and n_a * n_b <= 2500, asymptotic otherwise.
    """
    x = np.asarray(a, dtype=np.float64).ravel()
    y = np.asarray(b, dtype=np.float64).ravel()
    if x.size == 0 or y.size == 0:
        raise ValueError("mann_whitney_u needs two non-empty samples")
    if np.isnan(x).any() or np.isnan(y).any():
        raise ValueError("mann_whitney_u: samples contain NaN")
    if method not in ("auto", "exact", "asymptotic"):
        raise ValueError(f"unknown method {method!r}: auto, exact or asymptotic")
    exact = None if method == "auto" else method == "exact"
    u1, p, _ = _mwu(x, y, exact=exact)
    return u1, p


# --------------------------------------------------------------------------- Hodges-Lehmann


@dataclass
class Shift:
    """Hodges-Lehmann shift of b against a (in the units of the data) and its interval."""

    estimate: float
    ci_low: float
    ci_high: float
    confidence: float


def _count_le(a_sorted: np.ndarray, b: np.ndarray, d: float) -> int:
    """#{(i, j): b_j - a_i <= d} = sum_j #{i: a_i >= b_j - d}."""
    return int(a_sorted.size * b.size - np.searchsorted(a_sorted, b - d, side="left").sum())


def _kth_difference(a_sorted: np.ndarray, b_sorted: np.ndarray, k: int) -> float:
    """The k-th smallest (1-based) of the m*n differences b_j - a_i, without forming them.

    Bisection on the value with an O(n log m) count per step, then snapped to the largest
    actual difference at or below the bound found. Cost ~40 counts, whatever m*n is.
    """
    total = a_sorted.size * b_sorted.size
    k = min(max(k, 1), total)
    lo = float(b_sorted[0] - a_sorted[-1])  # the smallest difference
    hi = float(b_sorted[-1] - a_sorted[0])  # the largest difference
    if k == 1:
        return lo
    if k == total:
        return hi
    lo -= max(abs(lo), 1.0) * 1e-12  # count_le(lo) < k holds strictly from here on
    tol = (hi - lo) * 1e-13
    for _ in range(200):
        if hi - lo <= tol:
            break
        mid = lo + (hi - lo) / 2.0
        if mid <= lo or mid >= hi:
            break
        if _count_le(a_sorted, b_sorted, mid) >= k:
            hi = mid
        else:
            lo = mid
    idx = np.searchsorted(a_sorted, b_sorted - hi, side="left")
    ok = idx < a_sorted.size
    return float((b_sorted[ok] - a_sorted[idx[ok]]).max())


def _ci_rank(m: int, n: int, confidence: float, inflation: float, tie_term: float, exact: bool) -> int:
    """k such that [D_(k), D_(mn-k+1)] covers the shift with the given confidence."""
    alpha = 1.0 - confidence
    if exact:
        counts = _u_counts(min(m, n), max(m, n))
        total = math.comb(m + n, m)
        cum = 0
        for q, c in enumerate(counts):  # R: qu <- qwilcox(alpha/2, m, n), at least 1
            cum += c
            if cum / total >= alpha / 2.0:
                return max(q, 1)
        return 1
    nn = m + n
    var = m * n / 12.0 * ((nn + 1) - tie_term / (nn * (nn - 1))) * inflation
    z = NormalDist().inv_cdf(1.0 - alpha / 2.0)
    return max(1, int(math.floor(m * n / 2.0 - z * math.sqrt(max(var, 0.0)))))


def _shift(a: np.ndarray, b: np.ndarray, confidence: float, inflation: float) -> Shift:
    a_sorted = np.sort(a)
    b_sorted = np.sort(b)
    m, n = a.size, b.size
    total = m * n
    if total % 2:
        est = _kth_difference(a_sorted, b_sorted, (total + 1) // 2)
    else:
        est = 0.5 * (
            _kth_difference(a_sorted, b_sorted, total // 2) + _kth_difference(a_sorted, b_sorted, total // 2 + 1)
        )
    _, ties = _rank_with_ties(np.concatenate([a, b]))
    has_ties = bool((ties > 1).any())
    tie_term = float((ties.astype(np.float64) ** 3 - ties).sum())
    exact = not has_ties and total <= EXACT_MAX_PAIRS and inflation == 1.0
    k = _ci_rank(m, n, confidence, inflation, tie_term, exact)
    low = _kth_difference(a_sorted, b_sorted, k)
    high = _kth_difference(a_sorted, b_sorted, total - k + 1)
    return Shift(estimate=est, ci_low=min(low, est), ci_high=max(high, est), confidence=confidence)


def hodges_lehmann_shift(
    a: Sequence[float], b: Sequence[float], confidence: float = 0.99, inflation: float = 1.0
) -> Shift:
    """Hodges-Lehmann estimate of the shift of b against a: median of b_j - a_i.

    The interval is the distribution-free one that inverts the Mann-Whitney test (exact
    for small samples without ties, normal approximation otherwise; R's wilcox.test
    conf.int). `inflation` (>= 1) widens it for autocorrelated samples. Exact order
    statistics of all m*n differences without forming them: 10k x 10k in milliseconds.
    For a relative shift of latencies pass logarithms (compare_latency does).
    """
    x = np.asarray(a, dtype=np.float64).ravel()
    y = np.asarray(b, dtype=np.float64).ravel()
    if x.size == 0 or y.size == 0:
        raise ValueError("hodges_lehmann_shift needs two non-empty samples")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("hodges_lehmann_shift: samples must be finite")
    if not 0.0 < confidence < 1.0:
        raise ValueError("confidence must lie strictly between 0 and 1")
    return _shift(x, y, confidence, max(1.0, float(inflation)))


# --------------------------------------------------------------------------- autocorrelation


def variance_inflation(series: Sequence[float] | np.ndarray) -> float:
    """How much autocorrelation inflates the variance of a mean over this series (>= 1).

    Batch means on the ranks, in time order: batches of ~sqrt(n) consecutive samples;
    VIF = batch size * var(batch means) / var(samples). Ranks keep one outlier burst from
    dominating. 1.0 for fewer than AUTOCORR_MIN_SAMPLES samples (too few to tell).
    """
    x = np.asarray(series, dtype=np.float64).ravel()
    n = x.size
    if n < AUTOCORR_MIN_SAMPLES:
        return 1.0
    ranks, _ = _rank_with_ties(x)
    size = int(math.isqrt(n))
    batches = n // size
    used = ranks[: batches * size]
    total_var = used.var(ddof=1)
    if batches < 2 or total_var <= 0.0:
        return 1.0
    means = used.reshape(batches, size).mean(axis=1)
    return max(1.0, float(size * means.var(ddof=1) / total_var))


# --------------------------------------------------------------------------- the verdict


@dataclass
class Verdict:
    kind: str  # SAME | DIFFERENT | UNKNOWN
    direction: str | None  # "regression" (b slower) | "improvement" (b faster) | None
    effect: float | None  # relative change of the median latency, b vs a (+0.10: 10% slower)
    ci_low: float | None  # confidence interval of the effect, at level 1 - alpha
    ci_high: float | None
    p_value: float | None  # Mann-Whitney, corrected for autocorrelation
    n_a: int
    n_b: int
    reason: str
    min_effect: float = 0.05
    alpha: float = 0.01
    median_a_ms: float | None = None
    median_b_ms: float | None = None
    inflation: float = 1.0  # variance inflation applied for autocorrelation

    def to_dict(self) -> dict:
        return asdict(self)


def _pct(x: float) -> str:
    return f"{x * 100:+.1f}%"


def compare_latency(
    a_ns: Sequence[int] | np.ndarray,
    b_ns: Sequence[int] | np.ndarray,
    min_effect: float = 0.05,
    alpha: float = 0.01,
    min_samples: int = MIN_SAMPLES,
) -> Verdict:
    """Is b (new) faster, slower or the same as a (reference)? See the module docstring.

    Samples are raw per-iteration latencies in time order (the order is used to estimate
    autocorrelation). Never raises on data: too few, empty or non-positive samples give
    UNKNOWN with the reason.
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError("alpha must lie strictly between 0 and 1")
    if min_effect < 0.0:
        raise ValueError("min_effect must not be negative")
    a = np.asarray(a_ns, dtype=np.float64).ravel()
    b = np.asarray(b_ns, dtype=np.float64).ravel()
    na, nb = int(a.size), int(b.size)

    def unknown(reason: str, **extra) -> Verdict:
        return Verdict(
            UNKNOWN, None, None, None, None, None, na, nb, reason, min_effect=min_effect, alpha=alpha, **extra
        )

    if na < min_samples or nb < min_samples:
        return unknown(f"too few samples to compare ({na} vs {nb}, need at least {min_samples} each)")
    if not (np.isfinite(a).all() and np.isfinite(b).all()) or a.min() <= 0 or b.min() <= 0:
        return unknown("latency samples must be positive finite numbers")

    med_a, med_b = float(np.median(a)) * 1e-6, float(np.median(b)) * 1e-6
    la, lb = np.log(a), np.log(b)
    vif_a, vif_b = variance_inflation(la), variance_inflation(lb)
    # Var(U) ~ n_a n_b / 12 * (n_b VIF_a + n_a VIF_b): each run's share scaled by its VIF.
    inflation = (nb * vif_a + na * vif_b) / (na + nb)
    _, p, _ = _mwu(la, lb, inflation=inflation)
    shift = _shift(la, lb, 1.0 - alpha, inflation)
    effect = math.expm1(shift.estimate)
    low, high = math.expm1(shift.ci_low), math.expm1(shift.ci_high)
    conf = f"{(1 - alpha) * 100:g}%"
    span = f"{_pct(effect)} ({conf} CI {_pct(low)} .. {_pct(high)}, p={p:.2g})"
    base = dict(min_effect=min_effect, alpha=alpha, median_a_ms=med_a, median_b_ms=med_b, inflation=inflation)

    def verdict(kind: str, direction: str | None, reason: str) -> Verdict:
        return Verdict(kind, direction, effect, low, high, p, na, nb, reason, **base)

    m = min_effect
    if p < alpha and low > m:
        return verdict(DIFFERENT, REGRESSION, f"slower by {span}: the whole interval is beyond +{m:.0%}")
    if p < alpha and high < -m:
        return verdict(DIFFERENT, IMPROVEMENT, f"faster by {span}: the whole interval is beyond -{m:.0%}")
    if -m <= low and high <= m:
        return verdict(SAME, None, f"change {span} lies within ±{m:.0%}")
    if p >= max(0.1, 10 * alpha) and abs(effect) < m / 2 and -2 * m <= low and high <= 2 * m:
        return verdict(SAME, None, f"no significant change: {span}, estimate well within ±{m:.0%}")
    if p < alpha:
        return verdict(
            UNKNOWN, None, f"changed by {span}, but the interval straddles ±{m:.0%}: measure again with more samples"
        )
    return verdict(
        UNKNOWN,
        None,
        f"not significant, but {span} cannot rule out a change beyond ±{m:.0%}: measure again with more samples",
    )
