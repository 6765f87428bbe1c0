"""The exported MDPs against the real environments (no mocks).

For every gridworld family and variant: stepping the real environment from every
reachable state matches ``P`` and ``R`` (exactly for deterministic games, by a seeded
chi-square test for slippery FrozenLake), ``state_record()["index"]`` names the state,
resets follow the initial distribution, terminal states are absorbing, and random
rollouts from reset never leave the MDP's support.
"""

from __future__ import annotations

import time
from collections import Counter, deque

import numpy as np
import pytest
from scipy import stats

from textenvs import ENVS, make_env

GRID_FAMILIES = [e.name for e in ENVS if isinstance(e.target, str) and e.target.startswith("textenvs.gridworlds")]
CASES = [(family, variant, {}) for family in GRID_FAMILIES for variant in ENVS.entry(family).metadata["variants"]]
CASES += [
    ("keys-chests", "train", {"layout_seed": 7}),
    ("keys-chests", "test", {"layout_seed": 11}),
    ("minigrid", "doorkey-5x5", {"layout_seed": 3}),
    ("minigrid", "doorkey-5x5", {"layout_seed": 4}),
    # The other three mirror images (layout 0 is gymnasium's map).
    ("cliffwalking", "mirrored", {"layout_seed": 1}),
    ("cliffwalking", "mirrored", {"layout_seed": 2}),
    ("cliffwalking", "mirrored", {"layout_seed": 7}),
    ("minigrid", "random-goal-5x5", {"layout_seed": 3}),
    ("minigrid", "random-goal-6x6", {"layout_seed": 4}),
]
IDS = [f"{f}-{v}" + "".join(f"-{k}={x}" for k, x in o.items()) for f, v, o in CASES]
DETERMINISTIC = [c for c in CASES if "slippery" not in c[1]]
DET_IDS = [i for i, c in zip(IDS, CASES) if "slippery" not in c[1]]


def _env(family, variant, options):
    env = make_env(family, variant, **options)
    env.reset(seed=0)
    return env


def reachable(mdp) -> list[int]:
    """States reachable from the initial distribution, in BFS order."""
    seen = set(np.flatnonzero(mdp.initial > 0).tolist())
    queue = deque(seen)
    while queue:
        s = queue.popleft()
        for s2 in np.flatnonzero(mdp.transitions[s].sum(axis=0) > 0):
            if int(s2) not in seen:
                seen.add(int(s2))
                queue.append(int(s2))
    return sorted(seen)


def expected_reward(env, mdp_reward, info):
    """MiniGrid pays its success reward discounted by the step count; the MDP pays 1."""
    if env.family == "minigrid":
        return mdp_reward * (1 - 0.9 * info["step_count"] / env.max_steps)
    return mdp_reward


@pytest.mark.parametrize("family,variant,options", CASES, ids=IDS)
def test_mdp_is_well_formed(family, variant, options):
    mdp = _env(family, variant, options).mdp()
    n = mdp.n_states
    assert np.allclose(mdp.transitions.sum(axis=2), 1.0)
    assert mdp.initial.sum() == pytest.approx(1.0) and not mdp.initial[mdp.terminal].any()
    for t in np.flatnonzero(mdp.terminal):
        assert np.all(mdp.transitions[t, :, t] == 1.0) and np.all(mdp.rewards[t] == 0.0)
    assert mdp.terminal[reachable(mdp)].any(), "some terminal state must be reachable"
    assert mdp.features.shape == (n, len(mdp.feature_names)) and np.isfinite(mdp.features).all()
    assert len(mdp.state_labels) == n and mdp.positions.shape == (n, 2)
    h, w = mdp.grid_shape
    assert (mdp.positions >= 0).all() and (mdp.positions[:, 0] < h).all() and (mdp.positions[:, 1] < w).all()


@pytest.mark.parametrize("family,variant,options", CASES, ids=IDS)
def test_state_record_index_and_positions_name_every_state(family, variant, options):
    env = _env(family, variant, options)
    mdp = env.mdp()
    for s in reachable(mdp):
        env.set_state(s)
        record = env.state_record()
        assert record["index"] == s == env.text_state().index
        assert (record["row"], record["col"]) == tuple(mdp.positions[s]) == env.text_state().agent


@pytest.mark.parametrize("family,variant,options", DETERMINISTIC, ids=DET_IDS)
def test_real_steps_match_P_and_R_exactly(family, variant, options):
    env = _env(family, variant, options)
    mdp = env.mdp()
    assert set(np.unique(mdp.transitions)) <= {0.0, 1.0}
    for s in reachable(mdp):
        if mdp.terminal[s]:
            continue
        for a, name in enumerate(mdp.action_names):
            env.set_state(s)
            obs, reward, terminated, truncated, info = env.step(name)
            assert mdp.transitions[s, a, obs] == 1.0, (mdp.state_labels[s], name, mdp.state_labels[obs])
            assert reward == pytest.approx(expected_reward(env, mdp.rewards[s, a, obs], info))
            assert terminated == bool(mdp.terminal[obs]) and not truncated
            assert env.state_record()["index"] == obs
            if terminated:
                assert {"success", "outcome"} <= set(info)


@pytest.mark.parametrize("variant,samples", [("4x4-slippery", 600), ("8x8-slippery", 240)])
def test_slippery_frozenlake_matches_P_statistically(variant, samples):
    env = make_env("frozenlake", variant)
    env.reset(seed=12345)
    mdp = env.mdp()
    statistic, dof = 0.0, 0
    for s in reachable(mdp):
        if mdp.terminal[s]:
            continue
        for a, name in enumerate(mdp.action_names):
            counts: Counter[int] = Counter()
            for _ in range(samples):
                env.set_state(s)
                obs, reward, terminated, _, _ = env.step(name)
                assert mdp.transitions[s, a, obs] > 0, "a sampled outcome outside P's support"
                assert reward == mdp.rewards[s, a, obs] and terminated == bool(mdp.terminal[obs])
                counts[obs] += 1
            support = np.flatnonzero(mdp.transitions[s, a] > 0)
            observed = np.array([counts[int(s2)] for s2 in support])
            expected = samples * mdp.transitions[s, a, support]
            statistic += float(((observed - expected) ** 2 / expected).sum())
            dof += len(support) - 1
    assert dof > 0
    assert stats.chi2.sf(statistic, dof) > 1e-3, (statistic, dof)


def test_slippery_probabilities_are_thirds():
    mdp = make_env("frozenlake", "4x4-slippery").mdp()
    # From (1, 0), "right" moves right, up or down with probability 1/3 each.
    s = 4
    probs = mdp.transitions[s, mdp.action_names.index("right")]
    assert {int(i): round(float(p), 6) for i, p in enumerate(probs) if p} == {0: 0.333333, 5: 0.333333, 8: 0.333333}


@pytest.mark.parametrize("family,variant,options", CASES, ids=IDS)
def test_resets_follow_the_initial_distribution(family, variant, options):
    env = make_env(family, variant, **options)
    mdp = env.mdp()
    n = 3000 if family == "taxi" else 200
    counts = Counter(env.reset(seed=seed)[0] for seed in range(n))
    for s in counts:
        assert mdp.initial[s] > 0 and env.state_record()["index"] in counts
    support = np.flatnonzero(mdp.initial > 0)
    if len(support) == 1:
        assert counts == {int(support[0]): n}
    else:
        observed = np.array([counts[int(s)] for s in support])
        assert stats.chisquare(observed, n * mdp.initial[support]).pvalue > 1e-3


@pytest.mark.parametrize("family,variant,options", CASES, ids=IDS)
def test_random_rollouts_stay_inside_the_mdp(family, variant, options):
    env = make_env(family, variant, **options)
    mdp = env.mdp()
    rng = np.random.default_rng(0)
    for episode in range(15):
        obs, _ = env.reset(seed=episode)
        assert mdp.initial[obs] > 0
        for _ in range(150):
            a = int(rng.integers(mdp.n_actions))
            nxt, reward, terminated, truncated, info = env.step(mdp.action_names[a])
            assert mdp.transitions[obs, a, nxt] > 0
            assert reward == pytest.approx(expected_reward(env, mdp.rewards[obs, a, nxt], info))
            assert terminated == bool(mdp.terminal[nxt])
            obs = nxt
            if terminated or truncated:
                break


def test_toytext_state_indices_are_gymnasiums():
    taxi = make_env("taxi")
    assert taxi.mdp().n_states == 500
    obs, _ = taxi.reset(seed=3)
    r, c, p, d = taxi.decode(obs)
    assert obs == ((r * 5 + c) * 5 + p) * 4 + d
    assert make_env("frozenlake", "8x8").mdp().n_states == 64
    assert make_env("cliffwalking").mdp().n_states == 48


def test_features_say_what_they_name():
    env = make_env("keys-chests", "train")
    mdp = env.mdp()
    f = {name: mdp.features[:, i] for i, name in enumerate(mdp.feature_names)}
    assert np.array_equal(f["has_key"], f["keys_held"] > 0)
    assert np.array_equal(f["chests_opened"], env.n_chests - f["chests_left"])
    for s in range(mdp.n_states):
        env.set_state(s)
        record = env.state_record()
        assert (f["keys_held"][s], f["keys_left"][s], f["chests_left"][s]) == (record["keys_held"], record["keys_left"], record["chests_left"])
    # the reward is exactly "a chest was opened"
    opened = f["chests_opened"][None, None, :] - f["chests_opened"][:, None, None]
    mask = mdp.transitions > 0
    assert np.array_equal(mdp.rewards[mask], opened.repeat(mdp.n_actions, axis=1)[mask])

    fl = make_env("frozenlake", "8x8").mdp()
    goal = fl.feature_names.index("at_goal")
    assert np.flatnonzero(fl.features[:, goal]).tolist() == [63]
    assert set(np.flatnonzero(fl.terminal)) == set(np.flatnonzero(fl.features[:, goal] + fl.features[:, fl.feature_names.index("in_hole")]))

    mg = make_env("minigrid", "doorkey-5x5").mdp()
    at_goal = mg.features[:, mg.feature_names.index("at_goal")].astype(bool)
    assert np.array_equal(at_goal, mg.terminal)


def test_cliffwalking_declares_the_fall_as_a_transition_feature():
    # A step onto the cliff lands on the start, as an ordinary step into it does: only the
    # move says "fell". The real environment decides which moves those are.
    env = make_env("cliffwalking", "4x12")
    mdp = env.mdp()
    assert mdp.transition_feature_names == ("fell",)
    fell = mdp.transition_features[..., 0]
    start = int(np.flatnonzero(mdp.initial)[0])
    for s in np.flatnonzero(mdp.decision_states):
        for a, name in enumerate(mdp.action_names):
            env.reset(seed=0)
            env.set_state(int(s))
            s2, r, *_ = env.step(name)
            assert fell[s, a, s2] == (r == -100), (s, name)
            if fell[s, a, s2]:
                assert s2 == start
    assert not fell[mdp.terminal].any()
    expected = mdp.expected_transition_features()
    assert expected.shape == (mdp.n_states, mdp.n_actions, 1)
    assert np.array_equal(expected[..., 0], fell.sum(axis=2))
    # a state reached both by a fall and by an ordinary step: no state feature tells them apart
    assert (fell[:, :, start] > 0).any() and ((mdp.transitions[:, :, start] > 0) & (fell[:, :, start] == 0)).any()
    for family in ("frozenlake", "keys-chests"):
        other = make_env(family).mdp()
        assert other.transition_features is None and other.expected_transition_features().shape[-1] == 0


def test_transition_features_are_checked():
    mdp = make_env("frozenlake", "4x4").mdp()
    S, A = mdp.n_states, mdp.n_actions
    import dataclasses

    with pytest.raises(ValueError, match="transition_features must be"):
        dataclasses.replace(mdp, transition_features=np.zeros((S, A, S)), transition_feature_names=("x",))
    with pytest.raises(ValueError, match="both state and transition"):
        dataclasses.replace(mdp, transition_features=np.zeros((S, A, S, 1)), transition_feature_names=("at_goal",))
    with pytest.raises(ValueError, match="without transition_features"):
        dataclasses.replace(mdp, transition_feature_names=("x",))


def test_enumeration_is_fast():
    from textenvs.gridworlds import keys_chests, minigrid_envs

    for build in (
        lambda: make_env("keys-chests", "test", layout_seed=999).mdp(),
        lambda: make_env("minigrid", "doorkey-5x5", layout_seed=999).mdp(),
        lambda: make_env("taxi").mdp(),
    ):
        keys_chests._export.cache_clear()
        minigrid_envs._export.cache_clear()
        start = time.perf_counter()
        build()
        assert time.perf_counter() - start < 3.0
