"""The exact tabular MDP of an environment: the value that ``textenvs`` hands to ``irl``."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Sequence

import numpy as np

from textenvs.errors import UnknownFeatureError
from textenvs.planning import expected_reward, return_range

#: The discount every gridworld declares unless it says otherwise: that of the planners and
#: learners in ``harness.agents``, of the fits and of the reward distances in ``irl``.
DEFAULT_DISCOUNT = 0.99


@dataclass(frozen=True, eq=False)
class TabularMDP:
    """A finite MDP with named actions, named state features and named transition features.

    Terminal states are absorbing: every action leads back to the same state with zero
    reward, so finite-horizon and discounted computations need no special case.

    State features ``features[s, k]`` describe where the agent is. Some events are a
    property of the move, not of any state: in CliffWalking a step onto the cliff sends the
    agent back to the start, so "fell" arrives in the same state as an ordinary step into
    the start. Such events are declared as transition features
    ``transition_features[s, a, s', k]`` (0 on the self-loops of terminal states); reward
    models read them through their expectation under the dynamics,
    :meth:`expected_transition_features`.
    """

    #: ``P[s, a, s']``: probability of moving from ``s`` to ``s'`` under ``a``.
    transitions: np.ndarray
    #: ``R[s, a, s']``: the true reward of that transition.
    rewards: np.ndarray
    #: Initial-state distribution over states.
    initial: np.ndarray
    #: Boolean mask of terminal (absorbing) states.
    terminal: np.ndarray
    #: ``features[s, k]``: named state features (one-hot columns excluded).
    features: np.ndarray
    feature_names: tuple[str, ...]
    action_names: tuple[str, ...]
    #: A short readable label per state (``"(2, 3) key=1"``), for plots and errors.
    state_labels: tuple[str, ...] = ()
    #: Grid shape and the (row, col) of each state, when the states live on a grid.
    grid_shape: tuple[int, int] | None = None
    positions: np.ndarray | None = field(default=None)
    #: ``gamma``: the environment's declared discount. Planners, fits, soft value iteration
    #: and reward distances use it unless told otherwise.
    discount: float = DEFAULT_DISCOUNT
    #: ``[S, A, S, k]`` named features of transitions (events such as "fell"), or ``None``.
    transition_features: np.ndarray | None = field(default=None)
    transition_feature_names: tuple[str, ...] = ()
    #: The named state features a fit uses by default (``--features named``); ``None``: all
    #: of them. An environment leaves out features that describe its layout rather than its
    #: task (keys and chests: the raw row and column, which mean nothing on another layout
    #: and, in a reward linear in them, extrapolate into rows no demonstration visits).
    default_features: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        n, a, n2 = self.transitions.shape
        if n != n2:
            raise ValueError(f"transitions must be [S, A, S], got {self.transitions.shape}")
        if self.rewards.shape != self.transitions.shape:
            raise ValueError(f"rewards shape {self.rewards.shape} != transitions shape {self.transitions.shape}")
        if self.initial.shape != (n,) or self.terminal.shape != (n,):
            raise ValueError("initial and terminal must have one entry per state")
        if self.features.shape[0] != n or self.features.shape[1] != len(self.feature_names):
            raise ValueError("features must be [S, K] with one name per column")
        if len(self.action_names) != a:
            raise ValueError("one name per action is needed")
        if not np.allclose(self.transitions.sum(axis=2), 1.0, atol=1e-8):
            raise ValueError("each P[s, a, :] must sum to 1")
        if not np.isclose(self.initial.sum(), 1.0):
            raise ValueError("the initial distribution must sum to 1")
        if not 0.0 < self.discount < 1.0:
            raise ValueError(f"discount must lie in (0, 1), got {self.discount}")
        k = len(self.transition_feature_names)
        if self.transition_features is None:
            if k:
                raise ValueError("transition_feature_names given without transition_features")
        elif self.transition_features.shape != (n, a, n, k):
            raise ValueError(f"transition_features must be [S, A, S, k] = [{n}, {a}, {n}, {k}], got {self.transition_features.shape}")
        clash = set(self.transition_feature_names) & set(self.feature_names)
        if clash:
            raise ValueError(f"names used by both state and transition features: {sorted(clash)}")

    @property
    def n_states(self) -> int:
        """Number of states ``S``."""
        return self.transitions.shape[0]

    @property
    def n_actions(self) -> int:
        """Number of actions ``A``."""
        return self.transitions.shape[1]

    def return_range(self, horizon: int) -> tuple[float, float]:
        """The least and greatest return possible within ``horizon`` decisions
        (:func:`textenvs.planning.return_range`)."""
        return return_range(self.transitions, self.rewards, self.initial, horizon)

    def expected_rewards(self) -> np.ndarray:
        """``r[s, a] = sum_s' P[s, a, s'] R[s, a, s']``."""
        return expected_reward(self.transitions, self.rewards)

    @property
    def decision_states(self) -> np.ndarray:
        """Boolean mask of the states where decisions are taken: non-terminal and reachable
        from the initial distribution under some policy."""
        reach = np.asarray(self.initial > 0)
        moves = self.transitions.sum(axis=1) > 0
        live = ~np.asarray(self.terminal, dtype=bool)
        frontier = reach.copy()
        while frontier.any():
            nxt = moves[frontier & live].any(axis=0) & ~reach
            reach |= nxt
            frontier = nxt
        return reach & live

    def expected_transition_features(self, names: Sequence[str] | None = None) -> np.ndarray:
        """``[S, A, k]``: ``E[g(s, a, s') | s, a]`` of the transition features ``names``
        (all of them by default; ``[S, A, 0]`` when the MDP declares none)."""
        all_names = self.transition_feature_names
        names = list(all_names) if names is None else list(names)
        missing = [n for n in names if n not in all_names]
        if missing:
            raise UnknownFeatureError(f"unknown transition features {missing}; this MDP has {list(all_names)}")
        if not names:
            return np.zeros((self.n_states, self.n_actions, 0))
        cols = [all_names.index(n) for n in names]
        g = np.asarray(self.transition_features, dtype=float)[..., cols]
        return np.einsum("sat,satk->sak", np.asarray(self.transitions, dtype=float), g)

    def onehot_features(self) -> np.ndarray:
        """The identity feature matrix: one indicator per state (a free tabular reward)."""
        return np.eye(self.n_states)

    def feature_matrix(self, names: Sequence[str] | None = None) -> np.ndarray:
        """The named feature columns ``names`` (all of them by default)."""
        if names is None:
            return self.features
        missing = [n for n in names if n not in self.feature_names]
        if missing:
            raise UnknownFeatureError(f"unknown features {missing}; this MDP has {list(self.feature_names)}")
        return self.features[:, [self.feature_names.index(n) for n in names]]


@dataclass(frozen=True, eq=False)
class StackedMDP:
    """The exact MDP of an environment whose layout is drawn anew for every episode.

    A layout ``i`` is drawn with probability ``weights[i]``, then the episode runs in that
    layout's own :class:`TabularMDP` (``parts[i]``). The result is one MDP whose states are
    every part's states side by side (state ``offsets[i] + s`` is state ``s`` of part
    ``i``), whose initial distribution is the mixture of the parts' and whose transitions
    never cross from one part to another. It offers what fits, planners and distances read
    from a :class:`TabularMDP`; its transitions are a sparse
    :class:`~textenvs.planning.Dynamics` and its rewards the expected ``[S, A]`` rewards,
    since the dense ``[S, A, S]`` arrays of many layouts would not fit in memory.

    Every part must name the same actions and features: a reward linear in features that
    mean the same on every layout (distance to the goal, keys held) is then one objective
    pursued across layouts.
    """

    parts: tuple[TabularMDP, ...]
    #: The probability of each layout (sums to 1).
    weights: np.ndarray

    def __post_init__(self) -> None:
        if not self.parts:
            raise ValueError("a stacked MDP needs at least one layout")
        first = self.parts[0]
        for i, part in enumerate(self.parts[1:], 1):
            for what in ("action_names", "feature_names", "transition_feature_names", "default_features", "discount"):
                if getattr(part, what) != getattr(first, what):
                    raise ValueError(f"layout {i} has {what} {getattr(part, what)!r}, layout 0 {getattr(first, what)!r}")
        w = np.asarray(self.weights, dtype=float)
        if w.shape != (len(self.parts),) or np.any(w < 0) or not np.isclose(w.sum(), 1.0):
            raise ValueError("weights must be one probability per layout, summing to 1")

    @classmethod
    def of(cls, parts: Sequence[TabularMDP], weights: Sequence[float] | None = None) -> StackedMDP:
        """The layouts ``parts`` drawn with ``weights`` (normalised; default: alike)."""
        w = np.ones(len(parts)) if weights is None else np.asarray(weights, dtype=float)
        return cls(tuple(parts), w / w.sum())

    def return_range(self, horizon: int) -> tuple[float, float]:
        """The least and greatest return possible within ``horizon`` decisions on any of the layouts.

        Over the layouts met, not every layout the environment can draw: for the gridworlds
        here the bounds are the same on every layout (nothing, or every goal reached)."""
        ranges = [part.return_range(horizon) for part in self.parts]
        return min(lo for lo, _ in ranges), max(hi for _, hi in ranges)

    @cached_property
    def offsets(self) -> np.ndarray:
        """``[n_parts + 1]``: where each part's states start (the last entry: ``n_states``)."""
        return np.concatenate([[0], np.cumsum([p.n_states for p in self.parts])]).astype(int)

    @cached_property
    def transitions(self) -> Any:
        """The block-diagonal sparse :class:`~textenvs.planning.Dynamics`."""
        from textenvs.planning import Dynamics

        return Dynamics.block_diagonal([p.transitions for p in self.parts])

    def _stack(self, name: str) -> np.ndarray:
        return np.concatenate([np.asarray(getattr(p, name)) for p in self.parts])

    @cached_property
    def rewards(self) -> np.ndarray:
        """``[S, A]``: the expected true reward of every state and action."""
        return np.concatenate([p.expected_rewards() for p in self.parts])

    def expected_rewards(self) -> np.ndarray:
        """``r[s, a]``, as :attr:`rewards`."""
        return self.rewards

    @cached_property
    def initial(self) -> np.ndarray:
        """The mixture of the parts' initial distributions."""
        return np.concatenate([w * np.asarray(p.initial, dtype=float) for w, p in zip(self.weights, self.parts)])

    @cached_property
    def terminal(self) -> np.ndarray:
        return self._stack("terminal").astype(bool)

    @cached_property
    def decision_states(self) -> np.ndarray:
        """Each part's decision states (of the parts with a positive weight)."""
        return np.concatenate([p.decision_states & (w > 0) for w, p in zip(self.weights, self.parts)])

    @cached_property
    def features(self) -> np.ndarray:
        return self._stack("features")

    @property
    def feature_names(self) -> tuple[str, ...]:
        return self.parts[0].feature_names

    @property
    def default_features(self) -> tuple[str, ...] | None:
        return self.parts[0].default_features

    @property
    def transition_feature_names(self) -> tuple[str, ...]:
        return self.parts[0].transition_feature_names

    @property
    def action_names(self) -> tuple[str, ...]:
        return self.parts[0].action_names

    @property
    def discount(self) -> float:
        return self.parts[0].discount

    @property
    def state_labels(self) -> tuple[str, ...]:
        """``"layout i: <label>"`` for every state."""
        return tuple(f"layout {i}: {label}" for i, p in enumerate(self.parts) for label in p.state_labels)

    #: States of several layouts share no grid: plots of the grid do not apply.
    grid_shape = None
    positions = None

    @property
    def n_states(self) -> int:
        return int(sum(p.n_states for p in self.parts))

    @property
    def n_actions(self) -> int:
        return self.parts[0].n_actions

    def expected_transition_features(self, names: Sequence[str] | None = None) -> np.ndarray:
        """``[S, A, k]`` of every part, stacked."""
        return np.concatenate([p.expected_transition_features(names) for p in self.parts])

    def feature_matrix(self, names: Sequence[str] | None = None) -> np.ndarray:
        """The named feature columns of every part, stacked."""
        return np.concatenate([p.feature_matrix(names) for p in self.parts])
