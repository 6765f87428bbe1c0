"""Reading a chess move out of a model's free-text reply.

:func:`parse_move` accepts UCI and SAN alike, inside prose: ``"e2e4"``, ``"e4"``,
``"1. e4"``, ``"**Nf3**"``, ``"e2-e4"``, ``"Ng1-f3"``, ``"O-O"``/``"0-0"``,
``"e8=Q"``/``"e7e8q"`` (antichess's ``"e8=K"`` too), ``"Nxe5+"``, ``"exd6 e.p."``,
figurines (``"♘f3"``), and lower-case piece letters other than ``b`` (``"nf3"``; ``"b"``
is always the b-file). The board's variant decides what is legal. Every move-like token
is read: a reply that names exactly one legal move (once or several times) is that
move; one that names two different legal moves ("I would never play e2e4; I play d2d4")
is :class:`~textenvs.errors.AmbiguousActionError`, never silently the first.

When no token is legal the error says why, python-chess style, naming the reply and the
FEN: :class:`~textenvs.errors.AmbiguousActionError` if some token was an ambiguous SAN
(``Nd2`` when both knights reach d2), :class:`~textenvs.errors.IllegalActionError` if
there were move-like tokens, :class:`~textenvs.errors.UnparseableActionError` if there
were none (a piece move to an off-board square like ``Qxh9`` counts as illegal).

Only the first :data:`MAX_SCAN` characters are read, so a runaway reply (megabytes of
generated text) costs no more than a short one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Collection

import chess

from textenvs.errors import AmbiguousActionError, IllegalActionError, UnparseableActionError

#: Characters of a reply that are read; anything after is ignored.
MAX_SCAN = 2000

_FIGURINES = str.maketrans({
    "♔": "K", "♕": "Q", "♖": "R", "♗": "B", "♘": "N", "♙": "",
    "♚": "K", "♛": "Q", "♜": "R", "♝": "B", "♞": "N", "♟": "",
    "×": "x", "‐": "-", "‑": "-", "‒": "-", "–": "-", "—": "-", "−": "-",
})

_TOKEN = re.compile(
    r"(?<![A-Za-z0-9])"
    r"(?:(?P<castle>[O0o]-[O0o](?:-[O0o])?)"
    r"|(?P<move>[KQRBNPkqrn]?[a-h]?[1-8]?[-x]?[a-h][1-8](?:=?[QRBNKqrbnk])?))"
    r"[+#]*(?:\s?e\.p\.)?"
    r"(?![A-Za-z0-9])"
)
#: A piece move to an off-board square (``Qxh9``): move-like, so illegal, not unparseable.
_OFF_BOARD = re.compile(r"(?<![A-Za-z0-9])[KQRBN]x?[a-z]\d+(?![A-Za-z0-9])")
_UCI = re.compile(r"([a-h][1-8])-?([a-h][1-8])=?([qrbnkQRBNK]?)")


@dataclass
class _Findings:
    """What the scan saw besides a legal move, for the error message."""

    illegal: list[str] = field(default_factory=list)
    ambiguous: list[str] = field(default_factory=list)


def move_tokens(reply: str) -> list[str]:
    """The move-like tokens of ``reply`` (its first :data:`MAX_SCAN` characters), in order."""
    text = reply[:MAX_SCAN].translate(_FIGURINES)
    return [m.group("castle") or m.group("move") for m in _TOKEN.finditer(text)]


def parse_move(board: chess.Board, reply: str, legal: Collection[str] | None = None) -> str:
    """The UCI of the one legal move named in ``reply``.

    ``legal`` restricts the accepted moves (canonical UCI strings); by default every
    legal move of ``board``. Raises an :class:`~textenvs.errors.ActionError` subclass.
    """
    fen = board.fen()
    if not reply.strip():
        raise UnparseableActionError("empty reply", reply, fen)
    allowed = set(legal) if legal is not None else {m.uci() for m in board.legal_moves}
    findings = _Findings()
    named: list[str] = []
    for token in move_tokens(reply):
        move = _resolve(board, token, allowed, findings)
        if move is not None and move not in named:
            named.append(move)
    if len(named) == 1:
        return named[0]
    if named:
        raise AmbiguousActionError(f"reply names {len(named)} different legal moves ({', '.join(named)})", reply, fen)
    raise _failure(board, reply, fen, findings)


def _resolve(board: chess.Board, token: str, allowed: set[str], findings: _Findings) -> str | None:
    """The allowed UCI ``token`` names, or None (noting why in ``findings``)."""
    uci = _as_uci(token)
    if uci is not None and uci in allowed:
        return uci
    try:
        move = board.parse_san(_as_san(token))
    except chess.AmbiguousMoveError:
        findings.ambiguous.append(token)
        return None
    except ValueError:  # IllegalMoveError, InvalidMoveError
        findings.illegal.append(token)
        return None
    if move.uci() in allowed:
        return move.uci()
    findings.illegal.append(token)
    return None


def _as_uci(token: str) -> str | None:
    match = _UCI.fullmatch(token)
    if match is None:
        return None
    return match.group(1) + match.group(2) + match.group(3).lower()


def _as_san(token: str) -> str:
    """Castling spelled ``O-O``; a leading ``P`` dropped; a lower-case piece letter raised."""
    if token[0] in "O0o":  # only castling tokens start so
        return "O-O-O" if token.count("-") == 2 else "O-O"
    if token[0] == "P":
        return token[1:]
    if token[0] in "kqrn":
        return token[0].upper() + token[1:]
    return token


def _failure(board: chess.Board, reply: str, fen: str, findings: _Findings) -> Exception:
    if findings.ambiguous:
        token = findings.ambiguous[0]
        options = ", ".join(_ambiguous_options(board, token))
        return AmbiguousActionError(f"ambiguous move {token!r} (could be {options})", reply, fen)
    illegal = list(dict.fromkeys(findings.illegal or _off_board_tokens(reply)))
    if illegal:
        noun = "move" if len(illegal) == 1 else "moves"
        return IllegalActionError(f"illegal {noun} {', '.join(repr(t) for t in illegal[:5])}", reply, fen)
    return UnparseableActionError("no move in reply", reply, fen)


def _off_board_tokens(reply: str) -> list[str]:
    return [m.group(0) for m in _OFF_BOARD.finditer(reply[:MAX_SCAN].translate(_FIGURINES))]


def _ambiguous_options(board: chess.Board, token: str) -> list[str]:
    """The SAN of each legal move an ambiguous SAN ``token`` could mean."""
    san = _as_san(token).rstrip("+#")
    to_square = chess.parse_square(re.findall(r"[a-h][1-8]", san)[-1])
    piece = chess.PIECE_SYMBOLS.index(san[0].lower()) if san[0] in "KQRBN" else chess.PAWN
    return sorted(
        board.san(m) for m in board.legal_moves
        if m.to_square == to_square and board.piece_type_at(m.from_square) == piece
    )
