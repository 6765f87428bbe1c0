"""Start positions: the initial position, one FEN, or every position of an EPD or PGN file.

For PGN files every position along the mainline of every game is a start position, and
each keeps the moves that led to it on its move stack (so the PGN encoding can show the
game so far and repetitions count). Positions where the game is already over
(``board.outcome(claim_draw=True)`` is set) are left out of files, and refused as a FEN.
Every position is a board of the given class (a variant's, see :mod:`.variants`); a PGN
game of another variant (its ``[Variant]`` header) is refused.
"""

from __future__ import annotations

import os
from pathlib import Path

import chess
import chess.pgn

#: File suffixes read as start-position files.
FILE_SUFFIXES = (".epd", ".pgn")


def load_starts(start: str, board: type[chess.Board] = chess.Board) -> list[chess.Board]:
    """The start positions named by ``start``: ``"startpos"``, a FEN, or an .epd/.pgn path.

    Each is a ``board`` (the variant's board class); ``"startpos"`` is its start position.

    Raises ``FileNotFoundError`` for a missing file and ``ValueError`` (naming the input)
    for a bad FEN, a bad line or game in a file, or a file without usable positions.
    """
    if start == "startpos":
        return [board()]
    if start.lower().endswith(FILE_SUFFIXES) or os.path.isfile(start):
        return _load_file(Path(start), board)
    return [_board_from_fen(start, board)]


def _board_from_fen(fen: str, cls: type[chess.Board]) -> chess.Board:
    try:
        board = cls(fen)
    except ValueError as exc:
        raise ValueError(
            f"start {fen!r} is neither 'startpos', a valid FEN ({exc}), nor a path to an .epd or .pgn file"
        ) from None
    _check_playable(board, f"start FEN {fen!r}")
    return board


def _check_playable(board: chess.Board, where: str) -> None:
    if not board.is_valid():
        raise ValueError(f"{where} is not a legal position ({board.status()!r})")
    outcome = board.outcome(claim_draw=True)
    if outcome is not None:
        raise ValueError(f"{where}: the game is already over ({outcome.termination.name.lower()})")


def _load_file(path: Path, cls: type[chess.Board]) -> list[chess.Board]:
    if not path.is_file():
        raise FileNotFoundError(f"start position file {str(path)!r} does not exist")
    suffix = path.suffix.lower()
    if suffix not in FILE_SUFFIXES:
        raise ValueError(f"start position file {str(path)!r} must end in .epd or .pgn")
    boards = _read_epd(path, cls) if suffix == ".epd" else _read_pgn(path, cls)
    boards = [b for b in boards if b.outcome(claim_draw=True) is None]
    if not boards:
        raise ValueError(f"start position file {str(path)!r} holds no position where the game is not over")
    return boards


def _read_epd(path: Path, cls: type[chess.Board]) -> list[chess.Board]:
    """One board per non-empty, non-comment (``#``) line."""
    boards = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            board, _ = cls.from_epd(line)
        except ValueError as exc:
            raise ValueError(f"{path}:{number}: bad EPD line {line!r} ({exc})") from None
        if not board.is_valid():
            raise ValueError(f"{path}:{number}: not a legal position ({board.status()!r})")
        boards.append(board)
    return boards


def _read_pgn(path: Path, cls: type[chess.Board]) -> list[chess.Board]:
    """Every position along each game's mainline, move history kept."""
    boards = []
    with path.open(encoding="utf-8-sig") as handle:
        index = 0
        while (game := chess.pgn.read_game(handle)) is not None:
            index += 1
            if game.errors:
                raise ValueError(f"{path}: game {index}: {game.errors[0]}")
            board = game.board()
            if type(board) is not cls:
                raise ValueError(f"{path}: game {index} is {board.uci_variant}, not {cls.uci_variant} (its Variant header)")
            boards.append(board.copy())
            for move in game.mainline_moves():
                board.push(move)
                boards.append(board.copy())
    return boards
