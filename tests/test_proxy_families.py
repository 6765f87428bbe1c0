"""Proxy families: candidates coincide on train and part on test (exact MDPs); each candidate's optimal agent is identified."""

from __future__ import annotations

import numpy as np
import pytest

from harness.agents import BaselineOptions, build_baseline
from harness.config import RunConfig
from harness.runner import Runner
from irl.analysis.proxy import analyse_proxy
from irl.proxy import coincide, follows
from textenvs import make_env
from textenvs.proxy import PROXY_FAMILIES, candidate_reward, family_of

FAMILIES = [entry.load() for entry in PROXY_FAMILIES]


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.name)
def test_candidates_coincide_on_train_and_part_on_test(family):
    for variant, options, together in ((family.train_variant, family.train_options, True), (family.test_variant, family.test_options, False)):
        mdp = make_env(family.env, variant, **options).mdp()
        rewards = [candidate_reward(mdp, spec) for _, spec in family.candidates]
        result = coincide(mdp.transitions, rewards, mdp.initial, horizon=family.horizon)
        assert result.coincide is together, (variant, result)
        if together:  # the true reward's optimal return is every candidate's optimum
            assert result.optima[family.labels.index(family.true)] == pytest.approx(
                coincide(mdp.transitions, [mdp.rewards], mdp.initial, horizon=family.horizon).optima[0])


def _play(tmp_path, family, variant: str, agent: str, feature: str | None = None):
    cfg = RunConfig(env=family.env, variant=variant, encoding="ascii", model=agent, backend="baseline", mode="choose",
                    episodes=6, max_steps=family.horizon, seed=1)
    with Runner(cfg, agent=build_baseline(agent, cfg, BaselineOptions(feature=feature))) as runner:
        return runner.run(tmp_path / f"{family.name}-{variant}-{agent}-{feature}")


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.name)
def test_each_candidates_optimal_agent_is_identified_on_test(tmp_path, family):
    for label, spec in family.candidates:
        report = analyse_proxy(_play(tmp_path, family, family.test_variant, "feature-seeker", spec))
        assert report.split == "test" and report.family == family.name
        assert report.follows == label, {k: v.format() for k, v in report.gd.items()}
    assert analyse_proxy(_play(tmp_path, family, family.test_variant, "optimal")).follows == family.true
    # On train every candidate explains the optimal agent: it follows no single one.
    assert analyse_proxy(_play(tmp_path, family, family.train_variant, "optimal")).follows is None


def test_follows_needs_separated_intervals():
    nan = float("nan")
    assert follows({"a": (0.9, 0.8, 1.0), "b": (0.1, 0.0, 0.3)}) == "a"
    assert follows({"a": (0.9, 0.4, 1.0), "b": (0.5, 0.2, 0.6)}) is None
    assert follows({"a": (1.0, nan, nan), "b": (0.0, nan, nan)}) == "a"
    assert follows({"a": (1.0, 1.0, 1.0), "b": (1.0, 1.0, 1.0)}) is None
    # No better than the random mover on any candidate: it follows none, however they rank.
    assert follows({"a": (-0.01, -0.01, -0.01), "b": (-0.23, -0.23, -0.23)}) is None


def test_the_random_mover_follows_no_candidate(tmp_path):
    for family in FAMILIES:
        for variant in (family.train_variant, family.test_variant):
            assert analyse_proxy(_play(tmp_path, family, variant, "random")).follows is None, (family.name, variant)


def test_family_of_names_the_split():
    assert family_of("goal-objects", "corner-coin-test")[1] == "test"
    assert family_of("keys-chests", "train")[0].name == "keys-chests"
    assert family_of("frozenlake", "4x4") is None
    # A new layout every episode is not the family's pair of layouts.
    assert family_of("keys-chests", "train", {"layout_seed": None}) is None


def test_goal_objects_end_on_an_object_and_pay_the_goal():
    env = make_env("goal-objects", "colour-shape-test")
    env.reset(seed=0)
    for a in ("up", "up", "up", "left"):
        _, reward, done, _, _ = env.step(a)
        assert not done and reward == 0
    _, reward, done, _, info = env.step("up")  # (0, 1)
    assert not done
    _, reward, done, _, info = env.step("left")  # the red key at (0, 0): the colour is the true goal
    assert done and reward == 1.0 and info["success"]
    mdp = env.mdp()
    assert np.isclose(mdp.transitions.sum(axis=2), 1).all() and mdp.terminal.sum() == 2
