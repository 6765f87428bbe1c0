"""What an environment offers beyond play: the one vocabulary that reference agents, fits and
the study ask, instead of each testing environment classes for itself.

* :data:`LAYOUT_MDPS`: ``env.mdp()`` exports the exact tabular MDP of the current episode's
  layout (every gridworld): planners and MCE IRL fits need it, and fits pool the episodes of
  a run over their layouts.
* :data:`EXACT_MDP`: besides, the layout is one and the same in every episode (not
  ``layout_seed=none``): learners, which train on the environment, need it.
* :data:`SOLVED_GAME`: a game given by its rules and solved exactly (:mod:`textenvs.games`):
  every legal move's game-theoretic value is known.
* :data:`CHESS`: chess or one of its variants (:mod:`textenvs.chess`): move features exist.
* :data:`STANDARD_CHESS`: standard chess, which Stockfish plays and grades.
* :data:`REWARD_CHANNEL`: a gridworld whose prompt shows a reward besides the true one
  (``-o observed_reward=...``, :mod:`textenvs.reward_channel`): the observed reward's exact MDP
  (``env.observed_mdp()``) exists too.
* :data:`CHAINED_ROUNDS`: rounds chained in one episode, so that what one round does pays in
  the next (``lever``): the chained MDP is exact.
"""

from __future__ import annotations

from typing import Any

__all__ = ["EXACT_MDP", "LAYOUT_MDPS", "SOLVED_GAME", "CHESS", "STANDARD_CHESS", "REWARD_CHANNEL", "CHAINED_ROUNDS", "CAPABILITIES", "capabilities", "capabilities_of"]

EXACT_MDP = "mdp"
LAYOUT_MDPS = "layouts"
SOLVED_GAME = "game"
CHESS = "chess"
STANDARD_CHESS = "standard-chess"
REWARD_CHANNEL = "channel"
CHAINED_ROUNDS = "chain"
#: Every capability.
CAPABILITIES = (SOLVED_GAME, CHESS, STANDARD_CHESS, EXACT_MDP, LAYOUT_MDPS, REWARD_CHANNEL, CHAINED_ROUNDS)


def _of_class(cls: type, standard_chess: bool, channel: bool, one_layout: bool) -> frozenset[str]:
    """The capabilities of environment class ``cls``; ``standard_chess``: whether its rules are
    standard chess; ``channel``: whether it is wrapped in a reward side channel; ``one_layout``:
    whether every episode has the same layout."""
    from textenvs.chess.env import ChessEnv
    from textenvs.games.env import GameEnv

    found = set()
    if callable(getattr(cls, "mdp", None)):
        found.add(LAYOUT_MDPS)
        if one_layout:
            found.add(EXACT_MDP)
    if issubclass(cls, GameEnv):
        found.add(SOLVED_GAME)
    if issubclass(cls, ChessEnv):
        found.add(CHESS)
        if standard_chess:
            found.add(STANDARD_CHESS)
    if channel:
        found.add(REWARD_CHANNEL)
    if getattr(cls, "chained", False):
        found.add(CHAINED_ROUNDS)
    return frozenset(found)


def capabilities(env: Any) -> frozenset[str]:
    """The capabilities of the environment instance ``env``."""
    variant = getattr(env, "variant", None)
    return _of_class(type(env), bool(getattr(variant, "standard", False)), callable(getattr(env, "observed_mdp", None)),
                     getattr(env, "layout_seed", 0) is not None)


def capabilities_of(env: str, variant: str | None = None, options: dict[str, Any] | None = None) -> frozenset[str]:
    """The capabilities of ``make_env(env, variant, **options)``, read from its class and options.

    Nothing is built: a chess environment would start Stockfish, or load a model opponent.
    """
    from textenvs import resolve_env
    from textenvs.chess.env import ChessEnv
    from textenvs.chess.variants import get_variant

    cls, resolved, channel = resolve_env(env, variant, **(options or {}))
    return _of_class(cls, issubclass(cls, ChessEnv) and get_variant(str(resolved.get("rules", "standard"))).standard,
                     channel is not None, _layout_seed(cls, resolved) is not None)


def _layout_seed(cls: type, options: dict[str, Any]) -> Any:
    """The ``layout_seed`` that ``cls(**options)`` would get (0 for classes without one)."""
    import inspect

    if "layout_seed" in options:  # "none" is already None (textenvs.resolve_env)
        return options["layout_seed"]
    param = inspect.signature(cls.__init__).parameters.get("layout_seed")
    return 0 if param is None or param.default is inspect.Parameter.empty else param.default
