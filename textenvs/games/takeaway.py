"""Take-away games: heaps of items, a set of allowed removals, normal or misère ending.

A move takes an allowed number of items from one heap; the canonical id is
``"<heap>:<count>"`` with heaps numbered from 1 (``"2:3"``: three from the second heap).
A player who cannot move on their turn loses (normal play: whoever moves last wins) or,
in the misère version, wins (whoever moves last loses).

With every count allowed this is Nim, solved by Bouton ("Nim, a game with a complete
mathematical theory", Annals of Mathematics 3, 1901-02): the player to move loses exactly
when the heaps' bitwise XOR is 0 (misère: the same, except that when no heap holds more
than one item the player to move loses exactly when an odd number of heaps is left).
With a finite subtraction set it is a sum of subtraction games, solved by Sprague-Grundy
theory. The solver knows neither theory; the tests check it against both.

Seeded rules (:func:`generate_rules`) draw two or three heaps, the allowed counts or "any
number", the ending, and invented names for the game, the heaps and the items; the heaps
are drawn so that the first player can win but not with every first move.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from textenvs.games import names as words
from textenvs.games.base import LOSS, WIN, Game, GameError
from textenvs.games.env import Policy, SeededGameEnv
from textenvs.games.solver import Solver

#: Heap labels in drawings and prose.
HEAP_LETTERS = "ABCDEFGH"


@dataclass(frozen=True)
class Heaps:
    """A take-away position: the items in each heap and whose turn it is."""

    heaps: tuple[int, ...]
    to_move: int = 0


@dataclass(frozen=True)
class TakeAwayNames:
    """What the rules call things (singular nouns; plurals are derived)."""

    title: str
    heap: str = "heap"
    item: str = "counter"


@dataclass(frozen=True)
class TakeAway(Game[Heaps]):
    """A take-away game: see the module docstring."""

    family = "take-away"
    #: Items in each heap at the start.
    start: tuple[int, ...]
    #: The counts a move may take, ascending; ``None``: any positive number (Nim).
    removals: tuple[int, ...] | None = None
    #: Whether the player who moves last loses.
    misere: bool = False
    names: TakeAwayNames = TakeAwayNames("Nim")
    #: The seed the rules were drawn from (None: given explicitly).
    seed: int | None = None

    def __post_init__(self) -> None:
        if not self.start or len(self.start) > len(HEAP_LETTERS) or any(h < 0 for h in self.start):
            raise GameError(f"heaps must be 1 to {len(HEAP_LETTERS)} non-negative counts, got {list(self.start)}")
        if self.removals is not None and (not self.removals or any(r < 1 for r in self.removals)
                                          or list(self.removals) != sorted(set(self.removals))):
            raise GameError(f"removals must be distinct positive counts in ascending order, got {list(self.removals)}")

    @property
    def title(self) -> str:  # type: ignore[override]
        return self.names.title

    def initial(self) -> Heaps:
        return Heaps(tuple(self.start), 0)

    def counts(self, heap: int) -> Sequence[int]:
        """The counts a move may take from a heap of ``heap`` items."""
        if self.removals is None:
            return range(1, heap + 1)
        return [r for r in self.removals if r <= heap]

    def legal_moves(self, position: Heaps) -> tuple[str, ...]:
        return tuple(f"{i + 1}:{r}" for i, h in enumerate(position.heaps) for r in self.counts(h))

    def play(self, position: Heaps, move: str) -> Heaps:
        heap, count = parse_id(move)
        heaps = list(position.heaps)
        heaps[heap] -= count
        return Heaps(tuple(heaps), 1 - position.to_move)

    def result(self, position: Heaps) -> int | None:
        if any(self.counts(h) for h in position.heaps):
            return None
        return WIN if self.misere else LOSS

    def to_move(self, position: Heaps) -> int:
        return position.to_move

    def heap_word(self, n: int = 1) -> str:
        """The heap noun, plural unless ``n == 1``."""
        return self.names.heap if n == 1 else words.plural(self.names.heap)

    def item_word(self, n: int = 1) -> str:
        """The item noun, plural unless ``n == 1``."""
        return self.names.item if n == 1 else words.plural(self.names.item)

    def allowed_text(self) -> str:
        """``"1, 3 or 4 items"`` or ``"any number of items (at least one)"``."""
        if self.removals is None:
            return f"any number of {self.item_word(2)} (at least one)"
        counts = [str(r) for r in self.removals]
        listed = counts[0] if len(counts) == 1 else ", ".join(counts[:-1]) + " or " + counts[-1]
        return f"exactly {listed} {self.item_word(2)}"

    def rules_text(self) -> str:
        n = len(self.start)
        labels = ", ".join(HEAP_LETTERS[: n - 1]) + f" and {HEAP_LETTERS[n - 1]}" if n > 1 else "A"
        ending = (
            "A player who cannot make a move on their turn wins: whoever makes the last move loses."
            if self.misere else
            "A player who cannot make a move on their turn loses: whoever makes the last move wins."
        )
        return (
            f"{self.title} is a game for two players. There {'is' if n == 1 else 'are'} {words.number_word(n)} "
            f"{self.heap_word(n)} of {self.item_word(2)}, named {labels}. The players take turns. On a turn, a player "
            f"chooses one {self.heap_word()} and removes {self.allowed_text()} from it (never more than it holds). "
            f"{ending}"
        )

    def render(self, position: Heaps) -> str:
        return ", ".join(f"{HEAP_LETTERS[i]}: {h}" for i, h in enumerate(position.heaps))

    def record(self, position: Heaps) -> dict[str, Any]:
        return {"heaps": list(position.heaps)}

    def label(self, position: Heaps) -> str:
        return f"heaps {list(position.heaps)}, player {position.to_move + 1} to move"

    def parameters(self) -> dict[str, Any]:
        return {
            "heaps": list(self.start), "removals": "any" if self.removals is None else list(self.removals),
            "misere": self.misere, "title": self.names.title, "heap_word": self.names.heap, "item_word": self.names.item,
            "seed": self.seed,
        }


def parse_id(move: str) -> tuple[int, int]:
    """``"2:3"`` -> ``(1, 3)``: the heap's index from 0 and the count."""
    heap, _, count = move.partition(":")
    return int(heap) - 1, int(count)


def generate_rules(seed: int) -> TakeAway:
    """Seeded rules: two or three heaps of 1-7, allowed counts or any, the ending, invented names."""
    rng = np.random.default_rng([seed, 1])
    title, heap, item = words.invented_words(rng, 3)
    n = int(rng.integers(2, 4))
    if rng.random() < 0.25:
        removals = None
        start = tuple(int(h) for h in rng.integers(1, 6, size=n))
    else:
        k = int(rng.integers(2, 4))
        removals = tuple(sorted(int(r) for r in rng.choice(np.arange(1, 6), size=k, replace=False)))
        start = tuple(int(h) for h in rng.integers(2, 8, size=n))
    misere = bool(rng.random() < 0.4)
    names = TakeAwayNames(words.title(title), heap, item)
    game = TakeAway(start, removals, misere, names, seed)
    # Heaps are drawn again (up to 50 times) until the first player can win and not every
    # first move keeps the win: a start that tells optimal play from chance.
    for _ in range(50):
        values = {v.outcome for v in Solver(game).move_values(game.initial())}
        if values != {WIN} and WIN in values:
            break
        start = tuple(int(h) for h in rng.integers(1 if removals is None else 2, 6 if removals is None else 8, size=n))
        game = TakeAway(start, removals, misere, names, seed)
    return game


def _names_option(names: str) -> None:
    if names not in ("invented", "plain"):
        raise ValueError(f"unknown names {names!r}; expected 'invented' or 'plain'")


class TakeAwayEnv(SeededGameEnv):
    """Take-away games from a seed, or at given settings (Nim).

    Args:
        rules_seed: the seed of the rules (None: new rules each episode).
        heaps: the starting heaps, overriding the seed's.
        removals: the allowed counts (a list), ``"any"`` for any number (Nim), or None for
            the seed's.
        misere: the ending, overriding the seed's.
        names: ``"invented"`` (the seed's made-up names) or ``"plain"`` (Nim, heaps,
            counters: the known game's own words).
        opponent, side: see :class:`~textenvs.games.env.GameEnv`.
    """

    family = "take-away"

    def __init__(self, *, rules_seed: int | None = 0, heaps: Sequence[int] | None = None,
                 removals: Sequence[int] | str | None = None, misere: bool | None = None, names: str = "invented",
                 opponent: str | Policy = "random", side: str = "first"):
        _names_option(names)
        if isinstance(removals, str) and removals != "any":
            raise ValueError(f"removals must be a list of counts, 'any' or None, got {removals!r}")
        self.heaps, self.removals, self.misere, self.names = heaps, removals, misere, names
        super().__init__(rules_seed=rules_seed, opponent=opponent, side=side)

    def make_rules(self, seed: int) -> TakeAway:
        base = generate_rules(seed)
        start = base.start if self.heaps is None else tuple(int(h) for h in self.heaps)
        removals = base.removals if self.removals is None else None if self.removals == "any" else tuple(int(r) for r in self.removals)
        misere = base.misere if self.misere is None else bool(self.misere)
        names = base.names
        if self.names == "plain":
            title = ("Misère " if misere else "") + ("Nim" if removals is None else "the subtraction game")
            names = TakeAwayNames(words.title(title))
        return TakeAway(start, removals, misere, names, seed)
