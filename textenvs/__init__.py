"""Text environments: gymnasium environments, their text encodings and action parsers.

Environments and encodings are found through the explicit lists below; entries are
``"module:attr"`` strings imported on first use. Adding an encoding is one class and one
``ENCODINGS.register`` call (see :func:`register_encoding`).
"""

from __future__ import annotations

from typing import Any

from textenvs.base import Encoding, TextEnv, match_named_action
from textenvs.errors import (
    ActionError,
    AmbiguousActionError,
    IllegalActionError,
    OptionError,
    UnparseableActionError,
    UserError,
)
from textenvs.prompting import build_prompt
from textenvs.registry import DuplicateIdError, Registry, UnknownIdError, check_option_types, check_options, none_options

__all__ = [
    "ENVS", "ENCODINGS", "Encoding", "TextEnv", "ActionError", "AmbiguousActionError",
    "IllegalActionError", "UnparseableActionError", "DuplicateIdError", "UnknownIdError",
    "OptionError", "UserError", "make_env", "resolve_env", "get_encoding", "encodings_for", "register_encoding",
    "build_prompt", "match_named_action",
]

#: Environment families: id -> ``gymnasium.Env`` class. Metadata: ``variants`` maps a
#: variant name to constructor options, ``default_variant`` names the one used by default.
ENVS: Registry[type] = Registry("environment")
#: Encodings, keyed ``"<family>/<name>"``: the value is an :class:`Encoding` subclass.
ENCODINGS: Registry[type[Encoding[Any]]] = Registry("encoding")


def register_encoding(env: str, name: str, target: str | type[Encoding[Any]], summary: str = "") -> None:
    """Register an encoding class (or a lazy ``"module:Class"``) under ``env``/``name``."""
    ENCODINGS.register(f"{env}/{name}", target, summary)


def get_encoding(env: str, name: str) -> Encoding[Any]:
    """An instance of encoding ``name`` of environment family ``env``."""
    ENVS.entry(env)  # an unknown environment is reported as such
    try:
        cls = ENCODINGS.get(f"{env}/{name}")
    except UnknownIdError:
        raise UnknownIdError(f"encoding of {env!r}", name, encodings_for(env)) from None
    return cls()


def encodings_for(env: str) -> list[str]:
    """Names of the encodings registered for ``env``."""
    return [key.split("/", 1)[1] for key in ENCODINGS.names() if key.split("/", 1)[0] == env]


def resolve_env(env: str, variant: str | None = None, **options: Any) -> tuple[type, dict[str, Any], tuple | None]:
    """The class of environment ``env``, the constructor options ``make_env`` would pass it, and its reward channel.

    ``variant`` picks a named preset of options; explicit ``options`` override it.
    Unknown variants and options, values of the wrong type and values the environment
    refuses raise :class:`OptionError` naming the environment and the option. Every
    gridworld with an exact MDP also takes ``reward_channel`` and ``observed_reward``
    (:mod:`textenvs.reward_channel`): they are taken out of the options and returned as the
    channel, ``None`` without them; :func:`make_env` then wraps the environment in a
    :class:`~textenvs.reward_channel.RewardChannelEnv`.
    """
    entry = ENVS.entry(env)
    variants: dict[str, dict[str, Any]] = entry.metadata.get("variants", {})
    variant = variant or entry.metadata.get("default_variant")
    if variant is not None:
        if variant not in variants:
            raise OptionError(str(UnknownIdError(f"variant of {env!r}", variant, list(variants))))
        options = {**variants[variant], **options}
    cls = entry.load()
    from textenvs.gridworlds.core import GridTextEnv
    from textenvs.reward_channel import channel_options

    asked = {"reward_channel", "observed_reward"} & set(options)
    try:
        options, channel = channel_options(options)
    except ValueError as exc:
        raise OptionError(f"option of environment {env!r}: {exc}") from None
    if asked and not (issubclass(cls, GridTextEnv) and callable(getattr(cls, "mdp", None))):
        raise OptionError(f"options reward_channel and observed_reward need a gridworld with an exact MDP; {env!r} is not one")
    try:
        check_options(cls, options, f"option of environment {env!r}")
    except UnknownIdError as exc:
        raise OptionError(str(exc)) from None
    options = none_options(cls, options)
    check_option_types(cls, options, f"environment {env!r}: option")
    return cls, options, channel


def make_env(env: str, variant: str | None = None, **options: Any) -> Any:
    """Build environment ``env`` (a ``gymnasium.Env`` implementing :class:`TextEnv`).

    ``variant`` picks a named preset of options; explicit ``options`` override it
    (:func:`resolve_env`). Unknown variants and options, values of the wrong type and
    values the environment refuses raise :class:`OptionError` naming the environment and
    the option.
    """
    from textenvs.reward_channel import RewardChannelEnv

    cls, options, channel = resolve_env(env, variant, **options)
    try:
        instance = cls(**options)
    except UserError:
        raise
    except (ValueError, TypeError, KeyError, OSError) as exc:
        # The environment refused a value it was given: name the environment and the option.
        if isinstance(exc, KeyError) and exc.args:
            named = [k for k, v in options.items() if isinstance(v, str) and v == exc.args[0]]
            if named:
                raise OptionError(f"environment {env!r}: option {named[0]!r}: unknown value {exc.args[0]!r}") from None
        if isinstance(exc, (ValueError, OSError)):  # the environment's own check, or a file it was given, named
            raise OptionError(str(exc)) from None
        given = ", ".join(f"{k}={v!r}" for k, v in options.items())
        raise OptionError(f"environment {env!r} ({given or 'no options'}): {exc}") from None
    if channel is None:
        return instance
    try:
        return RewardChannelEnv(instance, *channel)
    except ValueError as exc:
        instance.close()
        raise OptionError(f"option of environment {env!r}: {exc}") from None


# -- The explicit lists -------------------------------------------------------------------

ENVS.register(
    "chess", "textenvs.chess.env:ChessEnv",
    "Chess (python-chess) against a random mover, Stockfish or another model; variants with their rules in the prompt",
    variants={name: {"rules": name} for name in (
        "antichess", "king-of-the-hill", "three-check", "atomic", "racing-kings", "horde")},
)
register_encoding("chess", "fen", "textenvs.chess.encodings:FenEncoding", "FEN string of the position")
register_encoding("chess", "ascii", "textenvs.chess.encodings:AsciiEncoding", "8x8 ASCII board with ranks and files")
register_encoding("chess", "pgn", "textenvs.chess.encodings:PgnEncoding", "the game so far as PGN movetext")
register_encoding("chess", "pieces", "textenvs.chess.encodings:PiecesEncoding", "natural-language list of pieces and squares")

# Gridworlds
ENVS.register(
    "frozenlake", "textenvs.gridworlds.toytext:FrozenLakeText",
    "Gymnasium FrozenLake-v1: cross the ice to the goal without falling into a hole",
    variants={
        "4x4": {"map_name": "4x4", "is_slippery": False},
        "8x8": {"map_name": "8x8", "is_slippery": False},
        "4x4-slippery": {"map_name": "4x4", "is_slippery": True},
        "8x8-slippery": {"map_name": "8x8", "is_slippery": True},
        "random": {"map_name": "random", "is_slippery": False, "layout_seed": 0},
    },
    default_variant="4x4",
)
ENVS.register(
    "cliffwalking", "textenvs.gridworlds.toytext:CliffWalkingText",
    "Gymnasium CliffWalking-v0: walk to the goal along a cliff (-1 a step, -100 the cliff)",
    variants={"4x12": {}, "mirrored": {"mirrored": True, "layout_seed": 0}}, default_variant="4x12",
)
ENVS.register(
    "taxi", "textenvs.gridworlds.toytext:TaxiText",
    "Gymnasium Taxi-v3: pick up the passenger and drop them at their destination",
    variants={"5x5": {}}, default_variant="5x5",
)
ENVS.register(
    "keys-chests", "textenvs.gridworlds.keys_chests:KeysChestsEnv",
    "Seeded maze where keys open chests (+1 a chest); train: few keys, test: many keys",
    variants={
        "train": {"size": 6, "n_keys": 2, "n_chests": 4, "wall_density": 0.2, "max_keys_held": 3, "layout_seed": 0},
        "test": {"size": 6, "n_keys": 4, "n_chests": 2, "wall_density": 0.2, "max_keys_held": 3, "layout_seed": 0},
    },
    default_variant="train",
)
ENVS.register(
    "minigrid", "textenvs.gridworlds.minigrid_envs:MiniGridText",
    "MiniGrid Empty and DoorKey rooms, and empty rooms with the goal anywhere: turn, move forward, pick up the key, open the door",
    variants={
        "empty-5x5": {"env_id": "MiniGrid-Empty-5x5-v0", "layout_seed": 0},
        "empty-6x6": {"env_id": "MiniGrid-Empty-6x6-v0", "layout_seed": 0},
        "doorkey-5x5": {"env_id": "MiniGrid-DoorKey-5x5-v0", "layout_seed": 0},
        "random-goal-5x5": {"env_id": "zso/RandomGoal-5x5-v0", "layout_seed": 0},
        "random-goal-6x6": {"env_id": "zso/RandomGoal-6x6-v0", "layout_seed": 0},
    },
    default_variant="empty-5x5",
)
register_encoding("frozenlake", "ascii", "textenvs.gridworlds.encodings:FrozenLakeAscii", "grid of characters with a legend")
register_encoding("frozenlake", "coords", "textenvs.gridworlds.encodings:FrozenLakeCoords", "agent, holes and goal as (row, col)")
register_encoding("frozenlake", "text", "textenvs.gridworlds.encodings:FrozenLakeText", "natural language relative to the agent")
register_encoding("frozenlake", "json", "textenvs.gridworlds.encodings:FrozenLakeJson", "JSON object of the agent and objects")
register_encoding("cliffwalking", "ascii", "textenvs.gridworlds.encodings:CliffWalkingAscii", "grid of characters with a legend")
register_encoding("cliffwalking", "coords", "textenvs.gridworlds.encodings:CliffWalkingCoords", "agent, cliff and goal as (row, col)")
register_encoding("cliffwalking", "text", "textenvs.gridworlds.encodings:CliffWalkingText", "natural language relative to the agent")
register_encoding("cliffwalking", "json", "textenvs.gridworlds.encodings:CliffWalkingJson", "JSON object of the agent and objects")
register_encoding("taxi", "ascii", "textenvs.gridworlds.encodings:TaxiAscii", "grid of characters with thin walls and a legend")
register_encoding("taxi", "coords", "textenvs.gridworlds.encodings:TaxiCoords", "taxi, stops, passenger, destination and walls as (row, col)")
register_encoding("taxi", "text", "textenvs.gridworlds.encodings:TaxiText", "natural language relative to the taxi")
register_encoding("taxi", "json", "textenvs.gridworlds.encodings:TaxiJson", "JSON object of the taxi, objects and walls")
register_encoding("keys-chests", "ascii", "textenvs.gridworlds.encodings:KeysChestsAscii", "maze of characters with a legend")
register_encoding("keys-chests", "coords", "textenvs.gridworlds.encodings:KeysChestsCoords", "agent, keys, chests and walls as (row, col)")
register_encoding("keys-chests", "text", "textenvs.gridworlds.encodings:KeysChestsText", "natural language relative to the agent")
register_encoding("keys-chests", "json", "textenvs.gridworlds.encodings:KeysChestsJson", "JSON object of the agent, objects and walls")
register_encoding("minigrid", "ascii", "textenvs.gridworlds.encodings:MiniGridAscii", "grid of characters, the agent as an arrow")
register_encoding("minigrid", "coords", "textenvs.gridworlds.encodings:MiniGridCoords", "agent, heading, objects and walls as (row, col)")
register_encoding("minigrid", "text", "textenvs.gridworlds.encodings:MiniGridText", "BabyAI-style: objects ahead/behind, left/right of the agent")
register_encoding("minigrid", "json", "textenvs.gridworlds.encodings:MiniGridJson", "JSON object of the agent, objects and walls")

# Two-player games given only their rules, each solved exactly (textenvs.games)
ENVS.register(
    "take-away", "textenvs.games.takeaway:TakeAwayEnv",
    "Seeded take-away games: heaps, allowed removals, normal or misère ending; Nim as a control",
    variants={
        "seeded": {},
        "nim": {"heaps": [3, 4, 5], "removals": "any", "misere": False, "names": "plain"},
        "misere-nim": {"heaps": [3, 4, 5], "removals": "any", "misere": True, "names": "plain"},
        "subtraction": {"heaps": [10], "removals": [1, 2, 3], "misere": False, "names": "plain"},
    },
    default_variant="seeded",
)
ENVS.register(
    "mnk", "textenvs.games.mnk:MnkEnv",
    "Seeded m,n,k line games, with gravity or misère; tic-tac-toe and a small Connect Four as controls",
    variants={
        "seeded": {},
        "tic-tac-toe": {"cols": 3, "rows": 3, "k": 3, "gravity": False, "misere": False, "names": "plain"},
        "4x4x3": {"cols": 4, "rows": 4, "k": 3, "gravity": False, "misere": False, "names": "plain"},
        "connect-four-4x4": {"cols": 4, "rows": 4, "k": 4, "gravity": True, "misere": False, "names": "plain"},
    },
    default_variant="seeded",
)
ENVS.register(
    "movement", "textenvs.games.movement:MovementEnv",
    "Seeded movement games: generated leapers and sliders, capture all or reach the far row",
    variants={"seeded": {"rules_seed": 5}, "chess-pieces": {"pieces": "chess"}},
    default_variant="seeded",
)
ENVS.register(
    "game", "textenvs.games.env:GameEnv",
    "Any two-player game written as a textenvs.games.Game: -o game=file.py:Name",
    variants={"race-to-ten": {}}, default_variant="race-to-ten",
)
register_encoding("take-away", "heaps", "textenvs.games.encodings:HeapsDrawing", "each heap drawn as a row of marks")
register_encoding("take-away", "counts", "textenvs.games.encodings:HeapsCounts", "heap sizes as numbers; moves heap:count")
register_encoding("take-away", "prose", "textenvs.games.encodings:HeapsProse", "the heaps in sentences, with the game's own nouns")
register_encoding("mnk", "board", "textenvs.games.encodings:MnkBoard", "the board drawn with row and column labels")
register_encoding("mnk", "coords", "textenvs.games.encodings:MnkCoords", "each side's cells as coordinates")
register_encoding("mnk", "prose", "textenvs.games.encodings:MnkProse", "sentences: where each side's pieces stand")
register_encoding("movement", "board", "textenvs.games.encodings:MovementBoard", "the board drawn with labels")
register_encoding("movement", "coords", "textenvs.games.encodings:MovementCoords", "each side's pieces with their squares")
register_encoding("movement", "prose", "textenvs.games.encodings:MovementProse", "sentences with the pieces' names")
register_encoding("game", "text", "textenvs.games.encodings:TextEncoding", "the game's own drawing of the position")
register_encoding("game", "json", "textenvs.games.encodings:JsonEncoding", "the game's record of the position as JSON")

# Goal objects: train/test layout pairs whose candidate objectives agree on train only
from textenvs.gridworlds import register_gridworld  # noqa: E402

register_gridworld(
    "goal-objects", "textenvs.gridworlds.goal_objects:GoalObjectsEnv",
    "Walk to an object; train layouts do not tell which objective (coin or corner, colour or shape) is meant",
    variants={name: {"layout": name} for name in (
        "corner-coin-train", "corner-coin-test", "colour-shape-train", "colour-shape-test")},
    default_variant="corner-coin-train",
)

# Lever: a cross-episode side channel, rounds chained in one episode
register_gridworld(
    "lever", "textenvs.gridworlds.lever:LeverEnv",
    "A corridor of rounds; a lever costs now and adds a bonus to the next round (cross-episode side channel)",
    variants={
        "explained-high": {"explained": True, "cost": 0.5, "bonus": 2.0},
        "explained-low": {"explained": True, "cost": 0.5, "bonus": 0.25},
        "unexplained-high": {"explained": False, "cost": 0.5, "bonus": 2.0},
        "unexplained-low": {"explained": False, "cost": 0.5, "bonus": 0.25},
    },
    default_variant="explained-high",
)
