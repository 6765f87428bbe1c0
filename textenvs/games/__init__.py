"""Two-player games given only their rules, each solved exactly.

- The protocol (``base.py``): a :class:`Game` is a few methods over an immutable position
  (initial, legal moves, play, result, whose turn, rules text); :class:`GameView` is the
  snapshot encodings render.
- The solver (``solver.py``): memoised negamax over the reachable positions, every
  position's and move's value (+1/0/-1 for the mover) and distance to the end.
- The environment (``env.py``): :class:`GameEnv` plays any game against a random or
  optimal opponent (or a policy) and judges each agent move against the solution;
  :class:`SeededGameEnv` is the base of the rule families.
- Rule families drawn from a seed, with invented names, and their known controls:
  take-away games (``takeaway.py``; Nim), m,n,k line games (``mnk.py``; tic-tac-toe, a
  small Connect Four), movement games (``movement.py``; knight and rook).
- Encodings (``encodings.py``), reply parsing (``parsing.py``), move features for the
  choice model (``features.py``), invented words (``names.py``).
"""

from __future__ import annotations

from textenvs.games.base import DRAW, LOSS, WIN, Game, GameError, GameView
from textenvs.games.env import GameEnv, SeededGameEnv, load_game
from textenvs.games.solver import Solver, Value, solver_for

__all__ = [
    "Game", "GameView", "GameError", "WIN", "DRAW", "LOSS", "GameEnv", "SeededGameEnv", "load_game",
    "Solver", "Value", "solver_for",
]
