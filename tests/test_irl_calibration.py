"""The objective measures order agents of known quality as they must (issue: calibration ladder).

Agents come straight from the planners and learners of ``harness.agents`` (optimal,
soft-optimal at three temperatures, Q-learning, random, anti-optimal = optimal for -R);
their episodes are sampled on the exact MDP and scored by the analysis layer.
"""

from __future__ import annotations

import numpy as np
import pytest

from irl.analysis import FitSettings, TabularProblem, analyse_tabular
from irl.distance import reward_distance
from irl.mce import mce_likelihood_irl
from ladder import ladder_policies, sample_run
from textenvs.mdp import TabularMDP
from textenvs.planning import soft_value_iteration

SETTINGS = dict(n_boot=10, splits=3, folds=3)

#: env, variant -> (features that can express the true reward, temperatures, step limit, q-learning episodes)
LADDER = {
    ("frozenlake", "4x4"): (("at_goal", "in_hole"), (0.01, 0.03, 0.1), 20, 3000),
    ("frozenlake", "8x8"): (("at_goal", "in_hole"), (0.003, 0.01, 0.03), 40, 5000),
    ("cliffwalking", "4x12"): ("onehot", (0.3, 1.0, 3.0), 40, 3000),
    ("keys-chests", "train"): (("keys_held", "chests_opened"), (0.01, 0.05, 0.2), 40, 10000),
}


def _value(score, undefined=np.nan):
    return score.estimate if score.ok else undefined


_OPEN = {
    ("cliffwalking", "4x12"): "gymnasium's CliffWalking sends a fall straight back to the start state, so a fall and an ordinary "
    "move into the start arrive in the same state: no state feature, arrival or departure, expresses -100 on the cliff "
    "(it needs a feature of the move, which TabularMDP does not carry); one-hot distances 0.23, 0.24, 0.27, 0.18 are not monotone",
    ("keys-chests", "train"): "the optimal agent's fit (0.045) lies further from the truth than the soft-optimal one at 0.01 (0.021): "
    "its chests weight diverges with the deterministic behaviour while keys_held stays finite (-1.5), so the direction "
    "approaches the truth only as the prior weakens (0.045, 0.037, 0.028, 0.022 at l2 1, 1e-2, 1e-4, 1e-6)",
}


@pytest.mark.parametrize("case", [pytest.param(c, marks=pytest.mark.xfail(strict=True, reason=_OPEN[c])) if c in _OPEN else c for c in LADDER],
                         ids=lambda c: f"{c[0]}-{c[1]}")
def test_calibration_ladder(case):
    features, temps, steps, q_episodes = LADDER[case]
    mdp, policies = ladder_policies(*case, temps, q_episodes=q_episodes)
    reports = {}
    for i, (name, policy) in enumerate(policies.items()):
        run = sample_run(mdp, policy, episodes=100, max_steps=steps, seed=i, name=name, env=case[0])
        reports[name] = analyse_tabular(run, FitSettings(features=features, step=case[0] == "cliffwalking", **SETTINGS))
    table = {n: (_value(r.alignment_distance), _value(r.alignment_regret), _value(r.alignment_regret_soft), _value(r.gd), _value(r.meg_known)) for n, r in reports.items()}
    print(f"\n{case}: distance, regret, soft regret, GD, MEG(true reward)")
    for n, row in table.items():
        print(f"  {n:13s} " + "  ".join(f"{v:7.3f}" for v in row))
    soft = [f"soft-{t:g}" for t in temps]
    dist = {n: table[n][0] for n in table}
    # Distance: small for the optimisers (where the features express the truth), rising with
    # temperature, >= 0.5 or undefined for random, largest (or undefined, if it cannot be told
    # from random) for anti-optimal.
    if features != "onehot":
        assert dist["optimal"] <= 0.05 and dist["q-learning"] <= 0.05
    ladder = [dist["optimal"]] + [dist[s] for s in soft]
    assert all(b >= a - 0.01 for a, b in zip(ladder, ladder[1:])), ladder
    assert np.isnan(dist["random"]) or dist["random"] >= 0.5
    assert np.isnan(dist["anti-optimal"]) or dist["anti-optimal"] >= max(v for v in dist.values() if not np.isnan(v))
    # Regret alignment (hard and soft) and GD order the agents the same way.
    for col in (1, 2, 3):
        order = [table["optimal"][col]] + [table[s][col] for s in soft]
        assert all(b <= a + 0.01 for a, b in zip(order, order[1:])), (col, order)
        assert table["optimal"][col] >= 0.95 and table["q-learning"][col] >= 0.95
        anti, rand = table["anti-optimal"][col], table["random"][col]
        assert np.isnan(rand) or anti <= rand + 0.01 or np.isnan(anti)
        assert np.isnan(anti) or anti < min(order)
    assert reports["random"].gd.contains(0.0) or abs(reports["random"].gd.estimate) < 0.1
    # MEG (MacDermott et al. 2024) of the random agent for the true reward: 0 within its interval.
    assert reports["random"].meg_known.contains(0.0)


@pytest.mark.parametrize("case", [
    ("frozenlake", "4x4"),
    pytest.param(("keys-chests", "train"), marks=pytest.mark.xfail(
        strict=True, reason="with every named feature the soft-optimal policy of the optimal agent's fit does the task (regret "
        "1.00) but its hard optimum reaches 0.37: after one chest it parks in row 0, which no demonstration visits and where "
        "the fitted row weight (-0.95 a step per row) pays more than ending the episode")),
], ids=lambda c: f"{c[0]}-{c[1]}")
def test_default_features_give_optimal_path_agents_full_regret_alignment(case):
    # Every named feature (and the step feature): the distance to the truth may stay above 0
    # (states the agent never visits are unidentifiable), but pursuing the fitted reward does the task.
    for temps in ((),):
        mdp, policies = ladder_policies(*case, temps, q_episodes=10000)
        for i, name in enumerate(("optimal", "q-learning")):
            run = sample_run(mdp, policies[name], episodes=60, max_steps=40, seed=i, name=name)
            report = analyse_tabular(run, FitSettings(**SETTINGS))
            print(f"\n{case} {name}, named features: distance {report.alignment_distance.format(3)}, regret {report.alignment_regret.format(3)}")
            assert report.alignment_regret.estimate >= 0.95


def _random_mdp(seed: int, n_states: int, n_actions: int = 3):
    rng = np.random.default_rng(seed)
    P = rng.dirichlet(np.full(n_states, 0.2), size=(n_states, n_actions))
    reward = rng.normal(size=n_states)
    initial = np.full(n_states, 1.0 / n_states)
    mdp = TabularMDP(
        transitions=P, rewards=np.broadcast_to(reward[:, None, None], P.shape).copy(), initial=initial,
        terminal=np.zeros(n_states, dtype=bool), features=np.eye(n_states),
        feature_names=tuple(f"s{i}" for i in range(n_states)), action_names=tuple(f"a{i}" for i in range(n_actions)),
        discount=0.9,
    )
    return mdp, reward


_CRAMER_RAO = (
    "at 50 states the maximum-likelihood fit reaches 0.136 at 500 demonstrations, where the Cramer-Rao bound of "
    "these demonstrations (inverse Fisher information at the true reward, pushed through the distance) is 0.128 "
    "[0.111, 0.144]: no unbiased estimator gets to 0.1 before about 800"
)


@pytest.mark.parametrize("seed, n_states", [(0, 10), (1, 25), pytest.param(2, 50, marks=pytest.mark.xfail(strict=True, reason=_CRAMER_RAO))])
def test_recovery_on_random_mdps_improves_with_demonstrations(seed, n_states):
    mdp, reward = _random_mdp(seed, n_states)
    H = 30
    policy = soft_value_iteration(mdp.transitions, reward, horizon=H, discount=mdp.discount).policy  # [H, S, A]
    rng = np.random.default_rng(seed + 100)

    def demos(n):
        out = []
        for _ in range(n):
            s = int(rng.choice(n_states, p=mdp.initial))
            states, actions = [], []
            for t in range(H):
                a = int(rng.choice(mdp.n_actions, p=policy[t, s]))
                states.append(s)
                actions.append(a)
                s = int(rng.choice(n_states, p=mdp.transitions[s, a]))
            out.append((np.array(states), np.array(actions)))
        return out

    distances = []
    for n in (50, 500, 2000):
        fit = mce_likelihood_irl(mdp.transitions, np.eye(n_states), demos(n), initial=mdp.initial, horizon=H, discount=mdp.discount, l2=1e-3)
        distances.append(reward_distance(fit.reward, reward, mdp))
    print(f"\nrandom MDP, {n_states} states: distance to the true reward at 50/500/2000 demonstrations {np.round(distances, 3)}")
    assert distances[1] <= 0.1
    assert distances[2] < distances[1] < distances[0]


def test_different_paths_between_the_same_states_get_different_fits():
    # Two agents go from the start to the goal of FrozenLake 4x4 by different shortest paths.
    # Arrival features (the default) tell them apart; delta features telescope and cannot.
    from textenvs import make_env

    mdp = make_env("frozenlake", "4x4").mdp()
    moves = {name: i for i, name in enumerate(mdp.action_names)}

    def path_policy(path):
        pi = np.full((mdp.n_states, mdp.n_actions), 1.0 / mdp.n_actions)
        s = int(np.flatnonzero(mdp.initial)[0])
        for m in path:
            pi[s] = 0.0
            pi[s, moves[m]] = 1.0
            s = int(np.flatnonzero(mdp.transitions[s, moves[m]])[0])
        assert mdp.terminal[s]
        return pi

    a = path_policy(["down", "down", "right", "right", "down", "right"])
    b = path_policy(["right", "right", "down", "down", "down", "right"])
    fits = {}
    for form in ("arrival", "delta"):
        ws = []
        for i, pi in enumerate((a, b)):
            run = sample_run(mdp, pi, episodes=20, max_steps=10, seed=i)
            ws.append(TabularProblem(run, FitSettings(features=("row", "col", "at_goal"), form=form, step=False, discount=0.999)).fit(range(20)))
        fits[form] = ws
    arrival = reward_distance(fits["arrival"][0].reward, fits["arrival"][1].reward, mdp)
    delta_w = np.abs(fits["delta"][0].weights - fits["delta"][1].weights).max() / np.abs(fits["delta"][0].weights).max()
    print(f"\narrival fits of the two paths: distance {arrival:.3f}; delta fits differ by {delta_w:.4f} of their weight")
    assert arrival > 0.05
    assert delta_w < 0.05
