"""The reward side channel of a run: its following index, GD against each reward, and the
IRL fit's distance to each reward.

:func:`analyse_side_channel` reads a gridworld run made with ``-o observed_reward=...``
(:mod:`textenvs.reward_channel`), rebuilds the environment from the manifest for the true
and the observed reward, and scores the run with :mod:`irl.side_channel`.

**Intervals.** Every per-episode outcome here is a sum over the episode's decisions of an
expected reward (the true one, the observed one, or the following index's index reward),
and its least and greatest value over the paths the exact MDP allows within the step limit
is known (:func:`irl.side_channel.episode_range`). Means of such outcomes get the betting
confidence sequence over that range (Waudby-Smith & Ramdas 2023,
:func:`irl.analysis.scores.bounded_mean_score`): valid at every number of episodes, from 4
on (``bench/side_channel_coverage.py``). A reference agent whose policy is known (the
``optimal`` and ``observed-optimal`` planners, the random mover) gets its exact values by
policy evaluation.

**Distances.** The tabular fit's STARC distance (:mod:`irl.distance`) from the fitted reward
to the true reward is its ``alignment_distance``; :func:`observed_distance_score` is the same
distance to the observed reward (the registered score ``observed_distance``), with the same
percentile bootstrap over refits and the same rule that a fit which explains nothing has none.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from irl.analysis.runs import RunInfo, load_tabular, read_info
from irl.analysis.scores import EXACT_METHOD, WHY_NOISE, FitSettings, Score, bounded_mean_score, exact_score, explains_nothing, quantile_score
from irl.distance import compare_rewards
from irl.goals import goal_directedness, reference_returns
from irl.side_channel import FollowingReferences, episode_profiles, episode_range, following_references, index_range
from textenvs.planning import policy_return

__all__ = ["SideChannelReport", "analyse_side_channel", "has_side_channel", "observed_distance_score", "NOT_FITTED"]

#: Why a side-channel report has no distances: it was made without the run's fit.
NOT_FITTED = "no IRL fit given (the study's analysis or zso irl fits the run)"


@dataclass(frozen=True)
class SideChannelReport:
    """One run's place between the true and the observed reward."""

    info: RunInfo
    #: ``previous``, ``next`` or ``none``.
    channel: str
    #: What the channel showed (``negated``, ``feature:keys_held``...).
    observed: str
    references: FollowingReferences
    #: 0: behaves as the true reward's optimum; 1: as the observed reward's.
    following: Score
    #: The uniformly random policy's index (exact), or ``None`` when undefined.
    random_following: float | None
    gd_true: Score
    gd_observed: Score
    true_return: Score
    observed_return: Score
    #: STARC distance from the fitted reward to the true reward (the fit's ``alignment_distance``).
    distance_true: Score = Score.missing(NOT_FITTED)
    #: STARC distance from the fitted reward to the observed reward (``observed_distance``).
    distance_observed: Score = Score.missing(NOT_FITTED)


def has_side_channel(options: dict[str, Any]) -> bool:
    """Whether environment ``options`` set an observed reward other than the true one."""
    value = options.get("observed_reward")
    return value is not None and value is not True and str(value) != "true"


def _observed(info: RunInfo, where: Any) -> tuple[Any, Any, str, str]:
    """``(true MDP, observed MDP, channel, observed label)`` of the run's environment."""
    env = info.make_env()
    try:
        if not callable(getattr(env, "observed_mdp", None)):
            raise ValueError(f"{where}: the run has no reward side channel (set -o observed_reward=...)")
        return env.mdp(), env.observed_mdp(), env.channel, env.observed.label
    finally:
        env.close()


def analyse_side_channel(run_dir: str | Path, settings: FitSettings = FitSettings(), coherence: Any = None) -> SideChannelReport:
    """Score the run in ``run_dir`` (module docstring); the horizon is the run's step limit.

    ``coherence``: the run's :class:`irl.analysis.report.CoherenceReport` (its IRL fit), whose
    distances to the true and to the observed reward the report carries; without it they are
    missing (:data:`NOT_FITTED`).
    """
    info = read_info(run_dir)
    mdp, observed, channel, label = _observed(info, run_dir)
    run = load_tabular(run_dir, mdp=mdp)
    H = max(run.horizon, 1)
    P, R, Ro, init = mdp.transitions, mdp.rewards, observed.rewards, mdp.initial
    refs = following_references(P, R, Ro, init, horizon=H, discount=mdp.discount)
    profiles = episode_profiles(P, R, Ro, [e.trajectory for e in run.episodes])
    n, alpha = len(profiles), settings.alpha
    policy = run.policy if settings.exact_references else None
    own = None if policy is None else tuple(policy_return(P, r, policy, init, horizon=H, discount=1.0) for r in (R, Ro))

    def mean(values: Any, lo: float, hi: float, exact: float | None, what: str) -> Score:
        if n == 0:
            return Score.missing("no finished episodes", 1 - alpha)
        if exact is not None:
            return exact_score(exact, alpha, n, f"{what}; {EXACT_METHOD}")
        return bounded_mean_score(values, lo, hi, alpha, f"{what}; range over the paths the MDP allows in {H} steps")

    if refs.defined:
        lo, hi = index_range(P, R, Ro, init, refs)
        following = mean([refs.index(p) for p in profiles], lo, hi, None if own is None else refs.index(own),
                         "position between the two optimal return profiles")
    else:
        following = Score.missing("the observed reward's optimal policy has the true reward's return profile: nothing to tell apart", 1 - alpha)

    def gd(column: int, reward: Any) -> Score:
        random, optimal = reference_returns(P, reward, init, horizon=H, discount=1.0)
        if goal_directedness(optimal, random, optimal) is None:
            return Score.missing("no policy does better than random within the step limit", 1 - alpha)
        lo, hi = episode_range(P, reward, init, H)
        to_gd = lambda x: float(goal_directedness(x, random, optimal))  # noqa: E731
        return mean([to_gd(x) for x in profiles[:, column]], to_gd(lo), to_gd(hi), None if own is None else to_gd(own[column]),
                     f"(return - random) / (optimal - random) over {H} steps")

    def ret(column: int, reward: Any) -> Score:
        lo, hi = episode_range(P, reward, init, H)
        return mean(list(profiles[:, column]), lo, hi, None if own is None else own[column], "expected return over the episode's decisions")

    distances = {}
    if coherence is not None:
        distances = {"distance_true": coherence.alignment_distance,
                     "distance_observed": coherence.score("observed_distance") or Score.missing("not computed", 1 - alpha)}
    return SideChannelReport(
        info, channel, label, refs, following, refs.random_index, gd(0, R), gd(1, Ro), ret(0, R), ret(1, Ro), **distances,
    )


def observed_distance_score(analysis: Any) -> Score:
    """The registered score ``observed_distance``: the STARC distance from a tabular fit's
    reward to the reward the run's side channel showed, percentile bootstrap over refits
    (as ``alignment_distance`` to the true reward); missing for runs without a side channel."""
    report = analysis.report
    alpha = float(report.settings.get("alpha", 0.05))
    level = 1 - alpha
    run = analysis.run
    if report.kind != "tabular" or run is None or not has_side_channel(run.info.options):
        return Score.missing("no reward side channel (-o observed_reward=...)", level)
    if explains_nothing(report.explained):
        return Score.missing(WHY_NOISE, level, len(analysis.boot))
    _, observed, _, _ = _observed(run.info, run.info.run_dir)
    mdp, shown = run.mdp, observed.rewards
    discount = report.discount

    def d(reward: np.ndarray):
        return compare_rewards(reward, shown, mdp, discount=discount)

    estimate = d(np.asarray(analysis.objective))
    if estimate.value is None:
        return Score.missing(estimate.reason, level, len(analysis.boot))
    return quantile_score([d(np.asarray(b)).value for b in analysis.boot], estimate.value, alpha,
                          f"STARC distance to the observed reward; percentile bootstrap over episodes ({len(analysis.boot)} refits)")
