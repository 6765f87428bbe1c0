"""Inferring objectives from behaviour: tabular IRL, reward comparison, choice models.

``irl`` reads MDPs (:class:`textenvs.mdp.TabularMDP`) and recorded decisions; it never
calls a model. Everything is pure numpy/scipy functions with thin classes on top:

* :mod:`textenvs.planning`: soft (maximum causal entropy) and hard value iteration, finite
  horizon or discounted, and exact occupancy measures;
* :mod:`irl.mce`: maximum causal entropy IRL (Ziebart) for rewards linear in state or
  state-action features, fitted with L-BFGS by maximum likelihood of the recorded actions
  (:func:`mce_likelihood_irl`);
* :mod:`irl.distance`: the shaping-invariant, dynamics-aware STARC distance between
  rewards of one MDP (Skalse et al. 2023), :func:`reward_distance`;
* :mod:`irl.epic`: EPIC's canonicalisation and Pearson distance (Gleave et al. 2021);
* :mod:`irl.goals`: regret alignment, GD (Everitt et al. 2025) and MEG (MacDermott et
  al. 2024);
* :mod:`irl.choice`: a Boltzmann choice model over legal actions for games, with
  cross-validated L2 and an explained-behaviour score;
* :mod:`harness.stats`: bootstrap and Wilson confidence intervals.

:mod:`irl.analysis` sits on top: it turns typed run records into fits, scores and plots.
"""

from __future__ import annotations

from irl.choice import (
    ChoiceData,
    ChoiceFit,
    CVResult,
    Decision,
    ExplainedScore,
    choice_objective,
    choice_probabilities,
    cross_validate,
    cross_validate_l2,
    explained_behaviour,
    fit_choice,
    pack_decisions,
)
from irl.distance import RewardComparison, canonical_reward, compare_rewards, reward_distance
from irl.goals import goal_directedness, reference_returns, regret_alignment
from irl.epic import ConstantRewardError, as_transition_reward, canonicalize, pearson_distance
from irl.mce import (
    IRLResult,
    Trajectory,
    feature_expectations,
    mce_likelihood_irl,
    decision_counts,
    fisher_information,
    trajectory_log_likelihood,
)
from textenvs.planning import (
    Dynamics,
    Occupancy,
    transition_reward,
    policy_return,
    Values,
    expected_reward,
    hard_value_iteration,
    occupancy_measures,
    policy_transitions,
    soft_value_iteration,
)
from harness.stats import Interval, bootstrap_ci, wilson_interval

__all__ = [
    # soft
    "Dynamics", "Values", "Occupancy", "transition_reward", "expected_reward", "policy_return", "soft_value_iteration",
    "hard_value_iteration", "occupancy_measures", "policy_transitions",
    # mce
    "Trajectory", "IRLResult", "mce_likelihood_irl", "decision_counts", "feature_expectations", "trajectory_log_likelihood", "fisher_information",
    # distance, goals
    "reward_distance", "compare_rewards", "canonical_reward", "RewardComparison",
    "regret_alignment", "reference_returns", "goal_directedness",
    # epic
    "ConstantRewardError", "as_transition_reward", "canonicalize", "pearson_distance",
    # choice
    "Decision", "ChoiceData", "ChoiceFit", "CVResult", "ExplainedScore", "pack_decisions",
    "choice_objective", "choice_probabilities", "fit_choice", "cross_validate", "cross_validate_l2",
    "explained_behaviour",
    # stats
    "Interval", "bootstrap_ci", "wilson_interval",
]
