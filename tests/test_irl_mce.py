"""MCE IRL by maximum likelihood (irl.mce): gradient check and fit; the MDPs and samplers test_mce_dual.py shares."""

from __future__ import annotations

import numpy as np
import pytest

from irl.mce import DecisionSummary, likelihood_objective, mce_likelihood_irl, trajectory_log_likelihood
from textenvs.planning import Dynamics, soft_value_iteration
from textenvs.mdp import TabularMDP

MOVES = {"up": (-1, 0), "down": (1, 0), "left": (0, -1), "right": (0, 1)}


def gridworld(rows: int = 4, cols: int = 5, slip: float = 0.1) -> TabularMDP:
    """A small gridworld with walls, a goal and a lava cell (both terminal, absorbing).

    Moving succeeds with probability ``1 - slip`` and otherwise leaves the agent in place;
    walls and the border block moves. Entering the goal pays +1, lava -1, any other step
    -0.04. Features: ``goal``, ``lava``, ``column`` (0 at the left edge, 1 at the right).
    """
    walls = {(1, 1), (2, 3)}
    goal, lava, start = (0, cols - 1), (1, cols - 1), (rows - 1, 0)
    cells = [(i, j) for i in range(rows) for j in range(cols) if (i, j) not in walls]
    index = {c: k for k, c in enumerate(cells)}
    S, A = len(cells), len(MOVES)
    P = np.zeros((S, A, S))
    R = np.zeros((S, A, S))
    terminal = np.array([c in (goal, lava) for c in cells])
    for c, s in index.items():
        for a, (di, dj) in enumerate(MOVES.values()):
            if terminal[s]:
                P[s, a, s] = 1.0
                continue
            nxt = (c[0] + di, c[1] + dj)
            t = index.get(nxt, s)
            P[s, a, t] += 1 - slip
            P[s, a, s] += slip
            for s2 in (t, s):
                R[s, a, s2] = 1.0 if cells[s2] == goal else -1.0 if cells[s2] == lava else -0.04
    initial = np.zeros(S)
    initial[index[start]] = 1.0
    feats = np.array([[c == goal, c == lava, c[1] / (cols - 1)] for c in cells], dtype=float)
    return TabularMDP(
        transitions=P, rewards=R, initial=initial, terminal=terminal, features=feats,
        feature_names=("goal", "lava", "column"), action_names=tuple(MOVES),
        state_labels=tuple(str(c) for c in cells), grid_shape=(rows, cols),
        positions=np.array(cells),
    )


def random_mdp(seed: int, n_states: int = 8, n_actions: int = 3, concentration: float = 0.4):
    rng = np.random.default_rng(seed)
    P = rng.dirichlet(np.full(n_states, concentration), size=(n_states, n_actions))
    rho = rng.dirichlet(np.ones(n_states))
    return P, rho, rng


def deterministic_mdp(seed: int, n_states: int = 7, n_actions: int = 3):
    rng = np.random.default_rng(seed)
    P = np.zeros((n_states, n_actions, n_states))
    P[np.arange(n_states)[:, None], np.arange(n_actions)[None, :], rng.integers(0, n_states, (n_states, n_actions))] = 1
    return P, rng


def sample_trajectories(P, policy, rho, n, rng, horizon):
    S, A = policy.shape[-2:]
    trajs = []
    for _ in range(n):
        s = int(rng.choice(S, p=rho))
        states, actions = [s], []
        for t in range(horizon):
            pi = policy[t] if policy.ndim == 3 else policy
            a = int(rng.choice(A, p=pi[s]))
            s = int(rng.choice(S, p=P[s, a]))
            actions.append(a)
            states.append(s)
        trajs.append((np.array(states), np.array(actions)))
    return trajs


def numeric_grad(f, w, eps=1e-6):
    out = np.zeros_like(w)
    for i in range(len(w)):
        e = np.zeros_like(w)
        e[i] = eps
        out[i] = (f(w + e) - f(w - e)) / (2 * eps)
    return out


@pytest.mark.parametrize("horizon", [6, None])
@pytest.mark.parametrize("state_action", [False, True])
def test_likelihood_gradient_matches_finite_differences(horizon, state_action):
    rng = np.random.default_rng(3)
    S, A, K = 7, 3, 4
    P = rng.dirichlet(np.full(S, 0.3), size=(S, A))
    phi = rng.normal(size=(S, A, K) if state_action else (S, K))
    counts = rng.integers(0, 4, size=(S, A) if horizon is None else (horizon, S, A)).astype(float)
    w = rng.normal(size=K)
    kw = dict(n_demonstrations=5, horizon=horizon, discount=0.9, l2=0.7)
    _, grad, _ = likelihood_objective(w, P, phi, counts, **kw)
    eps = 1e-6
    numeric = [(likelihood_objective(w + e, P, phi, counts, **kw)[0] - likelihood_objective(w - e, P, phi, counts, **kw)[0]) / (2 * eps)
               for e in np.eye(K) * eps]
    assert grad == pytest.approx(numeric, abs=1e-6)
    # What a fit computes once from the counts gives the same value and gradient.
    summary = DecisionSummary.of(counts, Dynamics(P), 0.9)
    value, again, _ = likelihood_objective(w, P, phi, summary, **kw)
    assert value == likelihood_objective(w, P, phi, counts, **kw)[0] and np.array_equal(again, grad)


def test_likelihood_fit_maximises_the_recorded_actions_likelihood():
    P, rng = deterministic_mdp(4)
    S = P.shape[0]
    rho = np.full(S, 1.0 / S)
    H = 5
    expert = soft_value_iteration(P, rng.normal(size=S), horizon=H)
    trajs = sample_trajectories(P, expert.policy, rho, 40, rng, H)
    phi = rng.normal(size=(S, 3))
    res = mce_likelihood_irl(P, phi, trajs, initial=rho, horizon=H)
    assert res.converged
    exact = trajectory_log_likelihood(res.policy, trajs)
    assert res.log_likelihood == pytest.approx(exact / len(trajs), abs=1e-9)
    for d in np.eye(3) * 1e-2:
        for sign in (1, -1):
            pi = soft_value_iteration(P, phi @ (res.weights + sign * d), horizon=H).policy
            assert trajectory_log_likelihood(pi, trajs) <= exact + 1e-9
