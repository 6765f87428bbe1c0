"""Agents of known quality on the exact MDPs, as in-memory runs (shared by the calibration tests)."""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from harness.agents.learners import QLearningConfig, train_q_learning
from harness.agents.planners import PlanningConfig, plan_optimal, plan_soft_optimal
from irl.analysis.runs import RunInfo, TabularEpisode, TabularRun
from textenvs import make_env


def sample_run(mdp, policy, *, episodes: int, max_steps: int, seed: int, name: str = "agent", env: str = "env") -> TabularRun:
    """Episodes of a stationary ``policy[s, a]`` on ``mdp``, as :func:`irl.analysis.load_tabular` would read them."""
    rng = np.random.default_rng(seed)
    S, A = mdp.n_states, mdp.n_actions
    P = np.asarray(mdp.transitions)
    R = np.asarray(mdp.rewards)
    eps, returns = [], []
    for e in range(episodes):
        s = int(rng.choice(S, p=mdp.initial))
        states, actions, total = [s], [], 0.0
        terminated = False
        for _ in range(max_steps):
            a = int(rng.choice(A, p=policy[s]))
            s2 = int(rng.choice(S, p=P[s, a]))
            total += float(R[s, a, s2])
            actions.append(a)
            states.append(s2)
            s = s2
            if mdp.terminal[s]:
                terminated = True
                break
        st = np.array(states if terminated else states[:-1], dtype=int)
        eps.append(TabularEpisode(e, e, st, np.array(actions, dtype=int), None, total, "terminated" if terminated else "truncated"))
        returns.append(total)
    info = RunInfo(f"mem/{name}", name, name, "baseline", env, None, {}, "none", "choose", max_steps, seed, True)
    return TabularRun(info, mdp, tuple(eps), tuple(returns))


def ladder_policies(env: str, variant: str, temperatures, *, q_episodes: int = 3000, q_max_steps: int = 100):
    """``{name: policy[s, a]}``: optimal, soft-optimal at each temperature, q-learning, random, anti-optimal."""
    mdp = make_env(env, variant).mdp()
    out = {"optimal": plan_optimal(mdp).policy}
    for t in temperatures:
        out[f"soft-{t:g}"] = plan_soft_optimal(mdp, PlanningConfig(temperature=t)).policy
    e = make_env(env, variant)
    try:
        out["q-learning"] = train_q_learning(e, QLearningConfig(train_episodes=q_episodes, max_steps=q_max_steps)).policy
    finally:
        e.close()
    out["random"] = np.full((mdp.n_states, mdp.n_actions), 1.0 / mdp.n_actions)
    anti = dataclasses.replace(mdp, rewards=-np.asarray(mdp.rewards))
    out["anti-optimal"] = plan_optimal(anti).policy
    return mdp, out


def layouts(env: str, variant: str, n: int, first_seed: int = 0):
    """The MDPs of ``n`` layouts of ``env`` drawn as ``layout_seed=None`` draws them (reset seeds ``first_seed...``)."""
    e = make_env(env, variant, layout_seed=None)
    try:
        out = []
        for seed in range(first_seed, first_seed + n):
            e.reset(seed=seed)
            out.append(e.mdp())
        return out
    finally:
        e.close()


def sample_layout_run(parts, policies, *, episodes: int, max_steps: int, seed: int, name: str = "agent", env: str = "env") -> TabularRun:
    """Episode ``i`` played by ``policies[i % n]`` on layout ``parts[i % n]``, read as
    :func:`irl.analysis.load_tabular` reads a run over layouts (one stacked MDP)."""
    from textenvs.mdp import StackedMDP

    n = len(parts)
    used = sorted({i % n for i in range(episodes)})
    counts = [sum(1 for i in range(episodes) if i % n == j) for j in used]
    stacked = StackedMDP.of([parts[j] for j in used], counts)
    offsets = dict(zip(used, stacked.offsets))
    eps, returns = [], []
    for i in range(episodes):
        j = i % n
        one = sample_run(parts[j], policies[j], episodes=1, max_steps=max_steps, seed=seed * 100_003 + i)
        ep = one.episodes[0]
        eps.append(dataclasses.replace(ep, episode=i, seed=i, states=ep.states + offsets[j]))
        returns.append(ep.total_reward)
    info = RunInfo(f"mem/{name}", name, name, "baseline", env, None, {"layout_seed": None}, "none", "choose", max_steps, seed, True)
    return TabularRun(info, stacked, tuple(eps), tuple(returns))
