"""Text encodings of a chess position, and the notation each writes moves in.

=========  ==================================================  ===============
name       state                                               moves written
=========  ==================================================  ===============
``fen``    the FEN string                                      UCI (``e2e4``)
``ascii``  8x8 board with rank and file labels                 UCI (``e2e4``)
``pgn``    the game so far as PGN movetext                     SAN (``Nf3``)
``pieces`` natural-language list of pieces and squares         SAN (``Nf3``)
=========  ==================================================  ===============

The state is a :class:`chess.Board` with its move stack (``ChessEnv.text_state()``), of
the variant's board class (:mod:`.variants`): the FEN is the variant's (three-check's
carries the checks still to give), and a variant's name and rules reach the prompt as the
``$game`` and ``$rules`` fields. All encodings parse replies the same way
(:func:`textenvs.chess.notation.parse_move`), accepting UCI and SAN whatever the notation
they write in.
"""

from __future__ import annotations

from typing import ClassVar, Sequence

import chess
import chess.variant

from textenvs.base import Encoding
from textenvs.chess.notation import parse_move
from textenvs.chess.variants import variant_of

#: How each notation is described to the model (the ``$notation`` prompt field).
NOTATIONS = {"uci": "UCI, like e2e4", "san": "SAN, like Nf3"}


class ChessEncoding(Encoding[chess.Board]):
    """Shared behaviour: move notation, prompt fields, FEN labels and the reply parser."""

    env: ClassVar[str] = "chess"
    answer_tag: ClassVar[str] = "Move"
    #: ``"uci"`` or ``"san"``: how :meth:`render_action` writes moves.
    notation: ClassVar[str] = "uci"

    def render_action(self, state: chess.Board, action: str) -> str:
        """The UCI ``action`` in this encoding's notation."""
        if self.notation == "san":
            return state.san(chess.Move.from_uci(action))
        return action

    def state_label(self, state: chess.Board) -> str:
        """The FEN of the position."""
        return state.fen()

    def prompt_fields(self, state: chess.Board) -> dict[str, str]:
        """``side`` (``White``/``Black``, to move), ``notation`` (how to write a move), ``game``
        (the variant's name) and ``rules`` (its rules as a paragraph; empty for standard chess)."""
        variant = variant_of(state)
        rules = f"Rules of {variant.title}: {variant.rules}\n\n" if variant.rules else ""
        return {"side": color_name(state.turn), "notation": NOTATIONS[self.notation], "game": variant.title,
                "rules": rules}

    def parse_action(self, state: chess.Board, reply: str, legal: Sequence[str]) -> str:
        """The legal UCI move the reply names, in UCI or SAN (see :mod:`.notation`)."""
        return parse_move(state, reply, legal)


def color_name(color: chess.Color) -> str:
    """``"White"`` or ``"Black"``."""
    return "White" if color == chess.WHITE else "Black"


class FenEncoding(ChessEncoding):
    """The position as its FEN string; moves in UCI."""

    name = "fen"
    summary = "FEN string of the position"

    def render_state(self, state: chess.Board) -> str:
        """The FEN."""
        return state.fen()


class AsciiEncoding(ChessEncoding):
    """An 8x8 board, White at the bottom, with rank and file labels; moves in UCI."""

    name = "ascii"
    summary = "8x8 ASCII board with ranks and files"

    def render_state(self, state: chess.Board) -> str:
        """Ranks 8 to 1 framed by labels, then a legend and the non-board FEN fields."""
        files = "  " + " ".join(chess.FILE_NAMES)
        rows = [files]
        for rank in range(7, -1, -1):
            cells = [_symbol(state.piece_at(chess.square(file, rank))) for file in range(8)]
            rows.append(f"{rank + 1} {' '.join(cells)} {rank + 1}")
        rows.append(files)
        castling, en_passant = state.fen().split()[2:4]
        rows.append("(upper case: White, lower case: Black, '.': empty)")
        rows.append(f"{color_name(state.turn)} to move. Castling: {castling}. En passant: {en_passant}.")
        return "\n".join(rows + _check_counts(state))


def _check_counts(board: chess.Board) -> list[str]:
    """Three-check's checks still to give, as one line (none for other variants)."""
    if not isinstance(board, chess.variant.ThreeCheckBoard):
        return []
    return ["Checks still to give to win: " + ", ".join(
        f"{color_name(c)} {board.remaining_checks[c]}" for c in (chess.WHITE, chess.BLACK)) + "."]


def _symbol(piece: chess.Piece | None) -> str:
    return piece.symbol() if piece is not None else "."


class PgnEncoding(ChessEncoding):
    """The game so far as PGN movetext, from the root of the board's move stack; moves in SAN.

    A variant gets a ``[Variant]`` header; a game that did not start from the variant's
    start position gets ``[SetUp]``/``[FEN]`` headers; a game without moves yet is shown
    as ``(no moves yet)``.
    """

    name = "pgn"
    summary = "the game so far as PGN movetext"
    notation = "san"

    def render_state(self, state: chess.Board) -> str:
        """Optional variant and FEN headers, then the movetext (without a result marker)."""
        root = state.root()
        moves = root.variation_san(state.move_stack) if state.move_stack else "(no moves yet)"
        headers = [] if variant_of(state).standard else [f'[Variant "{type(state).aliases[0]}"]']
        if root.fen() != type(state).starting_fen:
            headers += ['[SetUp "1"]', f'[FEN "{root.fen()}"]']
        return "\n".join(headers) + "\n\n" + moves if headers else moves


_PIECE_NAMES = {
    chess.KING: ("king", "kings"), chess.QUEEN: ("queen", "queens"), chess.ROOK: ("rook", "rooks"),
    chess.BISHOP: ("bishop", "bishops"), chess.KNIGHT: ("knight", "knights"), chess.PAWN: ("pawn", "pawns"),
}


class PiecesEncoding(ChessEncoding):
    """Each side's pieces in words ("White: king on e1; rooks on a1 and h1; ..."); moves in SAN."""

    name = "pieces"
    summary = "natural-language list of pieces and squares"
    notation = "san"

    def render_state(self, state: chess.Board) -> str:
        """One line per side, then side to move, castling rights and en passant."""
        lines = [f"{color_name(c)}: {_pieces_of(state, c)}." for c in (chess.WHITE, chess.BLACK)]
        lines.append(f"{color_name(state.turn)} to move.")
        lines.append(f"Castling rights: {_castling_words(state)}.")
        lines.append(f"En passant: {_en_passant_words(state)}.")
        return "\n".join(lines + _check_counts(state))


def _pieces_of(board: chess.Board, color: chess.Color) -> str:
    groups = []
    for piece_type, (one, many) in _PIECE_NAMES.items():
        squares = [chess.square_name(s) for s in board.pieces(piece_type, color)]
        if squares:
            groups.append(f"{one if len(squares) == 1 else many} on {_and_list(squares)}")
    return "; ".join(groups) or "no pieces"


def _and_list(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _castling_words(board: chess.Board) -> str:
    parts = []
    for color in (chess.WHITE, chess.BLACK):
        sides = [name for name, has in (
            ("kingside", board.has_kingside_castling_rights(color)),
            ("queenside", board.has_queenside_castling_rights(color)),
        ) if has]
        if sides:
            parts.append(f"{color_name(color)} may castle {' and '.join(sides)}")
    return "; ".join(parts) if parts else "none"


def _en_passant_words(board: chess.Board) -> str:
    if board.ep_square is None or not board.has_legal_en_passant():
        return "none"
    return f"a pawn may be captured en passant on {chess.square_name(board.ep_square)}"
