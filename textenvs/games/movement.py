"""Movement games: pieces with generated moves race or fight on a small board.

The board has ``cols`` x ``rows`` squares named like chess squares (``a1`` at the first
player's bottom left). Each player starts with the same pieces on their own back row, the
second player's mirrored top to bottom. A piece type moves as a *leaper* (jumps by fixed
offsets, over anything) or a *slider* (any distance along fixed directions, stopped by
the first piece in the way); offsets are written from the owner's side, so "forward"
points up the board for the first player and down for the second. A piece may not land on
a piece of its own side; landing on an opponent's piece captures it. A move's canonical
id is ``"<from>-<to>"`` (``"b1-c3"``).

Goals: ``"capture-all"`` (capture every enemy piece) or ``"far-row"`` (bring a piece to the
opponent's back row). A player who cannot move loses. After ``max_plies`` plies without
a winner the game is a draw: the move counter is part of the position, so positions
never repeat and the solver's values are exact.

Seeded rules draw the board, two piece types (a leaper with random offsets, a slider along
random directions), the pieces' starting squares, the goal, and invented names for the
game, the sides and the pieces. The known control (``chess-pieces``) uses a knight and a
rook with their chess moves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from textenvs.games import names as words
from textenvs.games.base import DRAW, LOSS, Game, GameError
from textenvs.games.env import Policy, SeededGameEnv

FILES = "abcdefgh"
GOALS = ("capture-all", "far-row")
EMPTY = "."

Square = tuple[int, int]
_DIRECTION_WORDS = {
    (1, 0): "forward", (-1, 0): "backward", (0, 1): "to the right", (0, -1): "to the left",
    (1, 1): "diagonally forward-right", (1, -1): "diagonally forward-left",
    (-1, 1): "diagonally backward-right", (-1, -1): "diagonally backward-left",
}


@dataclass(frozen=True)
class PieceType:
    """A kind of piece: its name, its letter in drawings, and how it moves.

    Offsets are ``(forward, right)`` from the owner's side.
    """

    name: str
    letter: str
    leaps: tuple[Square, ...] = ()
    slides: tuple[Square, ...] = ()

    def describe(self) -> str:
        """The piece's moves in words."""
        parts = []
        if self.leaps:
            parts.append("jumps (over anything in between) " + _or_list([_offset_words(o) for o in self.leaps]))
        if self.slides:
            parts.append("slides any number of empty squares " + _or_list([_DIRECTION_WORDS[d] for d in self.slides])
                         + ", stopping at the first piece in the way (which it may capture if it is an enemy)")
        return "; or ".join(parts)


def _offset_words(offset: Square) -> str:
    f, r = offset
    parts = []
    if f:
        parts.append(f"{abs(f)} {'forward' if f > 0 else 'backward'}")
    if r:
        parts.append(f"{abs(r)} to the {'right' if r > 0 else 'left'}")
    return " and ".join(parts)


def _or_list(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]


@dataclass(frozen=True)
class Pieces:
    """A movement position: ``board[row * cols + col]`` is 0 (empty), ``t + 1`` (the first
    player's piece of type ``t``) or ``-(t + 1)`` (the second player's); row 0 at the bottom."""

    board: tuple[int, ...]
    to_move: int = 0
    #: Plies played so far.
    ply: int = 0


@dataclass(frozen=True)
class MovementNames:
    """The game's title and the two sides' names."""

    title: str
    sides: tuple[str, str] = ("White", "Black")


def square_name(square: Square) -> str:
    """``(row, col)`` -> ``"b1"``."""
    return f"{FILES[square[1]]}{square[0] + 1}"


def parse_square(name: str) -> Square:
    """``"b1"`` -> ``(0, 1)``."""
    return int(name[1:]) - 1, FILES.index(name[0])


@dataclass(frozen=True)
class Movement(Game[Pieces]):
    """A movement game: see the module docstring."""

    family = "movement"
    cols: int
    rows: int
    types: tuple[PieceType, ...]
    #: The first player's starting pieces: ``(type index, column)`` on row 0; the second
    #: player's stand on the same columns of the top row.
    setup: tuple[tuple[int, int], ...]
    goal: str = "capture-all"
    max_plies: int = 16
    names: MovementNames = MovementNames("Movement")
    seed: int | None = None

    def __post_init__(self) -> None:
        if not (2 <= self.cols <= len(FILES) and 2 <= self.rows <= 9):
            raise GameError(f"boards are 2 to {len(FILES)} columns by 2 to 9 rows, got {self.cols}x{self.rows}")
        if self.goal not in GOALS:
            raise GameError(f"unknown goal {self.goal!r}; expected one of {', '.join(GOALS)}")
        if self.max_plies < 1:
            raise GameError(f"max_plies must be at least 1, got {self.max_plies}")
        for t, col in self.setup:
            if not (0 <= t < len(self.types) and 0 <= col < self.cols):
                raise GameError(f"setup entry {(t, col)} names no piece type or column")

    @property
    def title(self) -> str:  # type: ignore[override]
        return self.names.title

    @property
    def player_names(self) -> tuple[str, str]:  # type: ignore[override]
        return self.names.sides

    @property
    def solve_distances(self) -> bool:
        """Boards of more than 9 squares are solved for outcomes only (see :mod:`.solver`)."""
        return self.rows * self.cols <= 9

    def initial(self) -> Pieces:
        board = [0] * (self.rows * self.cols)
        for t, col in self.setup:
            board[col] = t + 1
            board[(self.rows - 1) * self.cols + col] = -(t + 1)
        return Pieces(tuple(board), 0, 0)

    def owner(self, piece: int) -> int:
        """``0`` for the first player's piece, ``1`` for the second's."""
        return 0 if piece > 0 else 1

    def piece_at(self, position: Pieces, square: Square) -> int:
        """The piece code on ``square`` (0 when empty)."""
        return position.board[square[0] * self.cols + square[1]]

    def targets(self, position: Pieces, square: Square) -> list[Square]:
        """The squares the piece on ``square`` can move to."""
        piece = self.piece_at(position, square)
        kind, player = self.types[abs(piece) - 1], self.owner(piece)
        sign = 1 if player == 0 else -1
        out = []
        r, c = square
        for f, right in kind.leaps:
            to = (r + sign * f, c + right)
            if self._inside(to) and not self._own(position, to, player):
                out.append(to)
        for f, right in kind.slides:
            to = (r + sign * f, c + right)
            while self._inside(to) and not self._own(position, to, player):
                out.append(to)
                if self.piece_at(position, to):
                    break
                to = (to[0] + sign * f, to[1] + right)
        return out

    def _inside(self, square: Square) -> bool:
        return 0 <= square[0] < self.rows and 0 <= square[1] < self.cols

    def _own(self, position: Pieces, square: Square, player: int) -> bool:
        piece = self.piece_at(position, square)
        return piece != 0 and self.owner(piece) == player

    def _moves(self, position: Pieces) -> tuple[str, ...]:
        out = []
        for i, piece in enumerate(position.board):
            if piece and self.owner(piece) == position.to_move:
                here = (i // self.cols, i % self.cols)
                out += [f"{square_name(here)}-{square_name(to)}" for to in self.targets(position, here)]
        return tuple(out)

    def legal_moves(self, position: Pieces) -> tuple[str, ...]:
        if self.result(position) is not None:
            return ()
        return self._moves(position)

    def play(self, position: Pieces, move: str) -> Pieces:
        start, _, end = move.partition("-")
        a, b = parse_square(start), parse_square(end)
        board = list(position.board)
        board[b[0] * self.cols + b[1]] = board[a[0] * self.cols + a[1]]
        board[a[0] * self.cols + a[1]] = 0
        return Pieces(tuple(board), 1 - position.to_move, position.ply + 1)

    def result(self, position: Pieces) -> int | None:
        mover, other = position.to_move, 1 - position.to_move
        if self.goal == "far-row":
            far = 0 if other == 1 else self.rows - 1  # the row the player who just moved aims for
            row = position.board[far * self.cols:(far + 1) * self.cols]
            if any(p and self.owner(p) == other for p in row):
                return LOSS
        if not any(p and self.owner(p) == mover for p in position.board):
            return LOSS
        if position.ply >= self.max_plies:
            return DRAW
        if not self._moves(position):
            return LOSS
        return None

    def to_move(self, position: Pieces) -> int:
        return position.to_move

    def rules_text(self) -> str:
        s0, s1 = self.names.sides
        pieces = " ".join(f"A {t.name} ({t.letter}) {t.describe()}." for t in self.types)
        start = " and ".join(f"a {self.types[t].name} on {FILES[c]}1" for t, c in sorted(self.setup, key=lambda s: s[1]))
        goal = ("The goal is to capture every enemy piece." if self.goal == "capture-all"
                else f"The goal is to bring one of your pieces to the opponent's back row (row {self.rows} for {s0}, "
                     f"row 1 for {s1}).")
        return (
            f"{self.title} is a game for two sides, {s0} and {s1}, on a board of {words.number_word(self.cols)} columns "
            f"(a to {FILES[self.cols - 1]}) and {words.number_word(self.rows)} rows (1 to {self.rows}). {s0} starts "
            f"on row 1 with {start}; {s1} has the same pieces on the same columns of row {self.rows}. {s0} moves first, "
            f"and the sides take turns moving one piece. Directions are seen from the side that moves: forward is up the "
            f"board (towards row {self.rows}) for {s0} and down (towards row 1) for {s1}. {pieces} A piece may not land "
            f"on a piece of its own side; landing on an enemy piece captures it. {goal} A side that cannot move loses. "
            f"After {self.max_plies} moves in all (both sides counted) without a winner, the game is a draw. A move is "
            "written as the piece's square and the square it moves to, like a1-b3."
        )

    def symbol(self, piece: int) -> str:
        """The piece's letter: upper case for the first player, lower case for the second."""
        letter = self.types[abs(piece) - 1].letter
        return letter.upper() if piece > 0 else letter.lower()

    def render(self, position: Pieces) -> str:
        files = "  " + " ".join(FILES[: self.cols])
        lines = [files]
        for r in range(self.rows - 1, -1, -1):
            row = position.board[r * self.cols:(r + 1) * self.cols]
            lines.append(f"{r + 1} {' '.join(self.symbol(p) if p else EMPTY for p in row)} {r + 1}")
        return "\n".join(lines + [files])

    def record(self, position: Pieces) -> dict[str, Any]:
        rows = [position.board[r * self.cols:(r + 1) * self.cols] for r in range(self.rows - 1, -1, -1)]
        return {"board": ["".join(self.symbol(p) if p else EMPTY for p in row) for row in rows], "ply": position.ply}

    def label(self, position: Pieces) -> str:
        rec = self.record(position)
        return "/".join(rec["board"]) + f" {self.names.sides[position.to_move]} to move, ply {position.ply}"

    def parameters(self) -> dict[str, Any]:
        return {
            "cols": self.cols, "rows": self.rows, "goal": self.goal, "max_plies": self.max_plies,
            "types": [{"name": t.name, "letter": t.letter, "leaps": [list(o) for o in t.leaps],
                       "slides": [list(d) for d in t.slides]} for t in self.types],
            "setup": [list(s) for s in self.setup], "title": self.names.title, "sides": list(self.names.sides),
            "seed": self.seed,
        }


_LEAPS = [(f, r) for f in range(-2, 3) for r in range(-2, 3) if (f, r) != (0, 0)]
_SLIDES = list(_DIRECTION_WORDS)


def _mirrored(offsets: Any) -> tuple[Square, ...]:
    """The offsets with their left-right mirror images, sorted."""
    return tuple(sorted({o for f, r in offsets for o in ((f, r), (f, -r))}))


def generate_rules(seed: int) -> Movement:
    """Seeded rules: a 3x3 to 4x4 board, a leaper and a slider, the setup, goal and names."""
    rng = np.random.default_rng([seed, 3])
    title, side0, side1, leaper, slider = words.invented_words(rng, 5)
    cols, rows = int(rng.integers(3, 5)), int(rng.integers(3, 5))
    # Each type can move forward somehow, so that every game can progress.
    # Moves come in left-right mirror pairs.
    while True:
        leaps = _mirrored(_LEAPS[i] for i in rng.choice(len(_LEAPS), size=int(rng.integers(1, 3)), replace=False))
        if any(f > 0 for f, _ in leaps):
            break
    while True:
        slides = _mirrored(_SLIDES[i] for i in rng.choice(len(_SLIDES), size=int(rng.integers(1, 3)), replace=False))
        if any(f > 0 for f, _ in slides):
            break
    types = (PieceType(leaper, leaper[0].upper(), leaps=leaps), PieceType(slider, slider[0].upper(), slides=slides))
    columns = sorted(int(c) for c in rng.choice(cols, size=2, replace=False))
    setup = ((0, columns[0]), (1, columns[1])) if rng.random() < 0.5 else ((1, columns[0]), (0, columns[1]))
    goal = GOALS[int(rng.integers(2))] if rows == 4 else "capture-all"
    return Movement(cols, rows, types, setup, goal, 2 * max(cols, rows) + 2, MovementNames(words.title(title), (words.title(side0), words.title(side1))), seed)


#: The known control: a knight and a rook with their chess moves.
KNIGHT = PieceType("knight", "N", leaps=((1, 2), (2, 1), (2, -1), (1, -2), (-1, -2), (-2, -1), (-2, 1), (-1, 2)))
ROOK = PieceType("rook", "R", slides=((1, 0), (-1, 0), (0, 1), (0, -1)))


class MovementEnv(SeededGameEnv):
    """Movement games from a seed, or the chess-pieces control.

    Args:
        rules_seed: the seed of the rules (None: new rules each episode).
        goal, max_plies: override the seed's.
        pieces: ``"invented"`` (the seed's pieces and names) or ``"chess"`` (a knight and a
            rook per side on a 3x4 board, White and Black, capture all, draw after 10 plies).
        opponent, side: see :class:`~textenvs.games.env.GameEnv`.
    """

    family = "movement"

    def __init__(self, *, rules_seed: int | None = 0, goal: str | None = None, max_plies: int | None = None,
                 pieces: str = "invented", opponent: str | Policy = "random", side: str = "first"):
        if pieces not in ("invented", "chess"):
            raise ValueError(f"unknown pieces {pieces!r}; expected 'invented' or 'chess'")
        if goal is not None and goal not in GOALS:
            raise ValueError(f"unknown goal {goal!r}; expected one of {', '.join(GOALS)}")
        self.goal, self.max_plies, self.pieces = goal, max_plies, pieces
        super().__init__(rules_seed=rules_seed, opponent=opponent, side=side)

    def make_rules(self, seed: int) -> Movement:
        base = generate_rules(seed)
        if self.pieces == "chess":
            base = Movement(3, 4, (KNIGHT, ROOK), ((0, 0), (1, 2)), "capture-all", 10,
                            MovementNames("Knight and rook", ("White", "Black")), seed)
        return Movement(base.cols, base.rows, base.types, base.setup, self.goal or base.goal,
                        self.max_plies if self.max_plies is not None else base.max_plies, base.names, seed)
