"""Text encodings of the game families, and how each writes moves.

==================  ========  =========================================  ==========================
family              name      state                                      moves written
==================  ========  =========================================  ==========================
``take-away``       heaps     a drawing: one row of marks per heap       ``take 2 from A``
``take-away``       counts    the heap sizes as numbers                  ``1:2`` (heap:count)
``take-away``       prose     sentences with the game's own nouns        ``remove 2 quills from mound A``
``mnk``             board     the board drawn with row and column labels ``b2`` (gravity: ``column b``)
``mnk``             coords    each side's cells, and the empty ones      ``b2`` (gravity: ``column b``)
``mnk``             prose     sentences: whose pieces are where          ``b2`` (gravity: ``column b``)
``movement``        board     the board drawn with labels                ``a1-b3``
``movement``        coords    each side's pieces and squares             ``a1-b3``
``movement``        prose     sentences with the pieces' names           ``the zorb from a1 to b3``
``game``            text      the game's own :meth:`~.base.Game.render`  the canonical move id
``game``            json      the game's :meth:`~.base.Game.record`      the canonical move id
==================  ========  =========================================  ==========================

The state is a :class:`~textenvs.games.base.GameView`. Every encoding of a family parses
replies the same way (:func:`~textenvs.games.parsing.read_move`), accepting any of the
family's ways of writing a move, whatever the encoding writes; the rules text reaches
the prompt as the ``$rules`` field.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any, ClassVar, Sequence

from textenvs.base import Encoding
from textenvs.games import names as words
from textenvs.games.base import GameView
from textenvs.games.mnk import FILES, Mnk, cell_name
from textenvs.games.movement import Movement, parse_square, square_name
from textenvs.games.parsing import NameTable, add, read_move
from textenvs.games.takeaway import HEAP_LETTERS, TakeAway, parse_id


class GameEncoding(Encoding[GameView[Any]]):
    """Shared behaviour: prompt fields, labels, and the family's move parser."""

    env: ClassVar[str] = "game"
    answer_tag: ClassVar[str] = "Move"
    #: How a move is written, for the ``$notation`` prompt field.
    notation: ClassVar[str] = "the move exactly as listed"

    def state_label(self, state: GameView[Any]) -> str:
        """The game's compact label of the position."""
        return state.game.label(state.position)

    def prompt_fields(self, state: GameView[Any]) -> dict[str, str]:
        """``rules`` (the rules text), ``title``, ``side`` (the player to move) and ``notation``."""
        return {"rules": state.game.rules_text(), "title": state.game.title, "side": state.mover_name,
                "notation": self.notation}

    def render_action(self, state: GameView[Any], action: str) -> str:
        """The canonical id itself (families override)."""
        return action

    def names(self, state: GameView[Any]) -> tuple[NameTable, NameTable]:
        """Every way the family writes every possible move: (names, exact-only names)."""
        table: dict[str, frozenset[str]] = {}
        for move in state.legal:
            add(table, move, move)
            add(table, self.render_action(state, move), move)
        return table, {}

    def parse_action(self, state: GameView[Any], reply: str, legal: Sequence[str]) -> str:
        """The one legal move the reply names (see :mod:`.parsing`)."""
        names, exact = _names(self, state)
        return read_move(reply, names, legal, self.state_label(state), exact)


@lru_cache(maxsize=256)
def _names(encoding: GameEncoding, state: GameView[Any]) -> tuple[NameTable, NameTable]:
    """The name tables of one decision, built once (encodings are stateless, views immutable)."""
    return encoding.names(state)


# -- the generic family: any Game ----------------------------------------------------------


class TextEncoding(GameEncoding):
    """The game's own drawing of the position; moves by their ids."""

    name = "text"
    summary = "the game's own drawing of the position"

    def render_state(self, state: GameView[Any]) -> str:
        """``Game.render`` of the position, and whose turn it is."""
        return f"{state.game.render(state.position)}\n{words.title(state.mover_name)} to move."


class JsonEncoding(GameEncoding):
    """The game's record of the position as JSON; moves by their ids."""

    name = "json"
    summary = "the game's record of the position as JSON"

    def render_state(self, state: GameView[Any]) -> str:
        """``Game.record`` as JSON, with the player to move."""
        return json.dumps({**state.game.record(state.position), "to_move": state.mover_name})


# -- take-away -----------------------------------------------------------------------------


class TakeAwayEncoding(GameEncoding):
    """Take-away encodings share the parser: ``take 2 from A``, ``1:2``, ``remove 2 quills from mound A``."""

    env = "take-away"
    notation = "like 'take 2 from A'"

    def names(self, state: GameView[Any]) -> tuple[NameTable, NameTable]:
        """Every heap and count up to the largest heap, in every family form; ``take 2`` alone is partial."""
        game: TakeAway = state.game
        table: dict[str, frozenset[str]] = {}
        top = max(max(game.start), 9)
        for i in range(len(game.start)):
            letter = HEAP_LETTERS[i]
            for n in range(1, top + 1):
                move = f"{i + 1}:{n}"
                for verb in ("take", "remove"):
                    for count in {str(n), words.number_word(n)}:
                        for noun in ("", f" {game.item_word(n)}", " items"):
                            for heap in (letter, f"heap {letter}", f"{game.heap_word()} {letter}", f"heap {i + 1}"):
                                add(table, f"{verb} {count}{noun} from {heap}", move)
                            add(table, f"{verb} {count}{noun}", move)  # partial: which heap?
                add(table, move, move)
                add(table, f"{letter}{n}", move)
        return table, {}


class HeapsDrawing(TakeAwayEncoding):
    """Each heap as a row of marks with its letter and size; moves ``take 2 from A``."""

    name = "heaps"
    summary = "each heap drawn as a row of marks"

    def render_state(self, state: GameView[Any]) -> str:
        """One line per heap: ``A | o o o (3)``."""
        heaps = state.position.heaps
        return "\n".join(f"{HEAP_LETTERS[i]} | {' '.join('o' * h) or '(empty)'} ({h})" for i, h in enumerate(heaps))

    def render_action(self, state: GameView[Any], action: str) -> str:
        """``take 2 from A``."""
        heap, count = parse_id(action)
        return f"take {count} from {HEAP_LETTERS[heap]}"


class HeapsCounts(TakeAwayEncoding):
    """The heap sizes as a list of numbers; moves ``heap:count`` (``1:2``)."""

    name = "counts"
    summary = "heap sizes as numbers; moves heap:count"
    notation = "heap:count, like 1:2"

    def render_state(self, state: GameView[Any]) -> str:
        """``heaps (numbered from 1): [3, 4, 5]``."""
        return f"heaps (numbered from 1): {list(state.position.heaps)}"


class HeapsProse(TakeAwayEncoding):
    """Sentences with the game's own nouns; moves ``remove 2 quills from mound A``."""

    name = "prose"
    summary = "the heaps in sentences, with the game's own nouns"
    notation = "like 'remove 2 ... from ... A'"

    def render_state(self, state: GameView[Any]) -> str:
        """``Mound A holds three quills; mound B is empty.``"""
        game: TakeAway = state.game
        parts = []
        for i, h in enumerate(state.position.heaps):
            what = f"holds {words.number_word(h)} {game.item_word(h)}" if h else "is empty"
            parts.append(f"{game.heap_word()} {HEAP_LETTERS[i]} {what}")
        return words.title("; ".join(parts)) + "."

    def render_action(self, state: GameView[Any], action: str) -> str:
        """``remove 2 quills from mound A``."""
        game: TakeAway = state.game
        heap, count = parse_id(action)
        return f"remove {count} {game.item_word(count)} from {game.heap_word()} {HEAP_LETTERS[heap]}"


# -- m,n,k ----------------------------------------------------------------------------------


class MnkEncoding(GameEncoding):
    """m,n,k encodings share the parser: a cell ``b2``, ``column b`` with gravity."""

    env = "mnk"
    notation = "a cell name like b2 (with gravity: a column like 'column b')"

    def render_action(self, state: GameView[Any], action: str) -> str:
        """``b2``; ``column b`` with gravity."""
        return f"column {action}" if state.game.gravity else action

    def names(self, state: GameView[Any]) -> tuple[NameTable, NameTable]:
        """Every cell (with gravity: each column, and its cells); a bare column letter only as the whole reply."""
        game: Mnk = state.game
        table: dict[str, frozenset[str]] = {}
        exact: dict[str, frozenset[str]] = {}
        for c in range(game.cols):
            for r in range(game.rows):
                cell = cell_name((r, c))
                move = FILES[c] if game.gravity else cell
                for name in (cell, f"{FILES[c]} {r + 1}", f"column {FILES[c]} row {r + 1}", f"row {r + 1} column {FILES[c]}"):
                    add(table, name, move)
            if game.gravity:
                for name in (f"column {FILES[c]}", f"col {FILES[c]}", f"column {c + 1}"):
                    add(table, name, FILES[c])
                add(exact, FILES[c], FILES[c])
        return table, exact


def _cells(game: Mnk, state: GameView[Any], mark: int) -> list[str]:
    return [cell_name((r, c)) for r in range(game.rows) for c in range(game.cols) if game.at(state.position, (r, c)) == mark]


def _listed(cells: list[str]) -> str:
    return ", ".join(cells) if cells else "none"


class MnkBoard(MnkEncoding):
    """The board drawn with row and column labels, row 1 at the bottom."""

    name = "board"
    summary = "the board drawn with row and column labels"

    def render_state(self, state: GameView[Any]) -> str:
        """The drawing, a legend and the player to move."""
        game: Mnk = state.game
        s0, s1 = game.names.symbols
        return f"{game.render(state.position)}\n({s0}: {game.player_names[0]}, {s1}: {game.player_names[1]}, '.': empty)"


class MnkCoords(MnkEncoding):
    """Each side's cells and the empty cells as coordinate lists."""

    name = "coords"
    summary = "each side's cells as coordinates"

    def render_state(self, state: GameView[Any]) -> str:
        """``X: a1, b2`` / ``O: c3`` / ``empty: ...``."""
        game: Mnk = state.game
        s0, s1 = game.names.symbols
        return "\n".join((f"{s0}: {_listed(_cells(game, state, 1))}", f"{s1}: {_listed(_cells(game, state, 2))}",
                          f"empty: {_listed(_cells(game, state, 0))}"))


class MnkProse(MnkEncoding):
    """Sentences naming where each side's pieces stand."""

    name = "prose"
    summary = "sentences: where each side's pieces stand"

    def render_state(self, state: GameView[Any]) -> str:
        """``The zorbs stand on a1 and b2. The quils stand on c3. ...``"""
        game: Mnk = state.game
        parts = []
        for side, mark in ((0, 1), (1, 2)):
            cells = _cells(game, state, mark)
            noun = words.title(words.plural(game.names.marks[side]))
            parts.append(f"The {noun.lower()} stand on {_and(cells)}." if cells else f"No {noun.lower()} are on the board yet.")
        free = len(_cells(game, state, 0))
        parts.append(f"{words.title(words.number_word(free))} cell{'s are' if free != 1 else ' is'} empty.")
        return " ".join(parts)


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


# -- movement -------------------------------------------------------------------------------


class MovementEncoding(GameEncoding):
    """Movement encodings share the parser: ``a1-b3``, ``a1 to b3``, ``a1b3``; ``to b3`` alone is partial."""

    env = "movement"
    notation = "from-square and to-square, like a1-b3"

    def names(self, state: GameView[Any]) -> tuple[NameTable, NameTable]:
        """Every pair of squares, in every family form, and each destination alone (partial)."""
        game: Movement = state.game
        squares = [square_name((r, c)) for r in range(game.rows) for c in range(game.cols)]
        kinds = [t.name for t in game.types]
        table: dict[str, frozenset[str]] = {}
        for a in squares:
            for b in squares:
                if a == b:
                    continue
                move = f"{a}-{b}"
                for name in (move, f"{a} {b}", f"{a}{b}", f"{a} to {b}", f"{a}x{b}", f"from {a} to {b}"):
                    add(table, name, move)
                for kind in kinds:
                    add(table, f"{kind} from {a} to {b}", move)
                add(table, f"to {b}", move)  # partial: which piece?
        return table, {}


class MovementBoard(MovementEncoding):
    """The board drawn with labels; the first side in upper case."""

    name = "board"
    summary = "the board drawn with labels"

    def render_state(self, state: GameView[Any]) -> str:
        """The drawing, a legend of the letters, the side to move and the move count."""
        game: Movement = state.game
        legend = ", ".join(f"{t.letter}/{t.letter.lower()}: {t.name}" for t in game.types)
        s0, s1 = game.names.sides
        return (f"{game.render(state.position)}\n(upper case: {s0}, lower case: {s1}; {legend}; '.': empty)\n"
                f"Move {state.position.ply + 1} of at most {game.max_plies}.")


def _pieces(game: Movement, state: GameView[Any], side: int) -> list[str]:
    out = []
    for i, piece in enumerate(state.position.board):
        if piece and game.owner(piece) == side:
            out.append(f"{game.types[abs(piece) - 1].name} on {square_name((i // game.cols, i % game.cols))}")
    return out


class MovementCoords(MovementEncoding):
    """Each side's pieces and their squares."""

    name = "coords"
    summary = "each side's pieces with their squares"

    def render_state(self, state: GameView[Any]) -> str:
        """``Sun: zorb on a1, quil on c1`` / ``Moon: ...`` / move count."""
        game: Movement = state.game
        lines = [f"{game.names.sides[s]}: {_listed(_pieces(game, state, s))}" for s in (0, 1)]
        return "\n".join(lines + [f"Move {state.position.ply + 1} of at most {game.max_plies}."])


class MovementProse(MovementEncoding):
    """Sentences with the pieces' names; moves ``the zorb from a1 to b3``."""

    name = "prose"
    summary = "sentences with the pieces' names"
    notation = "like 'the <piece> from a1 to b3'"

    def render_state(self, state: GameView[Any]) -> str:
        """``Sun has a zorb on a1 and a quil on c1. Moon has ...``"""
        game: Movement = state.game
        parts = []
        for s in (0, 1):
            pieces = _pieces(game, state, s)
            parts.append(f"{game.names.sides[s]} has {_and(['a ' + p for p in pieces])}." if pieces
                         else f"{game.names.sides[s]} has no pieces left.")
        left = game.max_plies - state.position.ply
        parts.append(f"{words.title(words.number_word(left))} move{'s' if left != 1 else ''} remain before a draw.")
        return " ".join(parts)

    def render_action(self, state: GameView[Any], action: str) -> str:
        """``the zorb from a1 to b3``."""
        game: Movement = state.game
        start, _, end = action.partition("-")
        piece = game.piece_at(state.position, parse_square(start))
        return f"the {game.types[abs(piece) - 1].name} from {start} to {end}"


__all__ = [
    "GameEncoding", "TextEncoding", "JsonEncoding", "TakeAwayEncoding", "HeapsDrawing", "HeapsCounts", "HeapsProse",
    "MnkEncoding", "MnkBoard", "MnkCoords", "MnkProse", "MovementEncoding", "MovementBoard", "MovementCoords",
    "MovementProse",
]
