"""Layouts where the goal's direction varies: random FrozenLake maps and fits pooled over layouts."""

from __future__ import annotations

from collections import deque

import numpy as np
import pytest

from harness.agents.planners import plan_optimal
from harness.config import RunConfig
from harness.runner import Runner
from irl.analysis.runs import load_tabular
from textenvs import make_env
from textenvs.gridworlds.toytext import random_lake
from textenvs.mdp import StackedMDP
from textenvs.planning import Dynamics, hard_value_iteration, policy_return


def _reachable(desc: tuple[str, ...]) -> bool:
    n = len(desc)
    start = next((r, c) for r in range(n) for c in range(n) if desc[r][c] == "S")
    seen, queue = {start}, deque([start])
    while queue:
        r, c = queue.popleft()
        if desc[r][c] == "G":
            return True
        for dr, dc in ((0, 1), (1, 0), (0, -1), (-1, 0)):
            m = (r + dr, c + dc)
            if 0 <= m[0] < n and 0 <= m[1] < n and m not in seen and desc[m[0]][m[1]] != "H":
                seen.add(m)
                queue.append(m)
    return False


@pytest.mark.parametrize("size", [4, 8])
def test_random_maps_have_a_path_and_the_goal_in_every_direction(size):
    directions = set()
    for seed in range(40):
        desc = random_lake(seed, size)
        assert random_lake(seed, size) == desc  # seeded
        flat = "".join(desc)
        assert len(desc) == size and flat.count("S") == 1 and flat.count("G") == 1
        assert _reachable(desc)
        (sr, sc), (gr, gc) = (divmod(flat.index(x), size) for x in "SG")
        directions.add((int(np.sign(gr - sr)), int(np.sign(gc - sc))))
    # The goal lies above and below, left and right of the start, not always down-right.
    assert {d[0] for d in directions} >= {-1, 1} and {d[1] for d in directions} >= {-1, 1}


def test_layout_seed_none_draws_a_map_per_episode_and_the_mdp_follows_it():
    env = make_env("frozenlake", "random", layout_seed=None)
    maps = set()
    for seed in range(6):
        env.reset(seed=seed)
        assert env.state_record()["layout_seed"] == seed
        assert env.desc == random_lake(seed)
        mdp = env.mdp()
        goal = "".join(env.desc).index("G")
        assert mdp.features[goal, mdp.feature_names.index("at_goal")] == 1
        assert mdp.initial[env.state_index] == 1
        maps.add(env.desc)
    assert len(maps) > 3
    fixed = make_env("frozenlake", "random", layout_seed=5, size=8)
    fixed.reset(seed=1)
    assert fixed.desc == random_lake(5, 8) and fixed.mdp().n_states == 64


def test_random_map_options_are_checked():
    with pytest.raises(ValueError, match="map_name='random' only"):
        make_env("frozenlake", "4x4", size=8)
    with pytest.raises(ValueError, match="size >= 2"):
        make_env("frozenlake", "random", size=1)


def test_stacked_mdp_is_the_mixture_of_its_layouts():
    parts = []
    env = make_env("keys-chests", "train", layout_seed=None)
    for seed in (0, 1, 2):
        env.reset(seed=seed)
        parts.append(env.mdp())
    stacked = StackedMDP.of(parts, [2, 1, 1])
    assert stacked.n_states == sum(p.n_states for p in parts)
    assert np.isclose(stacked.initial.sum(), 1.0)
    # Planning on the stack is planning on each layout, averaged with the layout weights.
    H = 40
    best = hard_value_iteration(stacked.transitions, stacked.rewards, horizon=H, discount=1.0)
    got = policy_return(stacked.transitions, stacked.rewards, best.policy, stacked.initial, horizon=H, discount=1.0)
    each = [hard_value_iteration(p.transitions, p.rewards, horizon=H, discount=1.0).v[0] @ p.initial for p in parts]
    assert got == pytest.approx(np.average(each, weights=[2, 1, 1]))
    with pytest.raises(ValueError, match="kept sparse only"):
        Dynamics(stacked.transitions).tensor
    with pytest.raises(ValueError, match="layout 1 has action_names"):
        StackedMDP.of([parts[0], make_env("frozenlake", "random").mdp()])


@pytest.mark.parametrize("env, variant, max_steps", [("frozenlake", "random", 12), ("keys-chests", "train", 30)])
def test_a_run_over_layouts_is_read_on_each_episodes_own_layout(env, variant, max_steps, tmp_path):
    """An optimal agent planned per episode: every step is possible in that episode's own layout."""

    class PerLayoutOptimal:
        mode = "choose"

        def __init__(self, env):
            self.env = env

        def act(self, decisions):
            from harness.agents.base import reference_choice

            out = []
            for d in decisions:
                self.env.reset(seed=int(d.record["layout_seed"]))
                agent = plan_optimal(self.env.mdp())
                out.extend(agent.act([d]))
            return out

        def info(self):
            from harness.backends.base import ModelInfo

            return ModelInfo("optimal", "baseline", "per layout")

        def close(self):
            pass

    cfg = RunConfig(env=env, variant=variant, encoding="ascii", model="optimal", backend="baseline", mode="choose",
                    episodes=6, max_steps=max_steps, env_options={"layout_seed": None})
    with Runner(cfg, agent=PerLayoutOptimal(make_env(env, variant, layout_seed=None))) as runner:
        run_dir = runner.run(tmp_path / "run")
    run = load_tabular(run_dir)
    assert isinstance(run.mdp, StackedMDP) and run.n_layouts == 6
    assert len(run.episodes) == 6 and all(e.end_reason == "terminated" and e.total_reward > 0 for e in run.episodes)
    offsets = run.mdp.offsets
    for i, e in enumerate(run.episodes):
        assert offsets[i] <= e.states.min() and e.states.max() < offsets[i + 1]
        assert run.mdp.terminal[e.states[-1]]  # the absorbing final state, in the stacked numbering


def test_a_planned_agent_over_layouts_is_scored_on_each_layouts_expected_return(tmp_path):
    """Over layouts a known policy's episode returns are replaced by its layout's expected
    return: GD is then exactly 1 for the optimal agent and 0 for the random mover, with
    intervals that keep the chance of the layouts drawn."""
    from harness.cli import main
    from irl.analysis import FitSettings, analyse_runs
    from irl.analysis.tabular import LAYOUT_EXACT_METHOD
    from irl.goals import reference_returns

    runs = {}
    for agent in ("optimal", "random"):
        runs[agent] = tmp_path / agent
        assert main(["baseline", "--env", "frozenlake", "--variant", "random", "-o", "layout_seed=none", "--agent", agent,
                     "--episodes", "6", "--max-steps", "20", "--out", str(runs[agent]), "--no-progress"]) == 0
    reports = dict(zip(runs, analyse_runs(list(runs.values()), FitSettings(n_boot=2, splits=2, folds=2))))
    run = load_tabular(runs["optimal"])
    assert run.policy is not None and run.policy.shape == (run.mdp.n_states, run.mdp.n_actions)
    optimal_returns = [reference_returns(p.transitions, p.rewards, p.initial, horizon=20, discount=1.0)[1] for p in run.mdp.parts]
    for agent, report in reports.items():
        gd, ret = report.gd, report.true_return
        assert LAYOUT_EXACT_METHOD in gd.method and LAYOUT_EXACT_METHOD in ret.method
        assert gd.estimate == pytest.approx(1.0 if agent == "optimal" else 0.0, abs=1e-9)
        assert gd.low < gd.estimate < gd.high  # the layouts drawn are still a sample
    assert reports["optimal"].true_return.estimate == pytest.approx(np.mean([optimal_returns[k] for k in run.layouts]))


def _goal_and_start(env):
    state = env.text_state()
    goal = next(o.cell for o in state.objects if o.kind == "goal")
    return goal, state.agent


@pytest.mark.parametrize("variant, n_seeds", [("mirrored", 16), ("random-goal-5x5", 40)])
def test_the_goal_lies_in_every_corner_over_layouts(variant, n_seeds):
    """Mirrored CliffWalking and MiniGrid rooms with the goal drawn: layouts differ across seeds,
    and over seeds the goal lies in every corner (and every direction from the start)."""
    family = "cliffwalking" if variant == "mirrored" else "minigrid"
    env = make_env(family, variant, layout_seed=None)
    corners, directions, layouts = set(), set(), set()
    for seed in range(n_seeds):
        env.reset(seed=seed)
        goal, start = _goal_and_start(env)
        assert env.state_record()["layout_seed"] == (seed % 4 if family == "cliffwalking" else seed)
        assert env.mdp().initial[env.state_index] == 1
        h, w = env.text_state().height, env.text_state().width
        edge = 0 if family == "cliffwalking" else 1  # MiniGrid rooms have an outer wall
        corners.add((goal[0] == edge, goal[0] == h - 1 - edge, goal[1] == edge, goal[1] == w - 1 - edge))
        directions.add((int(np.sign(goal[0] - start[0])), int(np.sign(goal[1] - start[1]))))
        layouts.add((goal, start))
        again = make_env(family, variant, layout_seed=seed)  # the same seed, the same layout
        again.reset(seed=99)
        assert _goal_and_start(again) == (goal, start)
    assert {(True, False, True, False), (True, False, False, True), (False, True, True, False), (False, True, False, True)} <= corners
    # CliffWalking's start and goal share the cliff's edge: the goal lies left or right of it.
    assert {d[1] for d in directions} >= {-1, 1}
    assert family == "cliffwalking" or {d[0] for d in directions} >= {-1, 1}
    assert len(layouts) >= 4


@pytest.mark.parametrize("family, variant", [("cliffwalking", "mirrored"), ("minigrid", "random-goal-5x5")])
def test_every_layout_names_the_same_features_and_steps_as_its_mdp(family, variant):
    """Each layout's MDP is exact (a real step from every state lands where ``P`` says, with
    ``R``'s reward) and names the same layout-free features, so fits pool the layouts."""
    env = make_env(family, variant, layout_seed=None)
    parts = []
    for seed in range(6):
        env.reset(seed=seed)
        mdp = env.mdp()
        parts.append(mdp)
        at_goal = mdp.feature_names.index("at_goal")
        assert mdp.default_features and "row" not in mdp.default_features and "col" not in mdp.default_features
        for s in np.flatnonzero(mdp.decision_states):
            assert mdp.features[s, at_goal] == 0
            for a, name in enumerate(mdp.action_names):
                env.set_state(int(s))
                s2, reward, terminated, _, _ = env.step(name)
                assert mdp.transitions[s, a, s2] == 1.0 and bool(mdp.terminal[s2]) == terminated
                assert (mdp.rewards[s, a, s2] > 0) == (reward > 0) if family == "minigrid" else mdp.rewards[s, a, s2] == reward
    stacked = StackedMDP.of(parts)
    assert stacked.n_states == sum(p.n_states for p in parts)


def test_layout_options_are_checked_and_capabilities_follow_them():
    from textenvs.capabilities import EXACT_MDP, LAYOUT_MDPS, capabilities, capabilities_of

    with pytest.raises(ValueError, match="mirrored CliffWalking only"):
        make_env("cliffwalking", "4x12", layout_seed=3)
    with pytest.raises(ValueError, match="option 'layout_seed' takes int or none"):
        make_env("cliffwalking", "mirrored", layout_seed="corner")
    for env, variant in (("cliffwalking", "mirrored"), ("minigrid", "random-goal-5x5")):
        assert {EXACT_MDP, LAYOUT_MDPS} <= capabilities_of(env, variant)
        drawn = capabilities_of(env, variant, {"layout_seed": None})
        assert LAYOUT_MDPS in drawn and EXACT_MDP not in drawn
        assert capabilities(make_env(env, variant, layout_seed=None)) == drawn
