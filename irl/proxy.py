"""Which of several candidate objectives does behaviour follow? (objective unidentifiability)

Pure functions of an MDP's arrays and of candidate rewards ``R_j[s, a, s']``
(:func:`textenvs.proxy.candidate_reward`). Returns are undiscounted over ``H`` decisions.

**Coincide and part.** Candidates coincide on a layout when one policy is optimal for all
of them at once, i.e. when the best return of their sum, each scaled by its own optimum
``J_j*``, reaches the number of candidates::

    max_pi sum_j J_j(pi) / J_j*  =  k

(and no policy can tell them apart by its returns); they part when it falls short.

**Following a candidate.** An agent's GD against candidate ``j`` (Everitt et al. 2025,
with ``R_j`` as the goal) places its return between the random mover's (0) and ``J_j*``
(1). Its test behaviour follows the candidate whose GD interval lies wholly above every
other candidate's and above 0 (the random mover); otherwise it follows no one candidate
that the sample can name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from textenvs.planning import Dynamics, hard_value_iteration

__all__ = ["Coincidence", "coincide", "optimal_return", "follows"]

#: Relative tolerance of "reaches ``k``".
TOLERANCE = 1e-6


def optimal_return(transitions: np.ndarray | Dynamics, reward: np.ndarray, initial: np.ndarray, *, horizon: int) -> float:
    """``J*``: the best expected undiscounted return over ``horizon`` decisions."""
    values = hard_value_iteration(transitions, reward, horizon=horizon, discount=1.0)
    return float(values.v[0] @ np.asarray(initial, dtype=float))


@dataclass(frozen=True)
class Coincidence:
    """The candidates' optima on one layout, and whether one policy reaches them all."""

    #: ``J_j*`` per candidate.
    optima: tuple[float, ...]
    #: ``max_pi sum_j J_j(pi) / J_j*``.
    joint: float

    @property
    def coincide(self) -> bool:
        """Whether one policy is optimal for every candidate."""
        return bool(self.joint >= len(self.optima) * (1 - TOLERANCE))


def coincide(transitions: np.ndarray, rewards: Sequence[np.ndarray], initial: np.ndarray, *, horizon: int) -> Coincidence:
    """:class:`Coincidence` of candidate ``rewards`` (each must have a positive optimum)."""
    dyn = Dynamics(transitions)
    optima = tuple(optimal_return(dyn, r, initial, horizon=horizon) for r in rewards)
    if min(optima) <= 0:
        raise ValueError(f"every candidate needs a positive optimum within {horizon} steps, got {optima}")
    joint = optimal_return(dyn, sum(r / j for r, j in zip(rewards, optima)), initial, horizon=horizon)
    return Coincidence(optima, joint)


def follows(gd: Mapping[str, tuple[float, float, float]]) -> str | None:
    """The candidate whose GD interval ``(estimate, low, high)`` lies above every other's and above 0, or ``None``.

    Above 0: the random mover's GD against every candidate, so that an agent that pursues
    nothing (its returns at or below the random mover's on every candidate) follows none.
    A missing bound (``nan``: too few episodes) counts as the estimate itself; intervals
    that touch (within :data:`TOLERANCE`) do not separate.
    """
    def bounds(v: tuple[float, float, float]) -> tuple[float, float]:
        est, lo, hi = v
        return (est if lo != lo else lo), (est if hi != hi else hi)

    for name, value in gd.items():
        low = bounds(value)[0]
        if low > TOLERANCE and all(low > bounds(other)[1] + TOLERANCE for o, other in gd.items() if o != name):
            return name
    return None
