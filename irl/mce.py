"""Maximum causal entropy inverse RL (Ziebart 2010) for rewards linear in features.

The reward is ``r = features @ weights`` with state features ``features[s, k]`` (one-hot:
``np.eye(S)``, a free tabular reward) or state-action features ``features[s, a, k]``. The
demonstrator is modelled as the soft-optimal policy (:func:`textenvs.planning.soft_value_iteration`,
temperature 1) for that reward. :func:`mce_likelihood_irl` fits the weights by maximum
likelihood of the recorded actions (its docstring says why not by feature matching, the
dual of Ziebart's paper, which ``bench/mce_dual.py`` keeps for ``bench/irl.py``), with
scipy's L-BFGS-B and the exact gradient of :func:`likelihood_objective`;
:func:`fisher_information` gives the Cramer-Rao bound of that fit.

A trajectory is a pair ``(states, actions)`` of integer arrays, with ``len(states)`` equal
to ``len(actions)`` or one more (the state reached after the last action). Only the
recorded decisions count (:func:`decision_counts`): nothing is padded after an absorbing
final state or a truncation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import scipy.optimize
import scipy.sparse
import scipy.sparse.linalg

from textenvs.planning import Dynamics, blas_single_thread, occupancy_measures, policy_transitions, soft_value_iteration

__all__ = [
    "Trajectory",
    "IRLResult",
    "check_features",
    "feature_expectations",
    "lbfgs",
    "mce_likelihood_irl",
    "likelihood_objective",
    "decision_counts",
    "DecisionSummary",
    "trajectory_log_likelihood",
    "fisher_information",
]

#: ``(states, actions)``: integer arrays, ``len(states) in (len(actions), len(actions) + 1)``.
Trajectory = tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True, eq=False)
class IRLResult:
    """A fitted MCE IRL model."""

    #: ``[K]`` reward weights.
    weights: np.ndarray
    #: The reward ``features @ weights``: ``[S]`` for state features, ``[S, A]`` otherwise.
    reward: np.ndarray
    #: The soft-optimal policy for ``reward``: ``[H, S, A]`` or ``[S, A]`` (discounted).
    policy: np.ndarray
    #: ``[S]`` state occupancy of ``policy`` (over ``t = 0 .. H``: sums to ``H + 1``, as
    #: imitation's ``MCEIRL.train`` output; discounted: sums to ``1 / (1 - discount)``).
    occupancy: np.ndarray
    #: ``[S, A]`` state-action occupancy over the decision steps.
    state_action_occupancy: np.ndarray
    #: ``[K]`` the model's feature expectations ``mu_w``.
    feature_expectations: np.ndarray
    #: ``[K]`` the demonstrations' feature expectations ``mu_E``.
    expert_feature_expectations: np.ndarray
    #: Log-likelihood per demonstration of the recorded actions.
    log_likelihood: float
    #: Final value of the regularised objective ``L(w)``.
    objective: float
    #: L-BFGS iterations and whether it reported convergence.
    iterations: int
    converged: bool
    message: str
    horizon: int | None
    discount: float
    l2: float


def check_features(features: np.ndarray, S: int, A: int) -> np.ndarray:
    """``features`` as floats, checked to be ``[S, K]`` (state) or ``[S, A, K]`` (state-action)."""
    phi = np.asarray(features, dtype=float)
    if phi.ndim == 2 and phi.shape[0] == S:
        return phi
    if phi.ndim == 3 and phi.shape[:2] == (S, A):
        return phi
    raise ValueError(f"features must be [S, K] or [S, A, K] with S={S}, A={A}; got shape {phi.shape}")


def feature_expectations(features: np.ndarray, state_action_occupancy: np.ndarray) -> np.ndarray:
    """``mu[k] = sum_{s,a} D[s, a] phi[s, (a,) k]`` for state or state-action features."""
    phi = np.asarray(features, dtype=float)
    if phi.ndim == 2:
        return state_action_occupancy.sum(axis=1) @ phi
    return np.einsum("sa,sak->k", state_action_occupancy, phi)


def lbfgs(fun: Any, w0: np.ndarray, max_iter: int, gtol: float) -> Any:
    """L-BFGS-B on ``fun(w) -> (value, gradient)`` from ``w0``, as every MCE fit runs it."""
    return scipy.optimize.minimize(
        fun, w0, jac=True, method="L-BFGS-B",
        options={"maxiter": max_iter, "gtol": gtol, "ftol": 1e-15, "maxcor": 20},
    )


def trajectory_log_likelihood(policy: np.ndarray, trajectories: Sequence[Trajectory]) -> float:
    """Total log-probability of the demonstrated actions under ``policy``.

    ``policy`` is time-indexed ``[H, S, A]`` (step ``t`` uses ``policy[t]``) or stationary
    ``[S, A]``. Only the recorded ``(state, action)`` pairs count (no padding).
    """
    pi = np.asarray(policy, dtype=float)
    total = 0.0
    for states, actions in trajectories:
        actions = np.asarray(actions, dtype=int)
        states = np.asarray(states, dtype=int)[: len(actions)]
        if pi.ndim == 3:
            p = pi[np.arange(len(actions)), states, actions]
        else:
            p = pi[states, actions]
        with np.errstate(divide="ignore"):
            total += float(np.log(p).sum())
    return total


def decision_counts(
    trajectories: Sequence[Trajectory], n_states: int, n_actions: int, *, horizon: int | None = None
) -> np.ndarray:
    """How often each action was taken in each state: ``[H, S, A]`` per decision step
    ``t`` (finite ``horizon``) or ``[S, A]`` (stationary), summed over ``trajectories``.

    Only the recorded decisions count: nothing is padded after an absorbing final state
    or a truncation (the likelihood of what was seen does not depend on what was not).
    """
    if len(trajectories) == 0:
        raise ValueError("no trajectories given")
    shape = (n_states, n_actions) if horizon is None else (int(horizon), n_states, n_actions)
    counts = np.zeros(shape)
    for i, (states, actions) in enumerate(trajectories):
        actions = np.asarray(actions, dtype=int)
        T = len(actions)
        states = np.asarray(states, dtype=int)
        if len(states) not in (T, T + 1):
            raise ValueError(f"trajectory {i}: {len(states)} states for {T} actions; need T or T + 1")
        if T and (states[:T].min() < 0 or states[:T].max() >= n_states or actions.min() < 0 or actions.max() >= n_actions):
            raise ValueError(f"trajectory {i}: state or action index out of range (S={n_states}, A={n_actions})")
        if horizon is None:
            np.add.at(counts, (states[:T], actions), 1.0)
        else:
            if T > horizon:
                raise ValueError(f"trajectory {i} has {T} actions, more than the horizon {horizon}")
            np.add.at(counts, (np.arange(T), states[:T], actions), 1.0)
    return counts


@dataclass(frozen=True, eq=False)
class DecisionSummary:
    """What :func:`likelihood_objective` needs of decision counts ``N``, computed once per fit
    rather than once per evaluation (``N`` is fixed while the weights move)."""

    #: Where ``N > 0``, and ``N`` there: the log-likelihood only reads those entries.
    support: tuple[np.ndarray, ...]
    counts: np.ndarray
    #: ``n_t[s] = sum_a N_t[s, a]``: ``[H, S]`` or ``[S]``.
    visits: np.ndarray
    #: Finite horizon: ``sum_t N_t[s, a]`` and ``gamma * push(N_t)`` per step (``[H, S]``).
    total: np.ndarray | None
    pushed: np.ndarray | None

    @classmethod
    def of(cls, counts: np.ndarray, dyn: Dynamics, discount: float) -> DecisionSummary:
        counts = np.asarray(counts, dtype=float)
        support = np.nonzero(counts)
        visits = counts.sum(axis=-1)
        if counts.ndim == 3:
            pushed = np.stack([discount * dyn.push(c) for c in counts])
            return cls(support, counts[support], visits, counts.sum(axis=0), pushed)
        return cls(support, counts[support], visits, None, None)


def likelihood_objective(
    weights: np.ndarray,
    transitions: np.ndarray | Dynamics,
    features: np.ndarray,
    counts: np.ndarray | DecisionSummary,
    *,
    n_demonstrations: float,
    horizon: int | None = None,
    discount: float = 1.0,
    l2: float = 0.0,
    v_init: np.ndarray | None = None,
) -> tuple[float, np.ndarray, object]:
    """``-(1 / n) sum_{t,s,a} N_t[s, a] log pi^w_t(a | s) + (l2 / 2n) ||w||^2`` and its gradient.

    ``pi^w`` is the soft-optimal policy (temperature 1) of ``features @ weights`` and
    ``N`` are :func:`decision_counts` over ``n`` demonstrations (or their
    :class:`DecisionSummary`, which repeated evaluations share). The gradient is exact: a
    forward (adjoint) pass through the soft Bellman backups, the cost of one occupancy
    measure. Returns ``(value, gradient, values)`` with the soft :class:`Values` solved.
    """
    dyn = Dynamics(transitions)
    phi = np.asarray(features, dtype=float)
    w = np.asarray(weights, dtype=float)
    summary = counts if isinstance(counts, DecisionSummary) else DecisionSummary.of(counts, dyn, discount)
    values = soft_value_iteration(dyn, phi @ w, horizon=horizon, discount=discount, tol=1e-11, v_init=v_init)
    if horizon is None and not values.converged:
        raise RuntimeError("soft value iteration did not converge; raise max_iter or tol")
    pi = values.policy
    loglik = float(summary.counts @ np.log(np.maximum(pi[summary.support], np.finfo(float).tiny)))
    # dL/dQ_t(s, a) = N_t[s, a] - n_t[s] pi_t(a|s) + pi_t(a|s) lam_t(s), where lam_t(s') is
    # what V_t(s') contributes through the Q-values of the step before:
    # lam_{t+1} = gamma * sum_{s,a} P(s'|s,a) dL/dQ_t(s, a); dL/dr = sum_t dL/dQ_t.
    if horizon is not None:
        # Summed over t, the N_t terms are constants (summary.total, summary.pushed).
        g = summary.total.copy()
        lam = np.zeros(dyn.n_states)
        for t in range(int(horizon)):
            wq = pi[t] * (lam - summary.visits[t])[:, None]
            g += wq
            lam = summary.pushed[t] + discount * dyn.push(wq)
    else:
        direct = summary.visits[:, None] * -pi
        direct[summary.support] += summary.counts
        p_pi = policy_transitions(dyn, pi)
        rhs = discount * dyn.push(direct)
        S = dyn.n_states
        if scipy.sparse.issparse(p_pi):
            lhs = (scipy.sparse.identity(S, format="csc") - discount * p_pi.T).tocsc()
            lam = scipy.sparse.linalg.spsolve(lhs, rhs)
        else:
            lam = np.linalg.solve(np.eye(S) - discount * p_pi.T, rhs)
        g = direct + pi * lam[:, None]
    grad_ll = g.sum(axis=1) @ phi if phi.ndim == 2 else np.einsum("sa,sak->k", g, phi)
    n = float(n_demonstrations)
    value = -loglik / n + 0.5 * (l2 / n) * float(w @ w)
    return value, -grad_ll / n + (l2 / n) * w, values


def mce_likelihood_irl(
    transitions: np.ndarray | Dynamics,
    features: np.ndarray,
    trajectories: Sequence[Trajectory],
    *,
    initial: np.ndarray,
    horizon: int | None = None,
    discount: float = 1.0,
    l2: float = 0.0,
    weights_init: np.ndarray | None = None,
    gtol: float = 1e-8,
    max_iter: int = 2000,
) -> IRLResult:
    """Fit the MCE model by maximum likelihood of the demonstrated actions.

    The model is that of MCE IRL: the demonstrator acts by the soft-optimal
    (temperature 1) policy of ``features @ w`` (Ziebart 2010). Here ``w`` maximises the
    likelihood of the actions actually taken in the states actually visited,
    ``sum_i sum_t log pi^w_t(a_it | s_it)``, every decision weighted alike, with a Gaussian
    prior ``(l2 / 2) ||w||^2`` on the weights (a fixed prior: its weight does not grow with
    the number of demonstrations). This is maximum-likelihood IRL (Babes-Vroman et al.
    2011, "Apprenticeship Learning About Multiple Intentions"; Jain et al. 2019, "Model-free
    IRL using maximum likelihood estimation").

    Why not the feature-matching dual (``bench/mce_dual.py``): its sufficient statistic is the
    empirical state-visitation, which under stochastic dynamics carries the noise of the
    transitions as well as that of the choices (the dual equals the likelihood only in
    expectation over the dynamics), and its ``discount**t`` weights discard most decisions
    after ``1 / (1 - discount)`` steps. Both estimators are consistent; this one uses only
    the choices and all of them, so it needs far fewer demonstrations (on random 50-state
    MDPs, a quarter as many for the same distance to the true reward). For deterministic
    dynamics the objective is concave in ``w``. Decisions after an absorbing state or a
    truncation are simply not observed; nothing is padded.

    ``transitions`` is ``P[s, a, s']`` (or a :class:`textenvs.planning.Dynamics`),
    ``features`` ``[S, K]`` or ``[S, A, K]``, ``initial`` the initial-state distribution,
    ``horizon`` the number of decisions ``H`` (``None``: discounted, ``discount < 1``);
    ``l2`` is the prior's strength on the total log-likelihood; ``weights_init`` the start
    (zeros), ``gtol`` and ``max_iter`` L-BFGS-B's stopping rules. :attr:`IRLResult.log_likelihood` is the mean log-likelihood
    per demonstration of the recorded actions; the occupancy fields describe the fitted
    policy from ``initial``; ``expert_feature_expectations`` are the discounted feature
    counts of the recorded decisions per demonstration.
    """
    dyn = Dynamics(transitions)
    phi = check_features(features, dyn.n_states, dyn.n_actions)
    if isinstance(trajectories, np.ndarray):
        raise ValueError("the likelihood fit needs trajectories, not an occupancy measure")
    counts = decision_counts(trajectories, dyn.n_states, dyn.n_actions, horizon=horizon)
    if counts.sum() == 0:
        raise ValueError("the demonstrations contain no decisions")
    n = float(len(trajectories))
    K = phi.shape[-1]
    cache: dict[str, np.ndarray | None] = {"v": None}
    summary = DecisionSummary.of(counts, dyn, discount)

    def fun(w: np.ndarray) -> tuple[float, np.ndarray]:
        value, grad, values = likelihood_objective(
            w, dyn, phi, summary, n_demonstrations=n, horizon=horizon, discount=discount, l2=l2, v_init=cache["v"]
        )
        if horizon is None:
            cache["v"] = values.v
        return value, grad

    w0 = np.zeros(K) if weights_init is None else np.asarray(weights_init, dtype=float)
    with blas_single_thread():
        res = lbfgs(fun, w0, max_iter, gtol)
        w = res.x
        value, _, values = likelihood_objective(
            w, dyn, phi, summary, n_demonstrations=n, horizon=horizon, discount=discount, l2=l2, v_init=cache["v"]
        )
        occ = occupancy_measures(dyn, values.policy, initial, discount=discount)
    if counts.ndim == 3:
        sa = np.einsum("t,tsa->sa", discount ** np.arange(counts.shape[0]), counts)
    else:
        sa = counts
    return IRLResult(
        weights=w,
        reward=phi @ w,
        policy=values.policy,
        occupancy=occ.state,
        state_action_occupancy=occ.state_action,
        feature_expectations=feature_expectations(phi, occ.state_action),
        expert_feature_expectations=feature_expectations(phi, sa / n),
        log_likelihood=float(np.sum(counts * np.log(np.maximum(values.policy, np.finfo(float).tiny))) / n),
        objective=float(value),
        iterations=int(res.nit),
        converged=bool(res.success),
        message=str(res.message),
        horizon=horizon,
        discount=float(discount),
        l2=float(l2),
    )


def fisher_information(
    transitions: np.ndarray | Dynamics,
    features: np.ndarray,
    weights: np.ndarray,
    initial: np.ndarray,
    *,
    horizon: int,
    discount: float = 1.0,
    step: float = 1e-5,
) -> np.ndarray:
    """``[K, K]``: the Fisher information about ``weights`` in one demonstration of ``H`` decisions.

    The demonstrator follows the soft-optimal policy of ``features @ weights`` from
    ``initial`` for ``horizon`` decisions (no absorbing states ending it early). The
    information is the Hessian of the expected negative log-likelihood of
    :func:`likelihood_objective` (its expected counts ``N_t[s, a] = d_t(s) pi_t(a | s)``),
    by central differences of the exact gradient. ``n`` independent demonstrations carry
    ``n`` times as much; by the Cramer-Rao bound no unbiased estimator of the weights has
    a covariance below its inverse (pseudo-inverse along directions the demonstrations
    cannot see, such as a reward added to every state alike), and the maximum-likelihood
    fit of :func:`mce_likelihood_irl` reaches it as ``n`` grows (Cramer 1946; Rao 1945).
    """
    dyn = Dynamics(transitions)
    phi = check_features(features, dyn.n_states, dyn.n_actions)
    w = np.asarray(weights, dtype=float)
    H = int(horizon)
    policy = soft_value_iteration(dyn, phi @ w, horizon=H, discount=discount, tol=1e-12).policy
    counts = np.zeros((H, dyn.n_states, dyn.n_actions))
    d = np.asarray(initial, dtype=float)
    for t in range(H):
        counts[t] = d[:, None] * policy[t]
        d = dyn.push(counts[t])
    K = phi.shape[-1]
    info = np.zeros((K, K))
    with blas_single_thread():
        for k in range(K):
            e = np.zeros(K)
            e[k] = step
            up = likelihood_objective(w + e, dyn, phi, counts, n_demonstrations=1.0, horizon=H, discount=discount)[1]
            down = likelihood_objective(w - e, dyn, phi, counts, n_demonstrations=1.0, horizon=H, discount=discount)[1]
            info[:, k] = (up - down) / (2 * step)
    return 0.5 * (info + info.T)
