"""Confidence intervals against known values."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats

from harness.stats import Interval, bootstrap_ci, wilson_interval


@pytest.mark.parametrize("k, n", [(0, 10), (3, 10), (10, 10), (81, 263), (1, 1), (50, 100)])
def test_wilson_matches_scipy(k, n):
    iv = wilson_interval(k, n)
    ref = scipy.stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    assert iv.estimate == pytest.approx(k / n)
    assert (iv.low, iv.high) == pytest.approx((ref.low, ref.high), abs=1e-12)


def test_wilson_known_cases():
    z2 = scipy.stats.norm.ppf(0.975) ** 2
    iv = wilson_interval(0, 10)
    assert iv.low == 0.0 and iv.high == pytest.approx(z2 / (10 + z2))
    # Symmetry: k successes vs n - k failures.
    a, b = wilson_interval(3, 17), wilson_interval(14, 17)
    assert a.low == pytest.approx(1 - b.high) and a.high == pytest.approx(1 - b.low)
    # Narrower at a lower confidence level.
    assert wilson_interval(3, 17, alpha=0.5).high < a.high
    nothing = wilson_interval(0, 0)
    assert np.isnan(nothing.estimate) and (nothing.low, nothing.high) == (0.0, 1.0)
    with pytest.raises(ValueError):
        wilson_interval(5, 3)


def test_bootstrap_mean_and_generic_statistic_agree():
    x = np.random.default_rng(1).normal(loc=3.0, size=200)
    fast = bootstrap_ci(x, n=500, seed=7)
    slow = bootstrap_ci(x, np.mean, n=500, seed=7)
    assert isinstance(fast, Interval)
    assert (fast.low, fast.high) == pytest.approx((slow.low, slow.high))
    assert fast.estimate == pytest.approx(x.mean())
    # Close to the t-interval for a mean of normal data.
    t_low, t_high = scipy.stats.t.interval(0.95, x.size - 1, loc=x.mean(), scale=scipy.stats.sem(x))
    assert fast.low == pytest.approx(t_low, abs=0.05) and fast.high == pytest.approx(t_high, abs=0.05)
    assert bootstrap_ci(x, n=500, seed=7) == fast  # seeded


def test_bootstrap_edge_cases_and_units():
    const = bootstrap_ci(np.full(20, 2.5), n=200)
    assert (const.estimate, const.low, const.high) == (2.5, 2.5, 2.5)
    # Units of any kind, with a statistic over the resampled list.
    episodes = [{"return": float(r)} for r in range(10)]
    iv = bootstrap_ci(episodes, lambda eps: np.median([e["return"] for e in eps]), n=300, seed=0)
    assert iv.low <= iv.estimate <= iv.high
    # A vector-valued statistic gives array bounds.
    xy = np.random.default_rng(2).normal(size=(100, 2))
    vec = bootstrap_ci(xy, lambda a: a.mean(axis=0), n=200)
    assert vec.low.shape == (2,) and np.all(vec.low <= vec.high)
    with pytest.raises(ValueError):
        bootstrap_ci([], n=10)
    with pytest.raises(ValueError):
        bootstrap_ci(np.ones(3), alpha=1.5)
