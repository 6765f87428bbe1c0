"""Stockfish: finding the binary, and measuring how much each move gives away.

The binary is looked for in this order: an explicit path, ``$ZSO_STOCKFISH``, ``stockfish``
on ``PATH``, and ``/usr/games/stockfish`` (where Debian's ``stockfish`` package puts it,
outside the default ``PATH`` of non-login shells).

Centipawn loss (:meth:`Analyser.analyse_move`)
    Both evaluations come from the same root position at the same depth: one search over
    every move gives the engine's best move and its score, a second search restricted to
    the played move (UCI ``searchmoves``) gives the score of the move actually played.
    Scores are from the mover's point of view. Mate scores go through python-chess's
    ``Score.score(mate_score=MATE_SCORE)`` and every evaluation is then clipped to
    ``[-EVAL_CAP, +EVAL_CAP]`` (1000 cp, so a forced mate counts as 1000 cp). The loss is
    ``best - played`` clipped below at 0, so it lies in ``[0, 2 * EVAL_CAP]`` and a single
    blunder cannot dominate a mean. When the played move *is* the engine's best move the
    loss is exactly 0 (no second search, so no search noise).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from typing import Any

import chess
import chess.engine

from textenvs.errors import UserError

#: Where Debian's ``stockfish`` package installs the binary.
DEBIAN_STOCKFISH = "/usr/games/stockfish"
#: Environment variable naming the binary, checked after an explicit path.
STOCKFISH_ENV_VAR = "ZSO_STOCKFISH"
#: Every evaluation is clipped to +-EVAL_CAP centipawns before losses are taken.
EVAL_CAP = 1000
#: Centipawn value given to a mate before clipping (python-chess ``mate_score``).
MATE_SCORE = 100_000
#: UCI options set on every engine we start: one thread, a small hash (we share cores).
ENGINE_OPTIONS: dict[str, Any] = {"Threads": 1, "Hash": 16}

_INSTALL_HINT = (
    "install Debian's package with `apt-get install stockfish` (it puts the binary in "
    f"{DEBIAN_STOCKFISH}), or set ${STOCKFISH_ENV_VAR} to the binary's path"
)


class StockfishNotFoundError(UserError, FileNotFoundError):
    """No Stockfish binary where we looked; the message says how to install it."""


def _is_executable(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)


def find_stockfish(path: str | None = None) -> str:
    """The path of a Stockfish binary.

    An explicit ``path`` must exist (it is not silently replaced by another binary);
    otherwise ``$ZSO_STOCKFISH``, ``PATH`` and ``/usr/games/stockfish`` are tried in turn.
    Raises :class:`StockfishNotFoundError` naming what was tried and how to install it.
    """
    if path is not None:
        found = path if _is_executable(path) else shutil.which(path)
        if found:
            return found
        raise StockfishNotFoundError(f"Stockfish binary {path!r} not found or not executable; {_INSTALL_HINT}")
    from_env = os.environ.get(STOCKFISH_ENV_VAR)
    if from_env:
        if _is_executable(from_env):
            return from_env
        raise StockfishNotFoundError(
            f"${STOCKFISH_ENV_VAR}={from_env!r} is not an executable file; {_INSTALL_HINT}"
        )
    for candidate in (shutil.which("stockfish"), DEBIAN_STOCKFISH):
        if candidate and _is_executable(candidate):
            return candidate
    raise StockfishNotFoundError(
        f"Stockfish not found (looked at ${STOCKFISH_ENV_VAR}, PATH and {DEBIAN_STOCKFISH}); {_INSTALL_HINT}"
    )


def stockfish_available(path: str | None = None) -> bool:
    """Whether :func:`find_stockfish` would succeed."""
    try:
        find_stockfish(path)
    except StockfishNotFoundError:
        return False
    return True


class EngineProcess:
    """One Stockfish process, started on first use and stopped by :meth:`close`.

    Starting lazily keeps constructing many environments cheap; the binary itself is
    resolved at construction, so a missing one is reported at once.
    """

    def __init__(self, path: str | None = None, options: dict[str, Any] | None = None):
        #: Resolved path of the binary.
        self.path = find_stockfish(path)
        self._options = {**ENGINE_OPTIONS, **(options or {})}
        self._engine: chess.engine.SimpleEngine | None = None

    @property
    def engine(self) -> chess.engine.SimpleEngine:
        """The running engine, started if needed."""
        if self._engine is None:
            engine = chess.engine.SimpleEngine.popen_uci(self.path)
            try:
                engine.configure(self._options)
            except Exception:
                engine.quit()
                raise
            self._engine = engine
        return self._engine

    def close(self) -> None:
        """Stop the process (idempotent)."""
        if self._engine is not None:
            engine, self._engine = self._engine, None
            try:
                engine.quit()
            except (chess.engine.EngineError, chess.engine.EngineTerminatedError, TimeoutError):
                engine.close()


def clip_score(score: chess.engine.PovScore, color: chess.Color, cap: int = EVAL_CAP) -> int:
    """``score`` from ``color``'s side in centipawns, mates mapped then clipped to +-cap."""
    value = score.pov(color).score(mate_score=MATE_SCORE)
    if value is None:  # cannot happen with mate_score given; kept as a clear error
        raise ValueError(f"engine score {score} has no centipawn value")
    return max(-cap, min(cap, value))


@dataclass(frozen=True)
class MoveAnalysis:
    """How one played move compares with the engine's choice."""

    #: Evaluation of the best move minus that of the played move, >= 0 (centipawns).
    cp_loss: float
    #: Whether the played move is the engine's best move.
    best_move: bool
    #: The engine's best move (UCI).
    engine_best: str
    #: Evaluation after the best move, mover's view, clipped (centipawns).
    best_cp: int
    #: Evaluation after the played move, mover's view, clipped (centipawns).
    played_cp: int

    def metrics(self) -> dict[str, float]:
        """The per-decision metrics written into a step's ``info["metrics"]``."""
        return {"cp_loss": float(self.cp_loss), "best_move": int(self.best_move)}


class Analyser:
    """Scores moves with one Stockfish process searched to a fixed depth.

    See the module docstring for how centipawn loss is defined.
    """

    def __init__(self, path: str | None = None, depth: int = 8, cap: int = EVAL_CAP):
        if depth < 1:
            raise ValueError(f"analysis depth must be >= 1, got {depth}")
        #: Search depth (plies) of each evaluation.
        self.depth = depth
        #: Clip applied to every evaluation (centipawns).
        self.cap = cap
        self._process = EngineProcess(path)

    @property
    def path(self) -> str:
        """Path of the Stockfish binary."""
        return self._process.path

    def evaluate(self, board: chess.Board, move: chess.Move | None = None) -> tuple[chess.Move, int]:
        """The best move and its clipped score for the side to move.

        With ``move`` given, the search is restricted to it, so the score is that move's.
        """
        root_moves = None if move is None else [move]
        info = self._process.engine.analyse(board, chess.engine.Limit(depth=self.depth), root_moves=root_moves)
        pv = info.get("pv") or []
        if not pv or "score" not in info:
            raise RuntimeError(f"Stockfish returned no move and score for {board.fen()}")
        return pv[0], clip_score(info["score"], board.turn, self.cap)

    def analyse_move(self, board: chess.Board, move: chess.Move) -> MoveAnalysis:
        """Compare ``move`` (legal in ``board``) with the engine's best move."""
        best, best_cp = self.evaluate(board)
        if move == best:
            return MoveAnalysis(0.0, True, best.uci(), best_cp, best_cp)
        _, played_cp = self.evaluate(board, move)
        loss = float(max(0, best_cp - played_cp))
        return MoveAnalysis(loss, False, best.uci(), best_cp, played_cp)

    def close(self) -> None:
        """Stop the engine process."""
        self._process.close()

    def __enter__(self) -> Analyser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
