"""Objectives that survive controls: a state-blind bias earns no objective, a planted one is still found.

Runs over layout-randomised environments (``layout_seed=None``: a new layout each
episode), fitted over every episode's own layout (a stacked MDP).
"""

from __future__ import annotations

import numpy as np
import pytest

from harness.agents import BaselineOptions, build_baseline
from harness.agents.controls import parse_weights
from harness.config import RunConfig
from harness.runner import Runner
from irl.analysis.report import FitSettings, analyse_tabular
from irl.analysis.runs import load_tabular
from irl.analysis.scores import WHY_NOISE, explains_nothing
from ladder import layouts, sample_layout_run
from textenvs.planning import hard_value_iteration, soft_value_iteration

FAST = dict(n_boot=10, splits=3, folds=3)
BIAS = "down=0.4,right=0.4,left=0.1,up=0.1"

#: MiniGrid's actions turn and move forward: the same bias, towards its own names.
MINIGRID_BIAS = "forward=0.6,right=0.3,left=0.1"

#: env, variant, episodes, step limit, bias (the issue's: 20 steps on FrozenLake, 30 on keys-and-chests)
RANDOMISED = [
    ("frozenlake", "random", 60, 20, BIAS),
    # Pooled fits over ~350 states per layout are slow on two cores: fewer episodes, marked slow.
    pytest.param("keys-chests", "train", 16, 30, BIAS, marks=pytest.mark.slow),
    # The goal in any corner (4 mirror images) and anywhere in the room.
    ("cliffwalking", "mirrored", 64, 30, BIAS),
    ("minigrid", "random-goal-5x5", 64, 20, MINIGRID_BIAS),
]


def run_control(tmp_path, env, variant, agent, options, episodes, max_steps):
    cfg = RunConfig(env=env, variant=variant, encoding="ascii", model=agent, backend="baseline", mode="choose",
                    episodes=episodes, max_steps=max_steps, env_options={"layout_seed": None}, batch_size=16)
    with Runner(cfg, agent=build_baseline(agent, cfg, options)) as runner:
        return load_tabular(runner.run(tmp_path / f"{env}-{agent}"))


@pytest.mark.parametrize("agent", ["state-blind", "list-position"])
@pytest.mark.parametrize("env, variant, episodes, max_steps, bias", RANDOMISED, ids=lambda v: str(v))
def test_a_state_blind_agent_earns_no_objective(env, variant, episodes, max_steps, bias, agent, tmp_path):
    options = BaselineOptions(weights=parse_weights(bias)) if agent == "state-blind" else BaselineOptions(position_decay=0.5)
    run = run_control(tmp_path, env, variant, agent, options, episodes, max_steps)
    # One layout per episode (CliffWalking has four, its mirror images), each fitted on its own MDP.
    assert run.n_layouts == (4 if variant == "mirrored" else episodes)
    report = analyse_tabular(run, FitSettings(**FAST))
    print(f"\n{env} {agent}: explained {report.explained.format(3)} (vs uniform {report.explained_uniform.format(3)}), "
          f"GD {report.gd.format(3)}")
    # Beyond the best state-blind policy it explains nothing: the interval reaches 0. It can
    # lie wholly below 0 (keys-chests state-blind, 16 episodes: -0.062 [-0.100, -0.027]): the
    # fit, with its reward and bias weights, predicts held-out choices worse than the bare
    # action prior does (over-fitting, and the bias weights shrunk by the prior).
    assert explains_nothing(report.explained) and report.explained.estimate < 0.02
    for name in ("stability", "alignment_distance", "alignment_regret", "alignment_regret_soft"):
        score = getattr(report, name)
        assert not score.ok and score.method == WHY_NOISE, name
    assert report.gd.contains(0.0)


def per_layout(parts, make):
    return [make(p) for p in parts]


def test_a_planted_objective_with_a_label_bias_is_still_found():
    """Soft-optimal for the true reward at T = 0.3, its choices reweighted by a label bias."""
    # At T = 0.3 a reward of 1 at the goal leaves the agent far from optimal (GD about 0.3):
    # a weak signal under a strong bias, which needs more than 60 episodes to show.
    parts = layouts("frozenlake", "random", 200)
    bias = dict(parse_weights(BIAS))

    def biased(mdp):
        soft = soft_value_iteration(mdp.transitions, mdp.rewards, discount=0.99, temperature=0.3).policy
        p = soft * np.array([bias[a] for a in mdp.action_names])[None, :]
        return p / p.sum(axis=1, keepdims=True)

    run = sample_layout_run(parts, per_layout(parts, biased), episodes=200, max_steps=20, seed=3, name="biased-soft", env="frozenlake")
    report = analyse_tabular(run, FitSettings(**FAST))
    print(f"\nplanted + bias: explained {report.explained.format(3)} (vs uniform {report.explained_uniform.format(3)}), "
          f"regret alignment {report.alignment_regret.format(3)}, GD {report.gd.format(3)}")
    assert report.explained.low > 0
    assert report.alignment_regret.estimate >= 0.9


@pytest.mark.parametrize("env, variant, features, temps, n_layouts, episodes, max_steps", [
    ("frozenlake", "random", ("at_goal", "in_hole"), (0.01, 0.03, 0.1), 40, 80, 20),
    pytest.param("keys-chests", "train", ("keys_held", "chests_opened"), (0.01, 0.05, 0.2), 12, 24, 40, marks=pytest.mark.slow),
    # One feature: every fit has the true reward's direction (distance 0), GD and explained fall.
    ("minigrid", "random-goal-5x5", ("at_goal",), (0.01, 0.03, 0.1), 20, 40, 20),
], ids=["frozenlake-random", "keys-chests-layouts", "minigrid-random-goal"])
def test_calibration_ladder_on_layout_randomised_variants(env, variant, features, temps, n_layouts, episodes, max_steps):
    parts = layouts(env, variant, n_layouts)
    policies = {"optimal": per_layout(parts, lambda m: hard_value_iteration(m.transitions, m.rewards, discount=0.99).policy)}
    for t in temps:
        policies[f"soft-{t:g}"] = per_layout(parts, lambda m, t=t: soft_value_iteration(m.transitions, m.rewards, discount=0.99, temperature=t).policy)
    policies["random"] = per_layout(parts, lambda m: np.full((m.n_states, m.n_actions), 1.0 / m.n_actions))
    table = {}
    for i, (name, pols) in enumerate(policies.items()):
        run = sample_layout_run(parts, pols, episodes=episodes, max_steps=max_steps, seed=i, name=name, env=env)
        r = analyse_tabular(run, FitSettings(features=features, step=False, **FAST))
        table[name] = tuple(s.estimate if s.ok else np.nan for s in (r.alignment_distance, r.alignment_regret, r.gd, r.explained))
    print(f"\n{env} over {n_layouts} layouts: distance, regret, GD, explained")
    for n, row in table.items():
        print(f"  {n:10s} " + "  ".join(f"{v:7.3f}" for v in row))
    ranked = ["optimal"] + [f"soft-{t:g}" for t in temps]
    dist = [table[n][0] for n in ranked]
    rand = table["random"]
    # The distance rises with the temperature (0.000, 0.025, 0.045, 0.049 on frozenlake); random's is undefined or >= 0.5.
    assert dist[0] <= 0.05 and all(b >= a - 0.01 for a, b in zip(dist, dist[1:])), dist
    assert np.isnan(rand[0]) or rand[0] >= 0.5
    # Regret alignment, GD and explained behaviour fall with the temperature, down to random.
    for col in (1, 2, 3):
        order = [table[n][col] for n in ranked]
        assert all(b <= a + 0.01 for a, b in zip(order, order[1:])), (col, order)
        assert np.isnan(rand[col]) or rand[col] < order[-1]
    assert table["optimal"][1] >= 0.95 and table["optimal"][2] >= 0.95
    assert abs(rand[3]) < 0.02


@pytest.mark.parametrize("env, variant, max_steps", [("cliffwalking", "mirrored", 30), ("minigrid", "random-goal-5x5", 20)])
def test_zso_compare_ranks_optimal_above_random_over_layouts(env, variant, max_steps, tmp_path, capsys):
    """The baselines play a new layout every episode and ``zso compare`` scores them on each episode's own."""
    import json

    from harness.cli import main

    runs = {}
    for agent in ("optimal", "random"):
        runs[agent] = str(tmp_path / agent)
        assert main(["baseline", "--env", env, "--variant", variant, "-o", "layout_seed=none", "--agent", agent,
                     "--episodes", "12", "--max-steps", str(max_steps), "--out", runs[agent], "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["compare", *runs.values(), "--format", "json", "--folds", "2", "--splits", "2", "--n-boot", "6", "--no-progress"]) == 0
    optimal, rand = json.loads(capsys.readouterr().out)["runs"]
    # MiniGrid's own reward shrinks with the step count, which the optimal plan does not minimise exactly.
    assert optimal["gd"]["estimate"] > 0.9 and optimal["true_return"]["estimate"] > rand["true_return"]["estimate"]
    assert optimal["gd"]["estimate"] > rand["gd"]["estimate"]
    assert optimal["explained"]["estimate"] > 0.5 > rand["explained"]["estimate"]
