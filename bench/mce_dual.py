"""Maximum causal entropy IRL by feature matching (Ziebart 2010): the dual fit that ``bench/irl.py`` times.

The analysis fits the same model by maximum likelihood of the recorded actions
(:func:`irl.mce.mce_likelihood_irl`, whose docstring says why); this dual is kept here as
what ``bench/irl.py`` times against imitation's ``MCEIRL``, and ``tests/test_mce_dual.py``
and ``tests/test_irl_imitation.py`` check it.

For rewards linear in features

The reward is ``r = features @ weights`` with state features ``features[s, k]`` (one-hot:
``np.eye(S)``, a free tabular reward) or state-action features ``features[s, a, k]``. The
demonstrator is modelled as the soft-optimal policy (:func:`textenvs.planning.soft_value_iteration`,
temperature 1) for that reward. The weights minimise the MCE dual objective::

    L(w) = E_{s0 ~ initial}[V^w_0(s0)] - w . mu_E + (l2 / 2) ||w||^2
    grad L(w) = mu_w - mu_E + l2 w

where ``mu_E`` are the demonstrator's (discounted) feature expectations over the decision
steps and ``mu_w`` the soft-optimal policy's. ``L`` is convex; its unregularised part is the
negative causal log-likelihood of the demonstrations: for deterministic dynamics and start
states drawn from ``initial`` it is exactly the mean negative log-probability that the
model gives the demonstrated actions of a trajectory (``discount**t``-weighted), and in
expectation over the dynamics otherwise. At its minimum (``l2 = 0``) the model matches the
demonstrated feature expectations; with one-hot features, the demonstrated occupancy.

The objective is minimised with scipy's L-BFGS-B using the analytic gradient.

Demonstrations are either trajectories or an occupancy measure:

* a trajectory is a pair ``(states, actions)`` of integer arrays, with ``len(states)`` equal
  to ``len(actions)`` or one more (the state reached after the last action). Finite
  horizon ``H``: a trajectory with fewer than ``H`` actions must end with that final state,
  which must be absorbing (terminal); it is counted as visited for the remaining steps,
  its actions spread uniformly. Discounted: an absorbing final state gets the geometric
  tail; a trajectory cut short elsewhere contributes only its observed steps. The weighted
  counts are averaged and normalised to the model's total mass (``H`` or
  ``1 / (1 - discount)``).
* an occupancy measure over the decision steps: ``[S]`` (state; state features only) or
  ``[S, A]`` (state-action), with total mass ``H`` (finite) or ``1 / (1 - discount)``;
  or, for a finite horizon, a time-indexed state distribution ``[H + 1, S]`` or ``[H, S]``
  (imitation's ``D``), of which rows ``0 .. H-1`` are used. imitation's summed ``Dcum``
  (mass ``H + 1``) includes the state after the last decision and is refused: pass ``D``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from irl.mce import IRLResult, Trajectory, check_features, feature_expectations, lbfgs  # noqa: E402
from textenvs.planning import Dynamics, blas_single_thread, occupancy_measures, soft_value_iteration  # noqa: E402

if TYPE_CHECKING:  # pragma: no cover
    from textenvs.mdp import TabularMDP

__all__ = ["MaxEntIRL", "empirical_occupancy", "expert_feature_expectations", "mce_irl", "mce_objective"]


def _total_mass(horizon: int | None, discount: float) -> float:
    if horizon is not None:
        return float(np.sum(discount ** np.arange(horizon)))
    return 1.0 / (1.0 - discount)


def empirical_occupancy(
    trajectories: Sequence[Trajectory],
    n_states: int,
    n_actions: int,
    *,
    horizon: int | None = None,
    discount: float = 1.0,
    absorbing: np.ndarray | None = None,
) -> np.ndarray:
    """The demonstrations' ``[S, A]`` state-action occupancy over decision steps.

    See the module docstring for how short trajectories are padded and how the result is
    normalised. ``absorbing`` (a boolean mask, e.g. ``TabularMDP.terminal``) lets the
    function check that a short finite-horizon trajectory really ends in an absorbing state.
    """
    if len(trajectories) == 0:
        raise ValueError("no trajectories given")
    occ = np.zeros((n_states, n_actions))
    for i, (states, actions) in enumerate(trajectories):
        states = np.asarray(states, dtype=int)
        actions = np.asarray(actions, dtype=int)
        T = len(actions)
        if len(states) not in (T, T + 1):
            raise ValueError(f"trajectory {i}: {len(states)} states for {T} actions; need T or T + 1")
        if T and (states.min() < 0 or states.max() >= n_states or actions.min() < 0 or actions.max() >= n_actions):
            raise ValueError(f"trajectory {i}: state or action index out of range (S={n_states}, A={n_actions})")
        final = int(states[T]) if len(states) == T + 1 else None
        ends_absorbing = final is not None and (absorbing is None or bool(absorbing[final]))
        if horizon is not None:
            if T > horizon:
                raise ValueError(f"trajectory {i} has {T} actions, more than the horizon {horizon}")
            if T < horizon and not ends_absorbing:
                where = "no final state" if final is None else f"non-terminal state {final}"
                raise ValueError(
                    f"trajectory {i} has {T} < horizon {horizon} actions and ends in {where}; "
                    "finite-horizon MCE IRL needs H decisions or an absorbing final state"
                )
        w = discount ** np.arange(T)
        np.add.at(occ, (states[:T], actions), w)
        if ends_absorbing:
            tail = (
                float(np.sum(discount ** np.arange(T, horizon))) if horizon is not None
                else discount**T / (1.0 - discount)
            )
            occ[final] += tail / n_actions
    total = occ.sum()
    if total <= 0:
        raise ValueError("the demonstrations contain no decisions")
    return occ * (_total_mass(horizon, discount) / total)


def expert_feature_expectations(
    demonstrations: Sequence[Trajectory] | np.ndarray,
    features: np.ndarray,
    *,
    n_actions: int,
    horizon: int | None = None,
    discount: float = 1.0,
    absorbing: np.ndarray | None = None,
) -> np.ndarray:
    """``mu_E``: the demonstrations' feature expectations over decision steps.

    ``demonstrations`` are trajectories or an occupancy measure (module docstring).
    """
    phi = np.asarray(features, dtype=float)
    S = phi.shape[0]
    A = n_actions
    if not isinstance(demonstrations, np.ndarray):
        occ = empirical_occupancy(demonstrations, S, A, horizon=horizon, discount=discount, absorbing=absorbing)
        return feature_expectations(phi, occ)
    d = np.asarray(demonstrations, dtype=float)
    mass = _total_mass(horizon, discount)
    if d.ndim == 2 and d.shape != (S, A):
        if horizon is None or d.shape not in ((horizon, S), (horizon + 1, S)):
            raise ValueError(
                f"a 2-D occupancy must be [S, A] = [{S}, {A}] or time-indexed [H(+1), S]; got {d.shape}"
            )
        d = (discount ** np.arange(horizon)) @ d[:horizon]
    if d.ndim == 1:
        if d.shape != (S,):
            raise ValueError(f"a state occupancy must be [S] = [{S}], got {d.shape}")
        if phi.ndim == 3:
            raise ValueError("state-action features need an [S, A] occupancy or trajectories")
        if not np.isclose(d.sum(), mass, rtol=1e-6):
            extra = (
                " (this looks like imitation's Dcum, which counts the state after the last "
                "decision; pass the time-indexed D[t, s] instead)"
                if horizon is not None and np.isclose(d.sum(), mass + discount**horizon, rtol=1e-6) else ""
            )
            raise ValueError(f"a decision-step state occupancy must sum to {mass:g}, got {d.sum():g}{extra}")
        return d @ phi
    if d.ndim != 2:
        raise ValueError(f"occupancy must be [S], [S, A] or [H(+1), S]; got shape {d.shape}")
    if not np.isclose(d.sum(), mass, rtol=1e-6):
        raise ValueError(f"a state-action occupancy over decision steps must sum to {mass:g}, got {d.sum():g}")
    return feature_expectations(phi, d)


def _reward(phi: np.ndarray, weights: np.ndarray) -> np.ndarray:
    return phi @ weights


class _Model:
    """Soft-optimal solves for one MDP, warm-starting discounted value iteration."""

    def __init__(self, transitions, phi, initial, horizon, discount, tol):
        self.dyn = Dynamics(transitions)
        self.phi = phi
        self.initial = np.asarray(initial, dtype=float)
        self.horizon = horizon
        self.discount = discount
        self.tol = tol
        self._v = None

    def solve(self, weights: np.ndarray):
        reward = _reward(self.phi, weights)
        values = soft_value_iteration(
            self.dyn, reward, horizon=self.horizon, discount=self.discount, tol=self.tol, v_init=self._v
        )
        if self.horizon is None:
            if not values.converged:
                raise RuntimeError("soft value iteration did not converge; raise max_iter or tol")
            self._v = values.v
        occ = occupancy_measures(self.dyn, values.policy, self.initial, discount=self.discount)
        v0 = values.v[0] if self.horizon is not None else values.v
        return reward, values, occ, float(self.initial @ v0)


def mce_objective(
    weights: np.ndarray,
    transitions: np.ndarray | Dynamics,
    features: np.ndarray,
    expert_features: np.ndarray,
    initial: np.ndarray,
    *,
    horizon: int | None = None,
    discount: float = 1.0,
    l2: float = 0.0,
) -> tuple[float, np.ndarray]:
    """The MCE IRL objective ``L(w)`` and its gradient ``mu_w - mu_E + l2 w``."""
    dyn = Dynamics(transitions)
    phi = check_features(features, dyn.n_states, dyn.n_actions)
    model = _Model(dyn, phi, initial, horizon, discount, 1e-12)
    w = np.asarray(weights, dtype=float)
    _, _, occ, ev0 = model.solve(w)
    mu = feature_expectations(phi, occ.state_action)
    value = ev0 - w @ expert_features + 0.5 * l2 * (w @ w)
    return float(value), mu - expert_features + l2 * w


def mce_irl(
    transitions: np.ndarray | Dynamics,
    features: np.ndarray,
    demonstrations: Sequence[Trajectory] | np.ndarray,
    *,
    initial: np.ndarray,
    horizon: int | None = None,
    discount: float = 1.0,
    l2: float = 0.0,
    absorbing: np.ndarray | None = None,
    weights_init: np.ndarray | None = None,
    gtol: float = 1e-8,
    max_iter: int = 2000,
    vi_tol: float = 1e-11,
) -> IRLResult:
    """Fit reward weights by maximum causal entropy IRL (module docstring).

    Args:
        transitions: ``P[s, a, s']`` (or a :class:`textenvs.planning.Dynamics`).
        features: ``[S, K]`` state features or ``[S, A, K]`` state-action features.
        demonstrations: trajectories or an occupancy measure (module docstring).
        initial: the initial-state distribution used by the model.
        horizon: number of decisions ``H``; ``None`` for discounted infinite horizon.
        discount: ``gamma`` (must be ``< 1`` without a horizon).
        l2: strength of the ``(l2 / 2) ||w||^2`` penalty.
        absorbing: boolean mask of absorbing (terminal) states, to check short trajectories.
        weights_init: starting weights (zeros by default).
        gtol: L-BFGS-B stops when every gradient component is below this; with one-hot
            features that is the largest occupancy mismatch.
        max_iter: the most L-BFGS-B iterations.
        vi_tol: discounted value-iteration tolerance for each solve.

    Returns:
        :class:`IRLResult`.
    """
    dyn = Dynamics(transitions)
    phi = check_features(features, dyn.n_states, dyn.n_actions)
    mu_e = expert_feature_expectations(
        demonstrations, phi, n_actions=dyn.n_actions, horizon=horizon, discount=discount, absorbing=absorbing
    )
    model = _Model(dyn, phi, initial, horizon, discount, vi_tol)
    K = phi.shape[-1]

    def fun(w: np.ndarray) -> tuple[float, np.ndarray]:
        _, _, occ, ev0 = model.solve(w)
        mu = feature_expectations(phi, occ.state_action)
        return ev0 - w @ mu_e + 0.5 * l2 * (w @ w), mu - mu_e + l2 * w

    w0 = np.zeros(K) if weights_init is None else np.asarray(weights_init, dtype=float)
    with blas_single_thread():
        res = lbfgs(fun, w0, max_iter, gtol)
        w = res.x
        reward, values, occ, ev0 = model.solve(w)
    mu = feature_expectations(phi, occ.state_action)
    return IRLResult(
        weights=w,
        reward=reward,
        policy=values.policy,
        occupancy=occ.state,
        state_action_occupancy=occ.state_action,
        feature_expectations=mu,
        expert_feature_expectations=mu_e,
        log_likelihood=float(w @ mu_e - ev0),
        objective=float(ev0 - w @ mu_e + 0.5 * l2 * (w @ w)),
        iterations=int(res.nit),
        converged=bool(res.success),
        message=str(res.message),
        horizon=horizon,
        discount=float(discount),
        l2=float(l2),
    )


class MaxEntIRL:
    """MCE IRL on a :class:`textenvs.mdp.TabularMDP`: a thin wrapper around :func:`mce_irl`.

    ``features`` is a feature array (``[S, K]`` or ``[S, A, K]``), a list of the MDP's
    feature names, or ``None`` for one-hot state features (a free tabular reward).
    Absorbing terminal states are taken from ``mdp.terminal``. Note that a learned
    state reward also applies in terminal states (they are absorbing); give them zero
    feature rows to pin their reward to 0.
    """

    def __init__(
        self,
        mdp: TabularMDP,
        features: np.ndarray | Sequence[str] | None = None,
        *,
        horizon: int | None = None,
        discount: float = 1.0,
        l2: float = 0.0,
        gtol: float = 1e-8,
        max_iter: int = 2000,
    ) -> None:
        self.mdp = mdp
        if features is None:
            phi = mdp.onehot_features()
        elif isinstance(features, np.ndarray):
            phi = features
        elif isinstance(features, str):
            phi = mdp.feature_matrix([features])
        else:
            phi = mdp.feature_matrix(list(features))
        self.features = check_features(phi, mdp.n_states, mdp.n_actions)
        self.dynamics = Dynamics(mdp.transitions)
        self.horizon = horizon
        self.discount = discount
        self.l2 = l2
        self.gtol = gtol
        self.max_iter = max_iter

    def fit(
        self,
        demonstrations: Sequence[Trajectory] | np.ndarray,
        *,
        initial: np.ndarray | None = None,
        weights_init: np.ndarray | None = None,
    ) -> IRLResult:
        """Fit to trajectories or an occupancy measure (``initial`` defaults to the MDP's)."""
        return mce_irl(
            self.dynamics,
            self.features,
            demonstrations,
            initial=self.mdp.initial if initial is None else initial,
            horizon=self.horizon,
            discount=self.discount,
            l2=self.l2,
            absorbing=np.asarray(self.mdp.terminal, dtype=bool),
            weights_init=weights_init,
            gtol=self.gtol,
            max_iter=self.max_iter,
        )
