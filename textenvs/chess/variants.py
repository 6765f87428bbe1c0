"""Chess variants (python-chess's ``chess.variant``) as known games whose rules the prompt states.

Each :class:`Variant` pairs a python-chess board class, which enforces the rules, with the
rules written out in prose for the player; the prompt templates put that text before the
position (standard chess states none, so its prompts are unchanged). Stockfish plays
standard chess only: a variant takes the random or a model opponent, without analysis.
"""

from __future__ import annotations

from dataclasses import dataclass

import chess
import chess.variant


@dataclass(frozen=True)
class Variant:
    """A chess variant: its id, python-chess board class, name in prose and rules text."""

    name: str
    board: type[chess.Board]
    #: The game's name as the player reads it ("atomic chess").
    title: str
    #: The rules in prose ("" for standard chess, which every model knows by name).
    rules: str = ""
    #: The recorded ``outcome`` of a game won by the variant's own rule (python-chess's
    #: ``VARIANT_WIN``/``VARIANT_LOSS``), which says how it was won.
    ending: str = ""

    @property
    def standard(self) -> bool:
        """Whether this is standard chess (the one variant Stockfish plays)."""
        return self.board is chess.Board


_CHESS = "The pieces move and capture as in standard chess"

VARIANTS: dict[str, Variant] = {v.name: v for v in (
    Variant("standard", chess.Board, "chess"),
    Variant("antichess", chess.variant.AntichessBoard, "antichess", (
        "Antichess is won by losing. " + _CHESS + ", with these differences. Capturing is compulsory: "
        "whenever you can capture, you must capture (choosing which capture if there are several). "
        "The king is an ordinary piece: there is no check or checkmate, a king may be captured, and "
        "there is no castling. A pawn reaching the last rank may also promote to a king. You win when "
        "you have no pieces left, or when you have no legal move. A game is drawn by threefold "
        "repetition, by the fifty-move rule, or when neither side can ever capture the other's "
        "remaining pieces."
    ), "no_pieces_or_moves"),
    Variant("king-of-the-hill", chess.variant.KingOfTheHillBoard, "King of the Hill chess", (
        "King of the Hill is standard chess with one more way to win: you win at once when your king "
        "reaches one of the four centre squares d4, e4, d5 or e5. Checkmate also wins; a king may never "
        "move into check, on the centre or elsewhere. Stalemate, threefold repetition and the fifty-move "
        "rule are draws as in chess."
    ), "king_in_centre"),
    Variant("three-check", chess.variant.ThreeCheckBoard, "three-check chess", (
        "Three-check is standard chess with one more way to win: you win at once when you give check "
        "for the third time in the game (the checks need not be in a row; a checkmate also wins). The "
        "position states how many checks each side still has to give; in FEN it is the field after "
        "the en passant square, White's count then Black's (3+3 at the start, 2+3 once White has "
        "checked once). Stalemate, threefold repetition and the fifty-move rule are draws as in chess."
    ), "third_check"),
    Variant("atomic", chess.variant.AtomicBoard, "atomic chess", (
        "Atomic chess is standard chess in which every capture causes an explosion on the square where "
        "the capture happens: the captured piece, the capturing piece and every piece other than a "
        "pawn on the eight squares around that square are removed from the board, whichever side they "
        "belong to (pawns next to the explosion survive; a pawn that captures or is captured is "
        "removed). A king cannot capture. You win by exploding the opposing king (capturing a piece "
        "next to it, or the piece it stands beside) or by checkmate. You may not make a capture that "
        "would explode your own king, but a move that explodes the opposing king is allowed even if "
        "your king is in check. While the two kings stand next to each other, neither king is in check. "
        "Stalemate, threefold repetition and the fifty-move rule are draws."
    ), "king_exploded"),
    Variant("racing-kings", chess.variant.RacingKingsBoard, "Racing Kings", (
        "Racing Kings is a race of the two kings to the eighth rank (the top row, rank 8). There are no "
        "pawns: each side starts with a king, a queen, two rooks, two bishops and two knights on ranks "
        "1 and 2, Black on the left half of the board and White on the right. " + _CHESS + ", but no move "
        "may give check, and no move may leave your own king in check, so a king is never in check; "
        "there is no castling. The first king to reach the eighth rank wins, except that when White's "
        "king gets there and Black's king can reach it on Black's very next move, the game goes on one "
        "more move: if Black's king gets there too, the game is a draw. Threefold repetition and the "
        "fifty-move rule are draws."
    ), "king_reached_rank_8"),
    Variant("horde", chess.variant.HordeBoard, "horde chess", (
        "Horde: White has a horde of 36 pawns and no other pieces (no king, so White is never in check "
        "and may never be checkmated); Black has the usual sixteen pieces, king included. White wins by "
        "checkmating Black's king. Black wins by capturing every White piece (pawns that have promoted "
        "included). White's pawns on the first rank may move one or two squares forward, like pawns on "
        "the second rank. Otherwise the rules of standard chess apply: promotion, en passant, castling "
        "for Black; stalemate, threefold repetition and the fifty-move rule are draws."
    ), "horde_captured"),
)}

#: The standard game.
STANDARD = VARIANTS["standard"]


def get_variant(name: str) -> Variant:
    """The variant named ``name``, or ``ValueError`` listing the known ones."""
    try:
        return VARIANTS[name]
    except KeyError:
        raise ValueError(f"unknown chess rules {name!r}; expected one of {', '.join(VARIANTS)}") from None


def variant_of(board: chess.Board) -> Variant:
    """The variant whose rules ``board`` plays by."""
    for variant in VARIANTS.values():
        if type(board) is variant.board:
            return variant
    raise ValueError(f"{type(board).__name__} is not one of the chess variants ({', '.join(VARIANTS)})")
