"""The STARC reward distance, regret alignment, GD and MEG on the properties their papers state."""

from __future__ import annotations

import numpy as np
import pytest

import irl
from irl.distance import compare_rewards, reward_distance
from irl.goals import episode_log_ratios, goal_directedness, heldout_max, meg_betas, meg_log_ratios, reference_returns, regret_alignment
from textenvs import make_env
from textenvs.planning import policy_return


@pytest.fixture(scope="module", params=[("frozenlake", "4x4"), ("keys-chests", "train")])
def mdp(request):
    return make_env(*request.param).mdp()


@pytest.mark.parametrize("gamma", [0.9, 0.99])
def test_invariant_to_potential_shaping_and_scale_and_maximal_for_negation(mdp, gamma):
    # Skalse et al. 2023: STARC distances are 0 exactly for rewards equal up to shaping and positive scale.
    R = np.asarray(mdp.rewards)
    rng = np.random.default_rng(0)
    for _ in range(20):
        phi = rng.normal(size=mdp.n_states) * rng.choice([0.1, 1.0, 10.0])
        phi[mdp.terminal] = 0.0
        shaped = R + gamma * phi[None, None, :] - phi[:, None, None]
        assert irl.reward_distance(R, shaped, mdp, discount=gamma) <= 1e-6
    assert irl.reward_distance(R, 3 * R, mdp, discount=gamma) <= 1e-6
    assert irl.reward_distance(R, -R, mdp, discount=gamma) >= 0.5
    assert irl.reward_distance(R, -R, mdp, discount=gamma) == pytest.approx(1.0)


def test_shapes_symmetry_triangle_and_undefined(mdp):
    R = np.asarray(mdp.rewards)
    r_sa = mdp.expected_rewards()
    assert reward_distance(R, r_sa, mdp) == pytest.approx(0.0, abs=1e-12)  # [S, A, S] vs [S, A]
    rng = np.random.default_rng(1)
    a, b, c = (rng.normal(size=mdp.n_states) for _ in range(3))  # [S] state rewards
    dab, dbc, dac = reward_distance(a, b, mdp), reward_distance(b, c, mdp), reward_distance(a, c, mdp)
    assert dab == pytest.approx(reward_distance(b, a, mdp)) and dac <= dab + dbc + 1e-12
    assert 0.0 < dab < 1.0
    none = compare_rewards(np.zeros(mdp.n_states), R, mdp)
    assert none.value is None and "zero" in none.reason
    constant = compare_rewards(np.ones((mdp.n_states, mdp.n_actions)), R, mdp)
    assert constant.value is None and "ranks no policies" in constant.reason
    assert reward_distance(np.ones((mdp.n_states, mdp.n_actions)), R, mdp) is None


def test_rewards_identical_on_every_feasible_transition_are_at_distance_zero():
    # The evidence behind choosing STARC over DARD (irl.distance docstring): the true reward and
    # "1 for arriving at the goal" agree wherever P > 0, and shaping changes no ranking.
    mdp = make_env("frozenlake", "4x4").mdp()
    goal = mdp.feature_matrix(["at_goal"])[:, 0]
    arrival = np.broadcast_to(goal[None, None, :], mdp.rewards.shape).copy()
    arrival[mdp.terminal] = 0.0
    assert np.allclose(np.where(mdp.transitions > 0, arrival, 0.0), mdp.rewards)
    phi = np.random.default_rng(2).normal(size=mdp.n_states)
    phi[mdp.terminal] = 0.0
    shaped = mdp.rewards + 0.99 * phi[None, None, :] - phi[:, None, None]
    assert reward_distance(mdp.rewards, shaped, mdp) == pytest.approx(0.0, abs=1e-9)
    assert reward_distance(mdp.rewards, arrival, mdp) == pytest.approx(0.0, abs=1e-12)


def test_regret_alignment_and_gd_are_zero_for_random_and_one_for_optimal(mdp):
    # Everitt et al. 2025: GD is 0 for the random policy and 1 for an optimal one.
    R = np.asarray(mdp.rewards)
    uniform = np.full((mdp.n_states, mdp.n_actions), 1.0 / mdp.n_actions)
    rand, best = reference_returns(mdp.transitions, R, mdp.initial, discount=mdp.discount)
    assert best > rand
    assert goal_directedness(rand, rand, best) == 0.0 and goal_directedness(best, rand, best) == 1.0
    assert goal_directedness(1.0, 1.0, 1.0) is None
    assert policy_return(mdp.transitions, R, uniform, mdp.initial, discount=mdp.discount) == pytest.approx(rand)
    assert regret_alignment(mdp.transitions, R, R, mdp.initial, discount=mdp.discount) == pytest.approx(1.0)
    assert regret_alignment(mdp.transitions, R, 5 * R, mdp.initial, discount=mdp.discount) == pytest.approx(1.0)
    assert regret_alignment(mdp.transitions, R, -R, mdp.initial, discount=mdp.discount) < 0.0


def test_meg_is_zero_for_the_uniform_policy_and_positive_for_an_optimiser():
    # MacDermott et al. 2024: MEG >= 0, and 0 for a uniformly random policy (Gibbs' inequality):
    # on the uniform policy's own occupancy no soft-optimal policy beats uniform in expectation.
    mdp = make_env("frozenlake", "4x4").mdp()
    r = mdp.expected_rewards()
    betas = meg_betas(r)
    assert betas[len(betas) // 2] == 0.0 and np.all(np.diff(betas) > 0)
    rng = np.random.default_rng(3)
    uniform = np.full((mdp.n_states, mdp.n_actions), 0.25)


    random_trajs = _episodes(mdp, uniform, 400, rng)
    ratios = meg_log_ratios(mdp.transitions, r, random_trajs, betas, horizon=20, discount=mdp.discount)
    assert np.all(ratios[len(betas) // 2] == 0.0)
    assert ratios.mean(axis=1).max() < 0.05  # in-sample max: only sampling noise above 0
    folds = np.array_split(np.arange(400), 5)
    assert abs(heldout_max(ratios, folds).mean()) < 0.05
    optimal = irl.hard_value_iteration(mdp.transitions, r, discount=mdp.discount).policy
    good = _episodes(mdp, optimal, 50, rng)
    gain = meg_log_ratios(mdp.transitions, r, good, betas, horizon=20, discount=mdp.discount).mean(axis=1).max()
    assert gain > 5.0  # six decisions each worth close to log 4
    assert episode_log_ratios(uniform, good).max() == pytest.approx(0.0)


def test_meg_of_a_uniform_agent_for_the_true_reward_is_zero():
    # MacDermott et al. (2024): MEG >= 0, and a uniformly random agent's is 0. For every
    # fixed beta its expected held-out gain is <= 0 (per decision -KL(uniform || pi_beta),
    # summed to the episode's end by optional stopping). On FrozenLake a policy with beta < 0
    # all but forbids the step into the goal: an episode that never makes it gains a little,
    # one that does loses hundreds of nats, and most samples of 50 episodes contain none.
    from irl.analysis.scores import FitSettings, folds
    from irl.analysis.tabular import meg_score

    mdp = make_env("frozenlake", "4x4").mdp()
    r = mdp.expected_rewards()
    betas = meg_betas(r)
    uniform = np.full((mdp.n_states, mdp.n_actions), 0.25)


    rng = np.random.default_rng(5)
    many = meg_log_ratios(mdp.transitions, r, _episodes(mdp, uniform, 3000, rng), betas, horizon=20, discount=mdp.discount)
    se = many.std(axis=1, ddof=1) / np.sqrt(many.shape[1])
    assert np.all(many.mean(axis=1) <= 2 * se + 1e-12)  # no fixed beta gains on average

    unguarded, guarded = [], []
    settings = FitSettings()
    for seed in range(8):
        trajs = _episodes(mdp, uniform, 50, np.random.default_rng(100 + seed))
        ratios, worst = meg_log_ratios(mdp.transitions, r, trajs, betas, horizon=20, discount=mdp.discount, worst=True)
        parts = folds(50, 5, seed)
        unguarded.append(heldout_max(ratios, parts).mean())
        score = meg_score(heldout_max(ratios, parts, worst=worst), settings, "test")
        guarded.append(score.estimate)
        assert score.contains(0.0)
    print(f"\nuniform agent, MEG for the true reward over 8 samples: unguarded {np.round(unguarded, 4)}, guarded {np.round(guarded, 4)}")
    assert max(unguarded) > 0  # the failure the guard is for shows up in these samples
    assert max(guarded) == 0.0

    optimal = irl.hard_value_iteration(mdp.transitions, r, discount=mdp.discount).policy
    good = _episodes(mdp, optimal, 50, np.random.default_rng(9))
    ratios, worst = meg_log_ratios(mdp.transitions, r, good, betas, horizon=20, discount=mdp.discount, worst=True)
    gain = heldout_max(ratios, folds(50, 5, 0), worst=worst).mean()
    print(f"optimal agent: guarded MEG {gain:.2f} nats per episode (at most 6 log 4 = {6 * np.log(4):.2f})")
    assert gain > 0.5 * 6 * np.log(4)


def _episodes(mdp, policy, n, rng, horizon=20):
    """``n`` episodes of ``policy`` on ``mdp`` from state 0: (states incl. a terminal one, actions)."""
    out = []
    for _ in range(n):
        s, states, actions = 0, [0], []
        for _ in range(horizon):
            a = int(rng.choice(mdp.n_actions, p=policy[s]))
            s = int(rng.choice(mdp.n_states, p=mdp.transitions[s, a]))
            actions.append(a)
            states.append(s)
            if mdp.terminal[s]:
                break
        out.append((np.array(states[: len(actions) + (1 if mdp.terminal[s] else 0)]), np.array(actions)))
    return out
