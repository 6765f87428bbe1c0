"""A shaping-invariant, dynamics-aware distance between the rewards of one tabular MDP.

**What is measured.** Two rewards are compared on the transitions the MDP can make from its
decision states, after removing everything that does not change which policies are better:
potential shaping ``gamma Phi(s') - Phi(s)``, positive scaling, and how a reward of
``(s, a)`` is spread over the possible next states. This is a STARC distance (Skalse et
al. 2023, "STARC: A General Framework For Quantifying Differences Between Reward
Functions", ICLR 2024) with the *value-adjusted levelling* canonicalisation for the uniform
policy ``pi`` and the ``L2`` norm::

    r(s, a)  = E_{s' ~ P(s, a)} R(s, a, s')
    C(R)(s, a) = r(s, a) - V_pi(s) + gamma E_{s' ~ P(s, a)} V_pi(s')
    d(R1, R2)  = || C(R1) / ||C(R1)|| - C(R2) / ||C(R2)|| || / 2

where ``V_pi`` is the exact discounted value of ``R`` under ``pi`` (one linear solve) and
the norm is the ``L2`` norm over the decision states (non-terminal, reachable from the
start) and all actions, uniformly weighted. ``C`` is exactly invariant to potential
shaping for every potential (``V_pi`` absorbs ``-Phi``) and to any change of ``R(s, a, .)``
that keeps its expectation under the dynamics; the distance lies in ``[0, 1]``, is ``0``
for rewards equal up to shaping and positive scale, ``1`` for ``R`` and ``-R``, symmetric,
and satisfies the triangle inequality (it is a distance between unit vectors). STARC
distances bound the regret of optimising one reward instead of the other, in both
directions (their Theorems 3 and 4); EPIC does not.

**Why not DARD, why not EPIC.** DARD (Wulfe et al. 2022, "Dynamics-Aware Comparison of
Learned Reward Functions", ICLR 2022) also uses the dynamics, but its canonicalisation
evaluates ``R(S', A, S'')`` with ``S' ~ P(s, A)`` and ``S'' ~ P(s', A)``: pairs of states
that are generally *not* a transition of the MDP. There, neither the environment's
tabulated reward (0 off the transitions it can make) nor a fitted reward (whatever its
features give) says anything, so two rewards that agree on every feasible transition can
be far apart: on FrozenLake 4x4 at ``gamma = 0.99``, the true ``R[s, a, s']`` and the same
reward written as "1 for arriving at the goal" (identical wherever ``P > 0``) are at DARD
distance 0.49 (measured with DARD's canonicalisation; ``tests/test_irl_distance.py``
checks that this distance does not separate them). EPIC (Gleave et al. 2021, :mod:`irl.epic`) draws ``s'``
independently of ``(s, a)``, so on a gridworld it compares mostly impossible transitions.
The STARC distance above reads a reward only through ``r(s, a)`` on feasible moves and the
values it gives, both of which the MDP fixes.

**When it is undefined.** A reward whose canonical form is (numerically) zero ranks no
policies: a constant per decision in a task that never ends, or pure shaping. Its
direction is noise, so :func:`compare_rewards` reports no value, with the reason, when
``||C(R)|| <= MIN_CANONICAL_FRACTION * ||r||`` (the same norm over the same transitions).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse
import scipy.sparse.linalg

from textenvs.planning import Dynamics, expected_reward, policy_transitions

__all__ = [
    "MIN_CANONICAL_FRACTION",
    "RewardComparison",
    "canonical_reward",
    "compare_rewards",
    "reward_distance",
]

#: A reward whose canonical norm is at most this fraction of its own norm (over the same
#: transitions) is treated as ranking no policies: distances to it are undefined.
MIN_CANONICAL_FRACTION = 1e-6


@dataclass(frozen=True)
class RewardComparison:
    """The distance between two rewards, or why there is none."""

    #: In ``[0, 1]``; ``None`` when undefined.
    value: float | None
    #: Why ``value`` is ``None`` (``""`` otherwise).
    reason: str
    #: ``||C(R)|| / ||r||`` of each reward: how much of it ranks policies.
    canonical_fraction: tuple[float, float]
    discount: float

    @property
    def defined(self) -> bool:
        """Whether there is a value."""
        return self.value is not None


def _mdp_parts(mdp: Any) -> tuple[Dynamics, np.ndarray, float]:
    return Dynamics(mdp.transitions), np.asarray(mdp.decision_states, dtype=bool), float(mdp.discount)


def canonical_reward(
    reward: np.ndarray, mdp: Any, *, discount: float | None = None, state_reward: str = "current"
) -> np.ndarray:
    """``C(R)[s, a]``: the value-adjusted levelling of ``reward`` for the uniform policy.

    ``reward`` is ``[S]``, ``[S, A]`` or ``[S, A, S]`` (state rewards are read as
    :func:`textenvs.planning.transition_reward` says); ``mdp`` is a
    :class:`textenvs.mdp.TabularMDP`; ``discount`` defaults to the MDP's.
    """
    dyn, _, gamma = _mdp_parts(mdp)
    gamma = gamma if discount is None else float(discount)
    if not 0.0 <= gamma < 1.0:
        raise ValueError(f"discount must lie in [0, 1), got {gamma}")
    r = expected_reward(dyn, reward, state_reward=state_reward)
    if not np.all(np.isfinite(r)):
        raise ValueError("rewards must be finite on every transition the MDP can make")
    S, A = r.shape
    uniform = np.full((S, A), 1.0 / A)
    p_pi = policy_transitions(dyn, uniform)
    r_pi = r.mean(axis=1)
    if scipy.sparse.issparse(p_pi):
        lhs = (scipy.sparse.identity(S, format="csc") - gamma * p_pi).tocsc()
        v = scipy.sparse.linalg.spsolve(lhs, r_pi)
    else:
        v = np.linalg.solve(np.eye(S) - gamma * p_pi, r_pi)
    return r - v[:, None] + gamma * dyn.expect(v)


def compare_rewards(
    reward_a: np.ndarray,
    reward_b: np.ndarray,
    mdp: Any,
    *,
    discount: float | None = None,
    state_reward: str = "current",
) -> RewardComparison:
    """The STARC distance of the module docstring between two rewards of ``mdp``, or why not."""
    _, mask, gamma = _mdp_parts(mdp)
    gamma = gamma if discount is None else float(discount)
    if not mask.any():
        return RewardComparison(None, "the MDP has no reachable decision state", (0.0, 0.0), gamma)
    units, fractions, reasons = [], [], []
    for which, reward in (("first", reward_a), ("second", reward_b)):
        c = canonical_reward(reward, mdp, discount=gamma, state_reward=state_reward)[mask]
        r = expected_reward(mdp.transitions, reward, state_reward=state_reward)[mask]
        cn = float(np.sqrt(np.mean(c * c)))
        rn = float(np.sqrt(np.mean(r * r)))
        fractions.append(cn / rn if rn > 0 else 0.0)
        units.append(c / cn if cn > 0 else c)
        if rn == 0.0:
            reasons.append(f"the {which} reward is zero on every transition from a decision state")
        elif cn <= MIN_CANONICAL_FRACTION * rn:
            reasons.append(
                f"the {which} reward ranks no policies: without its potential shaping it keeps "
                f"{cn / rn:.1e} of its size (at most {MIN_CANONICAL_FRACTION:g} counts as nothing)"
            )
    if reasons:
        return RewardComparison(None, "; ".join(reasons), (fractions[0], fractions[1]), gamma)
    diff = units[0] - units[1]
    value = float(np.clip(0.5 * np.sqrt(np.mean(diff * diff)), 0.0, 1.0))
    return RewardComparison(value, "", (fractions[0], fractions[1]), gamma)


def reward_distance(
    reward_a: np.ndarray,
    reward_b: np.ndarray,
    mdp: Any,
    *,
    discount: float | None = None,
    state_reward: str = "current",
) -> float | None:
    """The shaping-invariant distance between two rewards of ``mdp``, in ``[0, 1]``.

    ``None`` where it is undefined; :func:`compare_rewards` says why. Rewards are ``[S]``,
    ``[S, A]`` or ``[S, A, S]``; ``discount`` defaults to ``mdp.discount`` (the shaping to
    ignore is ``discount * Phi(s') - Phi(s)``).
    """
    return compare_rewards(reward_a, reward_b, mdp, discount=discount, state_reward=state_reward).value
