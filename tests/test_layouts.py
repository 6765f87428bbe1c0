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
