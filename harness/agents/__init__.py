"""Agents: what turns a batch of decisions into actions, found through two registries.

:data:`MODES`
    how a language model acts: ``choose`` (score every legal action) or ``generate``
    (free text, parsed). Each entry builds an agent from ``(config, backend, encoding)``.
:data:`BASELINES`
    reference agents that stand next to a model in the same run format: ``random``,
    planners on the exact MDP (``optimal``, ``soft-optimal``), learners (``q-learning``,
    ``ppo``), an engine (``stockfish``) and the exact game player (``solver``). Each entry builds an agent from
    ``(config, options, progress)``; its ``training`` metadata names what training counts.

Adding either is one module with a class and a builder, and one ``register`` call below.
Every reference agent runs in ``choose`` mode with ``backend = "baseline"``, an empty
prompt and its full distribution over the legal actions in ``probs``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.agents.base import (
    Agent, BaselineError, Choice, Decision, ProgressFn, ReferenceAgent, listed_actions, LIST_ORDERS,
)
from harness.agents.engines import StockfishConfig
from harness.agents.learners import PPOConfig, QLearningConfig
from textenvs.registry import Registry

__all__ = [
    "Agent", "ReferenceAgent", "Decision", "Choice", "BaselineError", "MODES", "BASELINES", "LIST_ORDERS",
    "BaselineOptions", "PLAYS", "playable_kinds", "playable_kinds_of", "register_mode", "register_baseline", "make_agent", "build_baseline", "training_units",
    "listed_actions",
]

#: Agent modes of language models: name -> builder ``(config, backend, encoding) -> Agent``.
#: Metadata ``parses_replies``: whether replies are free text that can be refused.
MODES: Registry[Any] = Registry("agent mode")
#: Reference agents: name -> builder ``(config, options, progress) -> ReferenceAgent``.
#: Metadata ``training``: ``(unit, option field)`` of what training counts, or absent;
#: ``plays``: the environments it can play (one of :data:`PLAYS`).
BASELINES: Registry[Any] = Registry("baseline agent")


def register_mode(name: str, builder: Any, description: str = "", parses_replies: bool = False) -> None:
    """Register an agent mode's builder (or a lazy ``"module:function"``)."""
    MODES.register(name, builder, description, parses_replies=parses_replies)


#: What a reference agent can play: any environment, those with an exact tabular MDP
#: (``env.mdp()``), standard chess, or games solved exactly (``textenvs.games``).
PLAYS = ("any", "mdp", "chess", "game")


def register_baseline(
    name: str, builder: Any, description: str = "", training: tuple[str, str] | None = None, plays: str = "mdp",
) -> None:
    """Register a reference agent's builder (or a lazy ``"module:function"``) and what it can play."""
    if plays not in PLAYS:
        raise ValueError(f"plays must be one of {PLAYS}, got {plays!r}")
    BASELINES.register(name, builder, description, training=training, plays=plays)


@dataclass(frozen=True)
class BaselineOptions:
    """What the command line sets for a reference agent; each builder reads what concerns it."""

    temperature: float = 1.0
    discount: float = 0.99
    train_episodes: int = QLearningConfig.train_episodes
    train_steps: int = PPOConfig.train_steps
    depth: int = StockfishConfig.depth
    skill: int | None = None
    #: ``feature-seeker``: the named MDP feature whose gains it maximises.
    feature: str | None = None


def make_agent(config: Any, backend: Any, encoding: Any) -> Agent:
    """The language-model agent of ``config.mode``."""
    return MODES.get(config.mode)(config, backend, encoding)


#: What an agent of each kind of :data:`PLAYS` checked here plays, for its refusal (agents
#: that need an MDP say why through :func:`harness.agents.planners.mdp_of`).
_PLAYS_WHAT = {"chess": "standard chess", "game": "games solved exactly (textenvs.games)"}


def playable_kinds(env: Any) -> set[str]:
    """Which kinds of reference agent (:data:`PLAYS`) can play the environment ``env``."""
    from textenvs.chess.env import ChessEnv
    from textenvs.games import GameEnv

    kinds = {"any"}
    if callable(getattr(env, "mdp", None)):
        kinds.add("mdp")
    if isinstance(env, GameEnv):
        kinds.add("game")
    if isinstance(env, ChessEnv) and env.variant.standard:
        kinds.add("chess")
    return kinds


def playable_kinds_of(env: str, variant: str | None = None, options: dict[str, Any] | None = None) -> set[str]:
    """:func:`playable_kinds` of the environment ``make_env(env, variant, **options)`` (built and closed here)."""
    from textenvs import make_env

    instance = make_env(env, variant, **(options or {}))
    try:
        return playable_kinds(instance)
    finally:
        instance.close()


def build_baseline(name: str, config: Any, options: BaselineOptions = BaselineOptions(), progress: ProgressFn | None = None) -> Any:
    """Plan or train reference agent ``name`` for ``config``'s environment; returns a ready agent.

    An agent registered to play only standard chess or exactly solved games is refused,
    with :class:`BaselineError`, on any other environment.
    Training runs on a separate environment built from ``config`` (closed afterwards) and
    is seeded from ``config.seed``; its episodes last at most ``config.max_steps``.
    """
    plays = BASELINES.entry(name).metadata.get("plays")
    if plays in _PLAYS_WHAT:
        if plays not in playable_kinds_of(config.env, config.variant, config.env_options):
            where = config.env + (f"/{config.variant}" if config.variant else "")
            raise BaselineError(f"agent {name!r} plays {_PLAYS_WHAT[plays]} only, not {where}")
    return BASELINES.get(name)(config, options, progress)


def training_units(name: str, options: BaselineOptions) -> tuple[str, int] | None:
    """What training counts for ``name`` (``("episodes", N)`` / ``("steps", N)``), or None."""
    training = BASELINES.entry(name).metadata.get("training")
    return None if training is None else (training[0], getattr(options, training[1]))


# -- The explicit lists -------------------------------------------------------------------

register_mode("choose", "harness.agents.language:build_choose", "score the text of every legal action, pick by likelihood")
register_mode("generate", "harness.agents.language:build_generate", "ask for free text and parse it", parses_replies=True)
register_mode("tagged", "harness.agents.language:build_tagged",
              "let the model reason, then parse its last tagged answer (Move: / Action:)", parses_replies=True)

register_baseline("random", "harness.agents.uniform:build_random", "uniform over the legal actions", plays="any")
register_baseline("optimal", "harness.agents.planners:build_optimal", "hard value iteration on the exact MDP, uniform over optimal actions")
register_baseline("soft-optimal", "harness.agents.planners:build_soft_optimal", "soft value iteration at a temperature")
register_baseline("q-learning", "harness.agents.learners:build_q_learning", "tabular Q-learning, acting greedily",
                  training=("episodes", "train_episodes"))
register_baseline("ppo", "harness.agents.learners:build_ppo", "stable-baselines3 PPO", training=("steps", "train_steps"))
register_baseline("feature-seeker", "harness.agents.planners:build_feature_seeker",
                  "optimal for the gains of one named feature (a proxy objective)")
register_baseline("stockfish", "harness.agents.engines:build_stockfish", "Stockfish at a fixed depth (chess)", plays="chess")
register_baseline("solver", "harness.agents.solvers:build_solver", "exact game solver: uniform over the moves of the best outcome (games)",
                  plays="game")
