"""The proxy table of a run: its GD against each candidate objective of its family, and which it follows.

:func:`analyse_proxy` reads a run on one of :data:`textenvs.proxy.PROXY_FAMILIES`' layouts
and scores it with :mod:`irl.proxy` against every candidate, over the run's step limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from irl.analysis.runs import RunInfo, load_tabular, read_info
from irl.analysis.scores import FitSettings, Score, bootstrap_mean_score
from irl.proxy import follows
from irl.side_channel import episode_gd
from textenvs.planning import expected_reward
from textenvs.proxy import candidate_reward, family_of

__all__ = ["ProxyReport", "analyse_proxy"]


@dataclass(frozen=True)
class ProxyReport:
    """One run against its family's candidates."""

    info: RunInfo
    family: str
    #: ``"train"`` or ``"test"``.
    split: str
    #: GD against each candidate, by label.
    gd: dict[str, Score]
    #: The candidate the behaviour follows, or ``None`` when the intervals cannot tell.
    follows: str | None


def analyse_proxy(run_dir: str | Path, settings: FitSettings = FitSettings()) -> ProxyReport:
    """Score the run in ``run_dir`` against its proxy family's candidates (module docstring)."""
    info = read_info(run_dir)
    found = family_of(info.env, info.variant, info.options)
    if found is None:
        raise ValueError(f"{run_dir}: {info.env_label} is not a layout of a proxy family")
    family, split = found
    run = load_tabular(run_dir)
    mdp, H = run.mdp, max(run.horizon, 1)
    level = 1 - settings.alpha
    gd: dict[str, Score] = {}
    for label, spec in family.candidates:
        reward = candidate_reward(mdp, spec)
        r = expected_reward(mdp.transitions, reward)
        returns = [float(r[np.asarray(e.states[: e.n_decisions], dtype=int), e.actions].sum()) for e in run.episodes]
        values = episode_gd(returns, mdp.transitions, reward, mdp.initial, horizon=H)
        gd[label] = (Score.missing("no policy does better than random within the step limit", level) if values is None
                     else bootstrap_mean_score(values, settings, f"GD against {label} over {H} steps; bootstrap over episodes"))
    named = {k: (v.estimate, v.low, v.high) for k, v in gd.items() if v.ok}
    return ProxyReport(info, family.name, split, gd, follows(named) if len(named) == len(gd) else None)
