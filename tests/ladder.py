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
