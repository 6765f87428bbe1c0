"""The game protocol: what a user writes to define a new two-player game.

A :class:`Game` is the rules of a turn-based, deterministic game of perfect information
for two players, written against an immutable, hashable position type ``P``:

- :meth:`Game.initial`, the start position;
- :meth:`Game.legal_moves`, canonical string ids of the moves, in a fixed order;
- :meth:`Game.play`, the position after a move;
- :meth:`Game.result`, ``+1``/``0``/``-1`` (win, draw, loss for the player to move) once
  the game is over, ``None`` before;
- :meth:`Game.to_move`, whose turn it is (``0`` the first player, ``1`` the second);
- :meth:`Game.rules_text`, the rules as the player reads them;

and optionally :meth:`Game.render` (a drawing of a position), :meth:`Game.record` (a
JSON-able description), :meth:`Game.parameters` (the rule parameters, for manifests) and
:meth:`Game.move_features` (named numbers describing a move, for the choice model).

From that alone come the exact solver (:mod:`.solver`), a ``gymnasium.Env``
(:class:`~textenvs.games.env.GameEnv`), the generic encodings and prompts. Positions must
never repeat along a game (add a move counter when they could): the solver searches the
graph of reachable positions and refuses cycles.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, Hashable, TypeVar

from textenvs.errors import UserError

#: Results and move values, from the view of the player concerned.
WIN, DRAW, LOSS = 1, 0, -1

P = TypeVar("P", bound=Hashable)


class GameError(UserError, ValueError):
    """Rules that cannot be played or solved: a bad parameter, a cycle, too many positions."""


class Game(ABC, Generic[P]):
    """The rules of a two-player game; see the module docstring for what to write."""

    #: Environment family whose encodings and prompts fit this game.
    family: ClassVar[str] = "game"
    #: The game's name as the player reads it.
    title: str = "the game"
    #: What each player is called in the rules text, first player first.
    player_names: tuple[str, str] = ("the first player", "the second player")

    @abstractmethod
    def initial(self) -> P:
        """The start position."""

    @abstractmethod
    def legal_moves(self, position: P) -> tuple[str, ...]:
        """Canonical ids of the legal moves, in a fixed order (empty once the game is over)."""

    @abstractmethod
    def play(self, position: P, move: str) -> P:
        """The position after ``move`` (legal in ``position``)."""

    @abstractmethod
    def result(self, position: P) -> int | None:
        """``WIN``/``DRAW``/``LOSS`` for the player to move if the game is over, else ``None``."""

    @abstractmethod
    def to_move(self, position: P) -> int:
        """``0`` if the first player moves in ``position``, ``1`` if the second does."""

    @abstractmethod
    def rules_text(self) -> str:
        """The rules in prose, everything a player needs to know."""

    def render(self, position: P) -> str:
        """A drawing of the position for the player (default: ``str(position)``)."""
        return str(position)

    def record(self, position: P) -> dict[str, Any]:
        """A JSON-able description of the position, written into results."""
        return {"position": str(position)}

    def key(self, position: P) -> Hashable:
        """What the solver memoises ``position`` under (default: itself).

        Games with symmetries may map equivalent positions to one representative; the
        value must be the same for all positions sharing a key.
        """
        return position

    def label(self, position: P) -> str:
        """A compact one-line name of the position, for error messages."""
        return " ".join(str(position).split())

    def parameters(self) -> dict[str, Any]:
        """The rule parameters, JSON-able, so that a run can be re-checked from its files."""
        return {}

    def move_features(self, position: P, move: str) -> dict[str, float]:
        """Named numbers describing ``move`` in ``position`` (for the choice model)."""
        return {}

    def describe(self) -> dict[str, Any]:
        """Family, title, parameters and rules text: what a manifest records of the game."""
        return {
            "family": self.family, "title": self.title, "class": f"{type(self).__module__}.{type(self).__qualname__}",
            "parameters": self.parameters(), "rules": self.rules_text(),
        }


@dataclass(frozen=True)
class GameView(Generic[P]):
    """An immutable snapshot of a decision, for encodings: the rules, the position, who plays."""

    game: Game[P]
    position: P
    #: The legal moves in canonical form, in the game's order.
    legal: tuple[str, ...]

    @property
    def mover(self) -> int:
        """``0`` or ``1``: the player to move."""
        return self.game.to_move(self.position)

    @property
    def mover_name(self) -> str:
        """The player to move, as the rules name them."""
        return self.game.player_names[self.mover]
