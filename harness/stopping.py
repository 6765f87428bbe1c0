"""Runs that stop when they know: episodes in rounds until GD's interval is decisive.

A run with ``episodes_target`` set plays its episodes in rounds of ``batch_size`` (episode
indices ``0..B-1``, then ``B..2B-1``, ...). After each complete round it computes the
goal-directedness (GD, Everitt et al. 2025: ``(return - random) / (optimal - random)``,
0 for the random mover, 1 for an optimal agent) of every episode so far, in index order,
and its betting confidence sequence (:func:`harness.stats.betting_interval`) over the
range GD can take within the step limit. It stops when

* the interval excludes 0 (``decisive``: the agent is better, or worse, than random),
* its half-width is at most the target (``precise``), or
* ``episodes`` (the budget) are played (``budget``).

A confidence sequence covers the truth at every episode count at once (Waudby-Smith &
Ramdas 2023), so the interval at the stopping time keeps its 95% however the stopping
time was chosen. Decisions depend only on the finished episodes' returns in index order
and each episode keeps its seed, so a killed run resumed later stops where an
uninterrupted one would have, with the same interval. The state is written to the run's
manifest (``stopping``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Mapping

from harness.config import ConfigError
from harness.stats import betting_interval

__all__ = ["GDScale", "Stopping", "StoppingError", "gd_scale", "decide", "REASONS"]

#: Why a run stopped, as the manifest and reports say it.
REASONS = {
    "decisive": "GD's interval excludes 0",
    "precise": "GD's interval is as narrow as the target",
    "budget": "the episode budget is spent",
}


class StoppingError(ConfigError):
    """A stopping rule that cannot apply to this run; the message says why."""


@dataclass(frozen=True)
class GDScale:
    """The affine map from an episode's return to its GD, and the range GD can take."""

    #: Expected return of the uniformly random policy within the step limit.
    random: float
    #: Expected return of an optimal policy within the step limit.
    optimal: float
    #: The least and greatest return possible within the step limit.
    low: float
    high: float

    def gd(self, value: float) -> float:
        """``(value - random) / (optimal - random)``."""
        return (value - self.random) / (self.optimal - self.random)

    @property
    def gd_range(self) -> tuple[float, float]:
        """The least and greatest GD of one episode."""
        return self.gd(self.low), self.gd(self.high)


def gd_scale(env: Any, max_steps: int) -> GDScale:
    """GD's references for ``env`` from its exact MDP, over ``max_steps`` undiscounted decisions."""
    from textenvs.planning import reference_returns

    family = getattr(env, "family", type(env).__name__)
    if not callable(getattr(env, "mdp", None)) or getattr(env, "layout_seed", 0) is None:
        raise StoppingError(f"a target for the episodes needs an environment with one exact MDP (GD's references); {family!r} has none")
    mdp = env.mdp()
    random, optimal = reference_returns(mdp.transitions, mdp.rewards, mdp.initial, horizon=max_steps, discount=1.0)
    if not optimal - random > 1e-9 * max(1.0, abs(optimal), abs(random)):
        raise StoppingError(f"no policy does better than random on {family!r} within {max_steps} steps: GD is undefined")
    low, high = mdp.return_range(max_steps)
    return GDScale(float(random), float(optimal), float(low), float(high))


@dataclass(frozen=True)
class Stopping:
    """Where a run with an episode target stands."""

    target: float
    budget: int
    round: int
    #: Episodes behind the last decision (a multiple of ``round``, or the budget).
    episodes: int
    stopped: bool
    #: A key of :data:`REASONS`, or ``None`` while the run goes on.
    reason: str | None
    #: GD over those episodes, with its anytime-valid 95% interval (``nan`` before any).
    gd: float
    gd_low: float
    gd_high: float
    #: The episode count the run plays up to next (its current round's end).
    next_end: int

    def to_json(self) -> dict[str, Any]:
        """For the manifest (``nan`` as ``null``)."""
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in asdict(self).items()}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Stopping:
        """The inverse of :meth:`to_json`."""
        nan = float("nan")
        return cls(**{**data, **{k: nan if data.get(k) is None else float(data[k]) for k in ("gd", "gd_low", "gd_high")}})

    def describe(self) -> str:
        """``"16 episodes: GD's interval excludes 0"`` (or how far it has got)."""
        if not self.stopped:
            return f"{self.episodes} episodes so far, playing to {self.next_end}"
        return f"{self.episodes} episodes: {REASONS[self.reason or 'budget']}"


def decide(returns: Mapping[int, float], scale: GDScale, *, target: float, budget: int, round: int) -> Stopping:
    """Replay the rule over the finished episodes ``{index: return}``: stop at the first complete
    round whose GD interval is decisive or precise enough, or at the budget."""
    if not target > 0:
        raise StoppingError(f"the episode target (GD's half-width) must be > 0, got {target}")
    if budget < 1 or round < 1:
        raise StoppingError(f"need a budget and a round of at least 1 episode, got {budget} and {round}")
    lo, hi = scale.gd_range
    nan = float("nan")
    done, est, low, high = 0, nan, nan, nan
    end = min(budget, round)
    while True:
        if any(i not in returns for i in range(end)):
            return Stopping(target, budget, round, done, False, None, est, low, high, end)
        iv = betting_interval([scale.gd(returns[i]) for i in range(end)], lo, hi)
        done, est, low, high = end, iv.estimate, iv.low, iv.high
        reason = ("decisive" if low > 0 or high < 0 else "precise" if (high - low) / 2 <= target
                  else "budget" if end >= budget else None)
        if reason is not None:
            return Stopping(target, budget, round, done, True, reason, est, low, high, end)
        end = min(budget, end + round)
