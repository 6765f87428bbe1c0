"""Coverage of the following index's interval at the sample sizes studies run (4 to 64 episodes).

On keys-chests/train with the key collector's reward shown (``-o
observed_reward=feature:keys_held``, 16 steps) and on frozenlake/4x4 (slippery) with the
negated reward shown (12 steps), episodes of three stochastic policies (the uniform random
mover, whose successes are rare, soft-optimal at temperature 0.3, and a mixture that plays
the observed reward's optimum with probability 0.5 and the true reward's otherwise) are
drawn on the exact MDP; each sample's interval is the one the report prints: the betting
confidence sequence over the least and greatest index one episode can have
(:func:`irl.side_channel.index_range`, :func:`irl.analysis.scores.bounded_mean_score`).
Prints the share of REPS samples whose interval contains the policy's exact index, per
sample size, with its Monte Carlo standard error ``sqrt(c (1 - c) / REPS)`` and, since a
coverage of 1 has a standard error of 0, the one-sided 95% Clopper-Pearson lower bound of
the true coverage given the REPS samples.

    python bench/side_channel_coverage.py [REPS]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository's irl, not bench/irl.py

from harness.stats import clopper_pearson  # noqa: E402
from irl.analysis.scores import bounded_mean_score  # noqa: E402
from irl.side_channel import episode_profiles, following_references, index_range  # noqa: E402
from textenvs import make_env  # noqa: E402
from textenvs.planning import hard_value_iteration, policy_return, soft_value_iteration  # noqa: E402

SIZES = (4, 8, 16, 32, 64)
CASES = (("keys-chests", "train", "feature:keys_held", 16), ("frozenlake", "4x4", "negated", 12))


def sample(mdp, policy: np.ndarray, n: int, horizon: int, rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray]]:
    """``n`` episodes of ``policy`` on ``mdp`` as (states, actions)."""
    out = []
    for _ in range(n):
        s, states, actions = int(rng.choice(mdp.n_states, p=mdp.initial)), [], []
        for _ in range(horizon):
            if mdp.terminal[s]:
                break
            a = int(rng.choice(mdp.n_actions, p=policy[s]))
            states.append(s)
            actions.append(a)
            s = int(rng.choice(mdp.n_states, p=mdp.transitions[s, a]))
        out.append((np.array(states, dtype=int), np.array(actions, dtype=int)))
    return out


def policies(mdp, observed) -> dict[str, np.ndarray]:
    """The stochastic policies whose index the bench estimates."""
    true_opt = hard_value_iteration(mdp.transitions, mdp.rewards, discount=mdp.discount).policy
    obs_opt = hard_value_iteration(mdp.transitions, observed.rewards, discount=mdp.discount).policy
    return {
        "random": np.full((mdp.n_states, mdp.n_actions), 1.0 / mdp.n_actions),
        "soft-optimal T=0.3": soft_value_iteration(mdp.transitions, mdp.rewards, discount=0.99, temperature=0.3).policy,
        "half observed-optimal": 0.5 * true_opt + 0.5 * obs_opt,
    }


def coverage(env: str, variant: str, shown: str, horizon: int, name: str, n: int, reps: int, seed: int) -> tuple[float, float]:
    """``(truth, share of reps whose interval contains it)`` for policy ``name`` at ``n`` episodes."""
    e = make_env(env, variant, observed_reward=shown)
    mdp, observed = e.mdp(), e.observed_mdp()
    e.close()
    refs = following_references(mdp.transitions, mdp.rewards, observed.rewards, mdp.initial, horizon=horizon)
    lo, hi = index_range(mdp.transitions, mdp.rewards, observed.rewards, mdp.initial, refs)
    policy = policies(mdp, observed)[name]
    truth = refs.index([policy_return(mdp.transitions, r, policy, mdp.initial, horizon=horizon, discount=1.0)
                        for r in (mdp.rewards, observed.rewards)])
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(reps):
        profiles = episode_profiles(mdp.transitions, mdp.rewards, observed.rewards, sample(mdp, policy, n, horizon, rng))
        hits += bounded_mean_score([refs.index(p) for p in profiles], lo, hi, 0.05, "").contains(truth)
    return truth, hits / reps


def main() -> None:
    reps = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    for env, variant, shown, horizon in CASES:
        for name in ("random", "soft-optimal T=0.3", "half observed-optimal"):
            for n in SIZES:
                truth, c = coverage(env, variant, shown, horizon, name, n, reps, seed=n)
                se = np.sqrt(c * (1 - c) / reps)
                low = clopper_pearson(round(c * reps), reps, alpha=0.1).low  # two-sided 90%: one-sided 95%
                print(f"{env}/{variant} {shown:18s} {name:22s} index {truth:6.3f}  n={n:3d}  coverage {c:.3f} "
                      f"(MC s.e. {se:.3f}, 95% lower bound {low:.3f})", flush=True)


if __name__ == "__main__":
    main()
