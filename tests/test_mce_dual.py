"""The feature-matching dual of MCE IRL (``bench/mce_dual.py``, what ``bench/irl.py`` times)."""

from __future__ import annotations

import numpy as np
import pytest

from bench.mce_dual import MaxEntIRL, empirical_occupancy, expert_feature_expectations, mce_irl, mce_objective
from irl.mce import feature_expectations, trajectory_log_likelihood
from test_irl_mce import deterministic_mdp, gridworld, numeric_grad, random_mdp, sample_trajectories
from textenvs.planning import occupancy_measures, soft_value_iteration


# ---- gradient checks --------------------------------------------------------------------


@pytest.mark.parametrize("horizon, discount", [(6, 1.0), (6, 0.9), (None, 0.8)])
@pytest.mark.parametrize("state_action", [False, True])
def test_objective_gradient_matches_finite_differences(horizon, discount, state_action):
    P, rho, rng = random_mdp(0)
    S, A = P.shape[:2]
    phi = rng.normal(size=(S, A, 4) if state_action else (S, 4))
    mu_e = rng.normal(size=4)
    w = rng.normal(size=4)
    kw = dict(horizon=horizon, discount=discount, l2=0.3)
    _, grad = mce_objective(w, P, phi, mu_e, rho, **kw)
    num = numeric_grad(lambda x: mce_objective(x, P, phi, mu_e, rho, **kw)[0], w)
    assert grad == pytest.approx(num, abs=1e-6)


# ---- recovery ----------------------------------------------------------------------------


@pytest.mark.parametrize("horizon, discount", [(10, 1.0), (10, 0.95), (None, 0.9)])
def test_onehot_reproduces_soft_optimal_demonstrator(horizon, discount):
    P, rho, rng = random_mdp(1, n_states=15, n_actions=4)
    r_true = rng.normal(size=15)
    expert = soft_value_iteration(P, r_true, horizon=horizon, discount=discount)
    occ = occupancy_measures(P, expert.policy, rho, discount=discount)
    res = mce_irl(P, np.eye(15), occ.state_action, initial=rho, horizon=horizon, discount=discount)
    assert res.converged, res.message
    assert res.occupancy == pytest.approx(occ.state, abs=1e-6)
    assert res.state_action_occupancy == pytest.approx(occ.state_action, abs=1e-6)
    # The soft-optimal policy under the learned reward is the demonstrator's policy.
    assert res.policy == pytest.approx(expert.policy, abs=1e-5)
    # The reward is identified up to a constant (all states reachable here).
    shift = res.reward - r_true
    assert np.ptp(shift) < 1e-4


def test_time_indexed_and_state_occupancy_inputs_agree():
    P, rho, rng = random_mdp(2)
    H = 6
    expert = soft_value_iteration(P, rng.normal(size=8), horizon=H)
    occ = occupancy_measures(P, expert.policy, rho)
    phi = np.eye(8)
    a = mce_irl(P, phi, occ.state_action, initial=rho, horizon=H)
    b = mce_irl(P, phi, occ.state_t, initial=rho, horizon=H)  # imitation's D[t, s], H + 1 rows
    c = mce_irl(P, phi, occ.state_action.sum(axis=1), initial=rho, horizon=H)
    for other in (b, c):
        assert other.occupancy == pytest.approx(a.occupancy, abs=1e-7)
    with pytest.raises(ValueError, match="Dcum"):
        mce_irl(P, phi, occ.state, initial=rho, horizon=H)


def test_named_features_recover_true_weights_on_gridworld():
    mdp = gridworld()
    theta = np.array([1.0, -1.0, 0.3])
    r_true = mdp.features @ theta
    for horizon, discount in ((12, 1.0), (None, 0.9)):
        expert = soft_value_iteration(mdp.transitions, r_true, horizon=horizon, discount=discount)
        occ = occupancy_measures(mdp.transitions, expert.policy, mdp.initial, discount=discount)
        irl = MaxEntIRL(mdp, ["goal", "lava", "column"], horizon=horizon, discount=discount)
        res = irl.fit(occ.state_action)
        assert res.converged
        assert res.weights == pytest.approx(theta, abs=1e-4)
        assert res.feature_expectations == pytest.approx(res.expert_feature_expectations, abs=1e-6)


def test_feature_matching_with_few_features_and_l2_shrinks():
    P, rho, rng = random_mdp(3, n_states=12)
    phi = rng.normal(size=(12, 3))
    # Demonstrator: soft-optimal for a reward outside the feature span.
    expert = soft_value_iteration(P, rng.normal(size=12), horizon=8)
    occ = occupancy_measures(P, expert.policy, rho)
    res = mce_irl(P, phi, occ.state_action, initial=rho, horizon=8)
    assert res.converged
    assert res.feature_expectations == pytest.approx(feature_expectations(phi, occ.state_action), abs=1e-6)
    strong = mce_irl(P, phi, occ.state_action, initial=rho, horizon=8, l2=10.0)
    assert np.linalg.norm(strong.weights) < np.linalg.norm(res.weights)
    assert strong.log_likelihood <= res.log_likelihood + 1e-9


def test_log_likelihood_is_trajectory_likelihood_for_deterministic_dynamics():
    P, rng = deterministic_mdp(4)
    S, A = P.shape[:2]
    rho = np.zeros(S)
    rho[0] = 1.0
    H = 5
    expert = soft_value_iteration(P, rng.normal(size=S), horizon=H)
    trajs = sample_trajectories(P, expert.policy, rho, 40, rng, H)
    phi = rng.normal(size=(S, 3))
    res = mce_irl(P, phi, trajs, initial=rho, horizon=H)
    exact = trajectory_log_likelihood(res.policy, trajs) / len(trajs)
    assert res.log_likelihood == pytest.approx(exact, abs=1e-9)
    # And the fitted weights maximise it: nudging them lowers the exact likelihood.
    for d in np.eye(3) * 1e-2:
        for sign in (1, -1):
            pi = soft_value_iteration(P, phi @ (res.weights + sign * d), horizon=H).policy
            assert trajectory_log_likelihood(pi, trajs) <= exact * len(trajs) + 1e-9


def test_trajectories_approach_exact_occupancy():
    mdp = gridworld()
    rng = np.random.default_rng(5)
    H = 10
    expert = soft_value_iteration(mdp.transitions, mdp.features @ np.array([2.0, -2.0, 0.5]), horizon=H)
    trajs = sample_trajectories(mdp.transitions, expert.policy, mdp.initial, 2000, rng, H)
    emp = empirical_occupancy(trajs, mdp.n_states, mdp.n_actions, horizon=H, absorbing=mdp.terminal)
    exact = occupancy_measures(mdp.transitions, expert.policy, mdp.initial).state_action
    assert emp.sum() == pytest.approx(H)
    assert np.abs(emp - exact).max() < 0.1
    res = MaxEntIRL(mdp, ["goal", "lava", "column"], horizon=H).fit(trajs)
    assert res.converged
    assert res.weights == pytest.approx([2.0, -2.0, 0.5], abs=0.5)


def test_short_trajectories_are_padded_in_absorbing_states():
    mdp = gridworld()
    goal = int(np.flatnonzero(mdp.features[:, 0])[0])
    H = 6
    traj = (np.array([11, 10, goal]), np.array([1, 3]))
    occ = empirical_occupancy([traj], mdp.n_states, mdp.n_actions, horizon=H, absorbing=mdp.terminal)
    assert occ.sum() == pytest.approx(H)
    assert occ[goal] == pytest.approx(np.full(mdp.n_actions, (H - 2) / mdp.n_actions))
    assert occ[11, 1] == 1 and occ[10, 3] == 1
    disc = empirical_occupancy([traj], mdp.n_states, mdp.n_actions, discount=0.5, absorbing=mdp.terminal)
    assert disc.sum() == pytest.approx(2.0)
    assert disc[goal].sum() == pytest.approx(0.25 / 0.5)
    with pytest.raises(ValueError, match="non-terminal"):
        empirical_occupancy([(np.array([11, 10, 9]), np.array([1, 3]))], mdp.n_states, mdp.n_actions,
                            horizon=H, absorbing=mdp.terminal)
    with pytest.raises(ValueError, match="more than the horizon"):
        empirical_occupancy([(np.zeros(9, int), np.zeros(8, int))], mdp.n_states, mdp.n_actions, horizon=H)
    with pytest.raises(ValueError, match="states for"):
        empirical_occupancy([(np.zeros(2, int), np.zeros(5, int))], mdp.n_states, mdp.n_actions, horizon=H)


def test_demonstration_validation():
    P, rho, _ = random_mdp(6)
    phi_sa = np.ones((8, 3, 2))
    with pytest.raises(ValueError, match="state-action features"):
        expert_feature_expectations(np.full(8, 5 / 8), phi_sa, n_actions=3, horizon=5)
    with pytest.raises(ValueError, match="must sum to"):
        expert_feature_expectations(np.ones((8, 3)), np.eye(8), n_actions=3, horizon=5)
    with pytest.raises(ValueError, match="features must be"):
        mce_irl(P, np.ones((5, 2)), np.full(8, 5 / 8), initial=rho, horizon=5)
