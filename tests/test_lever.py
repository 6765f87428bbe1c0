"""The cross-episode side channel: the chained lever MDP against brute force, and the two exact policies."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from harness.agents import BaselineError, BaselineOptions, build_baseline
from harness.config import RunConfig
from harness.runner import Runner
from irl.analysis.cross_episode import analyse_lever, pull_rate
from textenvs import get_encoding, build_prompt, make_env
from textenvs.chain import myopic_policy, non_myopic_policy, round_local
from textenvs.planning import hard_value_iteration, policy_return

SMALL = {"length": 3, "rounds": 2, "cost": 0.5}
H = 7


def _play(env, actions) -> tuple[float, list[float], bool]:
    """Total reward, each round's reward, whether the chain ended."""
    env.reset(seed=0)
    rounds, total, current = [], 0.0, 0.0
    for a in actions:
        _, r, done, _, info = env.step(a)
        total += r
        current += r
        if info["round_end"]:
            rounds.append(current)
            current = 0.0
        if done:
            return total, rounds, True
    return total, rounds + [current], False


def _round_ends(env, actions) -> int:
    env.reset(seed=0)
    count = 0
    for a in actions:
        _, _, done, _, info = env.step(a)
        count += info["round_end"]
        if done:
            break
    return count


def _brute_force(env) -> tuple[float, float]:
    """(best chain total, myopic chain total) over every action sequence of at most H steps."""
    best = max(_play(env, seq)[0] for seq in itertools.product(env.action_names, repeat=H))
    # Myopic: round by round, the sequence that ends round k with its best reward (the shortest
    # among ties), given what the earlier rounds did.
    prefix: list[str] = []
    for k in range(env.rules.rounds):
        ending = [
            (_play(env, [*prefix, *seq])[1][k], -n, seq)
            for n in range(1, H - len(prefix) + 1) for seq in itertools.product(env.action_names, repeat=n)
            if _round_ends(env, [*prefix, *seq]) == k + 1 and _round_ends(env, [*prefix, *seq[:-1]]) == k
        ]
        prefix += list(max(ending)[2])
    return best, _play(env, prefix)[0]


@pytest.mark.parametrize("bonus", [0.25, 2.0])
def test_values_agree_with_brute_force(bonus):
    env = make_env("lever", **SMALL, bonus=bonus)
    mdp = env.mdp()
    best, myopic = _brute_force(env)
    exact_best = hard_value_iteration(mdp.transitions, mdp.rewards, horizon=H, discount=1.0).v[0] @ mdp.initial
    assert exact_best == pytest.approx(best)
    assert policy_return(mdp.transitions, mdp.rewards, non_myopic_policy(mdp), mdp.initial, horizon=H, discount=1.0) == pytest.approx(best)
    assert policy_return(mdp.transitions, mdp.rewards, myopic_policy(mdp), mdp.initial, horizon=H, discount=1.0) == pytest.approx(myopic)
    assert (best > myopic) is (bonus > SMALL["cost"])
    local = round_local(mdp)  # one round alone is worth the goal: 1
    assert hard_value_iteration(local.transitions, local.rewards, horizon=H, discount=1.0).v[0] @ local.initial == pytest.approx(1.0)


@pytest.mark.parametrize("bonus", [0.0, 0.25, 0.5, 0.51, 2.0])
def test_the_non_myopic_policy_pulls_exactly_when_the_bonus_exceeds_the_cost(bonus):
    mdp = make_env("lever", rounds=3, cost=0.5, bonus=bonus).mdp()
    rate = pull_rate(mdp, non_myopic_policy(mdp), 20)
    assert rate == pytest.approx(2 / 3 if bonus > 0.5 else 0.0)  # never in the last round: its bonus would go nowhere
    assert pull_rate(mdp, myopic_policy(mdp), 20) == 0.0


def test_lever_runs_place_the_agents(tmp_path):
    rates = {}
    for agent in ("chain-non-myopic", "chain-myopic", "random"):
        cfg = RunConfig(env="lever", variant="explained-high", encoding="ascii", model=agent, backend="baseline", mode="choose",
                        episodes=6, max_steps=16, seed=2)
        with Runner(cfg, agent=build_baseline(agent, cfg, BaselineOptions())) as runner:
            rates[agent] = analyse_lever(runner.run(tmp_path / agent))
    assert rates["chain-non-myopic"].pull_rate.contains(rates["chain-non-myopic"].non_myopic) and rates["chain-non-myopic"].non_myopic == pytest.approx(2 / 3)
    assert rates["chain-myopic"].pull_rate.estimate == 0.0 and rates["chain-myopic"].myopic == 0.0
    assert 0.0 < rates["random"].random < 2 / 3


def test_the_prompt_says_what_the_variant_tells():
    for variant, told in (("explained-high", True), ("unexplained-high", False)):
        env = make_env("lever", variant)
        env.reset(seed=0)
        for a in ("right", "pull", "right", "right"):
            env.step(a)
        prompt = build_prompt(get_encoding("lever", "text"), env.text_state(), env.legal_actions(), "generate")
        assert "round 2 of 3" in prompt and "you pulled the lever" in prompt
        assert ("adds 2 to this round's reward" in prompt) is told
        assert ("bonus of 2 to the next round" in prompt) is told


def test_chained_agents_refuse_other_environments():
    cfg = RunConfig(env="frozenlake", variant="4x4", encoding="ascii", model="chain-myopic", backend="baseline", mode="choose")
    with pytest.raises(BaselineError, match="chained rounds"):
        build_baseline("chain-myopic", cfg, BaselineOptions())
