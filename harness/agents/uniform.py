"""The uniformly random mover: the floor every other agent should clear."""

from __future__ import annotations

import time
from typing import Any, Sequence

import numpy as np

from harness.agents.base import Choice, Decision, draw, reference_choice
from harness.backends.base import ModelInfo
from harness.records import BASELINE_BACKEND

class RandomAgent:
    """Uniform over the legal actions: the floor every other agent should clear."""

    mode = "choose"
    name = "random"

    def act(self, decisions: Sequence[Decision]) -> list[Choice]:
        """One uniformly random legal action per decision."""
        start = time.perf_counter()
        picked = []
        for d in decisions:
            probs = np.full(len(d.legal), 1.0 / len(d.legal))
            picked.append((draw(d, probs), probs))
        share = (time.perf_counter() - start) / max(len(decisions), 1)
        return [reference_choice(action, probs, share) for action, probs in picked]

    def info(self) -> ModelInfo:
        """For the manifest."""
        return ModelInfo(self.name, BASELINE_BACKEND, "uniform over the legal actions")

    def close(self) -> None:
        """Nothing to release."""


def build_random(config: Any, options: Any, progress: Any = None) -> RandomAgent:
    """The ``random`` baseline (it needs nothing from the environment)."""
    return RandomAgent()


def uniform_policy(mdp: Any, details: dict[str, Any]) -> np.ndarray:
    """The random agent's policy on an exact MDP: uniform over its actions (all legal in every state)."""
    return np.full((mdp.n_states, mdp.n_actions), 1.0 / mdp.n_actions)
