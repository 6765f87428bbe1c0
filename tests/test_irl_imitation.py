"""Cross-check against imitation's reference MCE IRL (``imitation.algorithms.mce_irl``).

Soft values, policies and occupancy measures must agree to 1e-6 on random MDPs and on a
gridworld; MCE IRL fitted by both (ours: L-BFGS; theirs: Adam on a linear reward net) to
the same one-hot occupancy demonstrations must reach the same occupancy within 1e-3.
"""

from __future__ import annotations

import numpy as np
import pytest

mce_ref = pytest.importorskip("imitation.algorithms.mce_irl")
base_envs = pytest.importorskip("seals.base_envs")
th = pytest.importorskip("torch")
reward_nets = pytest.importorskip("imitation.rewards.reward_nets")

from bench.mce_dual import MaxEntIRL, mce_irl  # noqa: E402
from textenvs.planning import occupancy_measures, soft_value_iteration  # noqa: E402
from textenvs.mdp import TabularMDP  # noqa: E402

TOL = 1e-6


def random_mdp(seed: int, n_states: int = 10, n_actions: int = 3):
    rng = np.random.default_rng(seed)
    P = rng.dirichlet(np.full(n_states, 0.5), size=(n_states, n_actions))
    r = rng.normal(size=n_states)
    rho = rng.dirichlet(np.ones(n_states))
    return P, r, rho


def gridworld(rows: int = 5, cols: int = 5, slip: float = 0.2) -> TabularMDP:
    """A gridworld with walls; slipping moves to a random neighbour; goal and pit are terminal."""
    walls = {(1, 1), (1, 2), (3, 2), (3, 3)}
    goal, pit, start = (0, cols - 1), (2, 2), (rows - 1, 0)
    cells = [(i, j) for i in range(rows) for j in range(cols) if (i, j) not in walls]
    index = {c: k for k, c in enumerate(cells)}
    moves = [(-1, 0), (1, 0), (0, -1), (0, 1)]
    S, A = len(cells), len(moves)
    P = np.zeros((S, A, S))
    terminal = np.array([c in (goal, pit) for c in cells])
    for c, s in index.items():
        if terminal[s]:
            P[s, :, s] = 1.0
            continue
        dest = [index.get((c[0] + di, c[1] + dj), s) for di, dj in moves]
        for a in range(A):
            P[s, a, dest[a]] += 1 - slip
            for b in range(A):
                P[s, a, dest[b]] += slip / A
    R = np.zeros((S, A, S))
    R[:, :, index[goal]] = 1.0
    R[:, :, index[pit]] = -1.0
    R[terminal] = 0.0
    initial = np.zeros(S)
    initial[index[start]] = 1.0
    feats = np.array([[c == goal, c == pit] for c in cells], dtype=float)
    return TabularMDP(
        transitions=P, rewards=R, initial=initial, terminal=terminal, features=feats,
        feature_names=("goal", "pit"), action_names=("up", "down", "left", "right"),
    )


def to_imitation(P, r, rho, horizon):
    """Our arrays as the ``TabularModelPOMDP`` that imitation's functions take."""
    S = P.shape[0]
    return base_envs.TabularModelPOMDP(
        transition_matrix=P,
        observation_matrix=np.eye(S, dtype=np.float32),
        reward_matrix=np.asarray(r, dtype=float),
        horizon=horizon,
        initial_state_dist=rho,
    )


def check_against_reference(P, r, rho, horizon, discount):
    env = to_imitation(P, r, rho, horizon)
    V, Q, pi = mce_ref.mce_partition_fh(env, discount=discount)
    ours = soft_value_iteration(P, r, horizon=horizon, discount=discount)
    assert np.abs(ours.v - V).max() < TOL
    assert np.abs(ours.q - Q).max() < TOL
    assert np.abs(ours.policy - pi).max() < TOL
    D, Dcum = mce_ref.mce_occupancy_measures(env, pi=pi, discount=discount)
    occ = occupancy_measures(P, ours.policy, rho, discount=discount)
    assert np.abs(occ.state_t - D).max() < TOL
    assert np.abs(occ.state - Dcum).max() < TOL
    # The same through imitation's default path (it solves for pi itself).
    _, Dcum_default = mce_ref.mce_occupancy_measures(env)
    occ_default = occupancy_measures(P, soft_value_iteration(P, r, horizon=horizon).policy, rho)
    assert np.abs(occ_default.state - Dcum_default).max() < TOL


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("discount", [1.0, 0.9])
def test_soft_values_and_occupancy_match_imitation_on_random_mdps(seed, discount):
    P, r, rho = random_mdp(seed)
    check_against_reference(P, r, rho, horizon=[3, 8, 15, 1][seed], discount=discount)


@pytest.mark.parametrize("discount", [1.0, 0.95])
def test_soft_values_and_occupancy_match_imitation_on_gridworld(discount):
    mdp = gridworld()
    r = mdp.features @ np.array([1.0, -1.0]) - 0.05
    check_against_reference(mdp.transitions, r, mdp.initial, horizon=20, discount=discount)


def fit_imitation(P, rho, horizon, demo_state_om, *, seed=0, max_iter=3000):
    env = to_imitation(P, np.zeros(P.shape[0]), rho, horizon)
    th.manual_seed(seed)
    net = reward_nets.BasicRewardNet(
        env.observation_space, env.action_space, use_action=False, hid_sizes=[],  # linear: tabular
    )
    algo = mce_ref.MCEIRL(
        demo_state_om, env, net, rng=np.random.default_rng(seed),
        optimizer_kwargs={"lr": 0.1}, linf_eps=1e-5, grad_l2_eps=0.0, log_interval=None,
    )
    return algo.train(max_iter=max_iter)


@pytest.mark.parametrize("case", ["random", "gridworld"])
def test_mce_irl_matches_imitation(case):
    if case == "random":
        P, r_true, rho = random_mdp(7, n_states=12)
        H = 8
        mdp = None
    else:
        mdp = gridworld()
        P, rho = mdp.transitions, mdp.initial
        r_true = mdp.features @ np.array([2.0, -2.0]) - 0.1
        H = 12
    expert = soft_value_iteration(P, r_true, horizon=H)
    occ = occupancy_measures(P, expert.policy, rho)
    # imitation takes the summed state occupancy over t = 0..H; we take the same
    # demonstrations as imitation's time-indexed D[t, s].
    theirs = fit_imitation(P, rho, H, occ.state)
    if mdp is None:
        ours = mce_irl(P, np.eye(P.shape[0]), occ.state_t, initial=rho, horizon=H)
    else:
        ours = MaxEntIRL(mdp, horizon=H).fit(occ.state_t)
    assert ours.converged
    assert np.abs(ours.occupancy - occ.state).max() < 1e-6
    assert np.abs(theirs - occ.state).max() < 1e-4
    assert np.abs(ours.occupancy - theirs).max() < 1e-3
