"""Chess encodings and the reply parser: tables of cases, round trips, arbitrary text."""

from __future__ import annotations

import random
import time

import chess
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from textenvs import build_prompt, encodings_for, get_encoding
from textenvs.chess.encodings import AsciiEncoding, FenEncoding, PgnEncoding, PiecesEncoding
from textenvs.chess.notation import MAX_SCAN, move_tokens, parse_move
from textenvs.errors import (
    ActionError,
    AmbiguousActionError,
    IllegalActionError,
    UnparseableActionError,
)

START = chess.STARTING_FEN
#: Both knights (b1, f3) can reach d2.
TWO_KNIGHTS = "rnbqkb1r/ppp1pppp/5n2/3p4/3P4/5N2/PPP1PPPP/RNBQKB1R w KQkq - 2 3"
#: White may castle both ways.
CASTLING = "r3k2r/pppq1ppp/2n2n2/1B1pp1B1/1b1PP1b1/2N2N2/PPPQ1PPP/R3K2R w KQkq - 0 1"
#: A white pawn on e7 promotes on e8 (or by capturing on d8/f8).
PROMOTION = "3r1r2/4P3/8/8/8/8/8/k3K3 w - - 0 1"
#: 1. e4 ... d5 2. e5 f5: exf6 e.p. is legal.
EN_PASSANT = "rnbqkbnr/ppp1p1pp/8/3pPp2/8/8/PPPP1PPP/RNBQKBNR w KQkq f6 0 3"
#: Nf3xe5 captures a pawn (no check: a '+' suffix written anyway is tolerated).
KNIGHT_TAKES = "r1bqkbnr/pppp1ppp/2n5/4p3/4P3/5N2/PPPP1PPP/RNBQKB1R w KQkq - 2 3"

ENCODINGS = [FenEncoding(), AsciiEncoding(), PgnEncoding(), PiecesEncoding()]


# -- the parser: accepted forms ----------------------------------------------------------

PARSE_CASES = [
    # (fen, reply, expected UCI)
    (START, "e2e4", "e2e4"),
    (START, "e4", "e2e4"),
    (START, "1. e4", "e2e4"),
    (START, "1.e4", "e2e4"),
    (START, "**Nf3**", "g1f3"),
    (START, "e2-e4", "e2e4"),
    (START, "Ng1-f3", "g1f3"),
    (START, "Ng1f3", "g1f3"),
    (START, "g1f3", "g1f3"),
    (START, "nf3", "g1f3"),
    (START, "♘f3", "g1f3"),
    (START, "Pe4", "e2e4"),
    (START, "e4, because it controls the centre.", "e2e4"),
    (START, "I will play Nf3. It develops a piece.", "g1f3"),
    (START, "Move: `d4`", "d2d4"),
    (START, "  e4\n", "e2e4"),
    (START, "e5? No: e4", "e2e4"),  # an illegal token is skipped: one legal move is named
    (START, "e4, that is e2e4", "e2e4"),  # the same move twice is one move
    (CASTLING, "O-O", "e1g1"),
    (CASTLING, "0-0", "e1g1"),
    (CASTLING, "o-o", "e1g1"),
    (CASTLING, "O-O-O", "e1c1"),
    (CASTLING, "0-0-0!", "e1c1"),
    (CASTLING, "e1g1", "e1g1"),
    (CASTLING, "O-O+", "e1g1"),
    (PROMOTION, "e8=Q", "e7e8q"),
    (PROMOTION, "e8Q", "e7e8q"),
    (PROMOTION, "e7e8q", "e7e8q"),
    (PROMOTION, "e7e8=Q", "e7e8q"),
    (PROMOTION, "exd8=N", "e7d8n"),
    (PROMOTION, "e7f8r", "e7f8r"),
    (EN_PASSANT, "exf6", "e5f6"),
    (EN_PASSANT, "exf6 e.p.", "e5f6"),
    (EN_PASSANT, "e5f6", "e5f6"),
    (KNIGHT_TAKES, "Nxe5+", "f3e5"),
    (KNIGHT_TAKES, "Nxe5", "f3e5"),
    (KNIGHT_TAKES, "N×e5", "f3e5"),
    (TWO_KNIGHTS, "Nbd2", "b1d2"),
    (TWO_KNIGHTS, "Nfd2", "f3d2"),
    (TWO_KNIGHTS, "N1d2", "b1d2"),
    (TWO_KNIGHTS, "Nd2, I mean Nbd2", "b1d2"),
]


@pytest.mark.parametrize("fen, reply, expected", PARSE_CASES)
def test_parse_accepts(fen: str, reply: str, expected: str) -> None:
    assert parse_move(chess.Board(fen), reply) == expected


# -- the parser: errors ------------------------------------------------------------------

ERROR_CASES = [
    # (fen, reply, error, words the message must contain)
    (START, "", UnparseableActionError, ["empty reply"]),
    (START, "   \n ", UnparseableActionError, ["empty reply"]),
    (START, "I resign.", UnparseableActionError, ["no move"]),
    (START, "e9", UnparseableActionError, ["no move"]),
    (START, "Qxh9", IllegalActionError, ["illegal move 'Qxh9'"]),
    (START, "e5", IllegalActionError, ["illegal move 'e5'"]),
    (START, "e2e5", IllegalActionError, ["illegal move 'e2e5'"]),
    (START, "O-O", IllegalActionError, ["illegal move 'O-O'"]),
    (START, "Nf6 or Qd5", IllegalActionError, ["illegal moves 'Nf6', 'Qd5'"]),
    (PROMOTION, "e8", IllegalActionError, ["illegal move 'e8'"]),  # promotion piece missing
    (TWO_KNIGHTS, "Nd2", AmbiguousActionError, ["ambiguous move 'Nd2'", "Nbd2", "Nfd2"]),
    (TWO_KNIGHTS, "Nd2 or Qd9", AmbiguousActionError, ["ambiguous"]),
    (START, "I would never play e2e4; I play d2d4", AmbiguousActionError, ["2 different legal moves", "e2e4", "d2d4"]),
    (START, "1. e4 e5 2. Nf3", AmbiguousActionError, ["e2e4", "g1f3"]),
]


@pytest.mark.parametrize("fen, reply, error, words", ERROR_CASES)
def test_parse_errors(fen: str, reply: str, error: type[ActionError], words: list[str]) -> None:
    with pytest.raises(error) as info:
        parse_move(chess.Board(fen), reply)
    message = str(info.value)
    for word in words:
        assert word in message
    assert fen in message and info.value.state == fen
    assert info.value.reply == reply


def test_parse_respects_the_legal_list() -> None:
    board = chess.Board()
    assert parse_move(board, "e4", ["e2e4", "d2d4"]) == "e2e4"
    with pytest.raises(IllegalActionError):
        parse_move(board, "Nf3", ["e2e4", "d2d4"])


def test_parse_reads_only_the_first_max_scan_characters() -> None:
    board = chess.Board()
    late = "x" * MAX_SCAN + " e4"
    with pytest.raises(UnparseableActionError):
        parse_move(board, late)
    assert parse_move(board, "e4 " + "x" * 1_000_000) == "e2e4"


def test_huge_replies_are_fast() -> None:
    board = chess.Board()
    for reply in ("Nf6 " * 250_000, "é" * 1_000_000, "a1 " * 300_000):
        began = time.perf_counter()
        with pytest.raises(ActionError):
            parse_move(board, reply)
        assert time.perf_counter() - began < 1.0


def test_move_tokens() -> None:
    assert move_tokens("1. e4 e5 2. Nf3 Nc6 3. O-O-O") == ["e4", "e5", "Nf3", "Nc6", "O-O-O"]
    assert move_tokens("prefe4 e4x e4") == ["e4"]


MOVE_CHARS = "abcdefghKQRBNPOo0x12345678-=+#.* \n"


@settings(max_examples=300, deadline=None)
@given(st.text() | st.text(alphabet=MOVE_CHARS, max_size=40) | st.binary().map(lambda b: b.decode("latin-1")))
def test_arbitrary_text_raises_only_action_errors(reply: str) -> None:
    for fen in (START, TWO_KNIGHTS, PROMOTION):
        board = chess.Board(fen)
        try:
            move = parse_move(board, reply)
        except ActionError:
            continue
        assert chess.Move.from_uci(move) in board.legal_moves


def test_a_megabyte_of_unicode_is_refused_in_one_short_line() -> None:
    from textenvs.errors import UnparseableActionError

    rng = random.Random(3)
    reply = "".join(chr(rng.randrange(0x20, 0x2FFF)) for _ in range(1_000_000))
    with pytest.raises(UnparseableActionError, match="no move in reply") as caught:
        parse_move(chess.Board(), reply)
    message = str(caught.value)
    assert len(message) < 300 and chess.Board().fen() in message  # the reply is cut short, the position named


# -- round trips -------------------------------------------------------------------------


def random_positions(n: int, seed: int = 7) -> list[chess.Board]:
    """``n`` positions from random playouts, plus a few with castling, promotion, e.p."""
    rng = random.Random(seed)
    boards = [chess.Board(fen) for fen in (CASTLING, PROMOTION, EN_PASSANT, TWO_KNIGHTS)]
    while len(boards) < n:
        board = chess.Board()
        for _ in range(rng.randrange(1, 200)):
            moves = list(board.legal_moves)
            if not moves:
                break
            board.push(rng.choice(moves))
            if rng.random() < 0.1:
                boards.append(board.copy())
    return [b for b in boards if not b.is_game_over()][:n]


POSITIONS = random_positions(220)


def test_round_trip_corpus_is_varied() -> None:
    assert len(POSITIONS) >= 200
    moves = [(b, m) for b in POSITIONS for m in b.legal_moves]
    assert any(m.promotion for _, m in moves)
    assert any(b.is_castling(m) for b, m in moves)
    assert any(b.is_en_passant(m) for b, m in moves)
    assert any(len(b.move_stack) > 60 for b in POSITIONS)


@pytest.mark.parametrize("encoding", ENCODINGS, ids=lambda e: e.name)
def test_round_trip_every_legal_move(encoding: FenEncoding) -> None:
    for board in POSITIONS:
        legal = sorted(m.uci() for m in board.legal_moves)
        for action in legal:
            written = encoding.render_action(board, action)
            assert encoding.parse_action(board, written, legal) == action, (board.fen(), written)


# -- rendering ---------------------------------------------------------------------------


def played(*sans: str, fen: str = START) -> chess.Board:
    board = chess.Board(fen)
    for san in sans:
        board.push_san(san)
    return board


def test_registry_lists_the_four_encodings() -> None:
    assert encodings_for("chess") == ["fen", "ascii", "pgn", "pieces"]
    for name in encodings_for("chess"):
        encoding = get_encoding("chess", name)
        assert (encoding.env, encoding.name) == ("chess", name)
        assert encoding.summary and type(encoding).__doc__


NOTATION_CASES = [
    # (encoding, how Nf3 is written, notation field)
    (FenEncoding(), "g1f3", "UCI, like e2e4"),
    (AsciiEncoding(), "g1f3", "UCI, like e2e4"),
    (PgnEncoding(), "Nf3", "SAN, like Nf3"),
    (PiecesEncoding(), "Nf3", "SAN, like Nf3"),
]


@pytest.mark.parametrize("encoding, written, notation", NOTATION_CASES, ids=lambda x: getattr(x, "name", ""))
def test_notation_and_prompt_fields(encoding: FenEncoding, written: str, notation: str) -> None:
    board = played("e4")
    assert encoding.render_action(chess.Board(), "g1f3") == written
    assert encoding.prompt_fields(board) == {"side": "Black", "notation": notation, "game": "chess", "rules": ""}
    assert encoding.prompt_fields(chess.Board())["side"] == "White"
    assert encoding.state_label(board) == board.fen()


def test_fen_encoding() -> None:
    board = played("e4", "c5")
    assert FenEncoding().render_state(board) == board.fen()


def test_ascii_encoding() -> None:
    text = AsciiEncoding().render_state(played("e4"))
    lines = text.splitlines()
    assert lines[0] == lines[9] == "  a b c d e f g h"
    assert lines[1] == "8 r n b q k b n r 8"
    assert lines[5] == "4 . . . . P . . . 4"
    assert lines[8] == "1 R N B Q K B N R 1"
    assert "Black to move. Castling: KQkq. En passant: -." in text


PGN_CASES = [
    # (board, expected rendering)
    (chess.Board(), "(no moves yet)"),
    (played("e4", "e5", "Nf3"), "1. e4 e5 2. Nf3"),
    (played("e4", "e5", "Nf3", "Nc6", "Bb5", "a6", "Bxc6", "dxc6", "O-O"),
     "1. e4 e5 2. Nf3 Nc6 3. Bb5 a6 4. Bxc6 dxc6 5. O-O"),
    (chess.Board(EN_PASSANT), f'[SetUp "1"]\n[FEN "{EN_PASSANT}"]\n\n(no moves yet)'),
    (played("exf6", "Nxf6", fen=EN_PASSANT), f'[SetUp "1"]\n[FEN "{EN_PASSANT}"]\n\n3. exf6 Nxf6'),
    (played("Kd7", "Kd2", fen="4k3/8/8/8/4P3/8/8/4K3 b - - 0 1"),
     '[SetUp "1"]\n[FEN "4k3/8/8/8/4P3/8/8/4K3 b - - 0 1"]\n\n1...Kd7 2. Kd2'),
]


@pytest.mark.parametrize("board, expected", PGN_CASES)
def test_pgn_encoding(board: chess.Board, expected: str) -> None:
    assert PgnEncoding().render_state(board) == expected


def test_pieces_encoding() -> None:
    text = PiecesEncoding().render_state(chess.Board())
    assert text.splitlines()[0] == (
        "White: king on e1; queen on d1; rooks on a1 and h1; bishops on c1 and f1; "
        "knights on b1 and g1; pawns on a2, b2, c2, d2, e2, f2, g2 and h2."
    )
    assert "White to move." in text
    assert "Castling rights: White may castle kingside and queenside; Black may castle kingside and queenside." in text
    assert "En passant: none." in text


def test_pieces_encoding_en_passant_and_no_castling() -> None:
    text = PiecesEncoding().render_state(chess.Board(EN_PASSANT))
    assert "En passant: a pawn may be captured en passant on f6." in text
    bare = PiecesEncoding().render_state(chess.Board("4k3/8/8/8/8/8/4P3/4K3 w - - 0 1"))
    assert bare.splitlines()[:2] == ["White: king on e1; pawn on e2.", "Black: king on e8."]
    assert "Castling rights: none." in bare


@pytest.mark.parametrize("mode", ["choose", "generate"])
@pytest.mark.parametrize("encoding", ENCODINGS, ids=lambda e: e.name)
def test_prompts_render(encoding: FenEncoding, mode: str) -> None:
    board = played("e4")
    legal = sorted(m.uci() for m in board.legal_moves)
    prompt = build_prompt(encoding, board, legal, mode)
    assert prompt.rstrip().endswith("Your move:")
    assert encoding.render_state(board) in prompt and "Black" in prompt
    assert encoding.render_action(board, "g8f6") in prompt
    feedback = "Your previous answer 'x' was not accepted (no move in reply). Answer again.\n"
    assert feedback + "Your move:" in build_prompt(encoding, board, legal, mode, feedback)
