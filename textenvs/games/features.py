"""Move features ``phi(position, move)`` of the game families for the choice model, in a registry.

Every feature is a small function of a :class:`MoveContext` (the rules, the position
before the move, the move, the position after it) returning a float, seen from the player
who moves. Each is registered for the families it makes sense in (``None``: every game).

``value``
    the move's exact game-theoretic value for the mover: +1 win, 0 draw, -1 loss under
    optimal play (:mod:`.solver`). The game's real objective.
``wins_now``
    1 if the move ends the game in the mover's win.
``nim_sum_zero`` (take-away)
    1 if the bitwise XOR of the heaps after the move is 0: Bouton's winning rule for
    normal Nim, a mere surface habit under other removal sets or the misère ending.
``heap_parity`` (take-away)
    1 if the items left after the move are even in number.
``take_size`` (take-away)
    the items the move removes.
``empties_heap`` (take-away)
    1 if the move empties its heap.
``threats_made`` (mnk)
    change in the mover's open threats: lines holding ``k - 1`` of the mover's marks and
    one empty cell.
``threats_blocked`` (mnk)
    the opponent's open threats the move fills.
``centre`` (mnk, movement)
    how much closer to the board's centre the move puts the piece (mnk: the placed mark,
    from the board's corner distance; Euclidean, in cells).
``captures`` (movement)
    1 if the move captures.
``advance`` (movement)
    rows the piece moves forward, from the mover's side.

A user's game adds its own through :meth:`~textenvs.games.base.Game.move_features`;
those names are read after the registered ones. Adding a registered feature is one
function and one :func:`register_feature` call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import reduce
from typing import Any, Callable, Sequence

import numpy as np

from textenvs.errors import OptionError
from textenvs.games.base import WIN, Game
from textenvs.games.solver import solver_for
from textenvs.registry import Registry

__all__ = ["FEATURES", "MoveContext", "register_feature", "default_features", "resolve_features", "feature_matrix"]

#: Feature name -> ``fn(ctx: MoveContext) -> float``. Metadata: ``families`` (the families
#: it applies to, or None for all) and ``default`` (in the default set).
FEATURES: Registry[Callable[["MoveContext"], float]] = Registry("game feature")


def register_feature(name: str, fn: Callable[["MoveContext"], float] | str, description: str = "", *,
                     families: Sequence[str] | None = None, default: bool = True) -> None:
    """Register ``fn`` (or a lazy ``"module:attr"``) as feature ``name`` of ``families``."""
    FEATURES.register(name, fn, description, families=None if families is None else tuple(families), default=default)


@dataclass
class MoveContext:
    """What a feature function sees: one legal move in one position."""

    game: Game[Any]
    position: Any
    move: str
    _after: Any = field(default=None, repr=False)

    @property
    def after(self) -> Any:
        """The position after the move (computed on first use)."""
        if self._after is None:
            self._after = self.game.play(self.position, self.move)
        return self._after

    @property
    def mover(self) -> int:
        """``0`` or ``1``: the player making the move."""
        return self.game.to_move(self.position)


# -- every game -----------------------------------------------------------------------------


def value(ctx: MoveContext) -> float:
    """The move's exact value for the mover (+1, 0, -1)."""
    return float(-solver_for(ctx.game).value(ctx.after).outcome)


def wins_now(ctx: MoveContext) -> float:
    """1 if the move ends the game in the mover's win."""
    result = ctx.game.result(ctx.after)
    if result is None:
        return 0.0
    mine = result if ctx.game.to_move(ctx.after) == ctx.mover else -result
    return float(mine == WIN)


# -- take-away --------------------------------------------------------------------------------


def nim_sum_zero(ctx: MoveContext) -> float:
    """1 if the heaps' XOR after the move is 0."""
    return float(reduce(lambda a, b: a ^ b, ctx.after.heaps, 0) == 0)


def heap_parity(ctx: MoveContext) -> float:
    """1 if an even number of items is left."""
    return float(sum(ctx.after.heaps) % 2 == 0)


def take_size(ctx: MoveContext) -> float:
    """Items removed."""
    return float(sum(ctx.position.heaps) - sum(ctx.after.heaps))


def empties_heap(ctx: MoveContext) -> float:
    """1 if the move empties its heap."""
    return float(sum(h == 0 for h in ctx.after.heaps) > sum(h == 0 for h in ctx.position.heaps))


# -- m,n,k ------------------------------------------------------------------------------------


def _threats(game: Any, position: Any, player: int) -> set[tuple[tuple[int, int], ...]]:
    """Lines holding k - 1 of ``player``'s marks (1 or 2) and one empty cell."""
    out = set()
    for line in game.lines:
        marks = [game.at(position, cell) for cell in line]
        if marks.count(player) == game.k - 1 and marks.count(0) == 1:
            out.add(line)
    return out


def _placed(ctx: MoveContext) -> tuple[int, int]:
    return ctx.game.target(ctx.position, ctx.move)


def threats_made(ctx: MoveContext) -> float:
    """Change in the mover's open threats."""
    me = ctx.mover + 1
    return float(len(_threats(ctx.game, ctx.after, me)) - len(_threats(ctx.game, ctx.position, me)))


def threats_blocked(ctx: MoveContext) -> float:
    """The opponent's open threats the move fills."""
    cell = _placed(ctx)
    return float(sum(cell in line for line in _threats(ctx.game, ctx.position, 2 - ctx.mover)))


def _centre_distance(game: Any, cell: tuple[int, int]) -> float:
    return float(np.hypot(cell[0] - (game.rows - 1) / 2, cell[1] - (game.cols - 1) / 2))


def centre(ctx: MoveContext) -> float:
    """How much closer to the centre the moved piece stands (mnk: than a corner)."""
    game = ctx.game
    if ctx.game.family == "mnk":
        return _centre_distance(game, (0, 0)) - _centre_distance(game, _placed(ctx))
    start, _, end = ctx.move.partition("-")
    from textenvs.games.movement import parse_square

    return _centre_distance(game, parse_square(start)) - _centre_distance(game, parse_square(end))


# -- movement ---------------------------------------------------------------------------------


def captures(ctx: MoveContext) -> float:
    """1 if the move captures."""
    from textenvs.games.movement import parse_square

    return float(ctx.game.piece_at(ctx.position, parse_square(ctx.move.partition("-")[2])) != 0)


def advance(ctx: MoveContext) -> float:
    """Rows moved forward, from the mover's side."""
    from textenvs.games.movement import parse_square

    start, _, end = ctx.move.partition("-")
    rows = parse_square(end)[0] - parse_square(start)[0]
    return float(rows if ctx.mover == 0 else -rows)


register_feature("value", value, "the move's exact value for the mover: +1 win, 0 draw, -1 loss")
register_feature("wins_now", wins_now, "1 if the move wins at once")
register_feature("nim_sum_zero", nim_sum_zero, "1 if the heaps' XOR is 0 after the move", families=["take-away"])
register_feature("heap_parity", heap_parity, "1 if an even number of items is left", families=["take-away"])
register_feature("take_size", take_size, "items removed", families=["take-away"])
register_feature("empties_heap", empties_heap, "1 if the move empties its heap", families=["take-away"])
register_feature("threats_made", threats_made, "change in the mover's lines one mark from complete", families=["mnk"])
register_feature("threats_blocked", threats_blocked, "opponent lines one mark from complete that the move fills", families=["mnk"])
register_feature("centre", centre, "how much closer to the centre the piece stands", families=["mnk", "movement"])
register_feature("captures", captures, "1 if the move captures", families=["movement"])
register_feature("advance", advance, "rows moved forward", families=["movement"])


def _applies(name: str, family: str) -> bool:
    families = FEATURES.entry(name).metadata.get("families")
    return families is None or family in families


def default_features(game: Game[Any]) -> tuple[str, ...]:
    """The registered default features that apply to ``game``'s family, then the game's own."""
    registered = tuple(e.name for e in FEATURES if e.metadata.get("default", True) and _applies(e.name, game.family))
    own = tuple(game.move_features(game.initial(), m) for m in game.legal_moves(game.initial())[:1])
    return registered + tuple(k for k in (own[0] if own else {}) if k not in registered)


def resolve_features(game: Game[Any], names: Sequence[str] | None) -> tuple[str, ...]:
    """``names`` checked against the registry and the game (``None``: the default set)."""
    if names is None:
        return default_features(game)
    names = tuple(names)
    if not names:
        raise OptionError("no game features given")
    if len(set(names)) != len(names):
        raise OptionError(f"duplicate game features in {list(names)}")
    start = game.initial()
    own = set(game.move_features(start, game.legal_moves(start)[0])) if game.legal_moves(start) else set()
    for name in names:
        if name in own:
            continue
        FEATURES.entry(name)  # unknown names raise with suggestions
        if not _applies(name, game.family):
            raise OptionError(f"feature {name!r} does not apply to {game.family!r} games "
                             f"(it applies to {', '.join(FEATURES.entry(name).metadata['families'])})")
    return names


def feature_matrix(game: Game[Any], position: Any, moves: Sequence[str], names: Sequence[str] | None = None) -> np.ndarray:
    """``[len(moves), K]`` features of ``moves`` (legal in ``position``), columns in ``names`` order."""
    names = resolve_features(game, names)
    out = np.empty((len(moves), len(names)))
    for i, move in enumerate(moves):
        ctx = MoveContext(game, position, move)
        own: dict[str, float] | None = None
        for k, name in enumerate(names):
            if name in FEATURES:
                out[i, k] = float(FEATURES.get(name)(ctx))
            else:
                own = own if own is not None else game.move_features(position, move)
                out[i, k] = float(own[name])
    return out
