"""Proxy families: train/test layout pairs on which simple objectives agree, then part.

The "objective unidentifiability" experiment of the zero-shot objectives agenda: an
environment where several simple objectives explain the true reward equally well on
``train``, and ``test`` layouts that tell them apart. Each :class:`ProxyFamily` names the
two layouts (an environment, a variant and options each), its candidate objectives (as
feature gains, :func:`candidate_reward`) and the step limit over which they are compared;
:data:`PROXY_FAMILIES` lists them. Whether they really coincide on ``train`` and part on
``test`` is checked on the exact MDPs (:func:`irl.proxy.coincide`).

``keys-chests``
    opening chests vs picking up keys (Langosco et al. 2022's keys and chests): within 12
    steps, the ``train`` maze lets an agent do both; the ``test`` maze (more keys, fewer
    chests) does not.
``corner-coin``
    reaching the coin vs reaching the level's far corner (CoinRun, Langosco et al. 2022).
``colour-shape``
    reaching the red object vs reaching the ball.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from textenvs.mdp import TabularMDP
from textenvs.registry import Registry
from textenvs.reward_channel import ObservedReward, observed_table

__all__ = ["ProxyFamily", "PROXY_FAMILIES", "candidate_reward", "family_of"]


@dataclass(frozen=True)
class ProxyFamily:
    """A train/test pair of layouts and the candidate objectives they are meant to confuse."""

    name: str
    env: str
    train_variant: str
    test_variant: str
    #: Candidate objectives: ``(label, feature spec)``; a spec is a feature name whose gains
    #: pay, or ``-NAME`` for its losses (as ``-o observed_reward=feature:SPEC`` reads it).
    candidates: tuple[tuple[str, str], ...]
    #: The label of the candidate that the environment's own reward is.
    true: str
    #: Decisions per episode over which the candidates are compared (the runs' ``max_steps``).
    horizon: int
    train_options: dict[str, Any] = field(default_factory=dict)
    test_options: dict[str, Any] = field(default_factory=dict)
    summary: str = ""

    @property
    def labels(self) -> tuple[str, ...]:
        """The candidates' labels."""
        return tuple(label for label, _ in self.candidates)

    def split(self, variant: str | None) -> str | None:
        """``"train"``, ``"test"`` or ``None`` for a variant of :attr:`env`."""
        return {self.train_variant: "train", self.test_variant: "test"}.get(variant or "")


#: The proxy families, by name.
PROXY_FAMILIES: Registry[ProxyFamily] = Registry("proxy family")
for _family in (
    ProxyFamily(
        "keys-chests", "keys-chests", "train", "test",
        (("chests opened", "chests_opened"), ("keys picked up", "-keys_left")), "chests opened", 12,
        summary="open chests or pick up keys: both within 12 steps on train, not on test",
    ),
    ProxyFamily(
        "corner-coin", "goal-objects", "corner-coin-train", "corner-coin-test",
        (("the coin", "at_coin"), ("the far corner", "at_corner")), "the coin", 12,
        summary="the coin lies in the level's far corner on train, elsewhere on test",
    ),
    ProxyFamily(
        "colour-shape", "goal-objects", "colour-shape-train", "colour-shape-test",
        (("the red object", "at_red"), ("the ball", "at_ball")), "the red object", 12,
        summary="a red ball on train; a red key and a blue ball on test",
    ),
):
    PROXY_FAMILIES.register(_family.name, _family, _family.summary)


def family_of(env: str, variant: str | None, options: dict[str, Any] | None = None) -> tuple[ProxyFamily, str] | None:
    """The family and split (``"train"``/``"test"``) that ``env``/``variant`` with ``options`` belongs to, or ``None``.

    Options that change the layouts the family defines (``layout_seed``: a new layout every
    episode) take a run out of the family: its train and test layouts are no longer the pair."""
    for entry in PROXY_FAMILIES:
        fam = entry.load()
        split = fam.split(variant) if fam.env == env else None
        if split is None:
            continue
        defined = fam.train_options if split == "train" else fam.test_options
        if "layout_seed" in (options or {}):
            seed = options["layout_seed"]
            if seed is None or seed == "none" or seed != defined.get("layout_seed", seed):
                return None
        return fam, split
    return None


def candidate_reward(mdp: TabularMDP, spec: str) -> np.ndarray:
    """``R[s, a, s']`` of a candidate: the gains of feature ``spec`` (``-NAME``: its losses)."""
    return observed_table(mdp, ObservedReward("feature", feature=spec))
