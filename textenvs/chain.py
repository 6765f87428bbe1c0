"""Planning across chained episodes: myopic (each round for itself) and non-myopic (the whole chain).

A chained MDP (:mod:`textenvs.gridworlds.lever`) runs several rounds in one episode and
marks the transitions that end a round with the transition feature ``round_end``. The
**non-myopic** policy is optimal for the chain's total reward; the **myopic** policy is
optimal for the reward of the current round only: it plans on the same MDP with every
round-ending transition sent to an absorbing state, so nothing after the round counts.

Both plan at :data:`CHAIN_DISCOUNT`, close enough to 1 that a bonus paid a few steps later
is worth its face value to within ``1e-5``, yet below 1 so that a reward now still beats
the same reward later (ties go to not paying a cost for an equal bonus).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from textenvs.mdp import TabularMDP
from textenvs.planning import hard_value_iteration

__all__ = ["CHAIN_DISCOUNT", "is_chained", "round_local", "myopic_policy", "non_myopic_policy"]

#: The discount of both planners (module docstring).
CHAIN_DISCOUNT = 1.0 - 1e-6


def is_chained(mdp: TabularMDP) -> bool:
    """Whether ``mdp`` marks its round ends (transition feature ``round_end``)."""
    return "round_end" in mdp.transition_feature_names


def round_local(mdp: TabularMDP) -> TabularMDP:
    """``mdp`` plus one absorbing state that every round-ending transition leads to instead."""
    if not is_chained(mdp):
        raise ValueError(f"the MDP marks no round ends (transition features: {list(mdp.transition_feature_names)})")
    S, A, _ = mdp.transitions.shape
    end = np.asarray(mdp.transition_features[..., mdp.transition_feature_names.index("round_end")], dtype=bool)
    P = np.zeros((S + 1, A, S + 1))
    R = np.zeros((S + 1, A, S + 1))
    P[:S, :, :S] = np.where(end, 0.0, mdp.transitions)
    R[:S, :, :S] = np.where(end, 0.0, mdp.rewards)
    P[:S, :, S] = (np.asarray(mdp.transitions) * end).sum(axis=2)
    R[:S, :, S] = np.where(P[:S, :, S] > 0, (np.asarray(mdp.transitions) * end * mdp.rewards).sum(axis=2) / np.maximum(P[:S, :, S], 1e-300), 0.0)
    P[S, :, S] = 1.0
    terminal = np.append(np.asarray(mdp.terminal, dtype=bool), True)
    return replace(
        mdp, transitions=P, rewards=R, initial=np.append(mdp.initial, 0.0), terminal=terminal,
        features=np.vstack([mdp.features, np.zeros((1, mdp.features.shape[1]))]),
        state_labels=(*mdp.state_labels, "round over") if mdp.state_labels else (),
        positions=None, transition_features=None, transition_feature_names=(), grid_shape=None,
    )


def myopic_policy(mdp: TabularMDP, discount: float = CHAIN_DISCOUNT) -> np.ndarray:
    """``[S, A]``: optimal for the current round's reward only (uniform over ties)."""
    local = round_local(mdp)
    return hard_value_iteration(local.transitions, local.rewards, discount=discount).policy[: mdp.n_states]


def non_myopic_policy(mdp: TabularMDP, discount: float = CHAIN_DISCOUNT) -> np.ndarray:
    """``[S, A]``: optimal for the whole chain's reward (uniform over ties)."""
    if not is_chained(mdp):
        raise ValueError("the MDP marks no round ends (transition feature round_end)")
    return hard_value_iteration(mdp.transitions, mdp.rewards, discount=discount).policy
