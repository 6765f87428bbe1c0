"""Is the behaviour of a run coherent optimisation of some objective? Four scores.

Every score comes with a 95% interval (``alpha`` sets the level):

**explained behaviour**
    The held-out log-likelihood gain of the fitted Boltzmann policy over the uniform
    policy, divided by the uniform policy's entropy: ``(LL_heldout - LL_uniform) /
    sum_d log n_d`` over the decisions ``d`` (``n_d`` legal actions). 1: every held-out
    action predicted with certainty; about 0: the objective explains nothing; negative:
    worse than uniform (over-fitting). Folds are whole episodes (games): K-fold, each
    fold scored by a model fitted on the others. The held-out likelihood is that of the
    *actions taken* (even when the fit used recorded distributions), so that a uniformly
    random agent scores about 0. Tabular runs fit MCE IRL (:mod:`irl.mce`) and score its
    soft-optimal policy, normalised by ``log |A|``; chess runs fit the choice model
    (:mod:`irl.choice`, the same score as :func:`irl.choice.explained_behaviour` but with
    games as folds). Interval: bootstrap over held-out episodes (the fits stay fixed).
**stability**
    The distance between objectives fitted on two random halves of the episodes,
    over ``splits`` random splits: the estimate is the mean, the interval the central
    ``1 - alpha`` range of the split values. Tabular: EPIC distance between the fitted
    rewards. Chess has no tabular reward, so the distance is the Pearson distance
    ``sqrt((1 - rho) / 2)`` between the fitted weight vectors (the same formula as EPIC's
    last step, but between coefficients, so it depends on the features' units).
**encoding consistency**
    The distance between the objectives fitted to the *same agent's* runs on the same
    environment under *different encodings*: runs are grouped by model (and backend),
    environment, variant, options and mode. The estimate is the mean distance from this
    run's fit to those of the group's runs with another encoding; the interval comes from
    bootstrap refits (runs with equally many episodes are resampled with the same episode
    indices: a paired bootstrap, so identical behaviour gives exactly 0).
**alignment** (tabular only)
    EPIC distance from the fitted reward to the environment's true reward
    (``mdp.rewards``), interval from bootstrap refits; and the true return achieved (mean
    episode ``total_reward``, Student-t interval).

Tabular rewards
    Rewards are linear in features of the *transition*: for named state features
    ``f(s)`` (the MDP's ``features``), ``form="delta"`` (the default) rewards their change
    ``phi(s, a) = E[f(s') | s, a] - f(s)``, so the fitted reward is ``Phi(s') - Phi(s)``
    with the "state score" ``Phi = w . f``: in FrozenLake the true reward is exactly
    ``at_goal``'s change, in keys-chests ``chests_opened``'s. ``form="arrival"`` (the
    default for one-hot features) rewards arriving: ``phi(s, a) = E[f(s') | s, a]``, so
    one-hot arrival features give a free reward per state entered. Named features get
    one more, ``step`` (1 for every decision), which lets a fit say that the agent hurries
    (or dawdles); one-hot arrival features already span it. Features are 0 in terminal
    (absorbing) states, where no decision is taken, as the true reward is.
    The horizon is the run's ``max_steps`` (finite, undiscounted) unless a ``discount < 1``
    asks for the discounted infinite-horizon model. Note that undiscounted changes
    telescope: a delta-form reward sees only where an episode ends (and, through
    ``step``, how long it took), not the path; ``form="arrival"`` or a discount makes the
    path count.

    Tabular fits use the *actions taken*, also where distributions were recorded: MCE
    IRL matches the feature expectations of trajectories, and replacing actions by their
    recorded distributions gives an occupancy that need not be achievable (the MCE
    objective can then be unbounded). ``l2`` penalises the *total* log-likelihood over
    episodes (``mce_irl`` gets ``l2 / n_episodes``), as in :mod:`irl.choice`, so a given
    ``l2`` matters less as episodes accumulate.

EPIC on tabular rewards
    Distances are computed on expected rewards ``r(s, a) = E[R(s, a, s')]`` over the
    *decision states* (non-terminal states reachable from the start), with uniform
    canonicalisation distributions over those states and over actions and the fit's
    discount (1 for finite horizons). Rewards equal up to a positive scale are at 0; the
    canonicalisation draws ``s'`` independently of ``(s, a)``, so potential shaping through
    the dynamics is only partly removed (a conservative distance). A constant reward
    over the decision states (the ``step`` feature's part) is invisible to EPIC.

    Near-optimal behaviour identifies a reward only as far as it shows it: an agent
    that never nears a hole says little about how bad holes are. In FrozenLake "+w for
    the goal" and "+w/2 for the goal, -w/2 for a hole, a small step cost" explain a
    goal-seeker about equally well, yet are far apart in EPIC (the hole transitions are
    many). Alignment is then poor although behaviour is well explained; fewer,
    well-chosen features (``features=("at_goal",)``) or more varied behaviour help.

:func:`analyse_runs` reads run directories and returns one :class:`CoherenceReport` per
run, which serialises to JSON. The pieces are pure functions of the loaded runs.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from irl.choice import choice_probabilities, cross_validate, fit_choice, pack_decisions
from irl.data import ChessRun, RunInfo, TabularRun, load_chess, load_tabular, read_info, run_kind
from irl.epic import epic_distance, pearson_distance
from irl.mce import mce_irl
from textenvs.planning import Dynamics
from harness.stats import bootstrap_ci, mean_ci

__all__ = [
    "Score",
    "FitSettings",
    "TabularFeatures",
    "TabularFit",
    "CoherenceReport",
    "tabular_features",
    "decision_states",
    "demonstration_occupancy",
    "fit_tabular",
    "reward_distance",
    "tabular_explained",
    "tabular_stability",
    "tabular_alignment",
    "chess_explained",
    "chess_stability",
    "analyse_tabular",
    "analyse_chess",
    "analyse_runs",
    "add_encoding_consistency",
]

#: Default L2 strength of tabular (MCE) fits, on the total log-likelihood over episodes;
#: chess fits choose theirs by cross-validation.
TABULAR_L2 = 1e-2
#: Held-out probabilities are floored here, so that one impossible action costs a large
#: but finite log-likelihood (``log(tiny) = -708``) instead of ``-inf``.
_P_FLOOR = np.finfo(float).tiny
FORMS = ("delta", "arrival")


# -- scores and settings --------------------------------------------------------------------


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


def _quantile_score(values: Sequence[float], estimate: float | None, alpha: float, method: str) -> Score:
    """Estimate (default: the mean) and the central ``1 - alpha`` range of ``values``."""
    v = np.asarray([x for x in values if math.isfinite(x)], dtype=float)
    if v.size == 0:
        return Score.missing(f"{method}: no finite values (a fitted objective is constant: it ranks nothing)", 1 - alpha, len(values))
    low, high = np.quantile(v, [alpha / 2, 1 - alpha / 2])
    est = float(v.mean()) if estimate is None else float(estimate)
    return Score(est, float(low), float(high), 1 - alpha, int(v.size), method)


@dataclass(frozen=True)
class FitSettings:
    """How runs are fitted and scored (saved with every report)."""

    #: Tabular: ``"named"`` (the MDP's named features), ``"onehot"``, or a tuple of
    #: feature names. Chess: ``"named"`` (the default chess features) or a tuple of
    #: names in :data:`textenvs.chess.features.FEATURES`.
    features: str | tuple[str, ...] = "named"
    #: Tabular: ``"delta"`` or ``"arrival"`` (module docstring); ``None``: delta for
    #: named features, arrival for one-hot.
    form: str | None = None
    #: ``None``: finite horizon (the run's ``max_steps``), undiscounted. A value in
    #: ``(0, 1)``: discounted, infinite horizon (tabular).
    discount: float | None = None
    #: L2 strength; ``None``: 1e-2 for tabular fits, cross-validated for chess.
    l2: float | None = None
    #: Tabular: append the constant ``step`` feature to named features.
    step: bool = True
    #: Chess: ``"probs"``: fit to recorded distributions over the legal moves where a
    #: step has one; ``"actions"``: to the moves played. Tabular fits always use the
    #: actions (module docstring).
    targets: str = "probs"
    #: Folds for explained behaviour, random half-splits for stability, bootstrap
    #: refits for alignment / encoding consistency / weight intervals.
    folds: int = 5
    splits: int = 10
    n_boot: int = 50
    alpha: float = 0.05
    seed: int = 0
    #: Stockfish search depth for ``engine_eval_change``.
    engine_depth: int = 6

    def __post_init__(self) -> None:
        if self.form is not None and self.form not in FORMS:
            raise ValueError(f"form must be one of {FORMS} or None, got {self.form!r}")
        if self.discount is not None and not 0.0 < self.discount < 1.0:
            raise ValueError(f"discount must lie in (0, 1) (or be None for a finite horizon), got {self.discount}")
        if self.targets not in ("probs", "actions"):
            raise ValueError(f"targets must be 'probs' or 'actions', got {self.targets!r}")
        if self.folds < 2 or self.splits < 1 or self.n_boot < 1:
            raise ValueError("need folds >= 2, splits >= 1 and n_boot >= 1")
        if self.l2 is not None and self.l2 < 0:
            raise ValueError(f"l2 must be >= 0, got {self.l2}")

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


# -- tabular: features, fits, distances -----------------------------------------------------


@dataclass(frozen=True, eq=False)
class TabularFeatures:
    """Transition features of a tabular MDP (module docstring)."""

    #: ``[S, A, K]`` reward features ``phi(s, a)``.
    phi: np.ndarray
    #: ``[S, K]`` the state features ``f(s)`` they come from (``Phi = f @ w``).
    state: np.ndarray
    names: tuple[str, ...]
    #: ``"delta"`` or ``"arrival"``.
    form: str


def tabular_features(
    mdp: Any, features: str | Sequence[str] = "named", form: str | None = None, *, step: bool = True
) -> TabularFeatures:
    """The reward features of ``mdp`` (module docstring).

    Args:
        mdp: a :class:`textenvs.mdp.TabularMDP`.
        features: ``"named"`` (all named features), ``"onehot"``, or feature names.
        form: ``"delta"`` or ``"arrival"``; ``None``: delta for named, arrival for one-hot.
        step: append the constant ``step`` feature (1 for every decision) to named
            features. One-hot arrival features already span it.
    """
    if isinstance(features, str) and features == "onehot":
        state = np.eye(mdp.n_states)
        names = tuple(mdp.state_labels) if len(mdp.state_labels) == mdp.n_states else tuple(f"s{i}" for i in range(mdp.n_states))
        form = form or "arrival"
    else:
        cols = list(mdp.feature_names) if isinstance(features, str) and features == "named" else [features] if isinstance(features, str) else list(features)
        state = np.asarray(mdp.feature_matrix(cols), dtype=float)
        names = tuple(cols)
        form = form or "delta"
    if form not in FORMS:
        raise ValueError(f"form must be one of {FORMS}, got {form!r}")
    phi = np.einsum("sat,tk->sak", np.asarray(mdp.transitions, dtype=float), state)
    if form == "delta":
        phi = phi - state[:, None, :]
    if step and not (isinstance(features, str) and features == "onehot" and form == "arrival"):
        phi = np.concatenate([phi, np.ones(phi.shape[:2] + (1,))], axis=2)
        state = np.concatenate([state, np.zeros((state.shape[0], 1))], axis=1)
        names = names + ("step",)
    phi[np.asarray(mdp.terminal, dtype=bool)] = 0.0
    return TabularFeatures(phi, state, names, form)


def decision_states(mdp: Any) -> np.ndarray:
    """Boolean mask of the non-terminal states reachable from the initial distribution."""
    P = np.asarray(mdp.transitions) > 0
    succ = P.any(axis=1)  # [S, S']
    seen = np.asarray(mdp.initial) > 0
    frontier = seen.copy()
    while frontier.any():
        nxt = succ[frontier].any(axis=0) & ~seen
        seen |= nxt
        frontier = nxt
    mask = seen & ~np.asarray(mdp.terminal, dtype=bool)
    if not mask.any():
        raise ValueError("the MDP has no reachable non-terminal state")
    return mask


def reward_distance(reward_a: np.ndarray, reward_b: np.ndarray, mdp: Any, discount: float = 1.0, *, mask: np.ndarray | None = None) -> float:
    """EPIC distance between two rewards of ``mdp`` over its decision states (module docstring).

    Rewards may be ``[S]``, ``[S, A]`` or ``[S, A, S]``; they are compared as expected
    rewards ``r(s, a)``. ``nan`` when one is constant over the decision states.
    """
    dyn = np.asarray(mdp.transitions, dtype=float)
    S, A = dyn.shape[:2]

    def as_sa(r: np.ndarray) -> np.ndarray:
        r = np.asarray(r, dtype=float)
        if r.shape == (S, A, S):
            return np.where(dyn > 0, dyn * r, 0.0).sum(axis=2)
        if r.shape == (S,):
            return np.repeat(r[:, None], A, axis=1)
        if r.shape == (S, A):
            return r
        raise ValueError(f"a reward of this MDP is [S], [S, A] or [S, A, S] with S={S}, A={A}; got {r.shape}")

    m = decision_states(mdp) if mask is None else mask
    ds = m / m.sum()
    return epic_distance(as_sa(reward_a), as_sa(reward_b), discount, state_dist=ds)


@dataclass(frozen=True, eq=False)
class TabularFit:
    """MCE IRL fitted to some episodes of a tabular run."""

    #: ``[K]`` weights of the reward features.
    weights: np.ndarray
    #: ``[S, A]`` the fitted reward ``phi @ weights``.
    reward: np.ndarray
    #: ``[S]`` the state score ``Phi = f @ weights`` (reward = its change, or its value on arrival).
    state_score: np.ndarray
    #: The soft-optimal policy: ``[H, S, A]`` (finite horizon) or ``[S, A]``.
    policy: np.ndarray
    horizon: int | None
    discount: float
    l2: float
    converged: bool


def demonstration_occupancy(
    run: TabularRun, indices: Sequence[int], *, horizon: int | None, discount: float, use_probs: bool
) -> np.ndarray:
    """``[S, A]`` occupancy of episodes ``indices`` (repeats count twice).

    The same measure as :func:`irl.mce.empirical_occupancy` (absorbing final states
    padded with uniform actions, normalised to the model's total mass), with each step's
    recorded action distribution in place of the one-hot action when ``use_probs``.
    """
    mdp = run.mdp
    S, A = mdp.n_states, mdp.n_actions
    occ = np.zeros((S, A))
    for i in indices:
        ep = run.episodes[int(i)]
        T = ep.n_decisions
        if horizon is not None and T > horizon:
            raise ValueError(f"episode {ep.episode} has {T} decisions, more than the horizon {horizon}")
        w = discount ** np.arange(T)
        if use_probs and ep.probs is not None:
            np.add.at(occ, ep.states[:T], w[:, None] * ep.probs)
        else:
            np.add.at(occ, (ep.states[:T], ep.actions), w)
        if len(ep.states) == T + 1 and mdp.terminal[ep.states[T]]:
            tail = float(np.sum(discount ** np.arange(T, horizon))) if horizon is not None else discount**T / (1.0 - discount)
            occ[ep.states[T]] += tail / A
        elif horizon is not None and T < horizon:
            raise ValueError(f"episode {ep.episode} stops after {T} < {horizon} decisions outside an absorbing state")
    total = occ.sum()
    if total <= 0:
        raise ValueError("no decisions to fit")
    mass = float(np.sum(discount ** np.arange(horizon))) if horizon is not None else 1.0 / (1.0 - discount)
    return occ * (mass / total)


class _TabularProblem:
    """Everything shared by the fits of one run: dynamics, features, horizon."""

    def __init__(self, run: TabularRun, settings: FitSettings):
        self.run = run
        self.settings = settings
        mdp = run.mdp
        self.features = tabular_features(mdp, settings.features, settings.form, step=settings.step)
        self.dynamics = Dynamics(mdp.transitions)
        longest = max((e.n_decisions for e in run.episodes), default=1)
        self.horizon = None if settings.discount is not None else max(run.horizon, longest, 1)
        self.discount = 1.0 if settings.discount is None else float(settings.discount)
        self.l2 = TABULAR_L2 if settings.l2 is None else float(settings.l2)
        # MCE IRL matches the feature expectations of trajectories actually taken: recorded
        # distributions in place of the actions give an occupancy that need not be
        # achievable, and then the objective can be unbounded. Tabular fits use actions.
        self.use_probs = False
        self.mask = decision_states(mdp)
        self.true_reward = mdp.expected_rewards()

    def fit(self, indices: Sequence[int], weights_init: np.ndarray | None = None) -> TabularFit:
        occ = demonstration_occupancy(self.run, indices, horizon=self.horizon, discount=self.discount, use_probs=self.use_probs)
        # mce_irl's objective is per episode; the penalty here is on the total (module docstring).
        res = mce_irl(
            self.dynamics, self.features.phi, occ, initial=self.run.mdp.initial, horizon=self.horizon,
            discount=self.discount, l2=self.l2 / len(indices), weights_init=weights_init, gtol=1e-6, max_iter=500,
        )
        return TabularFit(
            res.weights, res.reward, self.features.state @ res.weights, res.policy,
            self.horizon, self.discount, self.l2, res.converged,
        )

    def distance(self, a: np.ndarray, b: np.ndarray) -> float:
        return reward_distance(a, b, self.run.mdp, self.discount, mask=self.mask)


def fit_tabular(run: TabularRun, settings: FitSettings = FitSettings(), indices: Sequence[int] | None = None) -> TabularFit:
    """Fit MCE IRL to the episodes ``indices`` of ``run`` (default: all)."""
    if not run.episodes:
        raise ValueError(f"{run.info.run_dir}: no usable episodes")
    problem = _TabularProblem(run, settings)
    return problem.fit(range(len(run.episodes)) if indices is None else indices)


def _episode_loglik(policy: np.ndarray, states: np.ndarray, actions: np.ndarray) -> float:
    T = len(actions)
    p = policy[np.arange(T), states[:T], actions] if policy.ndim == 3 else policy[states[:T], actions]
    return float(np.log(np.maximum(p, _P_FLOOR)).sum())


def _folds(n_units: int, k: int, seed: int) -> list[np.ndarray]:
    perm = np.random.default_rng(seed).permutation(n_units)
    return [f for f in np.array_split(perm, min(k, n_units)) if len(f)]


def _ratio_score(gains: np.ndarray, entropies: np.ndarray, settings: FitSettings, method: str) -> Score:
    """``sum(gains) / sum(entropies)`` with a bootstrap interval over units."""
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


def tabular_explained(run: TabularRun, settings: FitSettings = FitSettings(), *, _problem: _TabularProblem | None = None) -> Score:
    """Explained behaviour of a tabular run (module docstring), K-fold over episodes."""
    n = len(run.episodes)
    if n < 2:
        return Score.missing("needs at least 2 episodes", 1 - settings.alpha, n)
    problem = _problem or _TabularProblem(run, settings)
    log_a = math.log(run.mdp.n_actions)
    gains = np.zeros(n)
    entropies = np.zeros(n)
    for test in _folds(n, settings.folds, settings.seed):
        train = np.setdiff1d(np.arange(n), test)
        fit = problem.fit(train)
        for i in test:
            ep = run.episodes[int(i)]
            gains[i] = _episode_loglik(fit.policy, ep.states, ep.actions) + ep.n_decisions * log_a
            entropies[i] = ep.n_decisions * log_a
    k = min(settings.folds, n)
    return _ratio_score(gains, entropies, settings, f"{k}-fold over episodes; bootstrap over held-out episodes")


def _half_splits(n: int, splits: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng([seed, 7])
    out = []
    for _ in range(splits):
        perm = rng.permutation(n)
        out.append((np.sort(perm[: n // 2]), np.sort(perm[n // 2:])))
    return out


def tabular_stability(run: TabularRun, settings: FitSettings = FitSettings(), *, _problem: _TabularProblem | None = None) -> Score:
    """EPIC distance between rewards fitted on random halves of the episodes."""
    n = len(run.episodes)
    if n < 2:
        return Score.missing("needs at least 2 episodes", 1 - settings.alpha, n)
    problem = _problem or _TabularProblem(run, settings)
    values = [problem.distance(problem.fit(a).reward, problem.fit(b).reward) for a, b in _half_splits(n, settings.splits, settings.seed)]
    return _quantile_score(values, None, settings.alpha, f"EPIC between halves; mean and central range over {settings.splits} random splits")


def _boot_indices(n: int, n_boot: int, seed: int) -> np.ndarray:
    """Bootstrap resamples of ``n`` units; the same for every run with ``n`` units (paired)."""
    return np.random.default_rng([seed, 11]).integers(0, n, size=(n_boot, n))


def tabular_alignment(
    run: TabularRun, settings: FitSettings = FitSettings(), *, _problem: _TabularProblem | None = None,
    _fit: TabularFit | None = None, _boot: Sequence[TabularFit] | None = None,
) -> Score:
    """EPIC distance from the fitted reward to the true reward, bootstrap over episodes."""
    if not run.episodes:
        return Score.missing("no usable episodes", 1 - settings.alpha)
    problem = _problem or _TabularProblem(run, settings)
    fit = _fit or problem.fit(range(len(run.episodes)))
    boot = _boot if _boot is not None else [problem.fit(idx, fit.weights) for idx in _boot_indices(len(run.episodes), settings.n_boot, settings.seed)]
    estimate = problem.distance(fit.reward, problem.true_reward)
    values = [problem.distance(b.reward, problem.true_reward) for b in boot]
    return _quantile_score(values, estimate, settings.alpha, f"EPIC to the true reward; percentile bootstrap over episodes ({len(boot)} refits)")


def _return_score(returns: Sequence[float], alpha: float) -> Score:
    if not returns:
        return Score.missing("no finished episodes", 1 - alpha)
    ci = mean_ci(returns, alpha=alpha)
    return Score(float(ci.estimate), float(ci.low), float(ci.high), 1 - alpha, len(returns), "mean episode return; Student-t interval")


# -- chess ----------------------------------------------------------------------------------


def _games_as_units(run: ChessRun) -> list[list[int]]:
    """Decision indices per unit: games, or single decisions when there is one game."""
    units, start = [], 0
    for g in run.games:
        units.append(list(range(start, start + len(g.decisions))))
        start += len(g.decisions)
    if len(units) < 2:
        units = [[i] for i in range(start)]
    return units


def _chess_l2(data, settings: FitSettings) -> float:
    if settings.l2 is not None:
        return float(settings.l2)
    k = min(settings.folds, data.n_decisions)
    if k < 2:
        return 1e-2
    return cross_validate(data, k=k, seed=settings.seed).best_l2


def chess_explained(run: ChessRun, settings: FitSettings = FitSettings()) -> Score:
    """Explained behaviour of a chess run (module docstring): K-fold over games.

    Each outer training split chooses its own ``l2`` by inner cross-validation unless
    ``settings.l2`` fixes it.
    """
    decisions = run.decisions
    chosen = np.array([c for g in run.games for c in g.chosen])
    units = _games_as_units(run)
    if len(units) < 2:
        return Score.missing("needs at least 2 decisions", 1 - settings.alpha, len(units))
    data = pack_decisions(decisions)
    sizes = data.sizes
    gains = np.zeros(len(units))
    entropies = np.array([np.log(sizes[u]).sum() for u in units])
    for j, test in enumerate(_folds(len(units), settings.folds, settings.seed)):
        held_out = set(test.tolist())
        train_rows = np.concatenate([units[u] for u in range(len(units)) if u not in held_out])
        train = data.subset(train_rows)
        l2 = _chess_l2(train, replace(settings, seed=settings.seed + 1 + j))
        theta = fit_choice(train, l2=l2).weights
        for u in test:
            rows = units[int(u)]
            probs = choice_probabilities(data.subset(np.asarray(rows)), theta)
            ll = sum(float(np.log(max(p[chosen[r]], _P_FLOOR))) for p, r in zip(probs, rows))
            gains[u] = ll + entropies[u]
    k = min(settings.folds, len(units))
    unit = "games" if len(run.games) >= 2 else "decisions"
    return _ratio_score(gains, entropies, settings, f"{k}-fold over {unit}; bootstrap over held-out {unit}")


def chess_stability(run: ChessRun, settings: FitSettings = FitSettings(), *, l2: float | None = None) -> Score:
    """Pearson distance between weight vectors fitted on random halves of the games."""
    units = _games_as_units(run)
    if len(units) < 2:
        return Score.missing("needs at least 2 decisions", 1 - settings.alpha, len(units))
    data = pack_decisions(run.decisions)
    lam = _chess_l2(data, settings) if l2 is None else l2
    values = []
    for a, b in _half_splits(len(units), settings.splits, settings.seed):
        wa = fit_choice(data.subset(np.concatenate([units[i] for i in a])), l2=lam).weights
        wb = fit_choice(data.subset(np.concatenate([units[i] for i in b])), l2=lam).weights
        values.append(pearson_distance(wa, wb))
    return _quantile_score(values, None, settings.alpha, f"Pearson distance of weights between halves; mean and central range over {settings.splits} random splits")


# -- reports --------------------------------------------------------------------------------


@dataclass
class CoherenceReport:
    """Everything fitted and scored for one run; :meth:`to_json` for ``fit.json``."""

    run_id: str
    run_dir: str
    #: ``"tabular"`` or ``"chess"``.
    kind: str
    #: The run's identity (model, backend, env, variant, options, encoding, mode, ...).
    info: dict[str, Any]
    settings: dict[str, Any]
    n_episodes: int
    n_decisions: int
    #: Episodes left out of the fits, by reason.
    skipped: dict[str, int]
    #: ``"probs"`` or ``"actions"``: what the fit was fitted to.
    targets: str
    feature_names: list[str]
    weights: list[float]
    #: Percentile bootstrap interval of each weight (over episodes / games).
    weights_low: list[float]
    weights_high: list[float]
    #: ``"epic"`` (tabular) or ``"pearson"`` (chess): the distance of stability and
    #: encoding consistency.
    distance: str
    explained: Score
    stability: Score
    #: ``None`` until compared with the same agent's runs under other encodings.
    encoding_consistency: Score | None
    #: Tabular only.
    alignment_epic: Score | None
    true_return: Score
    #: Tabular only: ``[S, A]`` fitted reward and ``[S]`` state score.
    reward: list[list[float]] | None = None
    state_score: list[float] | None = None
    #: ``"delta"`` or ``"arrival"`` (tabular), the horizon and discount of the fit.
    form: str | None = None
    horizon: int | None = None
    discount: float | None = None
    l2: float | None = None
    converged: bool = True
    notes: list[str] = field(default_factory=list)

    @property
    def agent(self) -> str:
        """The model's name, or ``baseline:<name>`` for an RL baseline."""
        return f"baseline:{self.info['model']}" if self.info.get("backend") == "baseline" else str(self.info.get("model"))

    @property
    def env_label(self) -> str:
        """``env/variant``."""
        v = self.info.get("variant")
        return f"{self.info.get('env')}/{v}" if v else str(self.info.get("env"))

    def scores(self) -> dict[str, Score | None]:
        """The scores by column name."""
        return {
            "explained": self.explained, "stability": self.stability,
            "encoding_consistency": self.encoding_consistency, "alignment_epic": self.alignment_epic,
            "true_return": self.true_return,
        }

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict (scores as dicts, ``nan`` as ``null``)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, Score):
                v = v.to_json()
            elif isinstance(v, list):
                v = _nan_to_none(v)
            out[f.name] = v
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CoherenceReport:
        """The inverse of :meth:`to_json`."""
        kw = dict(data)
        for name in ("explained", "stability", "encoding_consistency", "alignment_epic", "true_return"):
            if kw.get(name) is not None:
                kw[name] = Score.from_json(kw[name])
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in kw.items() if k in known})


def _nan_to_none(v: Any) -> Any:
    if isinstance(v, list):
        return [_nan_to_none(x) for x in v]
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


@dataclass
class _Analysis:
    """A report plus what cross-run scores need (not serialised)."""

    report: CoherenceReport
    #: Full-data objective and its bootstrap refits: ``[S, A]`` rewards or weight vectors.
    objective: np.ndarray
    boot: list[np.ndarray]
    n_units: int
    distance: Callable[[np.ndarray, np.ndarray], float]


def _info_dict(run: TabularRun | ChessRun) -> dict[str, Any]:
    return run.info.to_json()


def analyse_tabular(run: TabularRun, settings: FitSettings = FitSettings()) -> CoherenceReport:
    """Fit and score a tabular run (encoding consistency is left ``None``)."""
    return _analyse_tabular(run, settings).report


def _analyse_tabular(run: TabularRun, settings: FitSettings) -> _Analysis:
    if not run.episodes:
        raise ValueError(f"{run.info.run_dir}: no usable episodes (skipped: {run.skipped or 'none finished'})")
    problem = _TabularProblem(run, settings)
    n = len(run.episodes)
    fit = problem.fit(range(n))
    boot = [problem.fit(idx, fit.weights) for idx in _boot_indices(n, settings.n_boot, settings.seed)]
    W = np.array([b.weights for b in boot])
    low, high = np.quantile(W, [settings.alpha / 2, 1 - settings.alpha / 2], axis=0)
    notes = []
    if not fit.converged or not all(b.converged for b in boot):
        notes.append("some MCE fits stopped before L-BFGS-B reported convergence")
    report = CoherenceReport(
        run_id=run.info.run_id, run_dir=run.info.run_dir, kind="tabular", info=_info_dict(run),
        settings=settings.to_json(), n_episodes=n, n_decisions=run.n_decisions, skipped=dict(run.skipped),
        targets="probs" if problem.use_probs else "actions",
        feature_names=list(problem.features.names), weights=fit.weights.tolist(),
        weights_low=low.tolist(), weights_high=high.tolist(), distance="epic",
        explained=tabular_explained(run, settings, _problem=problem),
        stability=tabular_stability(run, settings, _problem=problem),
        encoding_consistency=None,
        alignment_epic=tabular_alignment(run, settings, _problem=problem, _fit=fit, _boot=boot),
        true_return=_return_score(run.returns, settings.alpha),
        reward=fit.reward.tolist(), state_score=fit.state_score.tolist(), form=problem.features.form,
        horizon=problem.horizon, discount=problem.discount, l2=problem.l2, converged=fit.converged, notes=notes,
    )
    return _Analysis(report, fit.reward, [b.reward for b in boot], n, problem.distance)


def analyse_chess(run: ChessRun, settings: FitSettings = FitSettings()) -> CoherenceReport:
    """Fit and score a chess run (encoding consistency is left ``None``; no alignment)."""
    return _analyse_chess(run, settings).report


def _analyse_chess(run: ChessRun, settings: FitSettings) -> _Analysis:
    if not run.games:
        raise ValueError(f"{run.info.run_dir}: no decisions to fit")
    data = pack_decisions(run.decisions)
    l2 = _chess_l2(data, settings)
    fit = fit_choice(data, l2=l2)
    units = _games_as_units(run)
    boot = []
    for idx in _boot_indices(len(units), settings.n_boot, settings.seed):
        rows = np.concatenate([units[i] for i in idx])
        boot.append(fit_choice(data.subset(rows), l2=l2, theta_init=fit.weights).weights)
    W = np.array(boot)
    low, high = np.quantile(W, [settings.alpha / 2, 1 - settings.alpha / 2], axis=0)
    report = CoherenceReport(
        run_id=run.info.run_id, run_dir=run.info.run_dir, kind="chess", info=_info_dict(run),
        settings=settings.to_json(), n_episodes=len(run.games), n_decisions=run.n_decisions, skipped=dict(run.skipped),
        targets=run.targets, feature_names=list(run.feature_names), weights=fit.weights.tolist(),
        weights_low=low.tolist(), weights_high=high.tolist(), distance="pearson",
        explained=chess_explained(run, settings), stability=chess_stability(run, settings, l2=l2),
        encoding_consistency=None, alignment_epic=None, true_return=_return_score(run.returns, settings.alpha),
        l2=l2, converged=fit.converged,
        notes=["chess has no tabular reward: stability and encoding consistency use the Pearson distance between weight vectors"],
    )
    return _Analysis(report, fit.weights, boot, len(units), lambda a, b: pearson_distance(a, b))


def add_encoding_consistency(analyses: Sequence[_Analysis], alpha: float = 0.05) -> None:
    """Fill ``encoding_consistency`` of every report whose group has another encoding."""
    groups: dict[tuple, list[_Analysis]] = defaultdict(list)
    for a in analyses:
        groups[(a.report.kind, *RunInfo(**a.report.info).group_key())].append(a)
    for members in groups.values():
        for a in members:
            others = [b for b in members if b.report.info["encoding"] != a.report.info["encoding"]]
            if not others:
                continue
            estimate = float(np.mean([a.distance(a.objective, b.objective) for b in others]))
            n_boot = min(len(a.boot), *(len(b.boot) for b in others))
            values = [float(np.mean([a.distance(a.boot[i], b.boot[i]) for b in others])) for i in range(n_boot)]
            paired = all(b.n_units == a.n_units for b in others)
            name = "EPIC" if a.report.distance == "epic" else "Pearson distance of weights"
            a.report.encoding_consistency = _quantile_score(
                values, estimate, alpha,
                f"{name} to {len(others)} run(s) under other encodings; {'paired ' if paired else ''}percentile bootstrap ({n_boot} refits)",
            )


def analyse_runs(
    run_dirs: Sequence[str | Path],
    settings: FitSettings = FitSettings(),
    *,
    progress: Callable[[int, int, str], None] | None = None,
) -> list[CoherenceReport]:
    """Load, fit and score every run, then compare runs of one agent across encodings.

    ``progress(done, total, label)`` is called before and after each run.
    """
    analyses = []
    total = len(run_dirs)
    for i, run_dir in enumerate(run_dirs):
        info = read_info(run_dir)
        if progress is not None:
            progress(i, total, info.run_id)
        if run_kind(info) == "chess":
            names = None if settings.features == "named" else settings.features
            if isinstance(names, str):
                raise ValueError(f"features {names!r} do not apply to chess; give chess feature names")
            chess_run = load_chess(run_dir, names, targets=settings.targets, engine_depth=settings.engine_depth)
            analyses.append(_analyse_chess(chess_run, settings))
        else:
            analyses.append(_analyse_tabular(load_tabular(run_dir), settings))
        if progress is not None:
            progress(i + 1, total, info.run_id)
    add_encoding_consistency(analyses, settings.alpha)
    return [a.report for a in analyses]
