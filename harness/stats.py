"""Confidence intervals: percentile bootstrap, Wilson score interval, t-interval of a mean."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import scipy.stats

__all__ = ["Interval", "MIN_UNITS", "bootstrap_ci", "wilson_interval", "mean_ci", "mean_interval"]

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


def mean_ci(values: Sequence[float] | np.ndarray, *, alpha: float = 0.05) -> Interval:
    """Mean with a Student-t interval ``mean +- t_{1-alpha/2, n-1} * sd / sqrt(n)``.

    One value gives ``nan`` bounds (no spread to estimate); no values raise ``ValueError``.
    """
    _check_alpha(alpha)
    x = np.asarray(values, dtype=float).ravel()
    if x.size == 0:
        raise ValueError("mean_ci needs at least one value")
    mean = float(x.mean())
    if x.size == 1:
        return Interval(mean, float("nan"), float("nan"), 1 - alpha)
    half = float(scipy.stats.t.ppf(1 - alpha / 2, x.size - 1) * x.std(ddof=1) / np.sqrt(x.size))
    return Interval(mean, mean - half, mean + half, 1 - alpha)


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
