"""The exact player of a solvable game: the reference every game row is read against.

``solver`` plays uniformly among the moves of the best game-theoretic outcome (win, else
draw, else loss), as computed by the game's exact solver (:mod:`textenvs.games.solver`,
memoised negamax). It is the same player as a game's ``opponent = "optimal"``, so a
model's optimal-move rate, blunder rate and W/D/L sit next to an agent that never errs.
"""

from __future__ import annotations

import time
from typing import Any, Sequence

import numpy as np

from harness.agents.base import BaselineError, Choice, Decision, draw, reference_choice
from harness.backends.base import ModelInfo
from harness.records import BASELINE_BACKEND


class SolverAgent:
    """Uniform over the legal moves of the best exact outcome, one decision at a time."""

    mode = "choose"
    name = "solver"

    def act(self, decisions: Sequence[Decision]) -> list[Choice]:
        """One optimal move per decision, drawn with the episode's generator among ties."""
        from textenvs.games import GameView, solver_for

        choices = []
        for d in decisions:
            start = time.perf_counter()
            view = d.state
            if not isinstance(view, GameView):
                raise BaselineError(f"agent 'solver' plays games solved exactly (textenvs.games), not {type(view).__name__} states")
            best = set(solver_for(view.game).best_moves(view.position))
            optimal = np.array([float(move in best) for move in d.legal])
            probs = optimal / optimal.sum()
            choices.append(reference_choice(draw(d, probs), probs, time.perf_counter() - start))
        return choices

    def info(self) -> ModelInfo:
        """For the manifest."""
        return ModelInfo(self.name, BASELINE_BACKEND, "exact game solver: uniform over the moves of the best outcome")

    def close(self) -> None:
        """Nothing to release (solvers are cached per game by textenvs)."""


def build_solver(config: Any, options: Any, progress: Any = None) -> SolverAgent:
    """The ``solver`` baseline (games solved exactly: checked by :func:`harness.agents.build_baseline`)."""
    return SolverAgent()
