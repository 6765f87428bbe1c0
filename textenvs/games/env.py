"""Any :class:`~textenvs.games.base.Game` as a gymnasium environment, judged move by move.

The agent plays one side; the opponent plays the other inside ``step`` (and moves first
inside ``reset`` when the agent plays second). Observations are the position's compact
label and actions canonical move ids; a move that is not legal raises
:class:`~textenvs.errors.IllegalActionError`, nothing is substituted. The reward is +1 (the
agent won), -1 (lost) or 0, on the step that ends the game; the game's own end (a draw by
a move limit included) is ``terminated``, and ``truncated`` is always False: the runner
enforces step limits.

Every move the agent makes is judged against the exact solution (:mod:`.solver`). Each
step's ``info`` holds

``move_values``
    for each legal move before the agent's move, in ``legal_actions`` order: +1 if the
    agent wins after it under optimal play by both sides, 0 a draw, -1 a loss;
``move_plies``
    the plies to the end after each move under that play;
``position_value``
    the value of the position the agent moved in (the best of ``move_values``);
``metrics``
    ``optimal_move`` (1 if the move played had the best value, any distance), and
    ``random_optimal``, the exact probability that a uniformly random legal move would
    have; in a won position only, ``blunder`` (1 if the move threw the win away: its
    value is a draw or a loss) and ``random_blunder``, the exact probability that a
    uniformly random move would have. Blunder rates are thus rates over won positions.
    All four are rates (:attr:`GameEnv.rate_metrics`);
``opponent_move``
    the opponent's reply, or None;

and on the final step ``outcome`` (``"win"``, ``"loss"``, ``"draw"``, from the agent's
side) and ``success`` (the agent won).
"""

from __future__ import annotations

import importlib
import importlib.util
import string
import sys
from pathlib import Path
from typing import Any, Callable

import gymnasium
import numpy as np
from gymnasium import spaces

from textenvs.errors import IllegalActionError
from textenvs.games.base import DRAW, LOSS, WIN, Game, GameError, GameView
from textenvs.games.solver import solver_for

#: Accepted values of ``side``.
SIDES = ("first", "second", "alternate")
#: Named opponents; a callable ``(view, legal) -> move`` is accepted too.
OPPONENTS = ("random", "optimal")
#: Accepted keys of ``reset(options=...)``.
RESET_OPTIONS = ("episode_index",)
#: Words for a result, from the agent's side.
OUTCOMES = {WIN: "win", DRAW: "draw", LOSS: "loss"}

Policy = Callable[[GameView[Any], list[str]], str]


def load_game(spec: Game[Any] | str) -> Game[Any]:
    """A game from an instance, ``"module:Name"`` or ``"path/to/file.py:Name"``.

    ``Name`` may be a :class:`Game` subclass (built without arguments) or an instance.
    """
    if isinstance(spec, Game):
        return spec
    if not isinstance(spec, str) or ":" not in spec:
        raise GameError(f"a game is a Game instance, 'module:Name' or 'file.py:Name', got {spec!r}")
    where, _, attr = spec.rpartition(":")
    if where.endswith(".py"):
        path = Path(where).expanduser().resolve()
        if not path.is_file():
            raise GameError(f"no game file {where!r} (from {spec!r})")
        module_spec = importlib.util.spec_from_file_location(f"zso_game_{path.stem}", path)
        assert module_spec is not None and module_spec.loader is not None
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[module_spec.name] = module  # dataclasses look their module up
        module_spec.loader.exec_module(module)
    else:
        try:
            module = importlib.import_module(where)
        except ImportError as exc:
            raise GameError(f"cannot import {where!r} (from {spec!r}): {exc}") from None
    try:
        obj = getattr(module, attr)
    except AttributeError:
        raise GameError(f"{where!r} defines no {attr!r} (from {spec!r})") from None
    if isinstance(obj, type) and not issubclass(obj, Game):
        raise GameError(f"{spec!r} is the class {obj.__name__}, not a textenvs.games.Game")
    game = obj() if isinstance(obj, type) else obj
    if not isinstance(game, Game):
        raise GameError(f"{spec!r} is a {type(game).__name__}, not a textenvs.games.Game")
    return game


class GameEnv(gymnasium.Env):
    """A two-player game against an opponent; see the module docstring.

    Args:
        game: the rules: a :class:`Game`, ``"module:Name"`` or ``"file.py:Name"``.
        opponent: ``"random"`` (uniform over legal moves), ``"optimal"`` (a move of the
            best value, ties drawn at random), or a policy ``(view, legal) -> move``.
            Both named opponents draw from ``self.np_random``.
        side: the agent plays ``"first"``, ``"second"``, or ``"alternate"`` (first in
            even episodes, second in odd ones, by ``episode_index``).
    """

    family = "game"
    metadata: dict[str, Any] = {"render_modes": []}
    #: Step metrics that are 0/1 or probabilities: summaries show them as percentages.
    rate_metrics = ("optimal_move", "random_optimal", "blunder", "random_blunder")

    def return_range(self, max_steps: int) -> tuple[float, float]:
        """Every episode returns -1 (lost), 0 (drawn or unfinished) or +1 (won)."""
        return (-1.0, 1.0)

    def __init__(self, *, game: Game[Any] | str = "textenvs.games.examples:RaceToTen", opponent: str | Policy = "random",
                 side: str = "first"):
        self._setup(load_game(game), opponent, side)

    def _setup(self, game: Game[Any] | None, opponent: str | Policy, side: str) -> None:
        if side not in SIDES:
            raise ValueError(f"unknown side {side!r}; expected one of {', '.join(SIDES)}")
        if isinstance(opponent, str) and opponent not in OPPONENTS:
            raise ValueError(f"unknown opponent {opponent!r}; expected one of {', '.join(OPPONENTS)}, or a policy")
        if not isinstance(opponent, str) and not callable(opponent):
            raise TypeError(f"opponent {opponent!r} must be one of {', '.join(OPPONENTS)} or a policy (view, legal) -> move")
        #: The current rules (for seeded families with ``rules_seed=None``, this episode's).
        self.game: Game[Any] | None = game
        self.opponent = opponent
        self.side = side
        self.observation_space = spaces.Text(min_length=0, max_length=4096, charset=string.printable)
        self.action_space = spaces.Text(min_length=1, max_length=64, charset=string.printable)
        self._position: Any = None
        self._agent = 0
        self._over = False
        self._resets = 0

    # -- hooks for seeded families ------------------------------------------------------

    def _rules_for_episode(self) -> Game[Any]:
        """The rules of the episode being reset (families with fresh rules override this)."""
        if self.game is None:
            raise RuntimeError(f"{type(self).__name__} has no rules")
        return self.game

    def describe(self) -> dict[str, Any]:
        """What a manifest records: the rules (when fixed), the opponent and the side."""
        opponent = self.opponent if isinstance(self.opponent, str) else f"policy {self.opponent!r}"
        return {"game": None if self.game is None else self.game.describe(), "opponent": opponent, "side": self.side}

    # -- gymnasium ----------------------------------------------------------------------

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
        """Start a game. The info has ``title``, ``rules`` (the parameters), ``agent_player``
        (0 first, 1 second) and ``opponent_move``; if that move ended the game, also
        ``outcome`` and ``success``, and no action is legal."""
        super().reset(seed=seed)
        index = self._episode_index(options or {})
        self.game = self._rules_for_episode()
        self._agent = {"first": 0, "second": 1, "alternate": index % 2}[self.side]
        self._position, self._over = self.game.initial(), False
        info: dict[str, Any] = {
            "title": self.game.title, "rules": self.game.parameters(), "agent_player": self._agent, "opponent_move": None,
        }
        self._check_over()
        if not self._over and self.game.to_move(self._position) != self._agent:
            info["opponent_move"] = self._play_opponent()
        info.update(self._end_info())
        return self.game.label(self._position), info

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        """Play the agent's move, judge it, then play the opponent's reply if the game goes on."""
        game, position = self._rules(), self._current()
        legal = self._check_legal(action)
        values = solver_for(game).move_values(position, legal)
        outcomes = [v.outcome for v in values]
        chosen = outcomes[legal.index(action)]
        best = max(outcomes)
        metrics = {"optimal_move": float(chosen == best), "random_optimal": outcomes.count(best) / len(outcomes)}
        if best == WIN:
            metrics["blunder"] = float(chosen != WIN)
            metrics["random_blunder"] = sum(o != WIN for o in outcomes) / len(outcomes)
        info: dict[str, Any] = {
            "move_values": outcomes, "move_plies": [v.plies for v in values], "position_value": best, "metrics": metrics,
        }
        self._position = game.play(position, action)
        self._check_over()
        info["opponent_move"] = None if self._over else self._play_opponent()
        end = self._end_info()
        info.update(end)
        reward = 0.0 if not end or end["outcome"] == "draw" else (1.0 if end["success"] else -1.0)
        return game.label(self._position), reward, bool(end), False, info

    # -- TextEnv ------------------------------------------------------------------------

    def legal_actions(self) -> list[str]:
        """The legal moves in canonical form, in the game's order; empty once the game is over."""
        return [] if self._over else list(self._rules().legal_moves(self._current()))

    def text_state(self) -> GameView[Any]:
        """The rules, the position and the legal moves, immutable."""
        return GameView(self._rules(), self._current(), tuple(self.legal_actions()))

    def state_record(self) -> dict[str, Any]:
        """The game's record of the position, the player to move, its exact value and distance."""
        game, position = self._rules(), self._current()
        value = solver_for(game).value(position)
        return {**game.record(position), "to_move": game.to_move(position), "value": value.outcome, "plies": value.plies}

    @property
    def agent_player(self) -> int:
        """``0`` if the agent plays first this episode, ``1`` if second."""
        return self._agent

    # -- internals ----------------------------------------------------------------------

    def _rules(self) -> Game[Any]:
        if self.game is None or self._position is None:
            raise RuntimeError(f"{type(self).__name__}: call reset() before using the environment")
        return self.game

    def _current(self) -> Any:
        self._rules()
        return self._position

    def _episode_index(self, options: dict[str, Any]) -> int:
        unknown = sorted(set(options) - set(RESET_OPTIONS))
        if unknown:
            raise ValueError(f"unknown reset options {unknown}; accepted: {', '.join(RESET_OPTIONS)}")
        index = options.get("episode_index")
        if index is None:
            index, self._resets = self._resets, self._resets + 1
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise ValueError(f"episode_index must be an integer, got {index!r}")
        return int(index)

    def _check_legal(self, action: str) -> list[str]:
        game, position = self._rules(), self._current()
        if not isinstance(action, str):
            raise TypeError(f"a move is a canonical string id, got {type(action).__name__}")
        if self._over:
            raise IllegalActionError("the game is over; call reset()", action, game.label(position))
        legal = list(game.legal_moves(position))
        if action not in legal:
            raise IllegalActionError("illegal move", action, game.label(position))
        return legal

    def _check_over(self) -> None:
        self._over = self._rules().result(self._position) is not None

    def _play_opponent(self) -> str:
        game, position = self._rules(), self._current()
        legal = list(game.legal_moves(position))
        if self.opponent == "random":
            move = legal[int(self.np_random.integers(len(legal)))]
        elif self.opponent == "optimal":
            best = solver_for(game).best_moves(position)
            move = best[int(self.np_random.integers(len(best)))]
        else:
            move = self.opponent(GameView(game, position, tuple(legal)), legal)  # type: ignore[operator]
            if move not in legal:
                raise GameError(f"opponent {self.opponent!r} chose {move!r}, not a legal move in {game.label(position)}")
        self._position = game.play(position, move)
        self._check_over()
        return move

    def _end_info(self) -> dict[str, Any]:
        """``outcome`` and ``success`` from the agent's side once the game is over, else ``{}``."""
        game, position = self._rules(), self._current()
        result = game.result(position)
        if result is None:
            return {}
        self._over = True
        mine = result if game.to_move(position) == self._agent else -result
        return {"outcome": OUTCOMES[mine], "success": mine == WIN}


class SeededGameEnv(GameEnv):
    """A rule family: the rules come from :meth:`make_rules` and a seed.

    ``rules_seed`` fixes the rules for every episode (so the solution is exact for the
    whole run and the manifest records them); ``None`` draws new rules at every reset
    from ``np_random`` (each episode's ``reset_info`` records them, seed included).
    """

    def __init__(self, *, rules_seed: int | None, opponent: str | Policy, side: str):
        if rules_seed is not None and (isinstance(rules_seed, bool) or not isinstance(rules_seed, (int, np.integer))):
            raise ValueError(f"rules_seed must be an integer or None, got {rules_seed!r}")
        #: The seed of the rules, or None for new rules every episode.
        self.rules_seed = rules_seed
        self._setup(None if rules_seed is None else self.make_rules(int(rules_seed)), opponent, side)

    def make_rules(self, seed: int) -> Game[Any]:
        """The rules drawn from ``seed``, with the environment's explicit options applied."""
        raise NotImplementedError

    def _rules_for_episode(self) -> Game[Any]:
        if self.rules_seed is None:
            return self.make_rules(int(self.np_random.integers(2**31)))
        return super()._rules_for_episode()

    def describe(self) -> dict[str, Any]:
        """As :meth:`GameEnv.describe`, with ``rules_seed``."""
        return {**super().describe(), "rules_seed": self.rules_seed}
