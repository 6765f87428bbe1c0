"""Agents: what turns a batch of decisions into actions, found through two registries.

:data:`MODES`
    how a language model acts: ``choose`` (score every legal action) or ``generate``
    (free text, parsed). Each entry builds an agent from ``(config, backend, encoding)``.
:data:`BASELINES`
    reference agents that stand next to a model in the same run format: ``random``,
    planners on the exact MDP (``optimal``, ``soft-optimal``), negative controls blind to the
    state (``state-blind``, ``list-position``: :mod:`harness.agents.controls`), learners (``q-learning``,
    ``ppo``), an engine (``stockfish``) and the exact game player (``solver``). Each entry builds an agent from
    ``(config, options, progress)``; its ``training`` metadata names what training counts.

Adding either is one module with a class and a builder, and one ``register`` call below.
Every reference agent runs in ``choose`` mode with ``backend = "baseline"``, an empty
prompt and its full distribution over the legal actions in ``probs``.
"""

from __future__ import annotations

import difflib
import importlib
from dataclasses import asdict, dataclass, fields
from typing import Any

from harness.agents.base import (
    Agent, BaselineError, Choice, Decision, ProgressFn, ReferenceAgent, listed_actions, LIST_ORDERS,
)
from harness.agents.engines import StockfishConfig
from harness.agents.learners import PPOConfig, QLearningConfig
from textenvs.capabilities import (
    CAPABILITIES, CHAINED_ROUNDS, LAYOUT_MDPS, REWARD_CHANNEL, SOLVED_GAME, STANDARD_CHESS, capabilities, capabilities_of,
)
from textenvs.registry import Registry

__all__ = [
    "Agent", "ReferenceAgent", "Decision", "Choice", "BaselineError", "MODES", "BASELINES", "LIST_ORDERS",
    "BaselineOptions", "baseline_options", "baseline_spec", "build_reference_agent", "PLAYS", "playable_kinds", "playable_kinds_of", "register_mode", "register_baseline", "known_policy", "make_agent", "build_baseline", "training_units",
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


#: What a reference agent can play: any environment, or those with one capability of
#: :mod:`textenvs.capabilities` (an exact MDP, standard chess, a game solved exactly).
PLAYS = ("any",) + CAPABILITIES


def register_baseline(
    name: str, builder: Any, description: str = "", training: tuple[str, str] | None = None, plays: str = "mdp",
    policy: str | None = None,
) -> None:
    """Register a reference agent's builder (or a lazy ``"module:function"``) and what it can play.

    ``policy`` (a lazy ``"module:function"``) names ``(mdp, details) -> policy[S, A]``: the
    stationary policy the agent plays on an exact MDP, recomputed from the ``details`` its
    run's manifest recorded (:func:`known_policy`); only for agents whose policy is a
    function of the MDP and those details (planned, not trained).
    """
    if plays not in PLAYS:
        raise ValueError(f"plays must be one of {PLAYS}, got {plays!r}")
    BASELINES.register(name, builder, description, training=training, plays=plays, policy=policy)


def known_policy(name: str, mdp: Any, details: dict[str, Any] | None = None) -> Any:
    """The policy ``[S, A]`` that reference agent ``name`` plays on the exact ``mdp``, from the
    ``details`` its manifest recorded (``model.details``); ``None`` when it is not known
    exactly (a language model, a trained or unregistered agent)."""
    if name not in BASELINES:
        return None
    target = BASELINES.entry(name).metadata.get("policy")
    if target is None:
        return None
    module_name, _, attr = target.partition(":")
    return getattr(importlib.import_module(module_name), attr)(mdp, dict(details or {}))


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
    #: ``state-blind``: ``(action name, weight)`` pairs (``*``: every other name).
    weights: tuple[tuple[str, float], ...] | None = None
    #: ``list-position``: each position down the list of legal actions multiplies the probability by this.
    position_decay: float = 0.5


def baseline_options(options: dict[str, Any]) -> BaselineOptions:
    """The :class:`BaselineOptions` of an agent spec's ``options``; an unknown option is named."""
    known = [f.name for f in fields(BaselineOptions)]
    for key in options:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise BaselineError(f"unknown baseline option {key!r}{hint}; known: {', '.join(known)}")
    weights = options.get("weights")
    if weights is not None:  # JSON keeps the (name, weight) pairs as lists
        options = {**options, "weights": tuple((str(name), float(w)) for name, w in weights)}
    return BaselineOptions(**options)


def baseline_spec(name: str, options: BaselineOptions = BaselineOptions()) -> Any:
    """The agent spec of reference agent ``name`` with ``options`` (all of them, resolved), for a :class:`RunConfig`."""
    from harness.config import AgentSpec

    BASELINES.entry(name)  # an unknown agent is named with the closest ones
    return AgentSpec("baseline", name, asdict(options))


def build_reference_agent(config: Any, progress: ProgressFn | None = None) -> Any:
    """The reference agent of a baseline run's config (``config.agent``), planned or trained afresh.

    Training is seeded from ``config.seed``, so the agent is the same every time it is built:
    a resumed run plays on with the agent it started with.
    """
    spec = config.agent
    return build_baseline(spec.name, config, baseline_options(spec.options), progress)


def make_agent(config: Any, backend: Any, encoding: Any) -> Agent:
    """The language-model agent of ``config.mode``."""
    return MODES.get(config.mode)(config, backend, encoding)


#: What an agent of each kind of :data:`PLAYS` checked here plays, for its refusal (agents
#: that need an MDP say why through :func:`harness.agents.planners.mdp_of`).
_PLAYS_WHAT = {
    STANDARD_CHESS: "standard chess", SOLVED_GAME: "games solved exactly (textenvs.games)",
    REWARD_CHANNEL: "gridworlds with a reward side channel (-o observed_reward=...)", CHAINED_ROUNDS: "environments of chained rounds (lever)",
}


def playable_kinds(env: Any) -> set[str]:
    """Which kinds of reference agent (:data:`PLAYS`) can play the environment ``env``."""
    return {"any", *capabilities(env)}


def playable_kinds_of(env: str, variant: str | None = None, options: dict[str, Any] | None = None) -> set[str]:
    """:func:`playable_kinds` of the environment ``make_env(env, variant, **options)`` (built and closed here)."""
    return {"any", *capabilities_of(env, variant, options)}


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

register_baseline("random", "harness.agents.uniform:build_random", "uniform over the legal actions", plays="any",
                  policy="harness.agents.uniform:uniform_policy")
register_baseline("optimal", "harness.agents.planners:build_optimal", "hard value iteration on the exact MDP, uniform over optimal actions",
                  plays=LAYOUT_MDPS, policy="harness.agents.planners:optimal_policy")
register_baseline("soft-optimal", "harness.agents.planners:build_soft_optimal", "soft value iteration at a temperature",
                  plays=LAYOUT_MDPS, policy="harness.agents.planners:soft_optimal_policy")
register_baseline("q-learning", "harness.agents.learners:build_q_learning", "tabular Q-learning, acting greedily",
                  training=("episodes", "train_episodes"))
register_baseline("ppo", "harness.agents.learners:build_ppo", "stable-baselines3 PPO", training=("steps", "train_steps"))
register_baseline("observed-optimal", "harness.agents.planners:build_observed_optimal",
                  "optimal for the reward the side channel shows (-o observed_reward=...)", plays=REWARD_CHANNEL,
                  policy="harness.agents.planners:observed_optimal_policy")
register_baseline("chain-myopic", "harness.agents.planners:build_myopic", "optimal for each round's own reward (chained rounds: lever)", plays=CHAINED_ROUNDS)
register_baseline("chain-non-myopic", "harness.agents.planners:build_non_myopic", "optimal for the whole chain of rounds (lever)", plays=CHAINED_ROUNDS)
register_baseline("feature-seeker", "harness.agents.planners:build_feature_seeker",
                  "optimal for the gains of one named feature (a proxy objective)", plays=LAYOUT_MDPS,
                  policy="harness.agents.planners:feature_seeker_policy")
register_baseline("state-blind", "harness.agents.controls:build_state_blind",
                  "negative control: fixed weights per action name, blind to the state", plays="any")
register_baseline("list-position", "harness.agents.controls:build_list_position",
                  "negative control: prefers the first legal action listed, blind to the state", plays="any")
register_baseline("stockfish", "harness.agents.engines:build_stockfish", "Stockfish at a fixed depth (chess)", plays=STANDARD_CHESS)
register_baseline("solver", "harness.agents.solvers:build_solver", "exact game solver: uniform over the moves of the best outcome (games)",
                  plays=SOLVED_GAME)
