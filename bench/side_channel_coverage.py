"""Coverage of the following index's interval at the sample sizes studies run (4 to 64 episodes).

On keys-chests/train with the key collector's reward shown (``-o
observed_reward=feature:keys_held``, 16 steps), episodes of two stochastic policies (the
uniform random mover, whose successes are rare, and soft-optimal at temperature 0.3) are
drawn on the exact MDP; each sample's bootstrap interval over episodes
(:func:`irl.analysis.scores.bootstrap_mean_score`) is checked against the policy's exact
index. Prints the share of 200 samples whose interval contains it, per sample size.

    python bench/side_channel_coverage.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository's irl, not bench/irl.py

from irl.analysis.scores import FitSettings, bootstrap_mean_score  # noqa: E402
from irl.side_channel import episode_profiles, following_references  # noqa: E402
from textenvs import make_env  # noqa: E402
from textenvs.planning import policy_return, soft_value_iteration  # noqa: E402

HORIZON, REPS, SIZES = 16, 200, (4, 8, 16, 64)


def sample(mdp, policy: np.ndarray, n: int, rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray]]:
    """``n`` episodes of ``policy`` on ``mdp`` as (states, actions)."""
    out = []
    for _ in range(n):
        s, states, actions = int(rng.choice(mdp.n_states, p=mdp.initial)), [], []
        for _ in range(HORIZON):
            if mdp.terminal[s]:
                break
            a = int(rng.choice(mdp.n_actions, p=policy[s]))
            states.append(s)
            actions.append(a)
            s = int(rng.choice(mdp.n_states, p=mdp.transitions[s, a]))
        out.append((np.array(states, dtype=int), np.array(actions, dtype=int)))
    return out


def main() -> None:
    env = make_env("keys-chests", "train", observed_reward="feature:keys_held")
    mdp, observed = env.mdp(), env.observed_mdp()
    refs = following_references(mdp.transitions, mdp.rewards, observed.rewards, mdp.initial, horizon=HORIZON)
    policies = {
        "random": np.full((mdp.n_states, mdp.n_actions), 1.0 / mdp.n_actions),
        "soft-optimal T=0.3": soft_value_iteration(mdp.transitions, mdp.rewards, discount=0.99, temperature=0.3).policy,
    }
    rng = np.random.default_rng(0)
    for name, policy in policies.items():
        truth = refs.index([policy_return(mdp.transitions, r, policy, mdp.initial, horizon=HORIZON, discount=1.0)
                            for r in (mdp.rewards, observed.rewards)])
        for n in SIZES:
            hits = 0
            for rep in range(REPS):
                profiles = episode_profiles(mdp.transitions, mdp.rewards, observed.rewards, sample(mdp, policy, n, rng))
                hits += bootstrap_mean_score([refs.index(p) for p in profiles], FitSettings(seed=rep), "").contains(truth)
            print(f"{name:20s} index {truth:.3f}  n={n:3d}  coverage {hits / REPS:.2f}")


if __name__ == "__main__":
    main()
