"""The results table of one or more runs, with 95% confidence intervals.

Per-episode outcomes whose range is known get intervals valid at every number of
episodes, from one on (:mod:`harness.stats`): the return a betting confidence sequence
over the least and greatest return possible within the step limit (the manifest's
``environment.return_range``, from the environment's exact MDP or its rules), success
and each ending a Clopper-Pearson interval, and rate metrics (a game's optimal-move and
blunder rates) the betting interval of their per-episode rates over ``[0, 1]``. A run
whose episode count was chosen by looking at its intervals (``episodes_target``) gets
betting intervals throughout, which stay valid under optional stopping. Where no range is
known (a random layout per episode; chess centipawn loss, length) the mean gets a
percentile bootstrap over whole episodes, and none below :data:`harness.stats.MIN_UNITS`
episodes: the table says the sample is too small. Play metrics count the agent's own
moves only: moves a fallback chose (generate mode, no reply accepted) are left out and
counted apart.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from rich.console import Console
from rich.table import Table

from harness.backends.base import Usage
from harness.records import Manifest, load_manifest, load_steps, run_status, sound_episodes
from harness.stats import (
    BETTING_METHOD, CLOPPER_PEARSON_METHOD, MIN_UNITS, Interval, betting_interval, bootstrap_ci, bounded_mean_interval,
    mean_interval, wilson_interval,
)
from harness.stopping import Stopping
from textenvs.errors import UserError
#: Step metrics that are 0/1: shown as percentages, with rate intervals. An environment
#: names its own in the manifest (``environment.rate_metrics``).
_RATE_METRICS = {"best_move"}


@dataclass(frozen=True)
class RunSummary:
    """The headline figures of one run."""

    run_dir: str
    model: str
    env: str
    encoding: str
    mode: str
    status: str
    episodes: int
    decisions: int
    total_reward: Interval | None
    length: Interval | None
    success: Interval | None
    #: Share of replies the parser refused (generate mode).
    invalid_reply_rate: Interval | None
    #: Share of decisions taken by the fallback (no reply accepted).
    fallback_rate: Interval | None
    invalid_by_kind: dict[str, int] = field(default_factory=dict)
    metrics: dict[str, Interval] = field(default_factory=dict)
    #: Share of episodes that ended in each outcome the environment named (``win``,
    #: ``draw``, ``loss``; ``goal``, ``hole``...), with Wilson intervals.
    outcomes: dict[str, Interval] = field(default_factory=dict)
    #: The metrics shown as percentages.
    rate_metrics: frozenset[str] = frozenset(_RATE_METRICS)
    #: Who the agent played against (two-player environments), as the run names it.
    opponent: str | None = None
    #: The least and greatest return possible within the step limit, or ``None`` (unknown).
    return_range: tuple[float, float] | None = None
    #: Whether the episode count was chosen by looking at the intervals (betting throughout).
    stopped_adaptively: bool = False
    #: Runs with an episode target: how many episodes it played and why it stopped.
    stopping: Stopping | None = None
    #: Tokens read and written (and spent reasoning): the manifest's totals where the run
    #: recorded them, else summed over the finished episodes' steps; None when the backend
    #: counted none.
    usage: Usage | None = None
    #: Where ``usage`` came from: ``"manifest"`` (its totals) or ``"steps"`` (summed here).
    usage_source: str = "steps"
    #: The decisions ``usage`` covers (its per-decision means divide by this).
    usage_decisions: int = 0


def _rate(k: int, n: int) -> Interval | None:
    return wilson_interval(k, n) if n else None


def _mean(values: Sequence[float]) -> Interval | None:
    return mean_interval(values) if len(values) else None


def _bounded(values: Sequence[float], bounds: tuple[float, float] | None, *, binary: bool = False) -> Interval | None:
    """Bounded-mean interval of per-episode ``values`` in ``bounds``; the bootstrap when unknown."""
    if not len(values):
        return None
    if bounds is None:
        return mean_interval(values)
    return bounded_mean_interval(values, bounds[0], bounds[1], binary=binary)


def return_range_of(manifest: Manifest) -> tuple[float, float] | None:
    """The run's ``environment.return_range``; for runs written before it was recorded,
    asked of the environment rebuilt from the manifest (``None`` when it cannot say)."""
    if manifest.environment.return_range is not None:
        return manifest.environment.return_range
    from harness.runner import episode_return_range

    try:
        env = manifest.config.make_env()  # a model opponent changes who plays, not what an episode can return
    except (UserError, ImportError):
        return None
    try:
        return episode_return_range(env, manifest.config.max_steps)
    finally:
        env.close()


def parses_replies(mode: str | None) -> bool:
    """Whether agent ``mode`` reads free-text replies that can be refused (so invalid-reply rates apply)."""
    from harness.agents import MODES

    return mode in MODES and bool(MODES.entry(mode).metadata.get("parses_replies"))


def summarize(run_dir: str | Path) -> RunSummary:
    """Read a run directory and compute its figures."""
    manifest = load_manifest(run_dir)
    cfg, environment = manifest.config, manifest.environment
    episodes = sound_episodes(run_dir)
    finished = {e.episode for e in episodes}
    per_episode: dict[int, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    decisions = 0
    usage: Usage | None = None
    for step in load_steps(run_dir):
        if step.episode not in finished:
            continue
        decisions += 1
        if step.usage is not None:
            usage = step.usage if usage is None else usage + step.usage
        if step.action_source == "fallback":
            continue
        for name, value in (step.info.get("metrics") or {}).items():
            per_episode[step.episode][name].append(float(value))
    invalid = sum(e.invalid_replies for e in episodes)
    fallbacks = sum(e.fallback_actions for e in episodes)
    by_kind: dict[str, int] = defaultdict(int)
    for e in episodes:
        for kind, count in e.invalid_by_kind.items():
            by_kind[kind] += count
    successes = [float(e.success) for e in episodes if e.success is not None]
    generate = parses_replies(cfg.mode)
    bounds = return_range_of(manifest)
    adaptive = cfg.episodes_target is not None
    binary = not adaptive  # Clopper-Pearson needs a fixed n; betting holds under stopping too
    rates = frozenset(_RATE_METRICS | set(environment.rate_metrics))
    return RunSummary(
        run_dir=str(run_dir),
        model=manifest.model.name,
        env=cfg.env + (f"/{environment.variant}" if environment.variant else ""),
        encoding=cfg.encoding,
        mode=cfg.mode,
        status=run_status(run_dir, manifest),
        episodes=len(episodes),
        decisions=decisions,
        total_reward=_bounded([e.total_reward for e in episodes], bounds),
        length=_mean([e.steps for e in episodes]),
        success=_bounded(successes, (0.0, 1.0), binary=binary),
        # Every accepted reply plus every refused one was a reply.
        invalid_reply_rate=_rate(invalid, invalid + decisions - fallbacks) if generate else None,
        fallback_rate=_rate(fallbacks, decisions) if generate else None,
        invalid_by_kind=dict(by_kind),
        opponent=environment.opponent,
        outcomes={
            name: bounded_mean_interval([float(e.outcome == name) for e in episodes], 0.0, 1.0, binary=binary)
            for name in sorted({e.outcome for e in episodes if e.outcome is not None})
        },
        metrics=_episode_metrics(per_episode, rates),
        rate_metrics=rates,
        return_range=bounds,
        stopped_adaptively=adaptive,
        stopping=Stopping.from_json(manifest.stopping) if manifest.stopping else None,
        **_usage_fields(manifest, usage, decisions),
    )


def _usage_fields(manifest: Manifest, summed: Usage | None, decisions: int) -> dict[str, Any]:
    """The manifest's usage totals where it has them, else those summed over the steps."""
    totals = manifest.usage
    if totals is not None:
        return {"usage": totals.usage, "usage_source": "manifest", "usage_decisions": totals.decisions}
    return {"usage": summed, "usage_source": "steps", "usage_decisions": decisions}


def _episode_metrics(per_episode: dict[int, dict[str, list[float]]], rates: frozenset[str] = frozenset(_RATE_METRICS)) -> dict[str, Interval]:
    """Each step metric over episodes (steps within an episode are not independent).

    A rate (0/1 per step) is the mean over episodes of each episode's rate, with the
    betting interval over ``[0, 1]``: valid at any number of episodes, never a point. Any
    other metric (centipawn loss: no known range) is the pooled mean over steps with a
    percentile bootstrap that resamples whole episodes, none below ``MIN_UNITS`` episodes.
    """
    names = sorted({name for metrics in per_episode.values() for name in metrics})
    result = {}
    for name in names:
        groups = [np.asarray(m[name]) for m in per_episode.values() if m.get(name)]
        if name in rates:
            result[name] = betting_interval([g.mean() for g in groups], 0.0, 1.0)
            continue
        sums = np.array([g.sum() for g in groups])
        counts = np.array([len(g) for g in groups])
        estimate = float(sums.sum() / counts.sum())
        lo = hi = float("nan")
        if len(groups) >= MIN_UNITS:
            _, lo, hi = bootstrap_ci(np.arange(len(groups)), lambda idx: sums[idx].sum() / counts[idx].sum(), seed=0)
        result[name] = Interval(estimate, float(lo), float(hi), 0.95)
    return result


def _fmt(interval: Interval | None, percent: bool = False, digits: int = 2) -> str:
    if interval is None:
        return "-"
    est, lo, hi = interval
    if percent:
        return f"{100 * est:.1f}% [{100 * lo:.1f}, {100 * hi:.1f}]"
    if np.isnan(lo):
        return f"{est:.{digits}f} (n<{MIN_UNITS})"
    return f"{est:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


@dataclass(frozen=True)
class Prices:
    """Prices per million tokens, in any currency, for the cost rows of :func:`print_summaries`."""

    prompt: float
    completion: float

    def cost(self, usage: Usage) -> float:
        """The cost of ``usage`` (reasoning tokens are completion tokens)."""
        return (usage.prompt_tokens * self.prompt + usage.completion_tokens * self.completion) / 1e6


def _per_decision(s: RunSummary, value: float) -> str:
    return f"{value / s.usage_decisions:,.1f}" if s.usage_decisions else "-"


def print_summaries(summaries: Sequence[RunSummary], console: Console, prices: Prices | None = None) -> None:
    """One table, a column per run and a row per figure; intervals are 95%.

    Runs with counted tokens add their totals (the manifest's, when the run recorded them;
    a row says which) and means per decision, and with ``prices`` the cost per run and per
    decision.
    """
    metric_names = sorted({m for s in summaries for m in s.metrics})
    table = Table(title="results (95% confidence intervals)")
    table.add_column("")
    for s in summaries:
        against = "" if s.opponent is None else f"\nvs {s.opponent}"
        table.add_column(f"{s.model}\n{s.env} / {s.encoding} / {s.mode}{against}", overflow="fold")
    rows: list[tuple[str, Any]] = [
        ("episodes", lambda s: f"{s.episodes}" + ("" if s.status == "complete" else f" ({s.status})")),
        ("decisions", lambda s: str(s.decisions)),
        ("return", lambda s: _fmt(s.total_reward)),
        ("length", lambda s: _fmt(s.length, digits=1)),
        ("success", lambda s: _fmt(s.success, percent=True)),
        ("invalid replies", lambda s: _fmt(s.invalid_reply_rate, percent=True)),
        ("fallback actions", lambda s: _fmt(s.fallback_rate, percent=True)),
    ]
    if any(s.stopping is not None for s in summaries):
        rows += [
            ("stopped", lambda s: "-" if s.stopping is None else s.stopping.describe()),
            ("GD (stopping rule)", lambda s: "-" if s.stopping is None or s.stopping.episodes == 0 else
             f"{s.stopping.gd:.2f} [{s.stopping.gd_low:.2f}, {s.stopping.gd_high:.2f}]"),
        ]
    outcome_names = sorted({o for s in summaries for o in s.outcomes})
    rows += [(f"ended: {o}", lambda s, o=o: _fmt(s.outcomes.get(o), percent=True)) for o in outcome_names]
    rows += [(m, lambda s, m=m: _fmt(s.metrics.get(m), percent=m in s.rate_metrics, digits=1)) for m in metric_names]
    if any(s.usage is not None for s in summaries):
        def tokens(s: RunSummary, key: str) -> str:
            if s.usage is None:
                return "-"
            value = getattr(s.usage, key)
            return f"{value:,} ({_per_decision(s, value)} / decision)"

        rows += [("tokens counted in", lambda s: "-" if s.usage is None else
                  "manifest totals" if s.usage_source == "manifest" else "steps (summed)"),
                 ("prompt tokens", lambda s: tokens(s, "prompt_tokens")),
                 ("completion tokens", lambda s: tokens(s, "completion_tokens")),
                 ("reasoning tokens", lambda s: tokens(s, "reasoning_tokens"))]
        if prices is not None:
            def cost(s: RunSummary) -> str:
                if s.usage is None:
                    return "-"
                total = prices.cost(s.usage)
                return f"{total:.4g} ({total / s.usage_decisions:.3g} / decision)" if s.usage_decisions else f"{total:.4g}"

            rows.append(("cost", cost))
    for label, cell in rows:
        table.add_row(label, *(cell(s) for s in summaries))
    console.print(table)
    console.print(interval_note(summaries))


def interval_note(summaries: Sequence[RunSummary]) -> str:
    """The footnote that says which interval each row has, and why."""
    ranges = sorted({s.return_range for s in summaries if s.return_range is not None})
    parts = []
    if ranges:
        over = ", ".join(f"[{lo:g}, {hi:g}]" for lo, hi in ranges)
        parts.append(f"return: {BETTING_METHOD} over {over}, the least and greatest return possible within the step limit")
    unknown = "return where its range is unknown, " if any(s.return_range is None for s in summaries) else ""
    parts.append(f"{unknown}length and metrics without a known range: percentile bootstrap over episodes, none below {MIN_UNITS}")
    if any(not s.stopped_adaptively for s in summaries):
        parts.append(f"success and endings: {CLOPPER_PEARSON_METHOD} (fixed number of episodes)")
    if any(s.stopped_adaptively for s in summaries):
        parts.append("where the number of episodes was chosen adaptively, betting intervals throughout (valid under optional stopping)")
    if any(m in s.rate_metrics for s in summaries for m in s.metrics):
        parts.append("rate metrics: betting interval of the per-episode rates over [0, 1]")
    return "Intervals: " + "; ".join(parts) + "."
