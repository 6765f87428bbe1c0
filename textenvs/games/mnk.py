"""m,n,k games: place marks on a board; the first to line up ``k`` in a row wins.

The board has ``rows`` x ``cols`` cells, named like chess squares: columns ``a``, ``b``...
from the left, rows ``1``, ``2``... from the bottom. Players take turns placing a mark on
an empty cell (canonical id ``"b2"``). With gravity (Connect-Four-like) a mark is dropped
into a column and lands on its lowest empty cell; the canonical id is then the column
letter (``"b"``). A player who completes a line of ``k`` of their marks, across, up or
diagonally, wins; in the misère version they lose. A full board without a line is a draw.

Known settings: (3, 3, 3) is tic-tac-toe, a draw; (4, 4, 3) is a first-player win, and
(4, 4, 4) with gravity is Connect Four on a 4x4 board, a draw (see the tests, which check
these against OpenSpiel's tic-tac-toe and alpha-beta search). Seeded rules draw a size
small enough to solve exactly, gravity, the ending, and invented names for the game and
for each side's marks.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from textenvs.games import names as words
from textenvs.games.base import DRAW, LOSS, WIN, Game, GameError
from textenvs.games.env import Policy, SeededGameEnv

FILES = "abcdefgh"
EMPTY = "."

#: Sizes the seeded rules draw from: (cols, rows, k, gravity), each solved in well under a second.
SEEDED_SIZES = ((3, 3, 3, False), (4, 3, 3, False), (3, 4, 3, False), (4, 3, 3, True), (4, 4, 3, True), (5, 3, 3, True))


@dataclass(frozen=True)
class Board:
    """An m,n,k position: each player's marks as a bit set, bit ``row * cols + col`` for
    the cell ``(row, col)``, row 0 at the bottom."""

    #: The first player's marks, then the second's.
    marks: tuple[int, int] = (0, 0)
    to_move: int = 0


@dataclass(frozen=True)
class MnkNames:
    """The game's title and what each side's marks are called (singular nouns)."""

    title: str
    marks: tuple[str, str] = ("cross", "nought")
    #: One character per side in drawings.
    symbols: tuple[str, str] = ("X", "O")


def cell_name(cell: tuple[int, int]) -> str:
    """``(row, col)`` -> ``"b1"``."""
    return f"{FILES[cell[1]]}{cell[0] + 1}"


def parse_cell(name: str) -> tuple[int, int]:
    """``"b1"`` -> ``(0, 1)``."""
    return int(name[1:]) - 1, FILES.index(name[0])


@dataclass(frozen=True)
class Mnk(Game[Board]):
    """An m,n,k game: see the module docstring."""

    family = "mnk"
    cols: int = 3
    rows: int = 3
    k: int = 3
    gravity: bool = False
    misere: bool = False
    names: MnkNames = MnkNames("Tic-tac-toe")
    seed: int | None = None

    def __post_init__(self) -> None:
        if not (1 <= self.cols <= len(FILES) and 1 <= self.rows <= 9):
            raise GameError(f"boards are 1 to {len(FILES)} columns by 1 to 9 rows, got {self.cols}x{self.rows}")
        if not 2 <= self.k <= max(self.cols, self.rows):
            raise GameError(f"line length k={self.k} does not fit a {self.cols}x{self.rows} board")

    @property
    def title(self) -> str:  # type: ignore[override]
        return self.names.title

    @property
    def player_names(self) -> tuple[str, str]:  # type: ignore[override]
        return (f"the player of the {words.plural(self.names.marks[0])} ({self.names.symbols[0]})",
                f"the player of the {words.plural(self.names.marks[1])} ({self.names.symbols[1]})")

    @property
    def solve_distances(self) -> bool:
        """Boards of more than 9 cells are solved for outcomes only (see :mod:`.solver`)."""
        return self.rows * self.cols <= 9

    def index(self, cell: tuple[int, int]) -> int:
        """The position of ``(row, col)`` in :attr:`Board.cells`."""
        return cell[0] * self.cols + cell[1]

    def at(self, position: Board, cell: tuple[int, int]) -> int:
        """The mark on ``(row, col)``: 0 (empty), 1 (the first player's) or 2."""
        bit = 1 << (cell[0] * self.cols + cell[1])
        return 1 if position.marks[0] & bit else 2 if position.marks[1] & bit else 0

    def cells(self, position: Board) -> tuple[int, ...]:
        """The mark on every cell (0, 1 or 2), row by row from the bottom."""
        return tuple(self.at(position, (r, c)) for r in range(self.rows) for c in range(self.cols))

    @cached_property
    def lines(self) -> tuple[tuple[tuple[int, int], ...], ...]:
        """Every line of ``k`` cells ``(row, col)``: across, up, and both diagonals."""
        out = []
        for r in range(self.rows):
            for c in range(self.cols):
                for dr, dc in ((0, 1), (1, 0), (1, 1), (1, -1)):
                    cells = tuple((r + i * dr, c + i * dc) for i in range(self.k))
                    if all(0 <= rr < self.rows and 0 <= cc < self.cols for rr, cc in cells):
                        out.append(cells)
        return tuple(out)

    @cached_property
    def _line_masks(self) -> tuple[int, ...]:
        return tuple(sum(1 << self.index(cell) for cell in line) for line in self.lines)

    @cached_property
    def _full(self) -> int:
        return (1 << (self.rows * self.cols)) - 1

    def initial(self) -> Board:
        return Board((0, 0), 0)

    def landing(self, position: Board, col: int) -> tuple[int, int] | None:
        """With gravity: the cell a mark dropped into ``col`` lands on (None: the column is full)."""
        taken = position.marks[0] | position.marks[1]
        for r in range(self.rows):
            if not taken >> (r * self.cols + col) & 1:
                return (r, col)
        return None

    def target(self, position: Board, move: str) -> tuple[int, int]:
        """The cell a canonical move fills."""
        if self.gravity:
            cell = self.landing(position, FILES.index(move))
            if cell is None:
                raise GameError(f"column {move!r} is full in {self.label(position)}")
            return cell
        return parse_cell(move)

    def legal_moves(self, position: Board) -> tuple[str, ...]:
        if self.result(position) is not None:
            return ()
        taken = position.marks[0] | position.marks[1]
        if self.gravity:
            top = (self.rows - 1) * self.cols
            return tuple(FILES[c] for c in range(self.cols) if not taken >> (top + c) & 1)
        return tuple(cell_name((i // self.cols, i % self.cols)) for i in range(self.rows * self.cols) if not taken >> i & 1)

    def play(self, position: Board, move: str) -> Board:
        bit = 1 << self.index(self.target(position, move))
        first, second = position.marks
        marks = (first | bit, second) if position.to_move == 0 else (first, second | bit)
        return Board(marks, 1 - position.to_move)

    def line_of(self, position: Board) -> int:
        """The player (1 or 2) with a complete line, or 0."""
        for player in (1 - position.to_move, position.to_move):  # the one who just moved first
            bits = position.marks[player]
            if any(bits & m == m for m in self._line_masks):
                return player + 1
        return 0

    def key(self, position: Board) -> tuple[int, int, int]:
        """The position's representative under the board's symmetries (for the solver's memo)."""
        first, second = position.marks
        return min((_permute(first, t), _permute(second, t), position.to_move) for t in self._symmetry_tables)

    @cached_property
    def _symmetry_tables(self) -> tuple[tuple[tuple[int, ...], ...], ...]:
        """For each symmetry, per byte of a bit set, the image of every byte value."""
        n = self.rows * self.cols
        tables = []
        for perm in self._symmetries:
            tables.append(tuple(
                tuple(sum(1 << perm[8 * chunk + i] for i in range(8) if value >> i & 1 and 8 * chunk + i < n) for value in range(256))
                for chunk in range((n + 7) // 8)
            ))
        return tuple(tables)

    @cached_property
    def _symmetries(self) -> tuple[tuple[int, ...], ...]:
        """Cell permutations that map lines to lines: mirrors, and rotations of square boards
        (only the left-right mirror keeps gravity's "down")."""
        rows, cols = self.rows, self.cols
        maps = [lambda r, c: (r, c), lambda r, c: (r, cols - 1 - c)]
        if not self.gravity:
            maps += [lambda r, c: (rows - 1 - r, c), lambda r, c: (rows - 1 - r, cols - 1 - c)]
            if rows == cols:
                maps += [lambda r, c: (c, r), lambda r, c: (cols - 1 - c, r), lambda r, c: (c, rows - 1 - r),
                         lambda r, c: (cols - 1 - c, rows - 1 - r)]
        return tuple(tuple(self.index(f(i // cols, i % cols)) for i in range(rows * cols)) for f in maps)

    def result(self, position: Board) -> int | None:
        if self.line_of(position):
            # Only the player who just moved can have made a line: the player to move lost
            # (misère: won).
            return WIN if self.misere else LOSS
        if position.marks[0] | position.marks[1] == self._full:
            return DRAW
        return None

    def to_move(self, position: Board) -> int:
        return position.to_move

    def rules_text(self) -> str:
        m0, m1 = (words.plural(m) for m in self.names.marks)
        s0, s1 = self.names.symbols
        board = (f"The board has {words.number_word(self.cols)} columns, {FILES[0]} to {FILES[self.cols - 1]} from the left, "
                 f"and {words.number_word(self.rows)} rows, 1 to {self.rows} from the bottom; a cell is named by its column "
                 f"and row, like {FILES[0]}1.")
        place = (
            "On a turn, a player drops one of their pieces into a column that is not full; it falls to the lowest empty "
            "cell of that column. A move is written as the column letter."
            if self.gravity else
            "On a turn, a player puts one of their pieces on an empty cell. A move is written as the cell's name."
        )
        line = f"{words.number_word(self.k)} of their own pieces in a straight line (across, up and down, or diagonally)"
        end = (f"A player who completes {line} loses the game." if self.misere
               else f"The first player to complete {line} wins.")
        return (f"{self.title} is a game for two players on a board. One player has the {m0} ({s0}) and moves first; "
                f"the other has the {m1} ({s1}). {board} The board starts empty. {place} {end} If the board fills up "
                "with no such line, the game is a draw.")

    def row_text(self, position: Board, r: int) -> str:
        """One row of the drawing: symbols and dots."""
        row = [self.at(position, (r, c)) for c in range(self.cols)]
        return " ".join(self.names.symbols[v - 1] if v else EMPTY for v in row)

    def render(self, position: Board) -> str:
        files = "  " + " ".join(FILES[: self.cols])
        rows = [files] + [f"{r + 1} {self.row_text(position, r)} {r + 1}" for r in range(self.rows - 1, -1, -1)] + [files]
        return "\n".join(rows)

    def record(self, position: Board) -> dict[str, Any]:
        rows = [[self.at(position, (r, c)) for c in range(self.cols)] for r in range(self.rows - 1, -1, -1)]
        return {"board": ["".join("." if v == 0 else "xo"[v - 1] for v in row) for row in rows]}

    def label(self, position: Board) -> str:
        return "/".join(self.record(position)["board"]) + f" {'xo'[position.to_move]} to move"

    def parameters(self) -> dict[str, Any]:
        return {"cols": self.cols, "rows": self.rows, "k": self.k, "gravity": self.gravity, "misere": self.misere,
                "title": self.names.title, "marks": list(self.names.marks), "symbols": list(self.names.symbols),
                "seed": self.seed}


def _permute(bits: int, table: tuple[tuple[int, ...], ...]) -> int:
    """The image of a bit set under a symmetry, byte by byte."""
    out = 0
    for chunk in table:
        out |= chunk[bits & 255]
        bits >>= 8
    return out


def generate_rules(seed: int) -> Mnk:
    """Seeded rules: a size from :data:`SEEDED_SIZES`, the ending, invented names and symbols."""
    rng = np.random.default_rng([seed, 2])
    title, mark0, mark1 = words.invented_words(rng, 3)
    cols, rows, k, gravity = SEEDED_SIZES[int(rng.integers(len(SEEDED_SIZES)))]
    misere = bool(rng.random() < 0.3)
    names = MnkNames(words.title(title), (mark0, mark1), (mark0[0].upper(), mark1[0].upper()))
    return Mnk(cols, rows, k, gravity, misere, names, seed)


class MnkEnv(SeededGameEnv):
    """m,n,k games from a seed, or at given settings (tic-tac-toe, a small Connect Four).

    Args:
        rules_seed: the seed of the rules (None: new rules each episode).
        cols, rows, k, gravity, misere: override the seed's settings.
        names: ``"invented"`` (the seed's names and symbols) or ``"plain"`` (crosses and
            noughts, X and O, and the known game's name).
        opponent, side: see :class:`~textenvs.games.env.GameEnv`.
    """

    family = "mnk"

    def __init__(self, *, rules_seed: int | None = 0, cols: int | None = None, rows: int | None = None,
                 k: int | None = None, gravity: bool | None = None, misere: bool | None = None, names: str = "invented",
                 opponent: str | Policy = "random", side: str = "first"):
        if names not in ("invented", "plain"):
            raise ValueError(f"unknown names {names!r}; expected 'invented' or 'plain'")
        self.settings = {"cols": cols, "rows": rows, "k": k, "gravity": gravity, "misere": misere}
        self.names = names
        super().__init__(rules_seed=rules_seed, opponent=opponent, side=side)

    def make_rules(self, seed: int) -> Mnk:
        base = generate_rules(seed)
        s = {key: getattr(base, key) if value is None else value for key, value in self.settings.items()}
        names = base.names
        if self.names == "plain":
            known = {(3, 3, 3, False): "Tic-tac-toe", (7, 6, 4, True): "Connect Four"}
            title = known.get((s["cols"], s["rows"], s["k"], s["gravity"]))
            if title is None:
                title = (f"Connect Four on a {s['cols']}x{s['rows']} board" if s["gravity"] and s["k"] == 4
                         else f"the {s['cols']},{s['rows']},{s['k']} game")
            names = MnkNames(words.title(("Misère " if s["misere"] else "") + title),
                             ("red", "yellow") if s["gravity"] else ("cross", "nought"),
                             ("R", "Y") if s["gravity"] else ("X", "O"))
        return Mnk(int(s["cols"]), int(s["rows"]), int(s["k"]), bool(s["gravity"]), bool(s["misere"]), names, seed)
