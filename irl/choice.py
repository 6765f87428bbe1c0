"""A Boltzmann (conditional logit) choice model for decisions in games.

Each decision offers ``n`` legal actions described by a feature matrix ``phi [n, K]``; the
model chooses ``P(a) = exp(theta . phi[a]) / sum_b exp(theta . phi[b])``. The target of a
decision is either the chosen index or a probability distribution over the legal actions
(choose-mode runs record the model's full distribution). ``theta`` is fitted by maximum
likelihood (cross-entropy to the targets) with an L2 penalty::

    L(theta) = - sum_d w_d sum_i y_{d,i} log P_d(i) + (l2 / 2) ||theta||^2

which is convex; it is minimised with L-BFGS and the analytic gradient
``sum_d w_d (E_P[phi] - E_y[phi]) + l2 theta``. The penalty is on the *sum* over decisions,
so a given ``l2`` matters less as data grow.

Standard errors come from the inverse Hessian of ``L`` at the optimum (observed Fisher
information, including the penalty). They are exact asymptotics for index targets; for
distribution targets the likelihood is a quasi-likelihood and a bootstrap that resamples
decisions (or episodes, as :mod:`irl.analysis` does) is the safer interval.

:func:`explained_behaviour` scores how much of the behaviour the features explain: the
held-out (K-fold) log-likelihood gain over the uniform policy on legal actions, divided
by the uniform policy's total entropy ``sum_d log n_d``::

    score = (LL_heldout - LL_uniform) / sum_d log n_d,   LL_uniform = -sum_d log n_d

It is ``1`` when the fitted policy predicts every held-out choice with certainty, about
``0`` for choices the features do not explain, and *negative* when the fitted policy does
worse than uniform on held-out decisions (over-fitting); it is not clipped. For
distribution targets the best achievable score is below 1 by the targets' own entropy.
Decisions with a single legal action contribute nothing to either part.

**Beyond a position-blind prior.** Given ``prior`` features (of the move's label and its
place in the list, never of the position: :mod:`irl.analysis.priors`), the score is the
held-out gain of the **joint** model (objective features and prior features together) over
the **prior** model (prior features alone), both fitted on the same training folds::

    score = (LL_heldout(joint) - LL_heldout(prior)) / sum_d log n_d

The joint model nests the prior, so a preference for some move labels or list positions is
absorbed by the prior's weights in both models and cancels in the gain, and the objective's
weights are read from the joint fit with that preference kept out of them (as the gridworld
fits keep a label bias out of the reward). Scoring the objective features *alone* against the
prior would be dishonest both ways: a goal pursued through a biased choice of labels would
lose to the prior (its bias unexplained), and an objective feature that merely correlates
with a label (``take_size`` with the label ``1:3``) would carry the bias into the objective.
A label bias alone scores 0 or below (held-out comparisons lean below 0 when the larger
model has nothing to add). ``unit_gains_uniform`` keeps the joint model's gain over uniform.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence, Union

import numpy as np
import scipy.optimize

from textenvs.planning import blas_single_thread

__all__ = [
    "Decision",
    "ChoiceData",
    "ChoiceFit",
    "CVResult",
    "ExplainedScore",
    "DEFAULT_L2_GRID",
    "CV_PATIENCE",
    "pack_decisions",
    "join_features",
    "choice_objective",
    "choice_probabilities",
    "fit_choice",
    "cross_validate",
    "cross_validate_l2",
    "explained_behaviour",
]

#: The L2 strengths tried by :func:`cross_validate` by default.
DEFAULT_L2_GRID: tuple[float, ...] = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)

#: The ``patience`` of the tabular (MCE) fits' :func:`cross_validate_l2`: the walk over the
#: grid stops once this many values in a row do worse than the best so far. The held-out
#: likelihood along a path of priors rises to one peak and falls (or levels off): on the 26
#: gridworld runs of the default study (measured 2026-12-07) stopping after two gave the
#: same ``l2`` as the whole grid in every run, at 4.3 of the 9 values on average. The choice
#: model's fits are cheap and search their whole grid.
CV_PATIENCE = 2


@dataclass(frozen=True, eq=False)
class Decision:
    """One decision: legal-action features and what was chosen."""

    #: ``[n_legal, K]`` features of each legal action.
    features: np.ndarray
    #: The chosen index, or a probability distribution ``[n_legal]`` over the legal actions.
    target: int | np.ndarray
    #: Weight of this decision in the likelihood.
    weight: float = 1.0


DecisionLike = Union[Decision, tuple]


@dataclass(frozen=True, eq=False)
class ChoiceData:
    """Decisions packed into flat arrays (rows of consecutive decisions are contiguous)."""

    #: ``[N_rows, K]`` features of every legal action of every decision.
    x: np.ndarray
    #: ``[N_rows]`` target probability of each row (one-hot for index targets).
    y: np.ndarray
    #: ``[D]`` index of each decision's first row, and ``[D]`` its number of legal actions.
    starts: np.ndarray
    sizes: np.ndarray
    #: ``[D]`` decision weights.
    weights: np.ndarray
    #: ``[N_rows]`` the decision each row belongs to.
    owner: np.ndarray

    @property
    def n_decisions(self) -> int:
        return len(self.starts)

    @property
    def n_features(self) -> int:
        return self.x.shape[1]

    def subset(self, idx: np.ndarray) -> ChoiceData:
        """The decisions ``idx`` (repeats allowed: a bootstrap resample)."""
        idx = np.asarray(idx, dtype=int)
        sizes = self.sizes[idx]
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(int)
        rows = np.concatenate([np.arange(self.starts[i], self.starts[i] + self.sizes[i]) for i in idx])
        return ChoiceData(
            self.x[rows], self.y[rows], starts, sizes, self.weights[idx],
            np.repeat(np.arange(len(idx)), sizes),
        )


def pack_decisions(decisions: Sequence[DecisionLike] | ChoiceData) -> ChoiceData:
    """Pack decisions (:class:`Decision` or ``(features, target[, weight])`` tuples)."""
    if isinstance(decisions, ChoiceData):
        return decisions
    if len(decisions) == 0:
        raise ValueError("no decisions given")
    xs, ys, sizes, weights = [], [], [], []
    k = None
    for i, d in enumerate(decisions):
        if not isinstance(d, Decision):
            d = Decision(*d)
        x = np.asarray(d.features, dtype=float)
        if x.ndim != 2 or x.shape[0] < 1:
            raise ValueError(f"decision {i}: features must be [n_legal >= 1, K], got shape {x.shape}")
        if k is None:
            k = x.shape[1]
        elif x.shape[1] != k:
            raise ValueError(f"decision {i}: {x.shape[1]} features, expected {k}")
        n = x.shape[0]
        t = d.target
        if np.ndim(t) == 0:
            if int(t) != t or not 0 <= int(t) < n:
                raise ValueError(f"decision {i}: chosen index {t!r} is not among its {n} legal actions")
            y = np.zeros(n)
            y[int(t)] = 1.0
        else:
            y = np.asarray(t, dtype=float)
            if y.shape != (n,) or np.any(y < 0) or not np.isclose(y.sum(), 1.0, atol=1e-6):
                raise ValueError(f"decision {i}: target must be an index or a distribution over {n} actions")
            y = y / y.sum()
        xs.append(x)
        ys.append(y)
        sizes.append(n)
        weights.append(float(d.weight))
    sizes_a = np.asarray(sizes, dtype=int)
    starts = np.concatenate([[0], np.cumsum(sizes_a)[:-1]]).astype(int)
    return ChoiceData(
        np.concatenate(xs), np.concatenate(ys), starts, sizes_a, np.asarray(weights),
        np.repeat(np.arange(len(sizes_a)), sizes_a),
    )


def join_features(data: Sequence[DecisionLike] | ChoiceData, prior: Sequence[DecisionLike] | ChoiceData) -> ChoiceData:
    """The decisions of ``data`` with ``prior``'s features appended as columns (the joint model)."""
    data, prior = pack_decisions(data), pack_decisions(prior)
    if not np.array_equal(data.sizes, prior.sizes):
        raise ValueError("prior features must describe the same decisions and legal actions as the data")
    return ChoiceData(np.concatenate([data.x, prior.x], axis=1), data.y, data.starts, data.sizes, data.weights, data.owner)


def _with_features(data: ChoiceData, x: np.ndarray) -> ChoiceData:
    return ChoiceData(x, data.y, data.starts, data.sizes, data.weights, data.owner)


def _log_probs(data: ChoiceData, theta: np.ndarray) -> np.ndarray:
    u = data.x @ theta
    m = np.maximum.reduceat(u, data.starts)
    z = np.exp(u - m[data.owner])
    lse = m + np.log(np.add.reduceat(z, data.starts))
    return u - lse[data.owner]


def choice_probabilities(decisions: Sequence[DecisionLike] | ChoiceData, theta: np.ndarray) -> list[np.ndarray]:
    """The model's distribution over each decision's legal actions."""
    data = pack_decisions(decisions)
    p = np.exp(_log_probs(data, np.asarray(theta, dtype=float)))
    return np.split(p, data.starts[1:])


def _decision_ll(data: ChoiceData, theta: np.ndarray) -> np.ndarray:
    """Per-decision ``sum_i y_i log P(i)`` (unweighted)."""
    lp = _log_probs(data, theta)
    # 0 * -inf is taken as 0: an action with no target mass costs nothing.
    return np.add.reduceat(np.where(data.y > 0, data.y * lp, 0.0), data.starts)


def choice_objective(
    theta: np.ndarray, decisions: Sequence[DecisionLike] | ChoiceData, l2: float = 0.0
) -> tuple[float, np.ndarray]:
    """``L(theta)`` (module docstring) and its gradient."""
    data = pack_decisions(decisions)
    theta = np.asarray(theta, dtype=float)
    lp = _log_probs(data, theta)
    p = np.exp(lp)
    wrow = data.weights[data.owner]
    ll = np.sum(wrow * np.where(data.y > 0, data.y * lp, 0.0))
    grad = data.x.T @ (wrow * (p - data.y))
    return float(-ll + 0.5 * l2 * theta @ theta), grad + l2 * theta


def _hessian(data: ChoiceData, theta: np.ndarray, l2: float) -> np.ndarray:
    p = np.exp(_log_probs(data, theta))
    w = data.weights[data.owner] * p
    mean = np.add.reduceat(data.x * p[:, None], data.starts, axis=0)  # [D, K]
    h = (data.x * w[:, None]).T @ data.x - (mean * data.weights[:, None]).T @ mean
    return h + l2 * np.eye(data.n_features)


@dataclass(frozen=True, eq=False)
class ChoiceFit:
    """A fitted Boltzmann choice model."""

    #: ``[K]`` fitted ``theta``.
    weights: np.ndarray
    #: ``[K]`` standard errors from the inverse Hessian (``nan`` if it is singular).
    std_errors: np.ndarray
    #: ``[K, K]`` the inverse Hessian (approximate covariance of ``weights``).
    covariance: np.ndarray
    #: Weighted log-likelihood ``sum_d w_d sum_i y_i log P_d(i)`` of the training decisions.
    log_likelihood: float
    n_decisions: int
    l2: float
    converged: bool
    iterations: int


def fit_choice(
    decisions: Sequence[DecisionLike] | ChoiceData,
    *,
    l2: float = 1e-2,
    theta_init: np.ndarray | None = None,
    gtol: float = 1e-8,
    max_iter: int = 1000,
) -> ChoiceFit:
    """Fit ``theta`` by penalised maximum likelihood (module docstring)."""
    data = pack_decisions(decisions)
    K = data.n_features
    x0 = np.zeros(K) if theta_init is None else np.asarray(theta_init, dtype=float)
    with blas_single_thread():
        res = scipy.optimize.minimize(
            choice_objective, x0, args=(data, l2), jac=True, method="L-BFGS-B",
            options={"maxiter": max_iter, "gtol": gtol, "ftol": 1e-14},
        )
    theta = res.x
    h = _hessian(data, theta, l2)
    try:
        cov = np.linalg.inv(h)
        if not np.all(np.isfinite(cov)) or np.any(np.diag(cov) < 0):
            raise np.linalg.LinAlgError
        se = np.sqrt(np.diag(cov))
    except np.linalg.LinAlgError:
        cov = np.full((K, K), np.nan)
        se = np.full(K, np.nan)
    ll = float(data.weights @ _decision_ll(data, theta))
    return ChoiceFit(theta, se, cov, ll, data.n_decisions, float(l2), bool(res.success), int(res.nit))


def _folds(n: int, k: int, seed: int) -> list[np.ndarray]:
    if not 2 <= k <= n:
        raise ValueError(f"need 2 <= k <= number of decisions ({n}), got k={k}")
    perm = np.random.default_rng(seed).permutation(n)
    return np.array_split(perm, k)


def _heldout_ll(data: ChoiceData, folds: list[np.ndarray], l2: float) -> float:
    total = 0.0
    all_idx = np.arange(data.n_decisions)
    theta = None
    for test in folds:
        train = np.setdiff1d(all_idx, test)
        fit = fit_choice(data.subset(train), l2=l2, theta_init=theta)
        theta = fit.weights
        held = data.subset(test)
        total += float(held.weights @ _decision_ll(held, fit.weights))
    return total


@dataclass(frozen=True, eq=False)
class CVResult:
    """K-fold cross-validation of the L2 strength."""

    #: The values tried (the grid, or its start when the walk stopped early: ``patience``)
    #: and the summed held-out log-likelihood of each.
    l2_grid: tuple[float, ...]
    heldout_log_likelihood: np.ndarray
    #: The ``l2`` with the largest held-out log-likelihood.
    best_l2: float
    k: int
    seed: int


def cross_validate_l2(
    heldout_log_likelihood: Callable[[float, list[np.ndarray]], float],
    n_units: int,
    *,
    l2_grid: Sequence[float] = DEFAULT_L2_GRID,
    k: int = 5,
    seed: int = 0,
    patience: int | None = None,
) -> CVResult:
    """Choose ``l2`` by K-fold cross-validation over ``n_units`` units (folds from ``seed``).

    ``heldout_log_likelihood(l2, folds)`` fits on all units but one fold, for each fold in
    turn, and returns the summed log-likelihood of the held-out units. The ``l2`` with the
    largest value wins (the first of equals in grid order). The grid is walked in order,
    as a regularisation path, and the walk stops once ``patience`` values in a row have
    fallen short of the best so far (``None``: the whole grid); ``CVResult.l2_grid`` holds
    the values tried. Every model fitted by penalised likelihood here (the choice model
    below, the tabular MCE fits of :mod:`irl.analysis.tabular`) chooses its prior this way.
    """
    folds = _folds(n_units, k, seed)
    tried: list[float] = []
    scores: list[float] = []
    for l2 in l2_grid:
        tried.append(float(l2))
        scores.append(float(heldout_log_likelihood(float(l2), folds)))
        best = int(np.argmax(scores))
        if patience is not None and len(scores) - 1 - best >= patience:
            break
    return CVResult(tuple(tried), np.array(scores), tried[int(np.argmax(scores))], k, seed)


def cross_validate(
    decisions: Sequence[DecisionLike] | ChoiceData,
    *,
    l2_grid: Sequence[float] = DEFAULT_L2_GRID,
    k: int = 5,
    seed: int = 0,
) -> CVResult:
    """Choose ``l2`` by K-fold cross-validation over decisions (folds from ``seed``)."""
    data = pack_decisions(decisions)
    return cross_validate_l2(lambda l2, folds: _heldout_ll(data, folds, l2), data.n_decisions, l2_grid=l2_grid, k=k, seed=seed)


@dataclass(frozen=True, eq=False)
class ExplainedScore:
    """How much of the behaviour a feature set explains (module docstring)."""

    #: ``(LL_heldout - LL_baseline) / sum_d w_d log n_d`` (baseline: the prior model when
    #: one is given, else uniform); unclipped.
    score: float
    #: Held-out log-likelihood of the fitted policy, and of the uniform policy.
    heldout_log_likelihood: float
    uniform_log_likelihood: float
    #: ``l2`` used in each outer fold (chosen by inner cross-validation when not fixed).
    l2: tuple[float, ...]
    n_decisions: int
    #: Per unit (a decision, or a group such as a game): held-out log-likelihood gain over
    #: the baseline, and the uniform policy's entropy ``sum log n_d``; ``score`` is the ratio
    #: of their sums.
    unit_gains: np.ndarray
    unit_entropies: np.ndarray
    #: Per unit, the held-out gain of the (joint) model over uniform; ``unit_gains`` without a prior.
    unit_gains_uniform: np.ndarray | None = None
    #: Held-out log-likelihood of the prior model (``None`` without a prior).
    prior_log_likelihood: float | None = None

    @property
    def score_uniform(self) -> float:
        """The gain over uniform, divided by the uniform policy's entropy."""
        gains = self.unit_gains if self.unit_gains_uniform is None else self.unit_gains_uniform
        entropy = float(self.unit_entropies.sum())
        return float(gains.sum() / entropy) if entropy > 0 else float("nan")


def explained_behaviour(
    decisions: Sequence[DecisionLike] | ChoiceData,
    *,
    l2: float | None = None,
    l2_grid: Sequence[float] = DEFAULT_L2_GRID,
    k: int = 5,
    seed: int = 0,
    units: Sequence[Sequence[int]] | None = None,
    heldout: ChoiceData | None = None,
    prior: Sequence[DecisionLike] | ChoiceData | None = None,
) -> ExplainedScore:
    """The explained-behaviour score, from K-fold held-out log-likelihood.

    With ``l2=None`` each outer training split picks its own ``l2`` by an inner
    ``k``-fold cross-validation (nested, so the score is not optimistically biased).
    ``units`` groups decisions (the rows of each group are kept together in one fold:
    games); default one unit per decision. ``heldout`` scores held-out decisions against
    other targets than those fitted (the moves played, when fitting to recorded
    distributions), so that a uniformly random agent scores about 0. ``prior``: the
    position-blind features of the same decisions; the score is then the joint model's gain
    over the prior model's (module docstring), and ``decisions`` hold the objective's
    features alone (the joint model is built here).
    """
    data = pack_decisions(decisions)
    scored = data if heldout is None else pack_decisions(heldout)
    if scored.n_decisions != data.n_decisions:
        raise ValueError("heldout must hold the same decisions as decisions")
    models = [(data, scored)]  # the fitted model first, then the baseline model when there is one
    if prior is not None:
        prior_data = pack_decisions(prior)
        models = [(join_features(data, prior_data), join_features(scored, prior_data)),
                  (_with_features(data, prior_data.x), _with_features(scored, prior_data.x))]
    groups = [np.asarray(u, dtype=int) for u in units] if units is not None else [np.array([i]) for i in range(data.n_decisions)]
    unit_folds = _folds(len(groups), k, seed)
    entropies = np.array([float(scored.weights[g] @ np.log(scored.sizes[g])) for g in groups])
    lls = np.zeros((len(models), len(groups)))
    used = []
    for j, test in enumerate(unit_folds):
        held_out = set(test.tolist())
        train_rows = np.concatenate([groups[u] for u in range(len(groups)) if u not in held_out])
        for m, (fitted, scoring) in enumerate(models):
            train = fitted.subset(train_rows)
            lam = l2
            if lam is None:
                lam = cross_validate(train, l2_grid=l2_grid, k=min(k, train.n_decisions), seed=seed + 1 + j).best_l2
            if m == 0:
                used.append(float(lam))
            theta = fit_choice(train, l2=lam).weights
            for u in test:
                held = scoring.subset(groups[int(u)])
                lls[m, u] = float(held.weights @ _decision_ll(held, theta))
    entropy = float(entropies.sum())
    uniform = -entropy
    over_uniform = lls[0] + entropies
    gains = over_uniform if prior is None else lls[0] - lls[1]
    score = gains.sum() / entropy if entropy > 0 else float("nan")
    return ExplainedScore(float(score), float(lls[0].sum()), float(uniform), tuple(used), data.n_decisions, gains, entropies,
                          over_uniform, None if prior is None else float(lls[1].sum()))

