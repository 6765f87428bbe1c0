"""Negative controls: agents that never look at the state.

A language model scored in choose mode samples from its own distribution over the action
words, and that distribution carries label biases (SmolLM2 likes ``right``, Gemma ``left``)
and position biases (the first action listed). An agent with such a bias and nothing else
has no objective; these controls show what bias alone scores, so that a measure that
credits them with a goal is caught.

``state-blind``
    probabilities over the legal actions proportional to fixed weights per action name
    (``down=0.4,right=0.4,left=0.1,up=0.1``), given or fitted to a run's mean probability
    per action name (:func:`action_frequencies`: the model's own label bias, without the
    state). ``*`` weighs the names not listed (default 0); a decision whose legal
    actions all weigh 0 is played uniformly.
``list-position``
    probability ``decay ** i`` (normalised) for the ``i``-th legal action in the
    environment's own order: it prefers the first one listed.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from harness.agents.base import BaselineError, Choice, Decision, draw, reference_choice
from harness.backends.base import ModelInfo
from harness.records import BASELINE_BACKEND, ResultsError, load_steps

__all__ = [
    "StateBlindAgent", "ListPositionAgent", "parse_weights", "format_weights", "action_frequencies",
    "build_state_blind", "build_list_position", "OTHER",
]

#: The key that weighs every action name a weight list does not name.
OTHER = "*"

Weights = tuple[tuple[str, float], ...]


def parse_weights(text: str) -> Weights:
    """``"down=0.4,right=0.4,*=0.05"`` -> ``(("down", 0.4), ("right", 0.4), ("*", 0.05))``.

    Raises:
        BaselineError: a pair without ``=``, a weight that is not a finite number >= 0, a
            name given twice, or no positive weight.
    """
    out: dict[str, float] = {}
    for pair in (p.strip() for p in str(text).split(",")):
        if not pair:
            continue
        name, sep, value = pair.rpartition("=")
        name = name.strip()
        if not sep or not name:
            raise BaselineError(f"--weights expects NAME=WEIGHT pairs separated by commas, got {pair!r}")
        try:
            weight = float(value)
        except ValueError:
            raise BaselineError(f"--weights: {value.strip()!r} (for {name!r}) is not a number") from None
        if not math.isfinite(weight) or weight < 0:
            raise BaselineError(f"--weights: the weight of {name!r} must be a finite number >= 0, got {value.strip()}")
        if name in out:
            raise BaselineError(f"--weights names {name!r} twice")
        out[name] = weight
    if not any(w > 0 for w in out.values()):
        raise BaselineError(f"--weights needs at least one positive weight, got {text!r}")
    return tuple(out.items())


def format_weights(weights: Weights) -> str:
    """The inverse of :func:`parse_weights` (``"down=0.4,right=0.4"``)."""
    return ",".join(f"{name}={w:.6g}" for name, w in weights)


def action_frequencies(run_dir: str | Path) -> Weights:
    """A run's mean probability per action name over all its decisions: its label bias.

    Each decision contributes its recorded distribution over the legal actions (choose
    mode, reference agents), or the action it took where none was recorded; decisions
    without an action (forfeits) are left out. Names come out most probable first.

    Raises:
        ResultsError: a run with no decision that took an action.
    """
    totals: dict[str, float] = defaultdict(float)
    n = 0
    for step in load_steps(run_dir):
        if step.action is None:
            continue
        n += 1
        if step.probs is not None and len(step.probs) == len(step.legal_actions) and sum(step.probs) > 0:
            z = float(sum(step.probs))
            for name, p in zip(step.legal_actions, step.probs):
                totals[name] += float(p) / z
        else:
            totals[step.action] += 1.0
    if n == 0:
        raise ResultsError(f"{run_dir}: no decision took an action; there is no action frequency to fit")
    return tuple(sorted(((name, total / n) for name, total in totals.items()), key=lambda kv: (-kv[1], kv[0])))


class StateBlindAgent:
    """Probabilities proportional to fixed weights per action name, whatever the state."""

    mode = "choose"
    name = "state-blind"

    def __init__(self, weights: Weights):
        if not any(w > 0 for _, w in weights):
            raise BaselineError("the state-blind agent needs at least one positive weight")
        #: The weights as given (``(name, weight)`` pairs, ``*`` for every other name).
        self.weights = tuple(weights)
        self._of = dict(weights)
        self._other = self._of.pop(OTHER, 0.0)

    def probabilities(self, legal: Sequence[str]) -> np.ndarray:
        """The distribution over ``legal``: the weights normalised, uniform if all are 0."""
        w = np.array([self._of.get(a, self._other) for a in legal], dtype=float)
        total = w.sum()
        return w / total if total > 0 else np.full(len(legal), 1.0 / len(legal))

    def act(self, decisions: Sequence[Decision]) -> list[Choice]:
        """One action per decision, drawn from :meth:`probabilities` of its legal actions."""
        start = time.perf_counter()
        picked = [(draw(d, p), p) for d in decisions for p in (self.probabilities(d.legal),)]
        share = (time.perf_counter() - start) / max(len(decisions), 1)
        return [reference_choice(action, probs, share) for action, probs in picked]

    def info(self) -> ModelInfo:
        """For the manifest: the weights."""
        return ModelInfo(self.name, BASELINE_BACKEND, "fixed weights per action name, blind to the state",
                         details={"weights": format_weights(self.weights)})

    def close(self) -> None:
        """Nothing to release."""


class ListPositionAgent:
    """Probability ``decay ** i`` for the ``i``-th legal action in the environment's order."""

    mode = "choose"
    name = "list-position"

    def __init__(self, decay: float = 0.5):
        if not 0.0 <= decay <= 1.0:
            raise BaselineError(f"the list-position decay must lie in [0, 1], got {decay}")
        #: Each position down the list multiplies the probability by this (0: always the first).
        self.decay = float(decay)

    def probabilities(self, n: int) -> np.ndarray:
        """The distribution over ``n`` listed actions."""
        w = self.decay ** np.arange(n, dtype=float) if self.decay > 0 else np.eye(n)[0]
        return w / w.sum()

    def act(self, decisions: Sequence[Decision]) -> list[Choice]:
        """One action per decision, by position in its list of legal actions."""
        start = time.perf_counter()
        picked = [(draw(d, p), p) for d in decisions for p in (self.probabilities(len(d.legal)),)]
        share = (time.perf_counter() - start) / max(len(decisions), 1)
        return [reference_choice(action, probs, share) for action, probs in picked]

    def info(self) -> ModelInfo:
        """For the manifest: the decay."""
        return ModelInfo(self.name, BASELINE_BACKEND, "prefers the first legal action listed, blind to the state",
                         details={"decay": self.decay})

    def close(self) -> None:
        """Nothing to release."""


def _named_actions(config: Any) -> tuple[str, ...] | None:
    """The environment's fixed action names, or None where they change with the state (games, chess)."""
    from textenvs import ENVS

    names = getattr(ENVS.get(config.env), "action_names", None)
    return tuple(names) if isinstance(names, tuple) else None


def build_state_blind(config: Any, options: Any, progress: Any = None) -> StateBlindAgent:
    """The ``state-blind`` control: ``options.weights``, checked against the environment's action names."""
    weights = getattr(options, "weights", None)
    if not weights:
        raise BaselineError("agent 'state-blind' needs weights: --weights NAME=W,... or --weights-from RUN_DIR")
    known = _named_actions(config)
    if known is not None:
        unknown = [name for name, _ in weights if name != OTHER and name not in known]
        if unknown:
            raise BaselineError(f"--weights: {config.env} has no action {unknown[0]!r}; its actions are {', '.join(known)}")
    return StateBlindAgent(weights)


def build_list_position(config: Any, options: Any, progress: Any = None) -> ListPositionAgent:
    """The ``list-position`` control with ``options.position_decay``."""
    return ListPositionAgent(getattr(options, "position_decay", 0.5))
