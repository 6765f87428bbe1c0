"""Gridworld environments: the contract over every registered env x variant x encoding,
named actions, seeding, episode ends, and the keys-chests layouts."""

from __future__ import annotations

import dataclasses
import json

import gymnasium
import numpy as np
import pytest

from textenvs import ENVS, IllegalActionError, OptionError, TextEnv, build_prompt, encodings_for, get_encoding, make_env
from textenvs.gridworlds.keys_chests import KeysChestsEnv, generate_layout

GRID_FAMILIES = [e.name for e in ENVS if isinstance(e.target, str) and e.target.startswith("textenvs.gridworlds")]
GRID_VARIANTS = [(family, variant) for family in GRID_FAMILIES for variant in ENVS.entry(family).metadata["variants"]]
GRID_ENCODINGS = [(family, variant, name) for family, variant in GRID_VARIANTS for name in encodings_for(family)]


def test_the_gridworld_families_are_registered_with_variants_and_four_encodings():
    assert set(GRID_FAMILIES) == {"frozenlake", "cliffwalking", "taxi", "keys-chests", "minigrid", "goal-objects", "lever"}
    assert set(ENVS.entry("frozenlake").metadata["variants"]) == {"4x4", "8x8", "4x4-slippery", "8x8-slippery", "random"}
    assert set(ENVS.entry("minigrid").metadata["variants"]) == {"empty-5x5", "empty-6x6", "doorkey-5x5", "random-goal-5x5", "random-goal-6x6"}
    assert set(ENVS.entry("cliffwalking").metadata["variants"]) == {"4x12", "mirrored"}
    assert set(ENVS.entry("keys-chests").metadata["variants"]) == {"train", "test"}
    for family in GRID_FAMILIES:
        entry = ENVS.entry(family)
        assert entry.metadata["default_variant"] in entry.metadata["variants"]
        assert {"ascii", "coords", "text", "json"} <= set(encodings_for(family))


@pytest.mark.parametrize("family,variant,encoding", GRID_ENCODINGS)
def test_contract(family, variant, encoding):
    env = make_env(family, variant)
    assert isinstance(env, gymnasium.Env) and isinstance(env, TextEnv)
    assert env.family == family
    obs, info = env.reset(seed=0)
    json.dumps(info)
    enc = get_encoding(family, encoding)
    for _ in range(3):
        state = env.text_state()
        hash(state)  # an immutable snapshot
        with pytest.raises(dataclasses.FrozenInstanceError):
            state.agent = (0, 0)  # type: ignore[misc]
        record = env.state_record()
        json.dumps(record)
        assert record["index"] == state.index == obs
        assert env.observation_space.contains(obs)
        text = enc.render_state(state)
        assert isinstance(text, str) and text.strip()
        legal = env.legal_actions()
        assert legal == list(env.mdp().action_names)
        for action in legal:
            written = enc.render_action(state, action)
            assert enc.parse_action(state, written, legal) == action
            assert enc.parse_action(state, f"Action: {written}.", legal) == action
        for mode in ("choose", "generate", "tagged"):
            prompt = build_prompt(enc, state, legal, mode, feedback="")
            assert "$" not in prompt and text in prompt
        obs, reward, terminated, truncated, info = env.step(legal[-1])
        json.dumps(info)
        assert isinstance(reward, float) and isinstance(terminated, bool) and isinstance(truncated, bool)
        if terminated or truncated:
            assert isinstance(info["success"], bool) and isinstance(info["outcome"], str)
            break


@pytest.mark.parametrize("family,variant", GRID_VARIANTS)
def test_unknown_action_names_are_illegal(family, variant):
    env = make_env(family, variant)
    env.reset(seed=0)
    before = env.state_record()
    for bad in ("jump", "LEFT", "", 99):
        with pytest.raises(IllegalActionError):
            env.step(bad)
    assert env.state_record() == before


def _optimal_policy(mdp, gamma=0.99, iters=2000):
    q = np.zeros((mdp.n_states, mdp.n_actions))
    r = mdp.expected_rewards()
    for _ in range(iters):
        v = q.max(axis=1)
        q_new = r + gamma * mdp.transitions @ v
        if np.abs(q_new - q).max() < 1e-10:
            break
        q = q_new
    return q.argmax(axis=1)


@pytest.mark.parametrize(
    "family,variant,outcome",
    [
        ("frozenlake", "4x4", "goal"), ("frozenlake", "8x8", "goal"), ("cliffwalking", "4x12", "goal"), ("cliffwalking", "mirrored", "goal"),
        ("taxi", "5x5", "delivered"), ("keys-chests", "train", "out-of-keys"), ("keys-chests", "test", "all-opened"),
        ("minigrid", "empty-5x5", "goal"), ("minigrid", "empty-6x6", "goal"), ("minigrid", "doorkey-5x5", "goal"),
        ("minigrid", "random-goal-5x5", "goal"), ("minigrid", "random-goal-6x6", "goal"),
    ],
)
def test_the_optimal_policy_of_the_mdp_succeeds_in_the_real_env(family, variant, outcome):
    env = make_env(family, variant)
    mdp = env.mdp()
    policy = _optimal_policy(mdp)
    for seed in range(3):
        obs, _ = env.reset(seed=seed)
        total = 0.0
        for _ in range(200):
            obs, reward, terminated, truncated, info = env.step(mdp.action_names[policy[obs]])
            total += reward
            if terminated or truncated:
                break
        assert terminated and info["success"] is True and info["outcome"] == outcome, (seed, info)
        if family == "keys-chests":
            assert total == min(env.n_keys, env.n_chests) == info["chests_opened"]


def test_falling_in_a_hole_fails():
    env = make_env("frozenlake", "4x4")
    env.reset(seed=0)
    env.step("right")
    obs, reward, terminated, _, info = env.step("down")  # (1, 1) is a hole
    assert terminated and reward == 0.0 and info == {"prob": 1.0, "success": False, "outcome": "hole"}
    assert env.state_record() == {"index": 5, "row": 1, "col": 1, "tile": "H"}


def test_cliff_sends_back_to_start_with_minus_100():
    env = make_env("cliffwalking")
    obs, _ = env.reset(seed=0)
    assert obs == 36
    obs, reward, terminated, _, _ = env.step("right")
    assert (obs, reward, terminated) == (36, -100.0, False)


def test_reset_seed_fixes_the_random_start():
    a, b = make_env("taxi"), make_env("taxi")
    starts = [a.reset(seed=s)[0] for s in range(20)]
    assert starts == [b.reset(seed=s)[0] for s in range(20)]
    assert len(set(starts)) > 5


def test_actions_can_be_given_by_index_for_rl_libraries():
    env = make_env("taxi")
    env.reset(seed=1)
    env.set_state(env.mdp().state_labels.index("(0, 0) passenger=R dest=G"))
    _, reward, _, _, _ = env.step(4)  # pick up
    assert reward == -1.0 and env.state_record()["passenger"] == "in taxi"


def test_variants_and_options_reach_the_constructor():
    env = make_env("frozenlake", "8x8-slippery")
    assert env.map_name == "8x8" and env.is_slippery
    env = make_env("keys-chests", "test", layout_seed=5)
    assert (env.n_keys, env.n_chests, env.layout_seed) == (4, 2, 5)
    with pytest.raises(OptionError, match="variant"):
        make_env("frozenlake", "16x16")
    with pytest.raises(OptionError, match="did you mean 'n_keys'"):
        make_env("keys-chests", n_key=3)


def test_minigrid_picks_the_actions_that_matter():
    assert make_env("minigrid", "empty-5x5").legal_actions() == ["left", "right", "forward"]
    assert make_env("minigrid", "doorkey-5x5").legal_actions() == ["left", "right", "forward", "pick up", "drop", "toggle"]


def test_minigrid_reward_is_minigrids_own():
    env = make_env("minigrid", "empty-5x5")
    env.reset(seed=0)
    for action in ("forward", "forward", "right", "forward"):
        _, reward, terminated, _, info = env.step(action)
    _, reward, terminated, _, info = env.step("forward")
    assert terminated and info["outcome"] == "goal"
    assert reward == pytest.approx(1 - 0.9 * 5 / env.max_steps)


# -- keys-chests -------------------------------------------------------------------------


def test_layouts_are_seeded_connected_and_well_placed():
    a = generate_layout(3, size=7, n_keys=3, n_chests=2, wall_density=0.25)
    assert a == generate_layout(3, size=7, n_keys=3, n_chests=2, wall_density=0.25)
    assert a != generate_layout(4, size=7, n_keys=3, n_chests=2, wall_density=0.25)
    for seed in range(30):
        lay = generate_layout(seed, size=6, n_keys=2, n_chests=4, wall_density=0.3)
        spots = [lay.start, *lay.keys, *lay.chests]
        assert len(set(spots)) == 7 and not set(spots) & lay.walls
        assert len(lay.walls) == round(0.3 * 36)
        free = {(r, c) for r in range(6) for c in range(6)} - lay.walls
        seen, todo = {lay.start}, [lay.start]
        while todo:
            r, c = todo.pop()
            for n in ((r + 1, c), (r - 1, c), (r, c + 1), (r, c - 1)):
                if n in free and n not in seen:
                    seen.add(n)
                    todo.append(n)
        assert seen == free


def test_layout_options_are_checked():
    with pytest.raises(ValueError, match="no room"):
        generate_layout(0, size=3, n_keys=4, n_chests=4, wall_density=0.2)
    with pytest.raises(ValueError, match="at least one key"):
        generate_layout(0, size=5, n_keys=0, n_chests=1, wall_density=0.2)


def test_keys_are_picked_up_and_used_on_chests():
    env = KeysChestsEnv(size=5, n_keys=2, n_chests=2, wall_density=0.2, max_keys_held=1, layout_seed=0)
    env.reset(seed=0)
    lay, moves = env.layout, {"up": (-1, 0), "down": (1, 0), "left": (0, -1), "right": (0, 1)}
    for s in range(env.mdp().n_states):
        env.set_state(s)
        st = env.state
        if env.mdp().terminal[s]:
            continue
        for name in env.legal_actions():
            env.set_state(s)
            _, reward, terminated, _, info = env.step(name)
            nxt = env.state
            target = (st.pos[0] + moves[name][0], st.pos[1] + moves[name][1])
            inside = 0 <= target[0] < 5 and 0 <= target[1] < 5 and target not in lay.walls
            assert nxt.pos == (target if inside else st.pos)
            if nxt.pos in st.keys and st.held < 1:
                assert (nxt.keys, nxt.chests, nxt.held, reward) == (st.keys - {nxt.pos}, st.chests, st.held + 1, 0.0)
            elif nxt.pos in st.chests and st.held > 0:
                assert (nxt.keys, nxt.chests, nxt.held, reward) == (st.keys, st.chests - {nxt.pos}, st.held - 1, 1.0)
            else:
                assert (nxt.keys, nxt.chests, nxt.held, reward) == (st.keys, st.chests, st.held, 0.0)
            assert terminated == (not nxt.chests or (not nxt.keys and nxt.held == 0))
            if terminated:
                assert info["success"] is True and info["chests_opened"] == 2


def test_layout_seed_none_draws_a_layout_per_reset():
    env = KeysChestsEnv(layout_seed=None)
    env.reset(seed=1)
    first, first_mdp = env.layout, env.mdp()
    assert env.state_record()["layout_seed"] == 1
    env.reset(seed=2)
    assert env.layout != first and env.mdp() is not first_mdp
    env.reset(seed=1)
    assert env.layout == first and env.mdp() is first_mdp  # cached per layout


def test_mdps_are_cached_and_read_only():
    env = make_env("keys-chests", "train")
    assert env.mdp() is env.mdp() is make_env("keys-chests", "train").mdp()
    with pytest.raises(ValueError):
        env.mdp().transitions[0, 0, 0] = 0.5
