"""How goal-directed is a policy, and towards what: regret alignment, GD and MEG.

Pure functions of an MDP's arrays (``transitions[s, a, s']``, rewards as
:func:`textenvs.planning.expected_reward` reads them, ``initial[s]``) and of recorded
trajectories. Each measure is normalised so that a uniformly random policy scores 0.

**Regret alignment** (ours). If the fitted reward were the objective, would pursuing it do
the task? The true return of the policy that is optimal for the fitted reward, between
the uniform policy's (0) and the truly optimal policy's (1)::

    regret_alignment = (J(pi*_fit) - J(uniform)) / (J(pi*_true) - J(uniform))

with ``J`` the expected discounted true return from the initial distribution. ``1 -
regret_alignment`` is the normalised regret of the fitted reward (the quantity STARC
distances bound, Skalse et al. 2023). The soft variant uses the soft-optimal policy of
the fitted reward at temperature 1: the policy MCE IRL itself predicts. Negative values
mean that pursuing the fitted reward does worse than acting at random.

**GD** (Everitt et al. 2025, "Evaluating the Goal-Directedness of Language Models"): the
share of the attainable improvement over random that the agent achieves on the task::

    GD = (E[R_pi] - E[R_random]) / (E[R_max] - E[R_random])

0 for a random policy, 1 for an optimal one, by construction; undefined when no policy
does better than random.

**MEG** (MacDermott et al. 2024, "Measuring Goal-Directedness", NeurIPS 2024): maximum
entropy goal-directedness, how much better than the uniform policy the behaviour is
predicted by *some* soft-optimal policy for the utility::

    MEG_U(pi) = max_beta E_pi[ sum_t log pi_beta(a_t | s_t) - log(1 / |A|) ]

over the soft-optimal policies ``pi_beta`` of ``beta U`` (``beta`` of either sign; ``beta =
0`` is the uniform policy, so MEG >= 0, and it is 0 for the uniform policy by Gibbs'
inequality). For an unknown utility among those linear in some features, the maximum
over utilities is the maximum causal likelihood that MCE IRL reaches (Ziebart 2010), so
the unknown-utility MEG is the MCE fit's log-likelihood gain over uniform. Both are
estimated here on held-out episodes (``beta`` or the weights chosen on the others, ``beta
= 0`` on the grid), so a policy with no goal-directedness is not credited with
over-fitting; a known-utility ``beta`` is kept only if its gain survives an event the
training episodes did not show (:func:`heldout_max`: a near-deterministic ``pi_beta`` can
gain on every episode of a sample and lose far more on the rare one it rules out). A held-out mean below 0 means the uniform policy does at least as well, so
the analysis floors the estimate and its bootstrap interval at 0
(:func:`irl.analysis.tabular.meg_score`): MEG >= 0, and 0 inside the interval of a
uniformly random agent. Units: nats per episode.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from textenvs.planning import Dynamics, hard_value_iteration, policy_return, reference_returns, soft_value_iteration

__all__ = [
    "reference_returns",
    "normalised_return",
    "regret_alignment",
    "goal_directedness",
    "episode_log_ratios",
    "action_prior",
    "heldout_prior_log_ratios",
    "meg_betas",
    "meg_log_ratios",
    "heldout_max",
]

#: Probabilities are floored here before the log, so an impossible action costs a large
#: but finite amount.
_P_FLOOR = np.finfo(float).tiny


def normalised_return(value: float, random: float, optimal: float, *, min_gap: float = 1e-9) -> float | None:
    """``(value - random) / (optimal - random)``; ``None`` when ``optimal - random <= min_gap``."""
    gap = optimal - random
    if not gap > min_gap * max(1.0, abs(optimal), abs(random)):
        return None
    return float((value - random) / gap)


def regret_alignment(
    transitions: np.ndarray | Dynamics,
    true_reward: np.ndarray,
    fitted_reward: np.ndarray,
    initial: np.ndarray,
    *,
    discount: float,
    temperature: float | None = None,
    references: tuple[float, float] | None = None,
    horizon: int | None = None,
) -> float | None:
    """The true return of the policy optimal for ``fitted_reward``, normalised (module docstring).

    ``temperature=None``: the optimal policy of the fitted reward (uniform over its tied
    best actions); a number: its soft-optimal policy at that temperature. ``references``
    are :func:`reference_returns` of the true reward (same horizon), when already known.
    ``horizon``: plan and score over ``H`` decisions (the fit's own horizon) instead of the
    discounted infinite horizon. ``None`` when the true reward does not tell the optimal
    policy from the uniform one.
    """
    dyn = Dynamics(transitions)
    if references is None:
        references = reference_returns(dyn, true_reward, initial, horizon=horizon, discount=discount)
    if temperature is None:
        policy = hard_value_iteration(dyn, fitted_reward, horizon=horizon, discount=discount).policy
    else:
        policy = soft_value_iteration(dyn, fitted_reward, horizon=horizon, discount=discount, temperature=temperature).policy
    value = policy_return(dyn, true_reward, policy, initial, horizon=horizon, discount=discount)
    return normalised_return(value, *references)


def goal_directedness(mean_return: float, random_return: float, optimal_return: float) -> float | None:
    """GD of Everitt et al. (2025), module docstring; ``None`` when optimal = random."""
    return normalised_return(mean_return, random_return, optimal_return)


def episode_log_ratios(policy: np.ndarray, trajectories: Sequence[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """Per trajectory, ``sum_t log policy(a_t | s_t) + log |A|``: its log-likelihood gain over uniform.

    ``policy`` is time-indexed ``[H, S, A]`` or stationary ``[S, A]``.
    """
    pi = np.asarray(policy, dtype=float)
    A = pi.shape[-1]
    out = np.empty(len(trajectories))
    for i, (states, actions) in enumerate(trajectories):
        actions = np.asarray(actions, dtype=int)
        T = len(actions)
        states = np.asarray(states, dtype=int)[:T]
        p = pi[np.arange(T), states, actions] if pi.ndim == 3 else pi[states, actions]
        out[i] = float(np.log(np.maximum(p, _P_FLOOR)).sum() + T * np.log(A))
    return out


#: The pseudo-count of every action in a fitted action prior (Krichevsky-Trofimov, 1/2):
#: an action the training episodes never took keeps a finite held-out cost.
PRIOR_PSEUDOCOUNT = 0.5


def action_prior(actions: Sequence[np.ndarray], n_actions: int, pseudocount: float = PRIOR_PSEUDOCOUNT) -> np.ndarray:
    """``[A]``: the best policy blind to the state, fitted to some episodes' actions.

    The frequency of every action over all their decisions (the maximum-likelihood
    state-blind policy), each count raised by ``pseudocount``: the label bias of an agent
    with the state taken away.
    """
    counts = np.full(n_actions, float(pseudocount))
    for a in actions:
        counts += np.bincount(np.asarray(a, dtype=int), minlength=n_actions)[:n_actions]
    return counts / counts.sum()


def heldout_prior_log_ratios(actions: Sequence[np.ndarray], n_actions: int, folds: Sequence[np.ndarray]) -> np.ndarray:
    """Per episode, the log-likelihood gain over uniform of the :func:`action_prior` fitted on
    the other folds: what a policy blind to the state explains of that episode's choices."""
    out = np.zeros(len(actions))
    everyone = np.arange(len(actions))
    for test in folds:
        train = np.setdiff1d(everyone, test)
        log_prior = np.log(action_prior([actions[i] for i in train], n_actions)) + np.log(n_actions)
        for i in test:
            out[i] = float(log_prior[np.asarray(actions[i], dtype=int)].sum())
    return out


def meg_betas(reward: np.ndarray, n: int = 16, low: float = 1e-2, high: float = 1e4) -> np.ndarray:
    """The rationalities tried by known-utility MEG: 0 and ``+-`` a log grid, scaled to the reward.

    The grid runs from ``low`` to ``high`` divided by the reward's largest magnitude, so
    it spans near-uniform to near-deterministic behaviour whatever the reward's units.
    """
    scale = float(np.max(np.abs(np.asarray(reward, dtype=float)[np.isfinite(reward)]), initial=0.0)) or 1.0
    grid = np.logspace(np.log10(low), np.log10(high), n) / scale
    return np.concatenate([-grid[::-1], [0.0], grid])


def meg_log_ratios(
    transitions: np.ndarray | Dynamics,
    reward: np.ndarray,
    trajectories: Sequence[tuple[np.ndarray, np.ndarray]],
    betas: Sequence[float],
    *,
    horizon: int | None,
    discount: float,
    worst: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """``[len(betas), len(trajectories)]``: each trajectory's log-likelihood gain over
    uniform under the soft-optimal policy of ``beta * reward`` (temperature 1).

    With ``worst=True`` also ``[len(betas), len(trajectories)]``: the smallest
    ``log(|A| pi_beta(a | s))`` of any action in any state and step (the same for every
    trajectory): what one decision could cost, had the agent done what the sample never
    shows (:func:`heldout_max`).
    """
    dyn = Dynamics(transitions)
    out = np.zeros((len(betas), len(trajectories)))
    low = np.zeros((len(betas), len(trajectories)))
    for i, beta in enumerate(betas):
        if beta == 0.0:
            continue  # the uniform policy: a gain of exactly 0
        r = beta * np.asarray(reward, dtype=float)
        policy = soft_value_iteration(dyn, r, horizon=horizon, discount=discount).policy
        out[i] = episode_log_ratios(policy, trajectories)
        if worst:
            logp = np.log(np.maximum(policy, _P_FLOOR)) + np.log(policy.shape[-1])
            low[i] = float(logp.min())
    return (out, low) if worst else out


def heldout_max(ratios: np.ndarray, folds: Sequence[np.ndarray], *, z: float = 2.0, worst: np.ndarray | None = None) -> np.ndarray:
    """Per trajectory, its gain under the row (``beta``) that is best on the other folds.

    ``ratios`` is :func:`meg_log_ratios`' output; the mean of the result estimates MEG
    without the optimism of choosing ``beta`` on the same trajectories. A row is chosen
    only if its mean gain on the other folds exceeds 0 by ``z`` standard errors; otherwise
    the uniform policy (the middle row, ``beta = 0`` in :func:`meg_betas`' grid, gain 0)
    is kept: no goal-directedness is claimed from noise.

    ``worst`` (``meg_log_ratios(..., worst=True)``) guards against what the sample has
    not shown. For any fixed ``beta`` the expected gain of a uniformly random agent is
    ``<= 0`` (per decision it is ``-KL(uniform || pi_beta)``; summed up to any stopping
    time, by optional stopping), yet a near-deterministic ``pi_beta`` that rules out one
    move the agent rarely makes (on FrozenLake, ``beta < 0`` forbidding the step into the
    goal) gains a little on every episode that happens not to make it (or not to come
    near it) and loses hundreds of nats on the few that do: a sample without them shows a
    positive gain with a tiny standard error. An event that none of ``n`` training
    episodes shows may still happen with probability up to ``3 / n`` per episode (the rule
    of three, 95%; Hanley and Lippman-Hand 1983), so a row must also keep its margin after
    that probability times the worst log-ratio its policy can give a decision.
    """
    n = ratios.shape[1]
    out = np.zeros(n)
    for test in folds:
        train = np.setdiff1d(np.arange(n), test)
        best = len(ratios) // 2
        if len(train) >= 2:
            means = ratios[:, train].mean(axis=1)
            se = ratios[:, train].std(axis=1, ddof=1) / np.sqrt(len(train))
            margin = means - z * se
            if worst is not None:
                margin = margin + (3.0 / len(train)) * np.minimum(worst[:, train].min(axis=1), 0.0)
            ok = np.flatnonzero(margin > 0)
            if ok.size:
                best = int(ok[np.argmax(means[ok])])
        out[test] = ratios[best, test]
    return out
