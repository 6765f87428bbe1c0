"""Exact tabular MDPs of the gridworlds, read off the real environments.

Two routes, both ending in :func:`tabulate`:

* the toy-text environments of gymnasium carry their own table ``P[s][a] = [(p, s', r,
  terminated), ...]``: :func:`from_gym_table` converts it as it stands;
* the others are enumerated by breadth-first search over the environment's own transition
  function (:func:`enumerate_states`), from the states a reset can produce.

A state is terminal when some transition reaching it ends the episode. Terminal states are
made absorbing (every action loops back with reward 0), as :class:`TabularMDP` requires;
the environment itself is never stepped from them.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Generic, Hashable, Iterable, Mapping, Sequence, TypeVar

import numpy as np

from textenvs.mdp import DEFAULT_DISCOUNT, TabularMDP

K = TypeVar("K", bound=Hashable)

#: One outcome of an action: ``(probability, next state, reward, terminated)``.
Outcome = tuple[float, Any, float, bool]


def tabulate(
    n_states: int,
    action_names: Sequence[str],
    outcomes: Iterable[tuple[int, int, float, int, float]],
    initial: np.ndarray,
    terminal: np.ndarray,
    features: np.ndarray,
    feature_names: Sequence[str],
    state_labels: Sequence[str] = (),
    grid_shape: tuple[int, int] | None = None,
    positions: np.ndarray | None = None,
    discount: float = DEFAULT_DISCOUNT,
    transition_features: np.ndarray | None = None,
    transition_feature_names: Sequence[str] = (),
    default_features: Sequence[str] | None = None,
) -> TabularMDP:
    """A read-only :class:`TabularMDP` from ``(s, a, p, s', r)`` outcomes.

    Outcomes of one ``(s, a)`` that land on the same ``s'`` are summed; they must agree on
    the reward, since ``R[s, a, s']`` has room for one. Terminal rows are overwritten with
    a zero-reward self-loop (and zero transition features). ``discount`` is the
    environment's declared ``gamma``; ``transition_features`` ``[S, A, S, k]`` name events
    of the move (:class:`TabularMDP`).
    """
    n_actions = len(action_names)
    transitions = np.zeros((n_states, n_actions, n_states))
    rewards = np.zeros((n_states, n_actions, n_states))
    seen = np.zeros((n_states, n_actions, n_states), dtype=bool)
    for s, a, p, s2, r in outcomes:
        if seen[s, a, s2] and rewards[s, a, s2] != r:
            raise ValueError(f"two outcomes of state {s}, action {a} reach {s2} with rewards {rewards[s, a, s2]} and {r}")
        transitions[s, a, s2] += p
        rewards[s, a, s2] = r
        seen[s, a, s2] = True
    terminal = np.asarray(terminal, dtype=bool)
    for s in np.flatnonzero(terminal):
        transitions[s] = 0.0
        transitions[s, :, s] = 1.0
        rewards[s] = 0.0
    tf = None
    if transition_features is not None:
        tf = np.array(transition_features, dtype=float).reshape(n_states, n_actions, n_states, len(transition_feature_names))
        tf[terminal] = 0.0
    mdp = TabularMDP(
        transitions=transitions,
        rewards=rewards,
        initial=np.asarray(initial, dtype=float),
        terminal=terminal,
        features=np.asarray(features, dtype=float).reshape(n_states, len(feature_names)),
        feature_names=tuple(feature_names),
        action_names=tuple(action_names),
        state_labels=tuple(state_labels),
        grid_shape=grid_shape,
        positions=None if positions is None else np.asarray(positions, dtype=int),
        discount=float(discount),
        transition_features=tf,
        transition_feature_names=tuple(transition_feature_names),
        default_features=None if default_features is None else tuple(default_features),
    )
    for array in (mdp.transitions, mdp.rewards, mdp.initial, mdp.terminal, mdp.features, mdp.positions, mdp.transition_features):
        if array is not None:
            array.flags.writeable = False  # MDPs are cached and shared between instances
    return mdp


def from_gym_table(
    table: Mapping[int, Mapping[int, Sequence[tuple[float, int, float, bool]]]],
    n_states: int,
    action_names: Sequence[str],
    initial: np.ndarray,
    **meta: Any,
) -> TabularMDP:
    """The MDP of a gymnasium toy-text table ``P[s][a] = [(p, s', r, terminated), ...]``.

    State indices are the environment's own observations. ``meta`` is passed on to
    :func:`tabulate` (features, labels, grid positions).
    """
    terminal = np.zeros(n_states, dtype=bool)
    outcomes = []
    for s in range(n_states):
        for a in range(len(action_names)):
            for p, s2, r, done in table[s][a]:
                outcomes.append((s, a, float(p), int(s2), float(r)))
                if done:
                    terminal[int(s2)] = True
    return tabulate(n_states, action_names, outcomes, initial, terminal, **meta)


@dataclass(frozen=True)
class Enumeration(Generic[K]):
    """The reachable states of an environment and every outcome between them."""

    #: State keys in discovery order: ``states[i]`` is MDP state ``i``.
    states: tuple[K, ...]
    #: Key -> MDP state index.
    index: Mapping[K, int]
    #: ``(s, a, p, s', r)`` for every non-terminal ``s`` and action ``a``.
    outcomes: tuple[tuple[int, int, float, int, float], ...]
    #: Which states an episode ends in.
    terminal: np.ndarray


def enumerate_states(
    starts: Sequence[K], step: Callable[[K, int], Iterable[Outcome]], n_actions: int
) -> Enumeration[K]:
    """Breadth-first search from ``starts`` over ``step(key, action) -> outcomes``.

    ``step`` must be the environment's own transition function (or a thin shim that sets
    the real environment to ``key``, steps it and reads the new key back). States reached
    by an ending transition are terminal and not expanded; a state reached both by an
    ending and a non-ending transition is an error (termination must be a state property
    for the MDP to be exact).
    """
    index: dict[K, int] = {}
    states: list[K] = []
    ending: dict[int, bool] = {}
    for key in starts:
        if key not in index:
            index[key] = len(states)
            ending[len(states)] = False  # a reset never lands in a terminal state
            states.append(key)
    queue = deque(range(len(states)))
    outcomes: list[tuple[int, int, float, int, float]] = []
    while queue:
        s = queue.popleft()
        if ending.get(s):
            continue
        for a in range(n_actions):
            for p, key2, r, done in step(states[s], a):
                if key2 not in index:
                    index[key2] = len(states)
                    states.append(key2)
                    queue.append(index[key2])
                s2 = index[key2]
                if ending.setdefault(s2, bool(done)) != bool(done):
                    raise ValueError(f"state {key2!r} is reached both by ending and by non-ending transitions")
                outcomes.append((s, a, float(p), s2, float(r)))
    terminal = np.array([ending.get(i, False) for i in range(len(states))], dtype=bool)
    return Enumeration(tuple(states), index, tuple(outcomes), terminal)
