"""The reward side channel of a run: its following index and GD against each reward.

:func:`analyse_side_channel` reads a gridworld run made with ``-o observed_reward=...``
(:mod:`textenvs.reward_channel`), rebuilds the environment from the manifest for the true
and the observed reward, and scores the run with :mod:`irl.side_channel`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from irl.analysis.runs import RunInfo, load_tabular, read_info
from irl.analysis.scores import FitSettings, Score, bootstrap_mean_score
from irl.side_channel import FollowingReferences, episode_gd, episode_profiles, following_references

__all__ = ["SideChannelReport", "analyse_side_channel", "has_side_channel"]


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


def has_side_channel(options: dict[str, Any]) -> bool:
    """Whether environment ``options`` set an observed reward other than the true one."""
    value = options.get("observed_reward")
    return value is not None and value is not True and str(value) != "true"


def analyse_side_channel(run_dir: str | Path, settings: FitSettings = FitSettings()) -> SideChannelReport:
    """Score the run in ``run_dir`` (module docstring); the horizon is the run's step limit."""
    info = read_info(run_dir)
    env = info.make_env()
    try:
        if not callable(getattr(env, "observed_mdp", None)):
            raise ValueError(f"{run_dir}: the run has no reward side channel (set -o observed_reward=...)")
        mdp, observed = env.mdp(), env.observed_mdp()
        channel, label = env.channel, env.observed.label
    finally:
        env.close()
    run = load_tabular(run_dir, mdp=mdp)
    H = max(run.horizon, 1)
    P, R, Ro = mdp.transitions, mdp.rewards, observed.rewards
    refs = following_references(P, R, Ro, mdp.initial, horizon=H, discount=mdp.discount)
    profiles = episode_profiles(P, R, Ro, [e.trajectory for e in run.episodes])
    level = 1 - settings.alpha
    if refs.defined:
        index = [refs.index(p) for p in profiles]
        following = bootstrap_mean_score(index, settings, "position between the two optimal return profiles; bootstrap over episodes")
    else:
        following = Score.missing("the observed reward's optimal policy has the true reward's return profile: nothing to tell apart", level)

    def gd(column: int, reward: Any) -> Score:
        values = episode_gd(profiles[:, column], P, reward, mdp.initial, horizon=H)
        if values is None:
            return Score.missing("no policy does better than random within the step limit", level)
        return bootstrap_mean_score(values, settings, f"(return - random) / (optimal - random) over {H} steps; bootstrap over episodes")

    method = "expected return over the episode's decisions; bootstrap over episodes"
    return SideChannelReport(
        info, channel, label, refs, following, refs.random_index, gd(0, R), gd(1, Ro),
        bootstrap_mean_score(list(profiles[:, 0]), settings, method),
        bootstrap_mean_score(list(profiles[:, 1]), settings, method),
    )
