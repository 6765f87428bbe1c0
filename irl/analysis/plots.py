"""Figures of fitted objectives and scores (matplotlib, Agg backend: files only, no display).

* :func:`plot_tabular_reward`: the inferred reward over the grid next to the true one.
  Both panels show the *reward on arrival* in each state: the mean of ``r(s, a)`` over
  the transitions ``(s, a) -> s'`` into it from decision states, weighted by
  ``P(s' | s, a)``, computed the same way for the fitted and the true ``[S, A]`` rewards.
  A third panel shows the fitted state score ``Phi = f . w`` when there is one (the
  reward is its change, or its value on arrival; :mod:`irl.coherence`). Where several
  MDP states share a grid cell (keys held, chests left, passenger...), the cell shows
  their mean (``aggregate="mean"``, the default) or their maximum (``"max"``); cells
  with no state (walls) are blank.
* :func:`plot_chess_weights`: the choice model's feature weights with their intervals.
* :func:`plot_comparison`: every score of every agent as a bar with its interval.
* :func:`plot_forest`: a forest plot of one environment's agents, GD and return, each a
  point with its interval (a diamond where it is exact), reference agents shaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

__all__ = ["arrival_reward", "grid_values", "plot_tabular_reward", "plot_chess_weights", "plot_comparison", "plot_forest"]

AGGREGATES = ("mean", "max")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> Path:
    """Lay out, write and close ``fig``."""
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    _pyplot().close(fig)
    return path


def arrival_reward(mdp: Any, reward: np.ndarray) -> np.ndarray:
    """``[S]`` mean reward of the transitions into each state from decision states.

    ``reward`` is ``[S, A]`` (expected over the next state) or ``[S, A, S]``. States never
    entered from a non-terminal state get ``nan``.
    """
    P = np.asarray(mdp.transitions, dtype=float) * (~np.asarray(mdp.terminal, dtype=bool))[:, None, None]
    r = np.asarray(reward, dtype=float)
    if r.ndim == 2:
        r = np.broadcast_to(r[:, :, None], P.shape)
    weight = P.sum(axis=(0, 1))
    total = np.where(P > 0, P * r, 0.0).sum(axis=(0, 1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(weight > 0, total / np.where(weight > 0, weight, 1.0), np.nan)


def grid_values(mdp: Any, values: np.ndarray, aggregate: str = "mean") -> np.ndarray:
    """``[rows, cols]`` per-cell aggregate (module docstring) of per-state ``values``."""
    if aggregate not in AGGREGATES:
        raise ValueError(f"aggregate must be one of {AGGREGATES}, got {aggregate!r}")
    if mdp.grid_shape is None or mdp.positions is None:
        raise ValueError("this MDP has no grid positions")
    h, w = mdp.grid_shape
    out = np.full((h, w), np.nan)
    pos = np.asarray(mdp.positions)
    v = np.asarray(values, dtype=float)
    for r in range(h):
        for c in range(w):
            sel = (pos[:, 0] == r) & (pos[:, 1] == c) & np.isfinite(v)
            if sel.any():
                out[r, c] = v[sel].mean() if aggregate == "mean" else v[sel].max()
    return out


def _heatmap(ax: Any, grid: np.ndarray, title: str) -> None:
    masked = np.ma.masked_invalid(grid)
    finite = grid[np.isfinite(grid)]
    lim = float(np.max(np.abs(finite))) if finite.size else 1.0
    lim = lim or 1.0
    im = ax.imshow(masked, cmap="RdBu_r", vmin=-lim, vmax=lim)
    ax.set_title(title, fontsize=9)
    ax.set_xticks(range(grid.shape[1]))
    ax.set_yticks(range(grid.shape[0]))
    ax.tick_params(labelsize=7)
    if grid.size <= 144:
        for (r, c), val in np.ndenumerate(grid):
            if np.isfinite(val):
                ax.text(c, r, f"{val:.2g}", ha="center", va="center", fontsize=6)
    ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04)


def plot_tabular_reward(
    mdp: Any,
    reward: np.ndarray,
    path: str | Path,
    *,
    state_score: np.ndarray | None = None,
    title: str = "",
    aggregate: str = "mean",
) -> Path:
    """Save the fitted reward over the grid next to the true reward (module docstring).

    MDPs without a grid get a line plot over state indices instead.
    """
    plt = _pyplot()
    path = Path(path)
    fitted = arrival_reward(mdp, reward)
    true = arrival_reward(mdp, mdp.rewards)
    panels = [("inferred reward on arrival", fitted), ("true reward on arrival", true)]
    if state_score is not None:
        panels.insert(0, ("inferred state score Φ", np.asarray(state_score, dtype=float)))
    if mdp.grid_shape is None or mdp.positions is None:
        fig, ax = plt.subplots(figsize=(8, 3))
        for label, values in panels:
            finite = values[np.isfinite(values)]
            scale = float(np.max(np.abs(finite))) if finite.size else 1.0
            ax.plot(values / (scale or 1.0), label=f"{label} (scaled)")
        ax.set_xlabel("state")
        ax.legend(fontsize=7)
    else:
        fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 3.4))
        for ax, (label, values) in zip(np.atleast_1d(axes), panels):
            agg = f" ({aggregate} over states)" if len(mdp.positions) > np.prod(mdp.grid_shape) else ""
            _heatmap(ax, grid_values(mdp, values, aggregate), label + agg)
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def plot_chess_weights(
    names: Sequence[str], weights: Sequence[float], low: Sequence[float], high: Sequence[float], path: str | Path, *, title: str = ""
) -> Path:
    """Save a bar chart of the choice model's weights with their intervals."""
    plt = _pyplot()
    path = Path(path)
    w = np.asarray(weights, dtype=float)
    lo = np.asarray(low, dtype=float)
    hi = np.asarray(high, dtype=float)
    err = np.vstack([np.clip(w - lo, 0, None), np.clip(hi - w, 0, None)])
    fig, ax = plt.subplots(figsize=(max(4.0, 0.8 * len(w) + 1.5), 3.4))
    x = np.arange(len(w))
    ax.bar(x, w, yerr=np.nan_to_num(err), capsize=3, color=["tab:blue" if v >= 0 else "tab:red" for v in w])
    ax.axhline(0, color="black", linewidth=0.6)
    ax.set_xticks(x)
    ax.set_xticklabels(list(names), rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("weight (per unit of feature)")
    if title:
        ax.set_title(title, fontsize=10)
    return _save(fig, path)


def _axis_label(spec: Any) -> str:
    title = spec.title.replace("\n", " ")
    return f"{title} ({spec.better} is better)" if spec.better else title


def plot_comparison(reports: Sequence[Any], path: str | Path, *, title: str = "") -> Path:
    """Save one panel per score, a bar per run (agent / env / encoding / mode) with its interval.

    ``reports`` are :class:`irl.analysis.report.CoherenceReport` objects.
    """
    plt = _pyplot()
    path = Path(path)
    labels = [f"{r.agent}\n{r.env_label} / {r.info.get('encoding')} / {r.info.get('mode')}" for r in reports]
    from irl.analysis.specs import table_specs

    specs = table_specs()

    fig, axes = plt.subplots(1, len(specs), figsize=(3.4 * len(specs), 0.55 * len(reports) + 1.8), sharey=True)
    y = np.arange(len(reports))
    colors = ["tab:orange" if r.is_baseline else "tab:blue" for r in reports]
    for ax, spec in zip(axes, specs):
        label = _axis_label(spec)
        est, lo, hi = [], [], []
        for r in reports:
            s = r.score(spec.name)
            ok = s is not None and s.ok
            est.append(s.estimate if ok else np.nan)
            lo.append(s.low if ok else np.nan)
            hi.append(s.high if ok else np.nan)
        est_a, lo_a, hi_a = (np.asarray(v, dtype=float) for v in (est, lo, hi))
        err = np.vstack([np.clip(est_a - lo_a, 0, None), np.clip(hi_a - est_a, 0, None)])
        ax.barh(y, np.nan_to_num(est_a), xerr=np.nan_to_num(err), capsize=3, color=colors)
        for yi, v in zip(y, est_a):
            if not np.isfinite(v):
                ax.text(0, yi, " n/a", va="center", fontsize=7, color="gray")
        ax.axvline(0, color="black", linewidth=0.6)
        ax.set_title(label, fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0].set_yticks(y)
    axes[0].set_yticklabels(labels, fontsize=7)
    axes[0].invert_yaxis()
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, path)


#: The panels of :func:`plot_forest`: (report attribute, axis label, values marked).
FOREST_SCORES = (
    ("gd", "GD (random 0, optimal 1)", (0.0, 1.0)),
    ("true_return", "return", (0.0,)),
)


def plot_forest(reports: Sequence[Any], path: str | Path, *, title: str = "") -> Path:
    """Save a forest plot: a row per run, GD and return each a point with its 95% interval.

    Reference agents' rows are shaded; a score known exactly (low = high, method
    ``exact``) is a diamond; a missing one says ``n/a``. GD's panel marks 0 (the random
    mover) and 1 (an optimal agent). Meant for the runs of one environment.
    """
    plt = _pyplot()
    path = Path(path)
    labels = [f"{r.agent} / {r.info.get('encoding')} / {r.info.get('mode')}" for r in reports]
    fig, axes = plt.subplots(1, len(FOREST_SCORES), figsize=(4.2 * len(FOREST_SCORES) + 2.5, 0.38 * len(reports) + 1.4), sharey=True)
    y = np.arange(len(reports))
    for ax, (attr, label, marks) in zip(np.atleast_1d(axes), FOREST_SCORES):
        for yi, r in zip(y, reports):
            if r.is_baseline:
                ax.axhspan(yi - 0.5, yi + 0.5, color="#f3ead6", zorder=0)
            s = getattr(r, attr, None)
            if s is None or not s.ok:
                ax.text(0.02, yi, "n/a", va="center", fontsize=7, color="gray", transform=ax.get_yaxis_transform())
                continue
            exact = np.isfinite(s.low) and s.low == s.high
            if np.isfinite(s.low) and np.isfinite(s.high) and not exact:
                ax.plot([s.low, s.high], [yi, yi], color="tab:blue", linewidth=1.6, zorder=2)
            ax.plot([s.estimate], [yi], marker="D" if exact else "o", color="black" if exact else "tab:blue",
                    markersize=5, zorder=3)
        for m in marks:
            ax.axvline(m, color="gray", linestyle="--", linewidth=0.8, zorder=1)
        ax.set_title(label, fontsize=9)
        ax.tick_params(labelsize=7)
        ax.set_ylim(len(reports) - 0.5, -0.5)
    first = np.atleast_1d(axes)[0]
    first.set_yticks(y)
    first.set_yticklabels(labels, fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def report_mdp(report: Any) -> Any:
    """The exact MDP of a tabular report's environment (rebuilt from the run's identity)."""
    from irl.analysis.runs import RunInfo

    env = RunInfo(**report.info).make_env()
    try:
        if getattr(env, "layout_seed", 0) is None:  # a new layout every episode: the run's stacked MDP
            from irl.analysis.runs import load_tabular

            return load_tabular(report.run_dir).mdp
        return env.mdp()
    finally:
        env.close()


def _title(report: Any) -> str:
    return f"{report.agent} on {report.env_label} / {report.info.get('encoding')} / {report.info.get('mode')}"


def plot_weights_report(report: Any, path: str | Path, aggregate: str = "mean") -> Path:
    """The figure of a choice-model report (chess, games): its feature weights with their intervals."""
    return plot_chess_weights(
        report.feature_names, report.weights,
        [np.nan if v is None else v for v in report.weights_low],
        [np.nan if v is None else v for v in report.weights_high],
        path, title=_title(report),
    )


def plot_reward_report(report: Any, path: str | Path, aggregate: str = "mean") -> Path:
    """The figure of a tabular report: the fitted reward map next to the true one (a run over
    many layouts: the map of its first layout)."""
    title = _title(report)
    mdp, reward = report_mdp(report), np.asarray(report.reward, dtype=float)
    score = None if report.state_score is None else np.asarray(report.state_score, dtype=float)
    if hasattr(mdp, "parts"):
        end = int(mdp.offsets[1])
        mdp, reward, score = mdp.parts[0], reward[:end], None if score is None else score[:end]
        title += " (first layout)"
    return plot_tabular_reward(mdp, reward, path, state_score=score, title=title, aggregate=aggregate)


def plot_report(report: Any, path: str | Path, aggregate: str = "mean") -> Path:
    """The figure of one report, as its fit kind draws it (:mod:`irl.analysis.kinds`)."""
    from irl.analysis.kinds import plot_of

    return plot_of(report.kind)(report, path, aggregate)
