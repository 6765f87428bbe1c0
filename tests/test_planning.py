"""Soft / hard value iteration and occupancy measures: analytic facts and hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from textenvs.planning import (
    Dynamics,
    expected_reward,
    hard_value_iteration,
    occupancy_measures,
    policy_transitions,
    soft_value_iteration,
)


def random_mdp(seed: int, n_states: int = 9, n_actions: int = 3):
    rng = np.random.default_rng(seed)
    P = rng.dirichlet(np.full(n_states, 0.4), size=(n_states, n_actions))
    R = rng.normal(size=(n_states, n_actions, n_states))
    rho = rng.dirichlet(np.ones(n_states))
    return P, R, rho


def two_state_mdp():
    """State 0: action 0 stays (reward 1), action 1 moves to 1. State 1 is absorbing (reward 0)."""
    P = np.zeros((2, 2, 2))
    P[0, 0, 0] = 1.0
    P[0, 1, 1] = 1.0
    P[1, :, 1] = 1.0
    r = np.array([[1.0, 0.0], [0.0, 0.0]])
    return P, r


def chain_grid(n: int = 20):
    """A deterministic n x n grid (4 moves, walls stop you): large enough to be stored sparse."""
    S = n * n
    P = np.zeros((S, 4, S))
    moves = [(-1, 0), (1, 0), (0, -1), (0, 1)]
    for i in range(n):
        for j in range(n):
            for a, (di, dj) in enumerate(moves):
                ii, jj = min(max(i + di, 0), n - 1), min(max(j + dj, 0), n - 1)
                P[i * n + j, a, ii * n + jj] = 1.0
    return P


# ---- hand-computed two-state MDP -------------------------------------------------------


def test_two_state_soft_finite_by_hand():
    P, r = two_state_mdp()
    v = soft_value_iteration(P, r, horizon=2)
    e = np.e
    # t = 1 (last decision): V = log sum_a exp r(s, a).
    assert v.v[1] == pytest.approx([np.log(e + 1), np.log(2)])
    # t = 0: Q(0, 0) = 1 + log(1 + e), Q(0, 1) = log 2; Q(1, .) = log 2.
    assert v.q[0, 0] == pytest.approx([1 + np.log(1 + e), np.log(2)])
    assert v.v[0] == pytest.approx([np.log(e * (1 + e) + 2), np.log(4)])
    p_stay = e * (1 + e) / (e * (1 + e) + 2)
    assert v.policy[0, 0] == pytest.approx([p_stay, 1 - p_stay])
    assert v.policy[:, 1] == pytest.approx(np.full((2, 2), 0.5))


def test_two_state_hard_and_occupancy_by_hand():
    P, r = two_state_mdp()
    hard = hard_value_iteration(P, r, horizon=3)
    assert hard.v[:, 0] == pytest.approx([3, 2, 1])
    assert hard.v[:, 1] == pytest.approx([0, 0, 0])
    assert hard.policy[:, 0] == pytest.approx(np.tile([1.0, 0.0], (3, 1)))
    # Ties in the absorbing state are split evenly.
    assert hard.policy[:, 1] == pytest.approx(np.full((3, 2), 0.5))
    # Discounted: V(0) = 1 / (1 - gamma), V(1) = 0.
    disc = hard_value_iteration(P, r, discount=0.9)
    assert disc.converged and disc.v == pytest.approx([10.0, 0.0], abs=1e-8)

    soft = soft_value_iteration(P, r, horizon=2)
    occ = occupancy_measures(P, soft.policy, np.array([1.0, 0.0]))
    p0, p1 = soft.policy[0, 0, 0], soft.policy[1, 0, 0]
    assert occ.state_t == pytest.approx(np.array([[1, 0], [p0, 1 - p0], [p0 * p1, 1 - p0 * p1]]))
    assert occ.state_action[0] == pytest.approx([p0 + p0 * p1, (1 - p0) + p0 * (1 - p1)])


def test_two_state_soft_discounted_bellman_by_hand():
    P, r = two_state_mdp()
    g = 0.8
    v = soft_value_iteration(P, r, discount=g, tol=1e-12)
    assert v.converged
    v1 = np.log(2) / (1 - g)  # V(1) = log(e^{g V1} + e^{g V1})
    assert v.v[1] == pytest.approx(v1, abs=1e-10)
    assert v.v[0] == pytest.approx(np.log(np.exp(1 + g * v.v[0]) + np.exp(g * v1)), abs=1e-10)


# ---- analytic facts on random MDPs -----------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("discount", [1.0, 0.9])
def test_finite_occupancy_sums(seed, discount):
    P, R, rho = random_mdp(seed)
    H = 7
    v = soft_value_iteration(P, R, horizon=H, discount=discount)
    assert v.policy.shape == (H, 9, 3)
    assert np.allclose(v.policy.sum(axis=-1), 1.0)
    occ = occupancy_measures(P, v.policy, rho, discount=discount)
    assert np.allclose(occ.state_t.sum(axis=1), 1.0)
    assert occ.state.sum() == pytest.approx(np.sum(discount ** np.arange(H + 1)))
    assert occ.state_action.sum() == pytest.approx(np.sum(discount ** np.arange(H)))
    if discount == 1.0:
        assert occ.state.sum() == pytest.approx(H + 1)
        assert occ.state_action.sum() == pytest.approx(H)
    assert np.all(occ.state >= 0)


@pytest.mark.parametrize("seed", [0, 3])
def test_discounted_occupancy_sums_and_matches_long_horizon(seed):
    P, R, rho = random_mdp(seed)
    g = 0.85
    v = soft_value_iteration(P, R, discount=g)
    assert v.converged
    assert np.allclose(v.policy.sum(axis=-1), 1.0)
    occ = occupancy_measures(P, v.policy, rho, discount=g)
    assert occ.state.sum() == pytest.approx(1 / (1 - g))
    assert occ.state_action.sum() == pytest.approx(1 / (1 - g))
    # A long finite horizon with the same stationary policy converges to it.
    long = occupancy_measures(P, v.policy, rho, horizon=300, discount=g)
    assert long.state_action == pytest.approx(occ.state_action, abs=1e-9)
    # Flow conservation: d = rho + gamma P_pi^T d.
    P_pi = policy_transitions(P, v.policy)
    assert occ.state == pytest.approx(rho + g * P_pi.T @ occ.state, abs=1e-10)


def test_discounted_soft_is_bellman_fixed_point_and_finite_limit():
    P, R, rho = random_mdp(4)
    g = 0.9
    v = soft_value_iteration(P, R, discount=g, tol=1e-12)
    r = expected_reward(P, R)
    q = r + g * P @ v.v
    assert v.v == pytest.approx(np.log(np.exp(q).sum(axis=1)), abs=1e-10)
    fin = soft_value_iteration(P, R, horizon=400, discount=g)
    assert fin.v[0] == pytest.approx(v.v, abs=1e-9)


@pytest.mark.parametrize("horizon", [5, None])
def test_soft_approaches_hard_as_temperature_vanishes(horizon):
    P, R, _ = random_mdp(5)
    g = 0.9
    hard = hard_value_iteration(P, R, horizon=horizon, discount=g)
    n_steps = 5 if horizon else 1 / (1 - g)
    prev = np.inf
    for tau in (1.0, 0.1, 1e-2, 1e-3):
        soft = soft_value_iteration(P, R, horizon=horizon, discount=g, temperature=tau)
        gap = soft.v - hard.v
        # 0 <= V_soft - V_hard <= tau log|A| * (number of discounted steps).
        assert np.all(gap >= -1e-9)
        assert np.all(gap <= tau * np.log(3) * n_steps + 1e-9)
        assert gap.max() <= prev + 1e-12
        prev = gap.max()
    assert prev < 1e-2
    # The near-zero-temperature policy puts its mass on the hard argmax.
    assert np.abs(soft.policy - hard.policy).max() < 1e-3


@pytest.mark.parametrize("hard", [False, True])
def test_policy_iteration_matches_value_iteration(hard):
    P, R, _ = random_mdp(9, n_states=30, n_actions=4)
    solve = hard_value_iteration if hard else soft_value_iteration
    for g in (0.5, 0.95, 0.99):
        vi = solve(P, R, discount=g, method="vi", tol=1e-10)
        pi = solve(P, R, discount=g, method="pi", tol=1e-10)
        assert vi.converged and pi.converged
        assert pi.iterations < vi.iterations
        assert pi.v == pytest.approx(vi.v, abs=1e-9)
        assert pi.policy == pytest.approx(vi.policy, abs=1e-8)
        # A warm start from the answer converges at once.
        assert solve(P, R, discount=g, v_init=pi.v).iterations <= 2


def test_reward_shapes_agree():
    P, R, _ = random_mdp(6)
    r_sa = expected_reward(P, R)
    a = soft_value_iteration(P, R, horizon=4)
    b = soft_value_iteration(P, r_sa, horizon=4)
    assert a.v == pytest.approx(b.v)
    r_s = np.arange(9.0)
    c = soft_value_iteration(P, r_s, horizon=4)
    d = soft_value_iteration(P, np.repeat(r_s[:, None], 3, axis=1), horizon=4)
    e = soft_value_iteration(P, np.broadcast_to(r_s[:, None, None], (9, 3, 9)), horizon=4)
    assert c.v == pytest.approx(d.v) and c.v == pytest.approx(e.v)
    with pytest.raises(ValueError, match="reward must be"):
        soft_value_iteration(P, np.zeros(4), horizon=4)


def test_unavailable_actions_get_zero_probability():
    P, _, _ = random_mdp(7)
    r = np.zeros((9, 3))
    r[:, 2] = -np.inf
    for vals in (soft_value_iteration(P, r, horizon=3), soft_value_iteration(P, r, discount=0.5)):
        assert np.all(vals.policy[..., 2] == 0)
        assert np.allclose(vals.policy[..., :2], 0.5)
    r[0, :] = -np.inf
    with pytest.raises(ValueError, match="at least one action"):
        soft_value_iteration(P, r, horizon=3)


def test_sparse_dynamics_match_dense():
    P = chain_grid(20)
    dyn = Dynamics(P)
    assert dyn.sparse
    rng = np.random.default_rng(0)
    r = rng.normal(size=P.shape[0])
    rho = np.full(P.shape[0], 1.0 / P.shape[0])
    v = soft_value_iteration(dyn, r, horizon=15, discount=0.95)
    # Dense reference computed directly.
    v_next = np.zeros(P.shape[0])
    for _ in range(15):
        q = r[:, None] + 0.95 * P @ v_next
        v_next = np.log(np.exp(q - q.max(1, keepdims=True)).sum(1)) + q.max(1)
    assert v.v[0] == pytest.approx(v_next, abs=1e-10)
    d_sparse = occupancy_measures(dyn, soft_value_iteration(dyn, r, discount=0.9).policy, rho, discount=0.9)
    pi = soft_value_iteration(P[:, :, :], r, discount=0.9).policy
    d_dense = np.linalg.solve(np.eye(P.shape[0]) - 0.9 * np.einsum("sa,sat->st", pi, P).T, rho)
    assert d_sparse.state == pytest.approx(d_dense, abs=1e-9)


def test_argument_errors():
    P, R, rho = random_mdp(8)
    with pytest.raises(ValueError, match="discount < 1"):
        soft_value_iteration(P, R)
    with pytest.raises(ValueError, match="temperature"):
        soft_value_iteration(P, R, horizon=3, temperature=0.0)
    with pytest.raises(ValueError, match="horizon"):
        soft_value_iteration(P, R, horizon=0)
    with pytest.raises(ValueError, match="time steps"):
        occupancy_measures(P, np.full((3, 9, 3), 1 / 3), rho, horizon=4)
    with pytest.raises(ValueError, match=r"\[S, A, S\]"):
        Dynamics(np.zeros((3, 2, 4)))
    with pytest.raises(ValueError, match="method"):
        soft_value_iteration(P, R, discount=0.9, method="newton")
    not_converged = soft_value_iteration(P, R, discount=0.99, max_iter=3, method="vi")
    assert not not_converged.converged and not_converged.iterations == 3
