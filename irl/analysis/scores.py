"""Scores with intervals, fit settings, and the resampling helpers every analysis shares.

A :class:`Score` is an estimate with its interval, or the reason there is none: tables
print ``-`` with that reason as a footnote, never a number.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any, Sequence

import numpy as np

from harness.stats import BETTING_METHOD, MIN_UNITS, betting_interval, bootstrap_ci, mean_interval
from textenvs.errors import UserError

__all__ = ["Score", "FitSettings", "FORMS", "HORIZONS", "quantile_score", "ratio_score", "folds", "half_splits", "boot_indices", "return_score", "bootstrap_mean_score",
           "bounded_mean_score", "exact_score", "EXACT_METHOD",
           "ADEQUATE_COVERAGE", "gate_interval", "gd_verdict", "VERDICTS"]

#: Tabular reward forms (see :mod:`irl.analysis.tabular`).
FORMS = ("arrival", "delta")
#: ``"run"``: finite horizon, the run's step limit; ``"infinite"``: discounted, unending.
HORIZONS = ("run", "infinite")


@dataclass(frozen=True)
class Score:
    """A score with its interval; ``nan`` fields when it could not be computed."""

    estimate: float
    low: float
    high: float
    #: Confidence level of the interval (``0.95``).
    level: float
    #: Number of units behind it (episodes, splits, comparisons).
    n: int
    #: How the interval was obtained, or why the score is missing.
    method: str = ""

    @classmethod
    def missing(cls, why: str, level: float = 0.95, n: int = 0) -> Score:
        """A score that could not be computed, saying why."""
        nan = float("nan")
        return cls(nan, nan, nan, level, n, why)

    @property
    def ok(self) -> bool:
        """Whether the estimate is a number."""
        return math.isfinite(self.estimate)

    def contains(self, value: float) -> bool:
        """Whether ``low <= value <= high``."""
        return bool(self.low <= value <= self.high)

    def format(self, digits: int = 2) -> str:
        """``"estimate [low, high]"`` (``"-"`` when missing)."""
        if not self.ok:
            return "-"
        if not (math.isfinite(self.low) and math.isfinite(self.high)):
            return f"{self.estimate:.{digits}f}"
        return f"{self.estimate:.{digits}f} [{self.low:.{digits}f}, {self.high:.{digits}f}]"

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict (``nan`` written as ``null``)."""
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in asdict(self).items()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Score:
        """The inverse of :meth:`to_json`."""
        nan = float("nan")
        return cls(
            *(nan if data.get(k) is None else float(data[k]) for k in ("estimate", "low", "high")),
            float(data.get("level", 0.95)), int(data.get("n", 0)), str(data.get("method", "")),
        )


#: Why a score is left undefined for a fit that explains nothing.
WHY_NOISE = "the fit explains no more than chance (explained behaviour reaches 0): its reward is noise"


def explains_nothing(explained: Score) -> bool:
    """Whether a fit's explained behaviour reaches 0 (its interval, or its estimate without one):
    its objective is noise, so no distance, regret, stability or consistency is read from it."""
    return explained.ok and not (explained.low > 0 if math.isfinite(explained.low) else explained.estimate > 0)


#: What GD's interval says of an agent against the random mover (GD 0), by :func:`gd_verdict`.
VERDICTS = {
    "better than random": "GD's interval lies above 0",
    "worse than random": "GD's interval lies below 0",
    "undecided": "GD's interval contains 0: not told from a random mover",
    "as random": "GD is exactly 0 (a reference agent's, by policy evaluation)",
    "-": "GD is undefined",
}


def gd_verdict(gd: Score) -> str:
    """A key of :data:`VERDICTS` for GD's score: decisive (better or worse than random) or undecided."""
    if not gd.ok or not math.isfinite(gd.low):
        return "-"
    if gd.low == gd.high == gd.estimate and abs(gd.estimate) < 1e-12:
        return "as random"
    return "better than random" if gd.low > 0 else "worse than random" if gd.high < 0 else "undecided"


#: The coverage a 95% interval of a score computed from fits must reach, in simulation, to be
#: printed: 0.90, since a bootstrap of refits is approximate and its truth (the score's
#: large-sample value) is itself estimated (``bench/coverage.py``).
ADEQUATE_COVERAGE = 0.90

def gate_interval(name: str, score: Score, n_units: int) -> Score:
    """``score`` without its interval when ``n_units`` is below the score's ``min_episodes``
    (:class:`irl.analysis.specs.ScoreSpec`: where, in simulation, its intervals covered the
    score's large-sample value at least :data:`ADEQUATE_COVERAGE` of the time for every agent
    of known quality; ``bench/coverage.py``, docs/intervals.md); the method says why. Scores
    without a minimum, and missing ones, pass unchanged. Tabular runs only: chess and game
    units are games of many decisions, which the simulations did not cover."""
    from irl.analysis.specs import SCORES

    need = SCORES.get(name).min_episodes if name in SCORES else 0
    if not need or score is None or not score.ok or n_units >= need or not (math.isfinite(score.low) and math.isfinite(score.high)):
        return score
    why = (f"no interval below {need} episodes: at fewer, such intervals covered the score's large-sample value "
           f"in under {ADEQUATE_COVERAGE:.0%} of simulated runs (docs/intervals.md)")
    return Score(score.estimate, float("nan"), float("nan"), score.level, score.n, f"{score.method}; {why}")


def quantile_score(values: Sequence[float | None], estimate: float | None, alpha: float, method: str) -> Score:
    """Estimate (default: the mean) and the central ``1 - alpha`` range of the defined ``values``."""
    v = np.asarray([x for x in values if x is not None and math.isfinite(x)], dtype=float)
    if v.size == 0:
        return Score.missing("undefined for every resample (a fitted objective that ranks nothing)", 1 - alpha, len(values))
    low, high = np.quantile(v, [alpha / 2, 1 - alpha / 2])
    est = float(v.mean()) if estimate is None else float(estimate)
    if not high - low > 1e-12 * max(1.0, abs(low), abs(high)):
        # Every resample agreed (or there was one): a point would claim a certainty that a few
        # episodes cannot give (an optimal agent's regret alignment from 4 episodes, say).
        nan = float("nan")
        return Score(est, nan, nan, 1 - alpha, int(v.size),
                     f"{method}; every one of {v.size} resamples gave the same value: too few episodes to show its spread, no interval")
    return Score(est, float(low), float(high), 1 - alpha, int(v.size), method)



class FitError(UserError, ValueError):
    """Runs that cannot be fitted with these settings (a bad setting, no usable decisions, a diverged fit)."""


@dataclass(frozen=True)
class FitSettings:
    """How runs are fitted and scored (saved with every report)."""

    #: Tabular: ``"named"`` (the MDP's ``default_features``, else all its named features), ``"onehot"``, or a tuple of
    #: feature names. Chess: ``"named"`` (the default chess features) or a tuple of
    #: names in :data:`textenvs.chess.features.FEATURES`.
    features: str | tuple[str, ...] = "named"
    #: Tabular: ``"arrival"`` (the default: reward for the state arrived in) or
    #: ``"delta"`` (reward for the change of each feature; it telescopes, see
    #: :mod:`irl.analysis.tabular`). ``None`` means arrival.
    form: str | None = None
    #: ``gamma`` of fits, soft value iteration and distances; ``None``: the
    #: environment's declared discount (``TabularMDP.discount``).
    discount: float | None = None
    #: ``"run"``: finite horizon (the run's ``max_steps``), steps weighted by
    #: ``gamma**t``; ``"infinite"``: discounted infinite horizon.
    horizon: str = "run"
    #: L2 strength on the total log-likelihood (a Gaussian prior on the weights);
    #: ``None``: 1 tabular, cross-validated chess.
    l2: float | None = None
    #: Tabular: append the per-decision ``step`` feature to named features.
    step: bool = True
    #: Tabular: fit a reward per action name beside the reward (a label bias: the same in
    #: every state), kept out of the fitted objective, so that a bias does not pass for one.
    label_bias: bool = True
    #: Chess: ``"probs"``: fit to recorded distributions over the legal moves where a
    #: step has one; ``"actions"``: to the moves played. Tabular fits always use the
    #: actions.
    targets: str = "probs"
    #: Folds for explained behaviour and MEG, random half-splits for stability,
    #: bootstrap refits for alignment / encoding consistency / weight intervals.
    folds: int = 5
    splits: int = 10
    n_boot: int = 50
    alpha: float = 0.05
    seed: int = 0
    #: Stockfish search depth for ``engine_eval_change`` and chess alignment.
    engine_depth: int = 6
    #: Chess: score alignment against Stockfish's evaluation change (needs Stockfish).
    chess_alignment: bool = True
    #: A reference agent whose policy is known exactly (a planner, the random mover) gets its
    #: GD and return by policy evaluation (method ``exact``); ``False``: from its episodes.
    exact_references: bool = True
    #: Print a fit-based score's interval only from the episode count where simulations found
    #: its coverage adequate (``min_episodes`` of :mod:`irl.analysis.specs`); ``False``: every interval.
    gate_intervals: bool = True

    def __post_init__(self) -> None:
        if self.form is not None and self.form not in FORMS:
            raise FitError(f"form must be one of {FORMS} or None, got {self.form!r}")
        if self.discount is not None and not 0.0 < self.discount < 1.0:
            raise FitError(f"discount must lie in (0, 1), got {self.discount}")
        if self.horizon not in HORIZONS:
            raise FitError(f"horizon must be one of {HORIZONS}, got {self.horizon!r}")
        if self.targets not in ("probs", "actions"):
            raise FitError(f"targets must be 'probs' or 'actions', got {self.targets!r}")
        if self.folds < 2 or self.splits < 1 or self.n_boot < 1:
            raise FitError("need folds >= 2, splits >= 1 and n_boot >= 1")
        if self.l2 is not None and self.l2 < 0:
            raise FitError(f"l2 must be >= 0, got {self.l2}")

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict of the settings."""
        out = asdict(self)
        if isinstance(self.features, tuple):
            out["features"] = list(self.features)
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FitSettings:
        """The inverse of :meth:`to_json`."""
        kw = {f.name: data[f.name] for f in fields(cls) if f.name in data}
        if isinstance(kw.get("features"), list):
            kw["features"] = tuple(kw["features"])
        return cls(**kw)


def ratio_score(gains: np.ndarray, entropies: np.ndarray, settings: FitSettings, method: str) -> Score:
    """``sum(gains) / sum(entropies)`` with a bootstrap interval over units: explained behaviour."""
    level = 1 - settings.alpha
    total = float(entropies.sum())
    if total <= 0:
        return Score.missing("no decision with more than one action", level, len(gains))
    estimate = float(gains.sum() / total)
    if len(gains) < 2:
        return Score(estimate, float("nan"), float("nan"), level, len(gains), method)

    def stat(idx: np.ndarray) -> float:
        e = entropies[idx].sum()
        return float(gains[idx].sum() / e) if e > 0 else float("nan")

    ci = bootstrap_ci(np.arange(len(gains)), stat, n=1000, alpha=settings.alpha, seed=settings.seed)
    return Score(estimate, float(ci.low), float(ci.high), level, len(gains), method)


def bootstrap_mean_score(values: Sequence[float], settings: FitSettings, method: str) -> Score:
    """Mean of per-unit values with a percentile bootstrap interval over units."""
    v = np.asarray(values, dtype=float)
    level = 1 - settings.alpha
    if v.size == 0:
        return Score.missing("no units", level)
    if v.size < 2:
        return Score(float(v.mean()), float("nan"), float("nan"), level, int(v.size), method)
    ci = bootstrap_ci(v, n=1000, alpha=settings.alpha, seed=settings.seed)
    return Score(float(ci.estimate), float(ci.low), float(ci.high), level, int(v.size), method)


def folds(n_units: int, k: int, seed: int) -> list[np.ndarray]:
    """``min(k, n)`` random folds of ``n`` units."""
    perm = np.random.default_rng(seed).permutation(n_units)
    return [f for f in np.array_split(perm, min(k, n_units)) if len(f)]


def half_splits(n: int, splits: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """``splits`` random splits of ``n`` units into two halves."""
    rng = np.random.default_rng([seed, 7])
    out = []
    for _ in range(splits):
        perm = rng.permutation(n)
        out.append((np.sort(perm[: n // 2]), np.sort(perm[n // 2:])))
    return out


def boot_indices(n: int, n_boot: int, seed: int) -> np.ndarray:
    """Bootstrap resamples of ``n`` units; the same for every run with ``n`` units (paired)."""
    return np.random.default_rng([seed, 11]).integers(0, n, size=(n_boot, n))


#: The method of a score computed exactly by policy evaluation (no sampling error).
EXACT_METHOD = "exact: policy evaluation of the agent's known policy on the exact MDP (no sampling error)"


def exact_score(value: float, alpha: float, n: int, method: str = EXACT_METHOD) -> Score:
    """A score known exactly: its interval is the point itself, ``method`` says why."""
    return Score(float(value), float(value), float(value), 1 - alpha, n, method)


def bounded_mean_score(values: Sequence[float], lo: float, hi: float, alpha: float, method: str) -> Score:
    """Mean of per-episode values known to lie in ``[lo, hi]``, with the betting confidence
    sequence (:func:`harness.stats.betting_interval`): valid at any number of episodes and
    under optional stopping, never a point unless ``lo == hi``."""
    v = np.asarray(values, dtype=float)
    if v.size == 0:
        return Score.missing("no finished episodes", 1 - alpha)
    ci = betting_interval(v, lo, hi, alpha=alpha)
    return Score(float(ci.estimate), float(ci.low), float(ci.high), 1 - alpha, int(v.size),
                 f"{method}; {BETTING_METHOD} over [{lo:.4g}, {hi:.4g}]")


def return_score(returns: Sequence[float], alpha: float, bounds: tuple[float, float] | None = None) -> Score:
    """Mean episode return with the interval run summaries print: the betting interval over
    ``bounds`` (the least and greatest return possible within the step limit), or where they
    are unknown a percentile bootstrap over episodes, none below 5 episodes."""
    if not returns:
        return Score.missing("no finished episodes", 1 - alpha)
    if bounds is not None:
        return bounded_mean_score(returns, bounds[0], bounds[1], alpha, "mean episode return")
    ci = mean_interval(returns, alpha=alpha)
    method = "mean episode return; the range of returns is unknown: percentile bootstrap over episodes" if math.isfinite(ci.low) else \
        f"mean episode return; the range of returns is unknown: no interval below {MIN_UNITS} episodes"
    return Score(float(ci.estimate), float(ci.low), float(ci.high), 1 - alpha, len(returns), method)
