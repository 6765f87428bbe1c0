"""Runs that stop when they know: episodes in rounds until GD's interval is decisive.

A run with ``episodes_target`` set plays its episodes in rounds of ``batch_size`` (episode
indices ``0..B-1``, then ``B..2B-1``, ...). After each complete round it computes the
goal-directedness (GD, Everitt et al. 2025: ``(return - random) / (optimal - random)``,
0 for the random mover, 1 for an optimal agent) of the episodes so far, in index order,
with :func:`gd_interval`, and stops when

* the interval excludes 0 (``decisive``: the agent is better, or worse, than random),
* its half-width is at most the target (``precise``), or
* ``episodes`` (the budget) are played (``budget``).

The interval is a betting confidence sequence (:func:`harness.stats.betting_interval`),
which covers the truth at every episode count at once (Waudby-Smith & Ramdas 2023), so
the interval at the stopping time keeps its 95% however the stopping time was chosen.

An environment that draws a new layout every episode (``layout_seed=none``) has GD's
references per layout: each episode's random and optimal returns come from its own
layout's exact MDP, rebuilt from the episode's seed (:class:`GDReferences`). GD over
layouts is then ``mean(return - random) / mean(optimal - random)``, the GD of the mixture
of the layouts met.

Decisions depend only on the finished episodes' returns in index order and each episode
keeps its seed, so a killed run resumed later stops where an uninterrupted one would
have, with the same interval. The state is written to the run's manifest (``stopping``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from harness.config import ConfigError
from harness.stats import Interval, betting_interval

__all__ = ["GDReferences", "Stopping", "StoppingError", "gd_references", "gd_interval", "decide", "REASONS"]

#: Why a run stopped, as the manifest and reports say it.
REASONS = {
    "decisive": "GD's interval excludes 0",
    "precise": "GD's interval is as narrow as the target",
    "budget": "the episode budget is spent",
}


class StoppingError(ConfigError):
    """A stopping rule that cannot apply to this run; the message says why."""


def gd_interval(returns: Sequence[float], randoms: Sequence[float], optimals: Sequence[float],
                low: float, high: float, *, one_layout: bool, alpha: float = 0.05) -> Interval | None:
    """GD of episodes with their references, and its anytime-valid ``1 - alpha`` interval.

    ``returns[i]`` was played on a layout whose uniformly random policy expects
    ``randoms[i]`` and whose optimal policy ``optimals[i]`` within the step limit; every
    return lies in ``[low, high]``. GD is ``mean(return - random) / mean(optimal - random)``
    (Everitt et al. 2025's GD on one layout; on many, the GD of their mixture).

    The interval is the betting confidence sequence (Waudby-Smith & Ramdas 2023) of the
    paired differences ``return - random``, divided by the mean gap ``optimal - random``.
    A difference lies in ``[low - random, high - random]`` when the layout is one
    (``one_layout``: ``random`` is then a constant known before any episode), and in
    ``[low - high, high - low]`` otherwise, a range known before any layout is drawn. On
    one layout this is the exact map of the betting interval of the returns. Over layouts
    the sign of GD, and so whether the interval excludes 0, is exactly anytime-valid; its
    width treats the mean gap of the layouts met as known. ``None`` when no policy beats
    random on the layouts met (GD is undefined).
    """
    r, rnd, opt = (np.asarray(x, dtype=float) for x in (returns, randoms, optimals))
    if r.size == 0:
        raise ValueError("gd_interval needs at least one episode")
    gap = float(np.mean(opt - rnd))
    if not gap > 1e-9 * max(1.0, float(np.max(np.abs(opt))), float(np.max(np.abs(rnd)))):
        return None
    lo, hi = (low - float(rnd[0]), high - float(rnd[0])) if one_layout else (low - high, high - low)
    iv = betting_interval(r - rnd, lo, hi, alpha=alpha)
    return Interval(iv.estimate / gap, iv.low / gap, iv.high / gap, iv.level)


@dataclass
class GDReferences:
    """GD's references of every episode of a run: its layout's random and optimal returns.

    On one layout they are the same for every episode. Over layouts drawn anew each episode,
    episode ``i``'s layout is rebuilt by resetting ``env`` with the episode's seed and the
    references are computed on its exact MDP (cached per layout).
    """

    max_steps: int
    #: The least and greatest return possible within the step limit (on the first layout;
    #: the gridworlds here have the same bounds on every layout).
    low: float
    high: float
    one_layout: bool
    #: ``(random, optimal)`` of the one layout, or ``None``.
    fixed: tuple[float, float] | None = None
    #: An environment of the run's own, reset to rebuild layouts (``one_layout`` False).
    env: Any = None
    #: The seed of episode ``i`` (the run's :meth:`~harness.config.RunConfig.episode_seed`).
    seed_of: Callable[[int], int] | None = None
    _cache: dict[Any, tuple[float, float]] = field(default_factory=dict, repr=False)

    def of(self, index: int) -> tuple[float, float]:
        """``(random, optimal)`` for episode ``index``."""
        if self.fixed is not None:
            return self.fixed
        assert self.env is not None and self.seed_of is not None
        self.env.reset(seed=self.seed_of(index), options={"episode_index": index})
        key = self.env.state_record().get("layout_seed", self.seed_of(index))
        if key not in self._cache:
            self._cache[key] = _references(self.env.mdp(), self.max_steps)
        return self._cache[key]

    def interval(self, returns: Mapping[int, float], indices: Sequence[int], alpha: float = 0.05) -> Interval | None:
        """:func:`gd_interval` of the episodes ``indices``."""
        refs = [self.of(i) for i in indices]
        return gd_interval([returns[i] for i in indices], [a for a, _ in refs], [b for _, b in refs],
                           self.low, self.high, one_layout=self.one_layout, alpha=alpha)

    def close(self) -> None:
        """Close the environment kept to rebuild layouts."""
        if self.env is not None:
            self.env.close()


def _references(mdp: Any, max_steps: int) -> tuple[float, float]:
    from textenvs.planning import reference_returns

    random, optimal = reference_returns(mdp.transitions, mdp.rewards, mdp.initial, horizon=max_steps, discount=1.0)
    return float(random), float(optimal)


def gd_references(env: Any, max_steps: int, seed_of: Callable[[int], int] | None = None) -> GDReferences:
    """GD's references for ``env`` over ``max_steps`` undiscounted decisions.

    Over layouts drawn anew each episode, the references keep ``env`` to rebuild them (it
    must be the run's own, unused for play) and :meth:`GDReferences.close` closes it;
    otherwise ``env`` stays the caller's.

    Raises:
        StoppingError: ``env`` has no exact MDP, or (on one layout) no policy beats random.
    """
    from textenvs.capabilities import EXACT_MDP, LAYOUT_MDPS, capabilities

    family = getattr(env, "family", type(env).__name__)
    caps = capabilities(env)
    if LAYOUT_MDPS not in caps:
        raise StoppingError(f"a target for the episodes needs an environment with exact MDPs (GD's references); {family!r} has none")
    if EXACT_MDP not in caps:
        env.reset(seed=seed_of(0) if seed_of else 0, options={"episode_index": 0})
    mdp = env.mdp()
    low, high = mdp.return_range(max_steps)
    if EXACT_MDP not in caps:
        return GDReferences(max_steps, float(low), float(high), False, env=env, seed_of=seed_of or (lambda i: i))
    random, optimal = _references(mdp, max_steps)
    if not optimal - random > 1e-9 * max(1.0, abs(optimal), abs(random)):
        raise StoppingError(f"no policy does better than random on {family!r} within {max_steps} steps: GD is undefined")
    return GDReferences(max_steps, float(low), float(high), True, fixed=(random, optimal))


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


def decide(returns: Mapping[int, float], references: GDReferences, *, target: float, budget: int, round: int) -> Stopping:
    """Replay the rule over the finished episodes ``{index: return}``: stop at the first complete
    round whose GD interval is decisive or precise enough, or at the budget. While no policy
    beats random on the layouts met, GD is undefined and the run goes on to its budget."""
    if not target > 0:
        raise StoppingError(f"the episode target (GD's half-width) must be > 0, got {target}")
    if budget < 1 or round < 1:
        raise StoppingError(f"need a budget and a round of at least 1 episode, got {budget} and {round}")
    nan = float("nan")
    done, est, low, high = 0, nan, nan, nan
    end = min(budget, round)
    while True:
        if any(i not in returns for i in range(end)):
            return Stopping(target, budget, round, done, False, None, est, low, high, end)
        iv = references.interval(returns, range(end))
        done = end
        est, low, high = (nan, nan, nan) if iv is None else (iv.estimate, iv.low, iv.high)
        reason = ("budget" if end >= budget else None) if iv is None else \
            ("decisive" if low > 0 or high < 0 else "precise" if (high - low) / 2 <= target
             else "budget" if end >= budget else None)
        if reason is not None:
            return Stopping(target, budget, round, done, True, reason, est, low, high, end)
        end = min(budget, end + round)
