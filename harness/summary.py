"""The results table of one or more runs, with 95% confidence intervals.

Per-episode figures get intervals over episodes: a percentile bootstrap for means (return,
length), which never leaves the range of what was observed, and Wilson intervals for rates
(success). Per-step metrics (chess: centipawn loss, best-move rate) are correlated within
an episode, so their intervals come from a bootstrap that resamples whole episodes. With
fewer than :data:`harness.stats.MIN_UNITS` episodes a mean gets no interval: the table says
the sample is too small. Play metrics count the agent's own moves only: moves a fallback
chose (generate mode, no reply accepted) are left out and counted apart.
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
from harness.records import load_episodes, load_steps, read_manifest, run_status
from harness.stats import MIN_UNITS, Interval, bootstrap_ci, mean_interval, wilson_interval
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
    #: Tokens read and written over the finished episodes' decisions, or None when the
    #: backend counted none.
    usage: Usage | None = None


def _rate(k: int, n: int) -> Interval | None:
    return wilson_interval(k, n) if n else None


def _mean(values: Sequence[float]) -> Interval | None:
    return mean_interval(values) if len(values) else None


def parses_replies(mode: str | None) -> bool:
    """Whether agent ``mode`` reads free-text replies that can be refused (so invalid-reply rates apply)."""
    from harness.agents import MODES

    return mode in MODES and bool(MODES.entry(mode).metadata.get("parses_replies"))


def summarize(run_dir: str | Path) -> RunSummary:
    """Read a run directory and compute its figures."""
    manifest = read_manifest(run_dir)
    cfg = manifest["config"]
    episodes = list(load_episodes(run_dir))
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
    successes = [e.success for e in episodes if e.success is not None]
    generate = parses_replies(cfg.get("mode"))
    rates = frozenset(_RATE_METRICS | set(manifest["environment"].get("rate_metrics", ())))
    opponent = (manifest["environment"].get("description") or {}).get("opponent") or manifest["environment"]["options"].get("opponent")
    return RunSummary(
        run_dir=str(run_dir),
        model=manifest["model"]["name"],
        env=cfg["env"] + (f"/{manifest['environment']['variant']}" if manifest["environment"].get("variant") else ""),
        encoding=cfg["encoding"],
        mode=cfg["mode"],
        status=run_status(run_dir, manifest),
        episodes=len(episodes),
        decisions=decisions,
        total_reward=_mean([e.total_reward for e in episodes]),
        length=_mean([e.steps for e in episodes]),
        success=_rate(sum(successes), len(successes)),
        # Every accepted reply plus every refused one was a reply.
        invalid_reply_rate=_rate(invalid, invalid + decisions - fallbacks) if generate else None,
        fallback_rate=_rate(fallbacks, decisions) if generate else None,
        invalid_by_kind=dict(by_kind),
        opponent=None if opponent is None else str(opponent),
        outcomes={
            name: wilson_interval(sum(e.outcome == name for e in episodes), len(episodes))
            for name in sorted({e.outcome for e in episodes if e.outcome is not None})
        },
        metrics=_episode_bootstrap(per_episode, rates),
        rate_metrics=rates,
        usage=usage,
    )


def _episode_bootstrap(per_episode: dict[int, dict[str, list[float]]], rates: frozenset[str] = frozenset(_RATE_METRICS)) -> dict[str, Interval]:
    """Pooled mean of each step metric, with a bootstrap interval over episodes.

    For 0/1 metrics the interval is widened to contain the Wilson interval of the pooled
    counts, so that an all-zero sample does not claim a rate of exactly zero.
    """
    names = sorted({name for metrics in per_episode.values() for name in metrics})
    result = {}
    for name in names:
        groups = [np.asarray(m[name]) for m in per_episode.values() if m.get(name)]
        sums = np.array([g.sum() for g in groups])
        counts = np.array([len(g) for g in groups])
        estimate = float(sums.sum() / counts.sum())
        lo = hi = float("nan")
        if len(groups) >= MIN_UNITS:
            _, lo, hi = bootstrap_ci(np.arange(len(groups)), lambda idx: sums[idx].sum() / counts[idx].sum(), seed=0)
        if name in rates:
            _, w_lo, w_hi = wilson_interval(int(round(sums.sum())), int(counts.sum()))
            lo, hi = (w_lo, w_hi) if np.isnan(lo) else (min(lo, w_lo), max(hi, w_hi))
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
    return f"{value / s.decisions:,.1f}" if s.decisions else "-"


def print_summaries(summaries: Sequence[RunSummary], console: Console, prices: Prices | None = None) -> None:
    """One table, a column per run and a row per figure; intervals are 95%.

    Runs with counted tokens add their totals and means per decision, and with ``prices``
    the cost per run and per decision.
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
    outcome_names = sorted({o for s in summaries for o in s.outcomes})
    rows += [(f"ended: {o}", lambda s, o=o: _fmt(s.outcomes.get(o), percent=True)) for o in outcome_names]
    rows += [(m, lambda s, m=m: _fmt(s.metrics.get(m), percent=m in s.rate_metrics, digits=1)) for m in metric_names]
    if any(s.usage is not None for s in summaries):
        def tokens(s: RunSummary, key: str) -> str:
            if s.usage is None:
                return "-"
            value = getattr(s.usage, key)
            return f"{value:,} ({_per_decision(s, value)} / decision)"

        rows += [("prompt tokens", lambda s: tokens(s, "prompt_tokens")),
                 ("completion tokens", lambda s: tokens(s, "completion_tokens"))]
        if any(s.usage is not None and s.usage.reasoning_tokens for s in summaries):
            rows.append(("reasoning tokens", lambda s: tokens(s, "reasoning_tokens")))
        if prices is not None:
            def cost(s: RunSummary) -> str:
                if s.usage is None:
                    return "-"
                total = prices.cost(s.usage)
                return f"{total:.4g} ({total / s.decisions:.3g} / decision)" if s.decisions else f"{total:.4g}"

            rows.append(("cost", cost))
    for label, cell in rows:
        table.add_row(label, *(cell(s) for s in summaries))
    console.print(table)
