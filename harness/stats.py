"""Confidence intervals: bounded means (betting, Clopper-Pearson), percentile bootstrap,
Wilson score interval.

Means of per-episode outcomes whose range is known (a return within the step limit, a 0/1
success) get intervals that hold at every sample size, from one episode on:

* :func:`betting_interval` / :func:`betting_sequence`: the hedged capital process of
  Waudby-Smith & Ramdas (2023), "Estimating means of bounded random variables by
  betting", JRSS-B 86(1), with predictable plug-in bets. It is a confidence sequence:
  the running intersection covers the mean at every ``n`` simultaneously with probability
  ``1 - alpha`` (Ville's inequality), so it stays valid when the number of episodes is
  chosen by looking at it (studies that stop when they know).
* :func:`clopper_pearson`: the exact binomial interval for 0/1 outcomes at a fixed ``n``
  (Clopper & Pearson 1934); narrower than the betting interval, valid only when ``n`` was
  fixed in advance.

A percentile bootstrap of a handful of episodes is no such interval: at 4 episodes of a
rare success it is a point (every resample is all zeros), a claim of certainty.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import scipy.stats

__all__ = [
    "Interval", "MIN_UNITS", "bootstrap_ci", "wilson_interval", "mean_interval",
    "clopper_pearson", "betting_sequence", "betting_interval", "bounded_mean_interval",
    "BETTING_METHOD", "CLOPPER_PEARSON_METHOD",
]

#: Fewest independent units (episodes) for which a mean gets an interval; below it the
#: bounds are ``nan`` and tables say the sample is too small.
MIN_UNITS = 5


@dataclass(frozen=True)
class Interval:
    """A point estimate with a two-sided confidence interval at level ``1 - alpha``.

    The fields are floats, or arrays of the same shape for a vector-valued statistic.
    """

    estimate: Any
    low: Any
    high: Any
    #: Confidence level, e.g. ``0.95``.
    level: float

    def __iter__(self):
        """Unpack as ``estimate, low, high``."""
        return iter((self.estimate, self.low, self.high))


def _check_alpha(alpha: float) -> None:
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")


def bootstrap_ci(
    data: Sequence[Any] | np.ndarray,
    statistic: Callable[[Any], Any] | None = None,
    *,
    n: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> Interval:
    """Percentile bootstrap interval of ``statistic`` over resampled units.

    Args:
        data: the units. An array is resampled along its first axis; any other sequence
            (episodes, decisions, ...) is resampled as a list of its items.
        statistic: maps a resample (same kind as ``data``: an array, or a list) to a number
            or an array. ``None`` means the mean over the first axis (vectorised).
        n: number of bootstrap resamples.
        alpha: ``1 - level``; the interval is the ``alpha/2`` and ``1 - alpha/2`` quantiles.
        seed: seed for ``np.random.default_rng``.

    Returns:
        :class:`Interval` whose estimate is ``statistic(data)``.
    """
    _check_alpha(alpha)
    is_array = isinstance(data, np.ndarray)
    m = len(data)
    if m == 0:
        raise ValueError("bootstrap_ci needs at least one unit")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, m, size=(n, m))
    if statistic is None:
        arr = np.asarray(data, dtype=float)
        estimate = arr.mean(axis=0)
        stats = arr[idx].mean(axis=1)
    else:
        def take(i: np.ndarray):
            return data[i] if is_array else [data[j] for j in i]

        estimate = np.asarray(statistic(data), dtype=float)
        stats = np.stack([np.asarray(statistic(take(i)), dtype=float) for i in idx])
    low, high = np.quantile(stats, [alpha / 2, 1 - alpha / 2], axis=0)
    if np.ndim(estimate) == 0:
        return Interval(float(estimate), float(low), float(high), 1 - alpha)
    return Interval(estimate, low, high, 1 - alpha)


def wilson_interval(successes: int, n: int, *, alpha: float = 0.05) -> Interval:
    """Wilson score interval for a binomial proportion ``successes / n``.

    With ``n == 0`` nothing is known: the estimate is ``nan`` and the interval ``[0, 1]``.
    """
    _check_alpha(alpha)
    if n < 0 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n, got successes={successes}, n={n}")
    if n == 0:
        return Interval(float("nan"), 0.0, 1.0, 1 - alpha)
    z = scipy.stats.norm.ppf(1 - alpha / 2)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z / denom * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return Interval(float(p), float(low), float(high), 1 - alpha)


def mean_interval(values: Sequence[float] | np.ndarray, *, alpha: float = 0.05, min_n: int = MIN_UNITS, seed: int = 0) -> Interval:
    """Mean of per-episode values with a percentile-bootstrap interval.

    The bootstrap interval never leaves the range of the values observed, so it respects
    the range of what they measure (a return that cannot be negative gets no negative
    bound), unlike a t-interval on a handful of episodes. Below ``min_n`` values the
    bounds are ``nan``: too few episodes for an interval worth printing.
    """
    x = np.asarray(values, dtype=float).ravel()
    if x.size == 0:
        raise ValueError("mean_interval needs at least one value")
    if x.size < min_n:
        return Interval(float(x.mean()), float("nan"), float("nan"), 1 - alpha)
    return bootstrap_ci(x, alpha=alpha, seed=seed)


#: How :func:`betting_interval` is named in footnotes.
BETTING_METHOD = "betting confidence sequence over the outcome's range (Waudby-Smith & Ramdas 2023)"
#: How :func:`clopper_pearson` is named in footnotes.
CLOPPER_PEARSON_METHOD = "Clopper-Pearson exact binomial interval"

#: Candidate means tried by :func:`betting_sequence`, as a share of the range: the bounds
#: are widened to the next grid point outward, so the grid costs at most this much width.
BETTING_GRID = 1000
#: Truncation of the bets, ``c`` in Waudby-Smith & Ramdas (2023), Section 5.1 (they use 1/2 or 3/4).
_BET_CAP = 0.5


def clopper_pearson(successes: int, n: int, *, alpha: float = 0.05) -> Interval:
    """Clopper-Pearson (exact) interval for a binomial proportion ``successes / n``.

    Its coverage is at least ``1 - alpha`` for every ``p`` and every fixed ``n`` (it inverts
    two one-sided binomial tests, Clopper & Pearson 1934). With ``n == 0`` the estimate is
    ``nan`` and the interval ``[0, 1]``.
    """
    _check_alpha(alpha)
    if n < 0 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n, got successes={successes}, n={n}")
    if n == 0:
        return Interval(float("nan"), 0.0, 1.0, 1 - alpha)
    low = 0.0 if successes == 0 else float(scipy.stats.beta.ppf(alpha / 2, successes, n - successes + 1))
    high = 1.0 if successes == n else float(scipy.stats.beta.ppf(1 - alpha / 2, successes + 1, n - successes))
    return Interval(successes / n, low, high, 1 - alpha)


def _scaled(values: Any, lo: float, hi: float) -> np.ndarray:
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi < lo:
        raise ValueError(f"the outcome's range must be finite with lo <= hi, got [{lo}, {hi}]")
    x = np.asarray(values, dtype=float)
    tol = 1e-9 * max(1.0, abs(lo), abs(hi))
    if x.size and (np.nanmin(x) < lo - tol or np.nanmax(x) > hi + tol or np.isnan(x).any()):
        bad = x[(x < lo - tol) | (x > hi + tol) | np.isnan(x)].ravel()[0]
        raise ValueError(f"value {bad} lies outside the outcome's range [{lo}, {hi}]")
    if hi == lo:
        return np.zeros_like(x)
    return np.clip((x - lo) / (hi - lo), 0.0, 1.0)


def betting_sequence(
    values: Any, lo: float, hi: float, *, alpha: float = 0.05, grid: int = BETTING_GRID,
) -> tuple[np.ndarray, np.ndarray]:
    """The betting confidence sequence for the mean of outcomes in ``[lo, hi]``, at every ``n``.

    Waudby-Smith & Ramdas (2023), Theorem 3 with the hedged capital process of their
    Section 4.2: for each candidate mean ``m`` (of outcomes rescaled to ``[0, 1]``), two
    gamblers bet for and against ``m``: ``K+_t = prod (1 + l+_i (x_i - m))`` and
    ``K-_t = prod (1 - l-_i (x_i - m))``, with the predictable plug-in bet
    ``l_t = sqrt(2 log(2/alpha) / (s2_{t-1} t log(1 + t)))`` (``s2`` a regularised running
    variance, ``mu`` a regularised running mean) truncated at ``c / m`` and ``c / (1 - m)``,
    ``c = 1/2``. ``m`` leaves the set once ``max(K+/2, K-/2) >= 1/alpha``, and stays out
    (the running intersection). By Ville's inequality the true mean is ever excluded with
    probability at most ``alpha``: the bounds hold at every ``n`` at once, under any
    stopping rule.

    Args:
        values: outcomes ``[n]``, or ``[..., n]`` for many independent sequences (vectorised).
        lo, hi: the range every outcome lies in (known in advance, not taken from the data).
        alpha: ``1 - level``.
        grid: number of steps of the grid of candidate means over ``[lo, hi]``.

    Returns:
        ``(low, high)``, each shaped like ``values``: the bounds after the first ``t``
        outcomes, widened outward to the grid.
    """
    _check_alpha(alpha)
    z = _scaled(values, lo, hi)
    if z.ndim == 0 or z.shape[-1] == 0:
        raise ValueError("betting_sequence needs at least one value")
    lead, n = z.shape[:-1], z.shape[-1]
    z = z.reshape(-1, n)
    if hi == lo:
        full = np.full(lead + (n,), float(lo))
        return full, full.copy()
    m = np.linspace(0.0, 1.0, grid + 1)[None, :]
    cap_up = np.where(m > 0, _BET_CAP / np.maximum(m, 1e-300), np.inf)
    cap_down = np.where(m < 1, _BET_CAP / np.maximum(1 - m, 1e-300), np.inf)
    threshold = math.log(1 / alpha) + math.log(2)  # hedge theta = 1/2 on either side
    log_up = np.zeros((z.shape[0], m.shape[1]))
    log_down = np.zeros_like(log_up)
    out = np.zeros_like(log_up, dtype=bool)
    lows, highs = np.empty((z.shape[0], n)), np.empty((z.shape[0], n))
    total = np.zeros((z.shape[0], 1))
    squares = np.zeros((z.shape[0], 1))
    idx = np.arange(m.shape[1])
    log_term = 2 * math.log(2 / alpha)
    for t in range(1, n + 1):
        var = (0.25 + squares) / t  # sigma^2_{t-1}
        bet = np.sqrt(log_term / (var * t * math.log(1 + t)))
        x = z[:, t - 1:t]
        d = x - m
        log_up += np.log1p(np.minimum(bet, cap_up) * d)
        log_down += np.log1p(-np.minimum(bet, cap_down) * d)
        out |= np.maximum(log_up, log_down) >= threshold
        total += x
        squares += (x - (0.5 + total) / (t + 1)) ** 2
        keep = ~out
        anyk = keep.any(axis=1)
        first = np.where(anyk, np.argmax(keep, axis=1), np.argmin(np.maximum(log_up, log_down), axis=1))
        last = np.where(anyk, idx[-1] - np.argmax(keep[:, ::-1], axis=1), first)
        lows[:, t - 1] = m[0, np.maximum(first - 1, 0)]
        highs[:, t - 1] = m[0, np.minimum(last + 1, idx[-1])]
    scale = hi - lo
    return (lo + scale * lows).reshape(lead + (n,)), (lo + scale * highs).reshape(lead + (n,))


def betting_interval(values: Sequence[float] | np.ndarray, lo: float, hi: float, *, alpha: float = 0.05) -> Interval:
    """Mean of outcomes known to lie in ``[lo, hi]``, with the betting confidence sequence at
    the last outcome (:func:`betting_sequence`): valid at any ``n`` (wide at ``n = 1``) and
    under optional stopping. Zero width only when ``lo == hi`` (nothing could vary)."""
    x = np.asarray(values, dtype=float).ravel()
    if x.size == 0:
        raise ValueError("betting_interval needs at least one value")
    low, high = betting_sequence(x, lo, hi, alpha=alpha)
    mean = float(np.clip(x.mean(), lo, hi))
    return Interval(mean, float(min(low[-1], mean)), float(max(high[-1], mean)), 1 - alpha)


def bounded_mean_interval(
    values: Sequence[float] | np.ndarray, lo: float, hi: float, *, alpha: float = 0.05, binary: bool = False,
) -> Interval:
    """Mean of per-episode outcomes in a known range ``[lo, hi]``.

    ``binary=True`` says that every outcome is ``lo`` or ``hi`` by construction (success,
    an optimal move): the Clopper-Pearson interval, exact at a fixed ``n`` and narrower.
    Otherwise the betting interval (:func:`betting_interval`). Both cover at least
    ``1 - alpha`` at every ``n`` (``bench/coverage.py``, ``docs/intervals.md``).
    """
    x = np.asarray(values, dtype=float).ravel()
    if x.size == 0:
        raise ValueError("bounded_mean_interval needs at least one value")
    if not binary or hi == lo:
        return betting_interval(x, lo, hi, alpha=alpha)
    z = _scaled(x, lo, hi)
    if np.any((z > 0) & (z < 1)):
        raise ValueError(f"binary outcomes must be {lo} or {hi}, got {x[(z > 0) & (z < 1)][0]}")
    cp = clopper_pearson(int(z.sum()), int(z.size), alpha=alpha)
    scale = hi - lo
    return Interval(lo + scale * cp.estimate, lo + scale * cp.low, lo + scale * cp.high, 1 - alpha)
