"""What every agent shares: the decision it is given, the choice it returns, the protocol.

An agent turns a batch of pending decisions (one per live episode) into choices. Language-model
agents (:mod:`harness.agents.language`) and reference agents (random, planners, learners,
engines) share this one seam, so the runner plays and records them alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, Sequence

import numpy as np

from harness.backends.base import ModelInfo, Usage
from harness.records import Attempt
from textenvs.errors import UserError

#: What ``pip install`` brings stable-baselines3.
RL_INSTALL_HINT = "the ppo baseline needs stable-baselines3: pip install 'zso[rl]'"

#: Called with the units of training done so far (episodes or environment steps).
ProgressFn = Callable[[int], None]


class BaselineError(UserError, ValueError):
    """A reference agent that cannot run here: a non-tabular environment, a bad hyperparameter..."""



@dataclass(frozen=True)
class Decision:
    """One pending decision of one episode."""

    state: Any
    legal: tuple[str, ...]
    #: The episode's own generator, for sampling and fallbacks.
    rng: np.random.Generator
    #: The environment's JSON-able state record (gridworlds: ``{"index": ...}``).
    record: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Choice:
    """What the agent did for one decision."""

    #: The canonical action, or ``None`` for a forfeit.
    action: str | None
    #: ``"model"`` or ``"fallback"``.
    source: str
    prompt: str
    reply: str | None
    logprobs: list[float] | None
    probs: list[float] | None
    attempts: tuple[Attempt, ...]
    #: This decision's share of the backend time of its batch.
    backend_s: float
    #: This decision's share of the tokens its batch's backend calls read and wrote (all
    #: attempts), or None when the backend counts none (reference agents).
    usage: Usage | None = None
    #: Why the backend says ``reply`` ended (``stop``, ``length``), or None (choose mode, or
    #: a backend that does not say).
    finish_reason: str | None = None


class Agent(Protocol):
    """Turns a batch of decisions into choices."""

    #: The agent mode recorded with every step (``choose`` or ``generate``).
    mode: str

    def act(self, decisions: Sequence[Decision]) -> list[Choice]:
        """One choice per decision, in order."""
        ...


class ReferenceAgent(Agent, Protocol):
    """An agent that is not a language model (a baseline); it says what it is."""

    def info(self) -> ModelInfo:
        """The agent's identity and settings, for the manifest."""
        ...

    def close(self) -> None:
        """Release what the agent holds (an engine process...)."""
        ...


#: How legal actions are listed in prompts: in a fresh random order for every decision
#: (drawn from the episode's generator), or in the environment's fixed order.
LIST_ORDERS = ("shuffled", "fixed")


def listed_actions(decision: Decision, order: str) -> tuple[str, ...]:
    """The legal actions in the order the prompt lists them.

    Small models tend to copy the first action listed; shuffling keeps that position bias
    from passing for a preference between actions.
    """
    if order == "fixed":
        return decision.legal
    if order != "shuffled":
        raise ValueError(f"list order must be one of {LIST_ORDERS}, got {order!r}")
    return tuple(decision.legal[i] for i in decision.rng.permutation(len(decision.legal)))




# -- helpers of the reference agents --------------------------------------------------


def draw(decision: Decision, probs: np.ndarray) -> str:
    """A legal action drawn from ``probs`` with the episode's generator."""
    return decision.legal[int(decision.rng.choice(len(probs), p=probs))]


def reference_choice(action: str, probs: np.ndarray, seconds: float) -> Choice:
    """A reference agent's choice: no prompt or reply, its full distribution in ``probs``."""
    return Choice(action, "model", "", None, None, [float(p) for p in probs], (), seconds)


def state_index(decision: Decision, agent: str) -> int:
    """The MDP state index of a decision, or a clear error for non-tabular environments."""
    index = decision.record.get("index")
    if index is None:
        raise BaselineError(
            f"agent {agent!r} needs an environment with a tabular MDP (a state record with an 'index'); "
            f"this state has {sorted(decision.record) or 'no record'}"
        )
    return int(index)
