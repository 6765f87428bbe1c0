"""Position-blind move features: the prior that "explained" is measured beyond in games and chess.

A language model prefers some move labels over others, and the first move listed, whatever
the position. Such a preference is no objective. The choice model's explained behaviour
(:func:`irl.choice.explained_behaviour` with ``prior``) is the held-out gain of the objective
(plus these features) over a conditional logit on these features alone: the best policy that
ignores the position, as the action prior over action names is for gridworlds.

Every feature here is a function of the move's label and its place in the listed order, never
of the position (chess's moving piece is named by the move's SAN, as the label shows it):

``list_first`` / ``list_last`` / ``list_index`` / ``list_position``
    1 for the first (last) move listed; ``i``, and ``i / (n - 1)``, for the ``i``-th of ``n``
    moves (counted from 0): a preference that decays down the list, or runs to its end.
``label=L`` (games)
    1 for the move labelled ``L``: one column per label met in the run (the action names of
    a gridworld's prior). Labels of several ``:``-separated fields (take-away's ``heap:count``)
    add one column per field value, ``field2=3`` (every move taking 3, from any heap).
``piece=P``, ``promotion``, ``from_file=f``, ``from_rank=r``, ``to_file=f``, ``to_rank=r``, ``from=sq``, ``to=sq`` (chess)
    the moving piece's type, a promotion, the files and ranks of the from and to squares,
    and the squares themselves, as labels, in place of a column per move label (a run meets
    hundreds of UCI labels, and fits with a column each are too slow): a preference for
    exact move strings is absorbed as far as a preference per piece, file, rank and square
    describes it. Files and ranks repeat what the squares say, so that a preference for a
    whole file costs the L2 prior one weight, not eight.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

__all__ = ["LIST_FEATURES", "list_features", "label_prior", "chess_move_features", "CHESS_MOVE_NAMES"]

#: The list-position features every prior holds.
LIST_FEATURES: tuple[str, ...] = ("list_first", "list_last", "list_index", "list_position")
_L = len(LIST_FEATURES)


def list_features(n: int) -> np.ndarray:
    """``[n, 4]``: :data:`LIST_FEATURES` of ``n`` listed moves."""
    x = np.zeros((n, _L))
    x[0, 0] = 1.0
    x[n - 1, 1] = 1.0
    x[:, 2] = np.arange(n)
    if n > 1:
        x[:, 3] = np.arange(n) / (n - 1)
    return x


def _fields(label: str) -> list[str]:
    parts = label.split(":")
    return [f"field{i + 1}={p}" for i, p in enumerate(parts)] if len(parts) > 1 else []


def label_prior(legal: Sequence[Sequence[str]], extra_names: Sequence[str] = (),
                extra: Sequence[np.ndarray] | None = None, *, labels: bool = True) -> tuple[tuple[str, ...], list[np.ndarray]]:
    """The position-blind features of a run's decisions, from their listed legal moves.

    Returns the feature names (:data:`LIST_FEATURES`, ``extra_names``, then ``label=...`` and
    ``field...=...`` columns for every label and field value met in ``legal``, sorted) and one
    ``[n_legal, K]`` matrix per decision. ``extra``: per decision, more position-blind
    columns (``[n_legal, len(extra_names)]``: chess's :func:`chess_move_features`).
    ``labels=False`` leaves out the label and field columns (chess: hundreds of move labels
    per run, whose fits are too slow; its extra columns describe the labels instead).
    """
    labels = sorted({m for moves in legal for m in moves}) if labels else []
    fields = sorted({f for m in labels for f in _fields(m)})
    start = _L + len(extra_names)
    names = LIST_FEATURES + tuple(extra_names) + tuple(f"label={m}" for m in labels) + tuple(fields)
    column = {name: i for i, name in enumerate(names)}
    out = []
    for d, moves in enumerate(legal):
        x = np.zeros((len(moves), len(names)))
        x[:, :_L] = list_features(len(moves))
        if extra_names:
            x[:, _L:start] = extra[d]
        for i, m in enumerate(moves if labels else ()):
            x[i, column[f"label={m}"]] = 1.0
            for f in _fields(m):
                x[i, column[f]] = 1.0
        out.append(x)
    return names, out


_PIECES = "pnbrqk"
_FILES = "abcdefgh"
_SQUARES = tuple(f + str(r) for r in range(1, 9) for f in _FILES)  # a1, b1, ..., h8: python-chess's square order
#: The names of :func:`chess_move_features`' columns.
CHESS_MOVE_NAMES: tuple[str, ...] = (
    tuple(f"piece={p}" for p in _PIECES) + ("promotion",)
    + tuple(f"from_file={f}" for f in _FILES) + tuple(f"from_rank={r}" for r in range(1, 9))
    + tuple(f"to_file={f}" for f in _FILES) + tuple(f"to_rank={r}" for r in range(1, 9))
    + tuple(f"from={q}" for q in _SQUARES) + tuple(f"to={q}" for q in _SQUARES)
)


def chess_move_features(board: Any, legal: Sequence[Any]) -> np.ndarray:
    """``[n_legal, len(CHESS_MOVE_NAMES)]``: the moving piece's type, a promotion, the files
    and ranks of the from and to squares, and the squares themselves, of chess moves
    (``chess.Move`` objects) played from ``board`` (read for the moving piece's type only,
    which a move's SAN names)."""
    import chess

    x = np.zeros((len(legal), len(CHESS_MOVE_NAMES)))
    for i, move in enumerate(legal):
        piece = board.piece_type_at(move.from_square) or chess.PAWN
        x[i, piece - 1] = 1.0
        x[i, 6] = float(move.promotion is not None)
        x[i, 7 + chess.square_file(move.from_square)] = 1.0
        x[i, 15 + chess.square_rank(move.from_square)] = 1.0
        x[i, 23 + chess.square_file(move.to_square)] = 1.0
        x[i, 31 + chess.square_rank(move.to_square)] = 1.0
        x[i, 39 + move.from_square] = 1.0
        x[i, 103 + move.to_square] = 1.0
    return x
