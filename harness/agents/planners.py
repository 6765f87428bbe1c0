"""Planners: agents that solve the environment's exact MDP with its true reward.

``optimal`` is uniform over the actions of greatest optimal Q (hard value iteration);
``soft-optimal`` is the Boltzmann policy ``exp((Q_soft - V_soft) / T)`` of soft value
iteration at temperature ``T`` (the maximum-causal-entropy policy of the true reward).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from harness.agents.base import BaselineError, Choice, Decision, draw, reference_choice, state_index
from harness.backends.base import ModelInfo
from harness.records import BASELINE_BACKEND
from textenvs.mdp import TabularMDP
from textenvs.planning import hard_value_iteration, soft_value_iteration

@dataclass(frozen=True)
class PlanningConfig:
    """Value iteration on the environment's exact MDP with its true reward."""

    #: ``gamma`` of the discounted infinite-horizon problem. The runner's episodes are
    #: finite (``max_steps``) and undiscounted; with ``gamma`` close to 1 the discounted
    #: optimum also maximises the undiscounted return whenever the horizon is long
    #: enough to reach every reward (it prefers earlier rewards, never fewer).
    discount: float = 0.99
    #: Softmax temperature of ``soft-optimal`` (ignored by ``optimal``).
    temperature: float = 1.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.discount < 1.0:
            raise BaselineError(f"discount must be in [0, 1), got {self.discount}")
        if not self.temperature > 0:
            raise BaselineError(f"temperature must be > 0 (use the optimal agent for 0), got {self.temperature}")


class TabularPolicyAgent:
    """Acts from a fixed stationary policy ``policy[s, a]`` over an MDP's actions.

    Built by :func:`plan_optimal`, :func:`plan_soft_optimal` and :func:`train_q_learning`.
    """

    mode = "choose"

    def __init__(
        self, name: str, policy: np.ndarray, action_names: Sequence[str], source: str,
        details: dict[str, Any] | None = None, q: np.ndarray | None = None,
    ):
        policy = np.asarray(policy, dtype=float)
        if policy.ndim != 2 or policy.shape[1] != len(action_names):
            raise ValueError(f"policy must be [S, {len(action_names)}], got {policy.shape}")
        #: The agent's name (``config.model``).
        self.name = name
        #: ``policy[s, a]`` over :attr:`action_names`; each row sums to 1.
        self.policy = policy
        #: The MDP's action names, in the order of the policy's columns.
        self.action_names = tuple(action_names)
        #: Learned or planned Q values ``[S, A]``, where there are some.
        self.q = q
        self.source = source
        self.details = dict(details or {})
        self._columns = {a: i for i, a in enumerate(self.action_names)}

    def distribution(self, index: int, legal: Sequence[str]) -> np.ndarray:
        """The policy in state ``index`` over the ``legal`` action names (renormalised)."""
        if not 0 <= index < self.policy.shape[0]:
            raise BaselineError(f"state index {index} is outside the {self.name} agent's MDP (0..{self.policy.shape[0] - 1})")
        try:
            cols = [self._columns[a] for a in legal]
        except KeyError as exc:
            raise BaselineError(f"legal action {exc.args[0]!r} is not an action of the MDP ({', '.join(self.action_names)})") from None
        p = self.policy[index, cols]
        total = p.sum()
        return p / total if total > 0 else np.full(len(cols), 1.0 / len(cols))

    def act(self, decisions: Sequence[Decision]) -> list[Choice]:
        """Sample each decision's action from the policy in its state."""
        start = time.perf_counter()
        picked = []
        for d in decisions:
            probs = self.distribution(state_index(d, self.name), d.legal)
            picked.append((draw(d, probs), probs))
        share = (time.perf_counter() - start) / max(len(decisions), 1)
        return [reference_choice(action, probs, share) for action, probs in picked]

    def info(self) -> ModelInfo:
        """For the manifest: the source and every hyperparameter."""
        return ModelInfo(self.name, BASELINE_BACKEND, self.source, details=self.details)

    def close(self) -> None:
        """Nothing to release."""


def tabular_mdp(env: Any, agent: str) -> TabularMDP:
    """``env``'s exact MDP, or a :class:`BaselineError` saying why ``agent`` cannot use it."""
    if not callable(getattr(env, "mdp", None)):
        family = getattr(env, "family", type(env).__name__)
        raise BaselineError(
            f"agent {agent!r} needs an environment with a tabular MDP; {family!r} has none "
            "(the gridworlds have one: frozenlake, cliffwalking, taxi, keys-chests, minigrid)"
        )
    if getattr(env, "layout_seed", 0) is None:
        raise BaselineError(
            f"agent {agent!r} needs a fixed layout: with layout_seed=None every episode has its own MDP; "
            "set -o layout_seed=N"
        )
    return env.mdp()


def plan_optimal(mdp: TabularMDP, config: PlanningConfig = PlanningConfig()) -> TabularPolicyAgent:
    """The ``optimal`` agent: hard value iteration, uniform over the optimal actions."""
    values = hard_value_iteration(mdp.transitions, mdp.rewards, discount=config.discount)
    details = {"discount": config.discount, "converged": values.converged, "iterations": values.iterations}
    return TabularPolicyAgent(
        "optimal", values.policy, mdp.action_names,
        "hard value iteration on the exact MDP with the true reward", details, values.q,
    )


def plan_soft_optimal(mdp: TabularMDP, config: PlanningConfig = PlanningConfig()) -> TabularPolicyAgent:
    """The ``soft-optimal`` agent: soft value iteration at ``config.temperature``."""
    values = soft_value_iteration(mdp.transitions, mdp.rewards, discount=config.discount, temperature=config.temperature)
    details = {
        "discount": config.discount, "temperature": config.temperature,
        "converged": values.converged, "iterations": values.iterations,
    }
    return TabularPolicyAgent(
        "soft-optimal", values.policy, mdp.action_names,
        "soft value iteration on the exact MDP with the true reward", details, values.q,
    )


def greedy_policy(q: np.ndarray, tie_tol: float = 1e-12) -> np.ndarray:
    """Uniform over the actions of greatest ``q`` in each state (ties split evenly)."""
    best = q >= q.max(axis=1, keepdims=True) - tie_tol
    return best / best.sum(axis=1, keepdims=True)


def mdp_of(config: Any, agent: str) -> TabularMDP:
    """The exact MDP of ``config``'s environment (built and closed here)."""
    env = config.make_env()
    try:
        return tabular_mdp(env, agent)
    finally:
        env.close()


def optimal_policy(mdp: TabularMDP, details: dict[str, Any]) -> np.ndarray:
    """The ``optimal`` agent's policy on ``mdp``, as planned with the recorded ``details``."""
    return plan_optimal(mdp, PlanningConfig(discount=float(details.get("discount", PlanningConfig.discount)))).policy


def soft_optimal_policy(mdp: TabularMDP, details: dict[str, Any]) -> np.ndarray:
    """The ``soft-optimal`` agent's policy on ``mdp``, as planned with the recorded ``details``."""
    config = PlanningConfig(discount=float(details.get("discount", PlanningConfig.discount)),
                            temperature=float(details.get("temperature", PlanningConfig.temperature)))
    return plan_soft_optimal(mdp, config).policy


def feature_seeker_policy(mdp: TabularMDP, details: dict[str, Any]) -> np.ndarray:
    """The ``feature-seeker`` agent's policy on ``mdp``, for the recorded feature and discount."""
    return _seek(mdp, str(details["feature"]), float(details.get("discount", PlanningConfig.discount)))[0].policy


class PerLayoutAgent:
    """A planner on an environment that draws a new layout every episode (``layout_seed=None``).

    Each decision's state record names its layout (``layout_seed``); the first decision of a
    layout resets a private copy of the environment with that seed, which rebuilds the same
    layout, and plans on its exact MDP. Plans are kept per layout.
    """

    mode = "choose"

    def __init__(self, env: Any, plan: Any, name: str):
        self._env = env
        self._plan = plan
        self._agents: dict[Any, TabularPolicyAgent] = {}
        #: The agent's name (``config.model``).
        self.name = name
        self._info: ModelInfo | None = None

    def _agent(self, decision: Decision) -> TabularPolicyAgent:
        key = decision.record.get("layout_seed")
        if key is None:
            raise BaselineError(f"agent {self.name!r} plans per layout, but this state record names none: {sorted(decision.record)}")
        if key not in self._agents:
            self._env.reset(seed=int(key))
            self._agents[key] = self._plan(self._env.mdp())
        return self._agents[key]

    def act(self, decisions: Sequence[Decision]) -> list[Choice]:
        """Each decision acted on by the plan of its own layout."""
        return [self._agent(d).act([d])[0] for d in decisions]

    def info(self) -> ModelInfo:
        """For the manifest: the planner's, planned on each episode's layout."""
        if self._info is None:
            self._env.reset(seed=0)
            first = self._plan(self._env.mdp()).info()
            details = {k: v for k, v in first.details.items() if k not in ("converged", "iterations")}
            self._info = ModelInfo(self.name, BASELINE_BACKEND, f"{first.source}, planned on each episode's own layout", details=details)
        return self._info

    def close(self) -> None:
        """Close the private environment."""
        self._env.close()


def _planned(config: Any, agent: str, plan: Any) -> Any:
    """``plan(mdp)`` on ``config``'s environment; planned per layout when it draws one per episode."""
    env = config.make_env()
    if callable(getattr(env, "mdp", None)) and getattr(env, "layout_seed", 0) is None:
        return PerLayoutAgent(env, plan, agent)
    try:
        return plan(tabular_mdp(env, agent))
    finally:
        env.close()


def build_optimal(config: Any, options: Any, progress: Any = None) -> Any:
    """The ``optimal`` baseline for ``config``'s environment (planned per layout where layouts vary)."""
    return _planned(config, "optimal", lambda mdp: plan_optimal(mdp, PlanningConfig(discount=options.discount)))


def build_soft_optimal(config: Any, options: Any, progress: Any = None) -> Any:
    """The ``soft-optimal`` baseline at ``options.temperature`` (planned per layout where layouts vary)."""
    planning = PlanningConfig(discount=options.discount, temperature=options.temperature)
    return _planned(config, "soft-optimal", lambda mdp: plan_soft_optimal(mdp, planning))


def build_observed_optimal(config: Any, options: Any, progress: Any = None) -> TabularPolicyAgent:
    """The ``observed-optimal`` baseline: optimal for the reward the side channel shows.

    Hard value iteration on the environment's MDP with its expected observed reward
    (:meth:`textenvs.reward_channel.RewardChannelEnv.observed_mdp`): what an agent that
    trusts ``-o observed_reward=...`` over the task would do.
    """
    env = config.make_env()
    try:
        tabular_mdp(env, "observed-optimal")
        if not callable(getattr(env, "observed_mdp", None)):
            raise BaselineError("agent 'observed-optimal' needs a reward side channel: -o observed_reward=...")
        mdp, shown = env.observed_mdp(), env.observed.label
    finally:
        env.close()
    values = hard_value_iteration(mdp.transitions, mdp.rewards, discount=options.discount)
    details = {"observed_reward": shown, "discount": options.discount, "converged": values.converged}
    return TabularPolicyAgent(
        "observed-optimal", values.policy, mdp.action_names,
        f"hard value iteration on the exact MDP with the observed reward ({shown})", details, values.q,
    )


def observed_optimal_policy(mdp: TabularMDP, details: dict[str, Any]) -> np.ndarray:
    """The ``observed-optimal`` agent's policy on the true ``mdp``, for the recorded observed reward and discount."""
    from textenvs.reward_channel import ObservedReward, observed_table

    table = observed_table(mdp, ObservedReward.parse(details["observed_reward"]))
    return hard_value_iteration(mdp.transitions, table, discount=float(details.get("discount", PlanningConfig.discount))).policy


def _chained_mdp(config: Any, agent: str) -> TabularMDP:
    from textenvs.chain import is_chained

    mdp = mdp_of(config, agent)
    if not is_chained(mdp):
        raise BaselineError(f"agent {agent!r} needs an environment of chained rounds (lever); {config.env!r} marks no round ends")
    return mdp


def build_myopic(config: Any, options: Any, progress: Any = None) -> TabularPolicyAgent:
    """The ``chain-myopic`` baseline: optimal for each round's own reward (:func:`textenvs.chain.myopic_policy`)."""
    from textenvs.chain import CHAIN_DISCOUNT, myopic_policy

    mdp = _chained_mdp(config, "chain-myopic")
    return TabularPolicyAgent("chain-myopic", myopic_policy(mdp), mdp.action_names,
                              "hard value iteration on the chained MDP, each round's reward only", {"discount": CHAIN_DISCOUNT})


def build_non_myopic(config: Any, options: Any, progress: Any = None) -> TabularPolicyAgent:
    """The ``chain-non-myopic`` baseline: optimal for the whole chain's reward (:func:`textenvs.chain.non_myopic_policy`)."""
    from textenvs.chain import CHAIN_DISCOUNT, non_myopic_policy

    mdp = _chained_mdp(config, "chain-non-myopic")
    return TabularPolicyAgent("chain-non-myopic", non_myopic_policy(mdp), mdp.action_names,
                              "hard value iteration on the chained MDP, every round's reward", {"discount": CHAIN_DISCOUNT})


def build_feature_seeker(config: Any, options: Any, progress: Any = None) -> Any:
    """The ``feature-seeker`` baseline: optimal for the gains of one named state feature.

    Its reward is ``phi(s') - phi(s)`` for feature ``options.feature`` (``keys_held`` makes a
    key collector: picking a key up pays, spending one on a chest costs), or their negation
    for ``-NAME`` (``-keys_left``: every key picked up pays, spent or not); on terminal
    self-loops it is 0, as :func:`textenvs.reward_channel.observed_table` defines it. A proxy objective
    with a known answer, for checking that inferred objectives can tell it from the task's.
    """
    if not options.feature:
        raise BaselineError("agent 'feature-seeker' needs a feature: --feature NAME (a named feature of the MDP)")

    def plan(mdp: TabularMDP) -> TabularPolicyAgent:
        values, _ = _seek(mdp, options.feature, options.discount)
        details = {"feature": options.feature, "discount": options.discount, "converged": values.converged}
        return TabularPolicyAgent(
            f"seeker:{options.feature}", values.policy, mdp.action_names,
            f"hard value iteration on the exact MDP for the gains of {options.feature!r}", details, values.q,
        )

    return _planned(config, "feature-seeker", plan)


def _seek(mdp: TabularMDP, feature: str, discount: float) -> tuple[Any, np.ndarray]:
    """Hard value iteration for the gains ``phi(s') - phi(s)`` of ``feature`` (``-NAME``: its losses), and that reward."""
    from textenvs.reward_channel import ObservedReward, observed_table

    if feature.removeprefix("-") not in mdp.feature_names:
        raise BaselineError(f"feature {feature!r} is not a feature of this MDP ({', '.join(mdp.feature_names)})")
    reward = observed_table(mdp, ObservedReward("feature", feature=feature))
    return hard_value_iteration(mdp.transitions, reward, discount=discount), reward
