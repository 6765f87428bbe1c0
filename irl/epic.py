"""EPIC: the Equivalent-Policy Invariant Comparison pseudometric (Gleave et al. 2021).

For tabular rewards ``R[s, a, s']``. A reward is first *canonicalised*, which removes
potential shaping::

    C(R)(s, a, s') = R(s, a, s') + E[gamma R(s', A, S') - R(s, A, S') - gamma R(S, A, S')]

with ``S ~ D_S``, ``A ~ D_A``, ``S' ~ D_S'`` independent (the *canonicalisation*
distributions, uniform by default). Two canonical rewards are then compared by the
Pearson distance ``sqrt((1 - rho) / 2)`` under a *coverage* distribution over transitions
(:func:`pearson_distance`). The result lies in ``[0, 1]``; it is ``0`` for rewards equal up
to potential shaping and positive scaling, ``1`` for ``R`` and ``-R``, symmetric, and
satisfies the triangle inequality.

A *constant* canonical reward (a constant reward, or pure potential shaping: one that
ranks no policies) has zero variance, and its correlation with anything is undefined.
:func:`pearson_distance` then returns ``nan`` (``on_constant="nan"``, the default, so that a
table of many comparisons still fills) or raises :class:`ConstantRewardError`
(``on_constant="raise"``).

State-only rewards ``r[s]`` are accepted and broadcast to ``R[s, a, s'] = r[s]``
(``state_reward="current"``, the reward for being in the state where the action is taken)
or ``R[s, a, s'] = r[s']`` (``state_reward="next"``, the reward for arriving).
State-action rewards ``r[s, a]`` become ``R[s, a, s'] = r[s, a]``.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from textenvs.planning import transition_reward

__all__ = [
    "ConstantRewardError",
    "as_transition_reward",
    "canonicalize",
    "pearson_distance",
]

StateReward = Literal["current", "next"]


class ConstantRewardError(ValueError):
    """A canonicalised reward has zero variance, so its Pearson correlation is undefined."""


def as_transition_reward(
    reward: np.ndarray, n_actions: int = 1, *, state_reward: StateReward = "current"
) -> np.ndarray:
    """Broadcast ``r[s]``, ``r[s, a]`` or ``R[s, a, s']`` to a full ``[S, A, S]`` array.

    :func:`textenvs.planning.transition_reward` with the shape read off ``reward``;
    ``n_actions`` is used only for state-only rewards (any value gives the same EPIC
    distance between two state-only rewards).
    """
    r = np.asarray(reward, dtype=float)
    if r.ndim == 3 and r.shape[0] != r.shape[2]:
        raise ValueError(f"a transition reward must be [S, A, S], got {r.shape}")
    if r.ndim not in (1, 2, 3):
        raise ValueError(f"reward must be [S], [S, A] or [S, A, S], got shape {r.shape}")
    return transition_reward(r, r.shape[0], r.shape[1] if r.ndim >= 2 else n_actions, state_reward=state_reward)


def _dist(p: np.ndarray | None, n: int, name: str) -> np.ndarray:
    if p is None:
        return np.full(n, 1.0 / n)
    p = np.asarray(p, dtype=float)
    if p.shape != (n,) or np.any(p < 0) or not np.isclose(p.sum(), 1.0):
        raise ValueError(f"{name} must be a probability vector of length {n}")
    return p


def canonicalize(
    reward: np.ndarray,
    discount: float,
    *,
    state_dist: np.ndarray | None = None,
    action_dist: np.ndarray | None = None,
    next_state_dist: np.ndarray | None = None,
) -> np.ndarray:
    """The canonically shaped reward ``C(R)[s, a, s']`` (module docstring).

    ``state_dist`` (``D_S``) and ``next_state_dist`` (``D_S'``) default to uniform over
    states; ``next_state_dist`` defaults to ``state_dist`` when only that is given.
    ``action_dist`` (``D_A``) defaults to uniform.
    """
    R = np.asarray(reward, dtype=float)
    if R.ndim != 3 or R.shape[0] != R.shape[2]:
        raise ValueError(f"reward must be [S, A, S] (see as_transition_reward), got {R.shape}")
    S, A, _ = R.shape
    ds = _dist(state_dist, S, "state_dist")
    da = _dist(action_dist, A, "action_dist")
    dn = ds if next_state_dist is None else _dist(next_state_dist, S, "next_state_dist")
    # m[x] = E_{A, S'} R(x, A, S'), a function of the first state only.
    m = np.einsum("xay,a,y->x", R, da, dn)
    mean = ds @ m  # E R(S, A, S')
    return R + discount * m[None, None, :] - m[:, None, None] - discount * mean


def pearson_distance(
    x: np.ndarray,
    y: np.ndarray,
    weights: np.ndarray | None = None,
    *,
    on_constant: Literal["nan", "raise"] = "nan",
) -> float:
    """``sqrt((1 - rho) / 2)`` for the (weighted) Pearson correlation ``rho`` of ``x`` and ``y``.

    If either input has (numerically) zero variance, returns ``nan`` or raises
    :class:`ConstantRewardError`, as ``on_constant`` says.
    """
    x = np.asarray(x, dtype=float).ravel()
    y = np.asarray(y, dtype=float).ravel()
    w = np.full(x.size, 1.0 / x.size) if weights is None else np.asarray(weights, dtype=float).ravel()
    w = w / w.sum()
    xc = x - w @ x
    yc = y - w @ y
    vx = w @ (xc * xc)
    vy = w @ (yc * yc)
    for v, arr, name in ((vx, x, "first"), (vy, y, "second")):
        scale = max(1.0, float(np.max(np.abs(arr), initial=0.0))) ** 2
        if v <= 1e-24 * scale:
            if on_constant == "raise":
                raise ConstantRewardError(
                    f"the {name} reward is constant after canonicalisation (it ranks no policies); "
                    "its EPIC distance to anything is undefined"
                )
            return float("nan")
    rho = float(np.clip((w @ (xc * yc)) / np.sqrt(vx * vy), -1.0, 1.0))
    return float(np.sqrt(max(0.0, (1.0 - rho) / 2.0)))
