"""Exact solutions of small games: memoised negamax over the graph of reachable positions.

Every position reachable from the one asked about is searched to the end (no pruning), so
each gets its exact game-theoretic value for the player to move, ``+1`` (win), ``0``
(draw) or ``-1`` (loss) under optimal play by both sides, and its distance to the end in
plies. Distances follow the usual tie-break of endgame tables: a winner takes the fastest
win, a loser the slowest loss, and a drawn position counts the fewest plies to a drawn
end. (Negamax: Knuth and Moore, "An analysis of alpha-beta pruning", Artificial
Intelligence 6, 1975; the value of a position is the maximum over its moves of the
negated value of the position after the move.)

A full search is what distances need. Asked for outcomes only (``distances=False``), the
search looks first for a move that ends the game, then takes the moves in order of the
values already known (losses for the opponent first), and stops at a position's first
winning move (the cut-off of alpha-beta with the window [0, 1]): outcomes stay exact, distances are not known, and far fewer positions
are visited.

Positions are memoised (under :meth:`Game.key`, which may fold symmetric positions together) across calls and shared by every environment with the same rules
(:func:`solver_for`). The search is iterative, so deep games need no recursion limit; a
position that recurs along a line is a :class:`~textenvs.games.base.GameError` (add a move
counter to the position), as is a game with more than ``max_positions`` positions.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Generic, Hashable, TypeVar

from textenvs.games.base import DRAW, LOSS, WIN, Game, GameError

P = TypeVar("P", bound=Hashable)

#: Default cap on the positions one solver stores.
MAX_POSITIONS = 3_000_000


@dataclass(frozen=True)
class Value:
    """The exact value of a position (or of a move), from the view of the player to move."""

    #: ``+1`` win, ``0`` draw, ``-1`` loss under optimal play.
    outcome: int
    #: Plies to the end of the game under optimal play (see the module docstring); None
    #: when the solver was asked for outcomes only.
    plies: int | None

    def key(self) -> tuple[int, int]:
        """Larger is better for the mover: win soonest, lose latest, draw soonest."""
        plies = self.plies or 0
        return (self.outcome, plies if self.outcome == LOSS else -plies)


class Solver(Generic[P]):
    """Values of the positions and moves of one game; see the module docstring."""

    def __init__(self, game: Game[P], max_positions: int = MAX_POSITIONS, distances: bool = True):
        self.game = game
        #: Whether distances are computed (a full search); without them the search stops at
        #: the first winning move it finds, and every ``plies`` is None.
        self.distances = distances
        self.max_positions = max_positions
        self._memo: dict[Hashable, Value] = {}

    def __len__(self) -> int:
        """Positions solved so far."""
        return len(self._memo)

    def value(self, position: P) -> Value:
        """The exact value of ``position`` for the player to move."""
        k = self.game.key(position)
        found = self._memo.get(k)
        if found is None:
            self._search(position)
            found = self._memo[k]
        return found

    def move_values(self, position: P, moves: tuple[str, ...] | None = None) -> tuple[Value, ...]:
        """The value of each move (the game's legal order by default), from the mover's view."""
        game = self.game
        moves = game.legal_moves(position) if moves is None else moves
        out = []
        for move in moves:
            after = self.value(game.play(position, move))
            out.append(Value(-after.outcome, None if after.plies is None else after.plies + 1))
        return tuple(out)

    def best_moves(self, position: P) -> tuple[str, ...]:
        """The moves of the best outcome (any distance), in legal order."""
        moves = self.game.legal_moves(position)
        values = self.move_values(position, moves)
        best = max(v.outcome for v in values)
        return tuple(m for m, v in zip(moves, values) if v.outcome == best)

    def _checked(self, result: Any) -> int:
        if result not in (WIN, DRAW, LOSS):
            raise GameError(f"{type(self.game).__name__}.result returned {result!r}; expected 1, 0, -1 or None")
        return int(result)

    def _search(self, root: P) -> None:
        game, memo, cutoff, key = self.game, self._memo, not self.distances, self.game.key
        # The current line: each frame is a position's key, its children's keys, how many
        # children are done, and the best value so far.
        path: list[list[Any]] = []
        on_path: set[Hashable] = set()
        pending: P | None = root
        while pending is not None or path:
            if pending is not None:
                position, pending = pending, None
                result = game.result(position)
                if result is not None:
                    memo[key(position)] = Value(self._checked(result), 0)
                    continue
                moves = game.legal_moves(position)
                if not moves:
                    raise GameError(f"position {game.label(position)!r} has no legal move but no result")
                children = [(child, key(child)) for child in (game.play(position, m) for m in moves)]
                if cutoff:
                    # Ends first: a move that wins at once settles the position unsearched;
                    # then the children already known, best for the mover first.
                    for child, k in children:
                        if k not in memo and (result := game.result(child)) is not None:
                            memo[k] = Value(self._checked(result), 0)
                    children.sort(key=lambda c: found.outcome if (found := memo.get(c[1])) else 2)
                path.append([key(position), children, 0, None])
                on_path.add(path[-1][0])
                if len(memo) > self.max_positions:
                    raise GameError(f"{game.title!r} has more than {self.max_positions} positions: too large to solve exactly")
                continue
            frame = path[-1]
            k, children, done, best = frame
            while done < len(children):
                child, child_key = children[done]
                found = memo.get(child_key)
                if found is None:
                    if child_key in on_path:
                        raise GameError(
                            f"position {game.label(child)!r} recurs; the solver needs positions that never "
                            "repeat (add a move counter to the position)"
                        )
                    pending = child
                    break
                mine = Value(-found.outcome, None if found.plies is None else found.plies + 1)
                if best is None or mine.key() > best.key():
                    best = mine
                done += 1
                if cutoff and best.outcome == WIN:
                    break
            frame[2], frame[3] = done, best
            if pending is not None:
                continue
            memo[k] = Value(best.outcome, None) if cutoff else best
            on_path.discard(k)
            path.pop()


@lru_cache(maxsize=64)
def solver_for(game: Game[Any]) -> Solver[Any]:
    """The shared solver of ``game`` (rules are hashable values: equal rules share one).

    Distances are computed unless the game says ``solve_distances = False`` (games too
    large for a full search, solved with cut-offs).
    """
    return Solver(game, distances=getattr(game, "solve_distances", True))
