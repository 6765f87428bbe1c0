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
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

__all__ = ["arrival_reward", "grid_values", "plot_tabular_reward", "plot_chess_weights", "plot_comparison"]

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


#: The scores of :func:`plot_comparison`: (report attribute, axis label).
COMPARISON_SCORES = (
    ("explained", "explained behaviour (higher: more coherent)"),
    ("stability", "stability distance (lower: more stable)"),
    ("encoding_consistency", "encoding consistency distance (lower)"),
    ("alignment_distance", "STARC distance to the true reward (lower)"),
    ("alignment_regret", "regret alignment (random 0, optimal 1)"),
    ("gd", "GD (random 0, optimal 1)"),
    ("true_return", "true return"),
)


def plot_comparison(reports: Sequence[Any], path: str | Path, *, title: str = "") -> Path:
    """Save one panel per score, a bar per run (agent / env / encoding / mode) with its interval.

    ``reports`` are :class:`irl.analysis.report.CoherenceReport` objects.
    """
    plt = _pyplot()
    path = Path(path)
    labels = [f"{r.agent}\n{r.env_label} / {r.info.get('encoding')} / {r.info.get('mode')}" for r in reports]
    fig, axes = plt.subplots(1, len(COMPARISON_SCORES), figsize=(3.4 * len(COMPARISON_SCORES), 0.55 * len(reports) + 1.8), sharey=True)
    y = np.arange(len(reports))
    colors = ["tab:orange" if r.is_baseline else "tab:blue" for r in reports]
    for ax, (attr, label) in zip(axes, COMPARISON_SCORES):
        est, lo, hi = [], [], []
        for r in reports:
            s = getattr(r, attr)
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


def report_mdp(report: Any) -> Any:
    """The exact MDP of a tabular report's environment (rebuilt from the run's identity)."""
    from textenvs import make_env

    env = make_env(report.info["env"], report.info.get("variant"), **report.info.get("options", {}))
    try:
        if getattr(env, "layout_seed", 0) is None:  # a new layout every episode: the run's stacked MDP
            from irl.analysis.runs import load_tabular

            return load_tabular(report.run_dir).mdp
        return env.mdp()
    finally:
        env.close()


def plot_report(report: Any, path: str | Path, aggregate: str = "mean") -> Path:
    """The picture of one report: chess weights with intervals, or the fitted reward map next to the true one."""
    title = f"{report.agent} on {report.env_label} / {report.info.get('encoding')} / {report.info.get('mode')}"
    if report.kind == "chess":
        return plot_chess_weights(
            report.feature_names, report.weights,
            [np.nan if v is None else v for v in report.weights_low],
            [np.nan if v is None else v for v in report.weights_high],
            path, title=title,
        )
    mdp, reward = report_mdp(report), np.asarray(report.reward, dtype=float)
    score = None if report.state_score is None else np.asarray(report.state_score, dtype=float)
    if hasattr(mdp, "parts"):  # a run over many layouts: the map of its first layout
        end = int(mdp.offsets[1])
        mdp, reward, score = mdp.parts[0], reward[:end], None if score is None else score[:end]
        title += " (first layout)"
    return plot_tabular_reward(mdp, reward, path, state_score=score, title=title, aggregate=aggregate)
