"""Chess for language models: a gymnasium environment, four text encodings, one move parser.

- :class:`ChessEnv` (``env.py``): FEN observations, UCI actions, rewards from the agent's
  side, an opponent (random, Stockfish, or any object with ``choose``/``close``), start
  positions from a FEN or an EPD/PGN file, and optional Stockfish centipawn-loss metrics.
- Encodings (``encodings.py``): ``fen`` and ``ascii`` write moves in UCI, ``pgn`` and
  ``pieces`` in SAN; all parse replies with :func:`parse_move` (``notation.py``), which
  reads UCI or SAN out of free text.
- Stockfish (``engine.py``): :func:`find_stockfish`, the :class:`Analyser`; opponents in
  ``opponents.py``; start positions in ``starts.py``.
- Variants (``variants.py``): antichess, king of the hill, three-check, atomic, racing
  kings and horde, python-chess's boards with their rules in prose for the prompt
  (``ChessEnv(rules=...)``, ``--variant`` on the command line).

Importing this package imports python-chess and gymnasium but starts no engine.
"""

from __future__ import annotations

from textenvs.chess.encodings import (
    AsciiEncoding,
    ChessEncoding,
    FenEncoding,
    PgnEncoding,
    PiecesEncoding,
)
from textenvs.chess.engine import (
    EVAL_CAP,
    Analyser,
    MoveAnalysis,
    StockfishNotFoundError,
    find_stockfish,
    stockfish_available,
)
from textenvs.chess.env import ChessEnv
from textenvs.chess.notation import MAX_SCAN, move_tokens, parse_move
from textenvs.chess.opponents import (
    Opponent,
    OpponentError,
    RandomOpponent,
    StockfishOpponent,
    make_opponent,
    parse_opponent_spec,
)
from textenvs.chess.starts import load_starts
from textenvs.chess.variants import VARIANTS, Variant, get_variant, variant_of

__all__ = [
    "ChessEnv", "ChessEncoding", "FenEncoding", "AsciiEncoding", "PgnEncoding", "PiecesEncoding",
    "parse_move", "move_tokens", "MAX_SCAN", "Analyser", "MoveAnalysis", "EVAL_CAP",
    "StockfishNotFoundError", "find_stockfish", "stockfish_available", "Opponent",
    "OpponentError", "RandomOpponent", "StockfishOpponent", "make_opponent",
    "parse_opponent_spec", "load_starts", "VARIANTS", "Variant", "get_variant", "variant_of",
]
