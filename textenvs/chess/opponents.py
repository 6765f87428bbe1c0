"""The side the agent plays against.

An opponent is anything with ``choose(board) -> chess.Move`` and ``close()`` (the
:class:`Opponent` protocol), or a policy ``(board, legal_uci) -> uci`` wrapped in a
:class:`PolicyOpponent`: the harness lets a model play the other side that way
(``opponent="model:NAME"`` on the command line). The built-in ones are made from spec
strings by :func:`make_opponent`:

``"random"``
    a uniformly random legal move, drawn from the environment's ``np_random``;
``"stockfish"``, ``"stockfish:skill=5"``, ``"stockfish:depth=3"``, ``"stockfish:skill=3,movetime=0.05"``
    Stockfish with an optional skill level (0-20), search depth (plies) and/or time per
    move (seconds). Without depth or movetime it searches to ``DEFAULT_DEPTH``.
"""

from __future__ import annotations

from typing import Callable, Protocol, runtime_checkable

import chess
import chess.engine
import numpy as np

from textenvs.chess.engine import EngineProcess

#: Search depth of ``"stockfish"`` when the spec sets neither depth nor movetime.
DEFAULT_DEPTH = 10
#: What :func:`make_opponent` accepts, for error messages.
ACCEPTED_SPECS = (
    "'random', 'stockfish', or 'stockfish:' followed by comma-separated key=value options "
    "among skill=0..20, depth=N>=1, movetime=SECONDS>0 (e.g. 'stockfish:skill=3,movetime=0.05')"
)


@runtime_checkable
class Opponent(Protocol):
    """Chooses the moves of the side the agent does not play."""

    def choose(self, board: chess.Board) -> chess.Move:
        """A legal move in ``board`` (which has at least one); ``board`` must not be changed."""
        ...

    def close(self) -> None:
        """Release whatever the opponent holds (an engine process, a model)."""
        ...


class OpponentError(RuntimeError):
    """An opponent answered with a move that is not legal: a bug in the opponent."""


class RandomOpponent:
    """Plays a uniformly random legal move.

    ``rng`` is a zero-argument callable returning the generator to draw from; the
    environment passes ``lambda: self.np_random`` so that ``reset(seed=...)`` reseeds it.
    """

    spec = "random"

    def __init__(self, rng: Callable[[], np.random.Generator]):
        self._rng = rng

    def choose(self, board: chess.Board) -> chess.Move:
        """A random legal move (legal moves sorted by UCI, so the draw is reproducible)."""
        moves = sorted(board.legal_moves, key=chess.Move.uci)
        return moves[int(self._rng().integers(len(moves)))]

    def close(self) -> None:
        """Nothing to release."""


class StockfishOpponent:
    """Stockfish playing at a given skill level, depth and/or time per move.

    Skill levels below 20 make Stockfish pick weaker moves at random (its own generator),
    so such games are not reproducible from the environment's seed.
    """

    def __init__(
        self,
        path: str | None = None,
        skill: int | None = None,
        depth: int | None = None,
        movetime: float | None = None,
    ):
        _check_range("skill", skill, 0, 20)
        _check_range("depth", depth, 1, None)
        if movetime is not None and not movetime > 0:
            raise ValueError(f"stockfish movetime must be > 0 seconds, got {movetime}")
        #: Skill level 0-20 (None: Stockfish's default, 20).
        self.skill = skill
        #: The search limit of every move.
        self.limit = chess.engine.Limit(
            depth=depth if depth is not None or movetime is not None else DEFAULT_DEPTH,
            time=movetime,
        )
        options = {} if skill is None else {"Skill Level": skill}
        self._process = EngineProcess(path, options)

    @property
    def spec(self) -> str:
        """The spec string that rebuilds this opponent."""
        parts = [f"skill={self.skill}"] if self.skill is not None else []
        if self.limit.depth is not None:
            parts.append(f"depth={self.limit.depth}")
        if self.limit.time is not None:
            parts.append(f"movetime={self.limit.time}")
        return "stockfish:" + ",".join(parts)

    def choose(self, board: chess.Board) -> chess.Move:
        """Stockfish's move in ``board``."""
        result = self._process.engine.play(board, self.limit)
        if result.move is None:
            raise OpponentError(f"Stockfish returned no move in {board.fen()}")
        return result.move

    def close(self) -> None:
        """Stop the engine process."""
        self._process.close()


def _check_range(name: str, value: int | None, low: int, high: int | None) -> None:
    if value is None:
        return
    if value < low or (high is not None and value > high):
        bound = f"{low}..{high}" if high is not None else f">= {low}"
        raise ValueError(f"stockfish {name} must be {bound}, got {value}")


_STOCKFISH_KEYS: dict[str, Callable[[str], int | float]] = {"skill": int, "depth": int, "movetime": float}


class PolicyOpponent:
    """Plays the moves of a policy ``(board, legal_uci) -> uci`` (a model, say).

    The policy gets a copy of the board and the legal moves in UCI, sorted; its
    ``close()``, if it has one, is called with the opponent's.
    """

    spec = "policy"

    def __init__(self, policy: Callable[[chess.Board, list[str]], str]):
        self.policy = policy

    def choose(self, board: chess.Board) -> chess.Move:
        legal = sorted(m.uci() for m in board.legal_moves)
        return chess.Move.from_uci(self.policy(board.copy(), legal))

    def close(self) -> None:
        close = getattr(self.policy, "close", None)
        if callable(close):
            close()

    def __repr__(self) -> str:
        return f"PolicyOpponent({self.policy!r})"


def parse_opponent_spec(spec: str) -> tuple[str, dict[str, int | float]]:
    """``"stockfish:skill=3,depth=2"`` -> ``("stockfish", {"skill": 3, "depth": 2})``.

    Raises ``ValueError`` naming the spec and the accepted forms.
    """
    name, sep, rest = spec.strip().partition(":")
    if name == "random" and not sep:
        return name, {}
    if name != "stockfish" or (sep and not rest):
        raise ValueError(f"unknown opponent {spec!r}; expected {ACCEPTED_SPECS}")
    options: dict[str, int | float] = {}
    for item in rest.split(",") if rest else []:
        key, eq, value = (part.strip() for part in item.partition("="))
        if not eq or key not in _STOCKFISH_KEYS or key in options:
            raise ValueError(f"bad option {item!r} in opponent {spec!r}; expected {ACCEPTED_SPECS}")
        try:
            options[key] = _STOCKFISH_KEYS[key](value)
        except ValueError:
            raise ValueError(f"bad value {value!r} for {key} in opponent {spec!r}; expected {ACCEPTED_SPECS}") from None
    return name, options


def make_opponent(
    spec: str, rng: Callable[[], np.random.Generator], stockfish_path: str | None = None
) -> RandomOpponent | StockfishOpponent:
    """Build the opponent named by ``spec`` (see the module docstring)."""
    name, options = parse_opponent_spec(spec)
    if name == "random":
        return RandomOpponent(rng)
    try:
        return StockfishOpponent(stockfish_path, **options)  # type: ignore[arg-type]
    except ValueError as exc:
        raise ValueError(f"opponent {spec!r}: {exc}") from None
