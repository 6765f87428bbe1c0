"""Chess move features ``phi(board, move)`` for the choice model, in a registry.

Every feature is a small function of a :class:`MoveContext` (the position before the
move, the move, the position after it, the mover's colour) returning a float, seen from
the side that moves. The built-in ones:

``material``
    change in material balance (mover minus opponent, in pawns: P 1, N 3, B 3, R 5,
    Q 9) made by the move itself: the captured piece, plus ``Q - P`` for a promotion.
``capture``
    1 for a capture (en passant included), else 0.
``check``
    1 if the move gives check.
``mobility``
    change in the mover's number of pseudo-legal moves (after minus before), / 10.
``centre``
    change in the number of the mover's attacks on d4, e4, d5, e5.
``king_danger``
    change in the number of the opponent's attacks on the mover's king square and the
    squares around it (positive: the king is more exposed).
``pawn_advance``
    ranks a pawn moves forward (1 or 2), 0 for other pieces.
``engine_eval_change``
    Stockfish's evaluation after the move minus before, mover's view, in pawns, clipped
    to +-10 (:class:`EngineEvaluator`). Slow (one search per legal move): left out of the
    default set and only computed when asked for by name.

Adding a feature is one function and one :func:`register_feature` call::

    register_feature("castles", lambda ctx: float(ctx.board.is_castling(ctx.move)), "1 for castling")
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Callable, Sequence

import chess
import numpy as np

from textenvs.errors import OptionError
from textenvs.registry import Registry

__all__ = [
    "FEATURES",
    "PIECE_VALUES",
    "MoveContext",
    "Position",
    "EngineEvaluator",
    "register_feature",
    "default_features",
    "resolve_features",
    "needs_engine",
    "feature_matrix",
]

#: Material values in pawns (the king counts 0).
PIECE_VALUES: dict[int, float] = {chess.PAWN: 1.0, chess.KNIGHT: 3.0, chess.BISHOP: 3.0, chess.ROOK: 5.0, chess.QUEEN: 9.0, chess.KING: 0.0}
CENTRE = (chess.D4, chess.E4, chess.D5, chess.E5)
#: Engine evaluations are clipped to this many pawns.
ENGINE_CAP_PAWNS = 10.0

#: Feature name -> ``fn(ctx: MoveContext) -> float``. Metadata: ``default`` (in the
#: default set) and ``engine`` (needs Stockfish).
FEATURES: Registry[Callable[["MoveContext"], float]] = Registry("chess feature")


def register_feature(
    name: str, fn: Callable[["MoveContext"], float] | str, description: str = "", *, default: bool = True, engine: bool = False
) -> None:
    """Register ``fn`` (or a lazy ``"module:attr"``) as feature ``name``.

    ``default`` puts it in the default set; ``engine`` marks it as needing Stockfish
    (``ctx.engine`` is then an :class:`EngineEvaluator`).
    """
    FEATURES.register(name, fn, description, default=default, engine=engine)


def _mobility(board: chess.Board, color: chess.Color) -> int:
    """Pseudo-legal moves ``color`` would have in ``board`` if it were to move."""
    if board.turn == color:
        return board.pseudo_legal_moves.count()
    b = board.copy(stack=False)
    b.turn = color
    b.ep_square = None
    return b.pseudo_legal_moves.count()


def _centre_attacks(board: chess.Board, color: chess.Color) -> int:
    return sum(len(board.attackers(color, sq)) for sq in CENTRE)


def _king_zone_attacks(board: chess.Board, color: chess.Color) -> int:
    """Attacks of ``color``'s opponent on ``color``'s king square and its neighbours."""
    king = board.king(color)
    if king is None:
        return 0
    zone = chess.SquareSet(chess.BB_KING_ATTACKS[king]) | chess.SquareSet.from_square(king)
    return sum(len(board.attackers(not color, sq)) for sq in zone)


class Position:
    """A position and the per-position values its moves' features share (computed once)."""

    def __init__(self, board: chess.Board, engine: EngineEvaluator | None = None):
        #: The position before the move (not modified).
        self.board = board
        #: The side to move.
        self.mover: chess.Color = board.turn
        self.engine = engine

    @cached_property
    def mobility(self) -> int:
        """The mover's pseudo-legal move count."""
        return _mobility(self.board, self.mover)

    @cached_property
    def centre(self) -> int:
        """The mover's attacks on the centre."""
        return _centre_attacks(self.board, self.mover)

    @cached_property
    def king_danger(self) -> int:
        """The opponent's attacks on the mover's king zone."""
        return _king_zone_attacks(self.board, self.mover)

    @cached_property
    def engine_eval(self) -> float:
        """Stockfish's evaluation for the mover, in pawns."""
        if self.engine is None:
            raise RuntimeError("this feature needs Stockfish: pass an EngineEvaluator")
        return self.engine.evaluate(self.board, self.mover)


@dataclass
class MoveContext:
    """What a feature function sees: one legal move in one position."""

    position: Position
    move: chess.Move
    _after: chess.Board | None = field(default=None, repr=False)

    @property
    def board(self) -> chess.Board:
        """The position before the move."""
        return self.position.board

    @property
    def mover(self) -> chess.Color:
        """The side making the move."""
        return self.position.mover

    @property
    def engine(self) -> EngineEvaluator | None:
        """The Stockfish evaluator, when one was given."""
        return self.position.engine

    @property
    def after(self) -> chess.Board:
        """The position after the move (computed on first use)."""
        if self._after is None:
            b = self.board.copy(stack=False)
            b.push(self.move)
            self._after = b
        return self._after


# -- the built-in features ------------------------------------------------------------------


def material(ctx: MoveContext) -> float:
    """Material gained by the move (pawns): the captured piece, plus promotion gain."""
    gain = 0.0
    board, move = ctx.board, ctx.move
    if board.is_en_passant(move):
        gain += PIECE_VALUES[chess.PAWN]
    else:
        captured = board.piece_at(move.to_square)
        if captured is not None and captured.color != ctx.mover:
            gain += PIECE_VALUES[captured.piece_type]
    if move.promotion:
        gain += PIECE_VALUES[move.promotion] - PIECE_VALUES[chess.PAWN]
    return gain


def capture(ctx: MoveContext) -> float:
    """1 for a capture."""
    return float(ctx.board.is_capture(ctx.move))


def check(ctx: MoveContext) -> float:
    """1 if the move gives check."""
    return float(ctx.board.gives_check(ctx.move))


def mobility(ctx: MoveContext) -> float:
    """Change in the mover's pseudo-legal move count, / 10."""
    return (_mobility(ctx.after, ctx.mover) - ctx.position.mobility) / 10.0


def centre(ctx: MoveContext) -> float:
    """Change in the mover's attacks on the four centre squares."""
    return float(_centre_attacks(ctx.after, ctx.mover) - ctx.position.centre)


def king_danger(ctx: MoveContext) -> float:
    """Change in the opponent's attacks on the mover's king zone (positive: more exposed)."""
    return float(_king_zone_attacks(ctx.after, ctx.mover) - ctx.position.king_danger)


def pawn_advance(ctx: MoveContext) -> float:
    """Ranks a pawn advances; 0 for other pieces."""
    if ctx.board.piece_type_at(ctx.move.from_square) != chess.PAWN:
        return 0.0
    return float(abs(chess.square_rank(ctx.move.to_square) - chess.square_rank(ctx.move.from_square)))


def engine_eval_change(ctx: MoveContext) -> float:
    """Stockfish's evaluation after the move minus before (mover's view, pawns)."""
    if ctx.engine is None:
        raise RuntimeError("engine_eval_change needs Stockfish: pass an EngineEvaluator")
    return ctx.engine.evaluate(ctx.after, ctx.mover) - ctx.position.engine_eval


register_feature("material", material, "material balance change (pawns): captures and promotions")
register_feature("capture", capture, "1 for a capture")
register_feature("check", check, "1 if the move gives check")
register_feature("mobility", mobility, "change in the mover's pseudo-legal moves, / 10")
register_feature("centre", centre, "change in the mover's attacks on d4, e4, d5, e5")
register_feature("king_danger", king_danger, "change in the opponent's attacks around the mover's king")
register_feature("pawn_advance", pawn_advance, "ranks a pawn moves forward")
register_feature("engine_eval_change", engine_eval_change, "Stockfish evaluation change (pawns; slow)", default=False, engine=True)


def default_features() -> tuple[str, ...]:
    """The registered features in the default set, in registration order."""
    return tuple(e.name for e in FEATURES if e.metadata.get("default", True))


def resolve_features(names: Sequence[str] | None) -> tuple[str, ...]:
    """``names`` checked against the registry (unknown ones raise with suggestions); ``None``: the default set."""
    if names is None:
        return default_features()
    names = tuple(names)
    if not names:
        raise OptionError("no chess features given")
    for name in names:
        FEATURES.entry(name)
    if len(set(names)) != len(names):
        raise OptionError(f"duplicate chess features in {list(names)}")
    return names


def needs_engine(names: Sequence[str]) -> bool:
    """Whether any of ``names`` needs Stockfish."""
    return any(FEATURES.entry(n).metadata.get("engine", False) for n in names)


class EngineEvaluator:
    """Stockfish evaluations of positions, from a given side, in pawns, cached by FEN.

    Wraps :class:`textenvs.chess.engine.Analyser` (one engine process, fixed depth).
    Raises :class:`textenvs.chess.engine.StockfishNotFoundError` when there is no binary.
    """

    def __init__(self, depth: int = 6, path: str | None = None):
        from textenvs.chess.engine import Analyser

        self._analyser = Analyser(path, depth)
        self._cache: dict[str, float] = {}

    def evaluate(self, board: chess.Board, color: chess.Color) -> float:
        """The evaluation of ``board`` for ``color`` (pawns, clipped to +-10)."""
        key = board.fen()
        if key not in self._cache:
            outcome = board.outcome(claim_draw=False)
            if outcome is not None:
                # No search in a finished game: a win is the cap, a draw 0.
                white = 0.0 if outcome.winner is None else (ENGINE_CAP_PAWNS if outcome.winner else -ENGINE_CAP_PAWNS)
            else:
                _, cp = self._analyser.evaluate(board)
                white = cp / 100.0 if board.turn == chess.WHITE else -cp / 100.0
            self._cache[key] = float(np.clip(white, -ENGINE_CAP_PAWNS, ENGINE_CAP_PAWNS))
        value = self._cache[key]
        return value if color == chess.WHITE else -value

    def close(self) -> None:
        """Stop the engine."""
        self._analyser.close()


def feature_matrix(
    board: chess.Board, moves: Sequence[chess.Move], names: Sequence[str] | None = None, *, engine: EngineEvaluator | None = None
) -> np.ndarray:
    """``[len(moves), K]`` features of ``moves`` (legal in ``board``), columns in ``names`` order."""
    names = resolve_features(names)
    fns: list[Any] = [FEATURES.get(n) for n in names]
    if engine is None and needs_engine(names):
        raise RuntimeError(f"features {[n for n in names if needs_engine([n])]} need Stockfish: pass engine=EngineEvaluator()")
    position = Position(board, engine)
    out = np.empty((len(moves), len(names)))
    for i, move in enumerate(moves):
        ctx = MoveContext(position, move)
        for k, fn in enumerate(fns):
            out[i, k] = float(fn(ctx))
    return out
