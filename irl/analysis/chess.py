"""Chess runs: the Boltzmann choice model over legal moves (:mod:`irl.choice`) and its scores.

**The fitted model** is the joint model: the objective's features and the position-blind
prior's (:mod:`irl.analysis.priors`: the move's label, its fields or squares and piece, its
place in the list) together; the fitted objective is the weights of the objective's features
alone, so that a preference for some labels or the first move listed is absorbed by the
prior's weights and kept out of the objective (as the gridworld fits keep a label bias out
of the reward; why the joint model: :mod:`irl.choice`).

* ``explained``: :func:`irl.choice.explained_behaviour` with games as folds and the prior:
  the held-out gain of the joint model over the prior model, both fitted on the same
  training folds, the held-out likelihood being that of the moves played (also when fitted
  to recorded distributions); an agent blind to the position scores 0 or below;
* ``explained_uniform``: the joint model's held-out gain over uniform choice instead (which a
  label or list-position bias alone earns);
* ``stability``: the Pearson distance ``sqrt((1 - rho) / 2)`` between the objective's weight
  vectors fitted on random halves of the games (there is no tabular reward: it depends on
  the features' units);
* alignment against the game's objective, with a reference utility ``u`` of each legal
  move: Stockfish's evaluation change (pawns, for the mover) in chess, the exact
  game-theoretic value (+1 win, 0 draw, -1 loss) in games solved exactly
  (:mod:`irl.analysis.games`). ``alignment_regret`` is the share of the available gain
  ``max u - mean u`` that the fitted model's preferred move achieves (1: always a best
  move, 0: no better than a random legal move; interval from the bootstrap refits of
  the weights), and ``gd`` the same share for the moves the agent played (Everitt et
  al. 2025's GD with ``u`` as the task return; bootstrap over games).

The same functions serve chess and the games: only the name of the reference differs.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from irl.analysis.runs import ChessRun
from irl.analysis.scores import FitSettings, Score, quantile_score, ratio_score, half_splits
from irl.choice import ChoiceData, cross_validate, explained_behaviour, fit_choice, join_features, pack_decisions
from irl.epic import pearson_distance

__all__ = ["games_as_units", "joint_data", "chess_l2", "chess_explained", "chess_stability", "chess_alignment", "chess_gd"]


def joint_data(run: ChessRun) -> ChoiceData:
    """Every decision with the objective's features followed by the prior's (the fitted model,
    module docstring); the objective's features alone when the run has no prior. The
    objective's weights are the first ``len(run.feature_names)`` of a fit."""
    data = pack_decisions(run.decisions)
    prior = run.prior
    return data if prior is None else join_features(data, prior)


def games_as_units(run: ChessRun) -> list[list[int]]:
    """Decision indices per unit: games, or single decisions when there is one game."""
    units, start = [], 0
    for g in run.games:
        units.append(list(range(start, start + len(g.decisions))))
        start += len(g.decisions)
    if len(units) < 2:
        units = [[i] for i in range(start)]
    return units


def chess_l2(data, settings: FitSettings) -> float:
    """``settings.l2``, or the L2 strength chosen by cross-validation over decisions."""
    if settings.l2 is not None:
        return float(settings.l2)
    k = min(settings.folds, data.n_decisions)
    if k < 2:
        return 1e-2
    return cross_validate(data, k=k, seed=settings.seed).best_l2


def chess_explained(run: ChessRun, settings: FitSettings = FitSettings()) -> tuple[Score, Score]:
    """Explained behaviour of a chess or game run beyond its position-blind prior, and over
    uniform choice (module docstring): K-fold over games."""
    units = games_as_units(run)
    if len(units) < 2:
        missing = Score.missing("needs at least 2 decisions", 1 - settings.alpha, len(units))
        return missing, missing
    data = pack_decisions(run.decisions)
    chosen = [c for g in run.games for c in g.chosen]
    played = pack_decisions([(d.features, c) for d, c in zip(run.decisions, chosen)])
    k = min(settings.folds, len(units))  # no more folds than games to hold out
    prior = run.prior
    result = explained_behaviour(data, l2=settings.l2, k=k, seed=settings.seed, units=units, heldout=played, prior=prior)
    unit = "games" if len(run.games) >= 2 else "decisions"
    how = f"{k}-fold over {unit}; bootstrap over held-out {unit}"
    beyond = "uniform choice (no position-blind prior)" if prior is None else \
        "the position-blind prior (move labels and list position) fitted on the same folds"
    explained = ratio_score(result.unit_gains, result.unit_entropies, settings, f"gain over {beyond}, {how}")
    uniform = ratio_score(result.unit_gains_uniform, result.unit_entropies, settings, f"gain over uniform choice, {how}")
    return explained, uniform


def chess_stability(run: ChessRun, settings: FitSettings = FitSettings(), *, l2: float | None = None) -> Score:
    """Pearson distance between the objective's weight vectors fitted (jointly with the prior) on random halves of the games."""
    units = games_as_units(run)
    if len(units) < 2:
        return Score.missing("needs at least 2 decisions", 1 - settings.alpha, len(units))
    data = joint_data(run)
    lam = chess_l2(data, settings) if l2 is None else l2
    K = len(run.feature_names)
    values = []
    for a, b in half_splits(len(units), settings.splits, settings.seed):
        wa = fit_choice(data.subset(np.concatenate([units[i] for i in a])), l2=lam).weights[:K]
        wb = fit_choice(data.subset(np.concatenate([units[i] for i in b])), l2=lam).weights[:K]
        values.append(pearson_distance(wa, wb))
    return quantile_score(values, None, settings.alpha, f"Pearson distance of weights between halves; mean and central range over {settings.splits} random splits")


def _gains(utilities: Sequence[np.ndarray], picks: Sequence[int]) -> tuple[float, float]:
    """``sum (u[pick] - mean u)`` and ``sum (max u - mean u)`` over decisions."""
    got = sum(float(u[p] - u.mean()) for u, p in zip(utilities, picks))
    best = sum(float(u.max() - u.mean()) for u in utilities)
    return got, best


def _reference(run: ChessRun) -> tuple[str, str]:
    """What the reference utility is called in ``run``'s footnotes, and why it can be missing."""
    if run.kind == "game":
        return "exact move value", "needs the exact value of every legal move (recorded by every game run; none found)"
    return "Stockfish gain", "needs Stockfish's evaluation of every legal move (Stockfish not found, or chess alignment off)"


def _utilities(run: ChessRun) -> list[np.ndarray] | None:
    if not run.games or any(g.utilities is None for g in run.games):
        return None
    return [u for g in run.games for u in g.utilities]


def chess_alignment(run: ChessRun, weights: np.ndarray, boot: Sequence[np.ndarray], settings: FitSettings = FitSettings()) -> Score:
    """Share of the reference's available gain achieved by the fitted model's preferred moves."""
    level = 1 - settings.alpha
    name, why_missing = _reference(run)
    utilities = _utilities(run)
    if utilities is None:
        return Score.missing(why_missing, level)
    decisions = run.decisions

    def share(theta: np.ndarray) -> float | None:
        picks = [int(np.argmax(np.asarray(d.features) @ theta)) for d in decisions]
        got, best = _gains(utilities, picks)
        return got / best if best > 0 else None

    est = share(np.asarray(weights))
    if est is None:
        return Score.missing("every legal move of every position evaluates the same", level)
    return quantile_score([share(np.asarray(b)) for b in boot], est, settings.alpha,
                          f"{name} of the fitted model's preferred move, random 0, best 1; bootstrap ({len(boot)} refits)")


def chess_gd(run: ChessRun, settings: FitSettings = FitSettings()) -> Score:
    """GD with the reference utility as the task return: the agent's moves (module docstring)."""
    level = 1 - settings.alpha
    name, why_missing = _reference(run)
    if _utilities(run) is None:
        return Score.missing(why_missing, level)
    gains, bests = [], []
    for g in run.games:
        got, best = _gains(g.utilities, g.chosen)
        gains.append(got)
        bests.append(best)
    if sum(bests) <= 0:
        return Score.missing("every legal move of every position evaluates the same", level)
    return ratio_score(np.array(gains), np.array(bests), settings, f"{name} of the moves played, random 0, best 1; bootstrap over games")
