"""RL baselines: agents that stand next to a language model in the same run format.

Every baseline is an :class:`~harness.agents.Agent` in ``choose`` mode, run by the same
:class:`~harness.runner.Runner` as a model, so its run directory reads like a model's:
``backend = "baseline"``, ``model = <agent name>``, an empty prompt, and in ``probs`` the
agent's full distribution over the legal actions (what an IRL fit reads as a choose-mode
model's distribution). The action is drawn from that distribution with the episode's own
generator (``Decision.rng``).

=============  ========================================================================
agent          ``probs``
=============  ========================================================================
random         uniform over the legal actions
optimal        uniform over the actions optimal under the true reward (hard value
               iteration on the env's exact MDP, discounted; ties split evenly)
soft-optimal   Boltzmann ``exp((Q_soft - V_soft) / T)`` of soft value iteration at
               temperature ``T`` (the maximum-causal-entropy policy of the true reward)
q-learning     uniform over the actions of greatest learned Q (greedy, ties split)
ppo            the trained PPO policy's action distribution (softmax of its logits)
stockfish      one-hot on Stockfish's move (chess only)
=============  ========================================================================

The tabular agents read the MDP state index from the decision's state record
(``record["index"]``); the planning ones solve the MDP of a freshly built environment, so
the environment's layout must be fixed (``layout_seed`` not ``None``).

Hyperparameters live in small frozen dataclasses (:class:`PlanningConfig`,
:class:`QLearningConfig`, :class:`PPOConfig`, :class:`StockfishConfig`) and are written
into the manifest through ``info().details``.
"""

from __future__ import annotations

import argparse
import contextlib
import time
from dataclasses import asdict, dataclass, replace
from typing import Any, Callable, Iterator, Sequence

import gymnasium
import numpy as np
from gymnasium import spaces

from harness.agents import Choice, Decision
from harness.backends.base import MissingDependencyError, ModelInfo
from harness.config import RunConfig
from textenvs.mdp import TabularMDP
from textenvs.registry import UnknownIdError

__all__ = [
    "AGENTS", "TABULAR_AGENTS", "BaselineError", "PlanningConfig", "QLearningConfig", "PPOConfig",
    "StockfishConfig", "BaselineOptions", "RandomAgent", "TabularPolicyAgent", "PPOAgent", "StockfishAgent",
    "IndexEnv", "tabular_mdp", "plan_optimal", "plan_soft_optimal", "train_q_learning", "train_ppo",
    "greedy_policy", "check_agent", "training_units", "build_agent", "baseline_config", "add_parser", "cmd_baseline",
]

#: The baseline agents, by name.
AGENTS = ("random", "optimal", "soft-optimal", "q-learning", "ppo", "stockfish")
#: Agents that need an environment with a tabular MDP (state index observations).
TABULAR_AGENTS = ("optimal", "soft-optimal", "q-learning", "ppo")
#: What ``pip install`` brings stable-baselines3.
RL_INSTALL_HINT = "the ppo baseline needs stable-baselines3: pip install 'zso[rl]'"

#: Called with the units of training done so far (episodes or environment steps).
ProgressFn = Callable[[int], None]


class BaselineError(ValueError):
    """A baseline that cannot run here: a non-tabular environment, a bad hyperparameter..."""


# -- hyperparameters ----------------------------------------------------------------------


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


@dataclass(frozen=True)
class QLearningConfig:
    """Tabular Q-learning with epsilon-greedy exploration (one-step TD, off-policy)."""

    #: Training episodes.
    train_episodes: int = 2000
    #: Steps per training episode before it is cut (bootstrapped, not treated as an end).
    max_steps: int = 100
    #: Step size ``alpha`` of ``Q <- Q + alpha (r + gamma max Q' - Q)``.
    learning_rate: float = 0.1
    #: ``gamma``.
    discount: float = 0.99
    #: Exploration rate at the first episode...
    epsilon_start: float = 1.0
    #: ...decayed linearly to this...
    epsilon_end: float = 0.05
    #: ...over this fraction of the training episodes, then held.
    epsilon_decay_fraction: float = 0.5
    #: Initial Q value of every state-action pair.
    initial_q: float = 0.0
    #: Seeds exploration and the training environment's resets.
    seed: int = 0

    def __post_init__(self) -> None:
        if self.train_episodes < 1 or self.max_steps < 1:
            raise BaselineError("train_episodes and max_steps must be >= 1")
        if not 0.0 < self.learning_rate <= 1.0:
            raise BaselineError(f"learning_rate must be in (0, 1], got {self.learning_rate}")
        if not 0.0 <= self.discount <= 1.0:
            raise BaselineError(f"discount must be in [0, 1], got {self.discount}")
        if not (0.0 <= self.epsilon_end <= 1.0 and 0.0 <= self.epsilon_start <= 1.0):
            raise BaselineError("epsilon_start and epsilon_end must be in [0, 1]")
        if not 0.0 < self.epsilon_decay_fraction <= 1.0:
            raise BaselineError(f"epsilon_decay_fraction must be in (0, 1], got {self.epsilon_decay_fraction}")

    def epsilon(self, episode: int) -> float:
        """The exploration rate of training episode ``episode`` (0-based)."""
        span = max(1, int(round(self.epsilon_decay_fraction * self.train_episodes)))
        frac = min(1.0, episode / span)
        return self.epsilon_start + frac * (self.epsilon_end - self.epsilon_start)


@dataclass(frozen=True)
class PPOConfig:
    """stable-baselines3 PPO with an MLP policy on one-hot state indices.

    The defaults are sb3's, except smaller rollouts (``n_steps``) suited to small
    gridworlds and a little entropy bonus to keep exploring sparse rewards.
    """

    #: Environment steps of training (sb3 rounds up to whole rollouts of ``n_steps``).
    train_steps: int = 20_000
    #: Steps per training episode before it is cut (truncated).
    max_steps: int = 100
    learning_rate: float = 3e-4
    n_steps: int = 512
    batch_size: int = 64
    n_epochs: int = 10
    #: ``gamma``.
    discount: float = 0.99
    gae_lambda: float = 0.95
    clip_range: float = 0.2
    ent_coef: float = 0.01
    #: Hidden layer sizes of the policy and value networks.
    net_arch: tuple[int, ...] = (64, 64)
    #: Torch CPU threads during training and acting (restored afterwards).
    threads: int = 1
    #: sb3's seed. Note that sb3 seeds Python's, numpy's and torch's global generators
    #: with it; the harness itself never draws from them.
    seed: int = 0

    def __post_init__(self) -> None:
        if self.train_steps < 1 or self.max_steps < 1 or self.n_steps < 2 or self.batch_size < 2:
            raise BaselineError("train_steps and max_steps must be >= 1, n_steps and batch_size >= 2")
        if not 0.0 <= self.discount <= 1.0:
            raise BaselineError(f"discount must be in [0, 1], got {self.discount}")


@dataclass(frozen=True)
class StockfishConfig:
    """Stockfish's own move, searched to a fixed depth at a skill level."""

    #: Search depth in plies.
    depth: int = 8
    #: Skill level 0-20 (``None``: Stockfish's default, 20). Below 20 Stockfish picks
    #: weaker moves with its own generator, so games are not reproducible from the seed.
    skill: int | None = None
    #: The binary (default: see :func:`textenvs.chess.engine.find_stockfish`).
    path: str | None = None

    def __post_init__(self) -> None:
        if self.depth < 1:
            raise BaselineError(f"stockfish depth must be >= 1, got {self.depth}")
        if self.skill is not None and not 0 <= self.skill <= 20:
            raise BaselineError(f"stockfish skill must be 0..20, got {self.skill}")


# -- agents -------------------------------------------------------------------------------


def _sample(decision: Decision, probs: np.ndarray) -> str:
    """A legal action drawn from ``probs`` with the episode's generator."""
    return decision.legal[int(decision.rng.choice(len(probs), p=probs))]


def _choice(action: str, probs: np.ndarray, seconds: float) -> Choice:
    return Choice(action, "model", "", None, None, [float(p) for p in probs], (), seconds)


def _state_index(decision: Decision, agent: str) -> int:
    """The MDP state index of a decision, or a clear error for non-tabular environments."""
    index = decision.record.get("index")
    if index is None:
        raise BaselineError(
            f"agent {agent!r} needs an environment with a tabular MDP (a state record with an 'index'); "
            f"this state has {sorted(decision.record) or 'no record'}"
        )
    return int(index)


class RandomAgent:
    """Uniform over the legal actions: the floor every other agent should clear."""

    mode = "choose"
    name = "random"

    def act(self, decisions: Sequence[Decision]) -> list[Choice]:
        """One uniformly random legal action per decision."""
        start = time.perf_counter()
        picked = []
        for d in decisions:
            probs = np.full(len(d.legal), 1.0 / len(d.legal))
            picked.append((_sample(d, probs), probs))
        share = (time.perf_counter() - start) / max(len(decisions), 1)
        return [_choice(action, probs, share) for action, probs in picked]

    def info(self) -> ModelInfo:
        """For the manifest."""
        return ModelInfo(self.name, "baseline", "uniform over the legal actions")

    def close(self) -> None:
        """Nothing to release."""


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
            probs = self.distribution(_state_index(d, self.name), d.legal)
            picked.append((_sample(d, probs), probs))
        share = (time.perf_counter() - start) / max(len(decisions), 1)
        return [_choice(action, probs, share) for action, probs in picked]

    def info(self) -> ModelInfo:
        """For the manifest: the source and every hyperparameter."""
        return ModelInfo(self.name, "baseline", self.source, details=self.details)

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
    from textenvs.planning import hard_value_iteration

    values = hard_value_iteration(mdp.transitions, mdp.rewards, discount=config.discount)
    details = {"discount": config.discount, "converged": values.converged, "iterations": values.iterations}
    return TabularPolicyAgent(
        "optimal", values.policy, mdp.action_names,
        "hard value iteration on the exact MDP with the true reward", details, values.q,
    )


def plan_soft_optimal(mdp: TabularMDP, config: PlanningConfig = PlanningConfig()) -> TabularPolicyAgent:
    """The ``soft-optimal`` agent: soft value iteration at ``config.temperature``."""
    from textenvs.planning import soft_value_iteration

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


def _argmax_random(row: np.ndarray, rng: np.random.Generator) -> int:
    best = np.flatnonzero(row == row.max())
    return int(best[0]) if len(best) == 1 else int(rng.choice(best))


def train_q_learning(env: Any, config: QLearningConfig = QLearningConfig(), progress: ProgressFn | None = None) -> TabularPolicyAgent:
    """Train tabular Q-learning on ``env`` itself (its observation is the state index).

    Epsilon-greedy with greedy ties broken at random; a step that ends the episode
    (``terminated``) does not bootstrap, one cut by ``max_steps`` or the env's own
    truncation does. The agent then acts greedily (ties uniform).
    """
    mdp = tabular_mdp(env, "q-learning")
    n_states, n_actions = mdp.n_states, mdp.n_actions
    q = np.full((n_states, n_actions), float(config.initial_q))
    # Terminal states are never acted in; their value is 0 for bootstrapping.
    q[mdp.terminal] = 0.0
    rng = np.random.default_rng([config.seed, 2])
    returns = np.zeros(config.train_episodes)
    successes = 0
    every = max(1, config.train_episodes // 100)
    for episode in range(config.train_episodes):
        obs, _ = env.reset(seed=config.seed if episode == 0 else None)
        s = int(obs)
        eps = config.epsilon(episode)
        for _ in range(config.max_steps):
            a = int(rng.integers(n_actions)) if rng.random() < eps else _argmax_random(q[s], rng)
            obs, reward, terminated, truncated, info = env.step(a)
            s2 = int(obs)
            target = reward if terminated else reward + config.discount * q[s2].max()
            q[s, a] += config.learning_rate * (target - q[s, a])
            returns[episode] += reward
            s = s2
            if terminated or truncated:
                successes += bool(info.get("success"))
                break
        if progress is not None and ((episode + 1) % every == 0 or episode + 1 == config.train_episodes):
            progress(episode + 1)
    last = returns[-min(100, len(returns)):]
    details = {
        **asdict(config), "train_success_rate": successes / config.train_episodes,
        "train_return_last100": float(last.mean()),
    }
    return TabularPolicyAgent(
        "q-learning", greedy_policy(q), mdp.action_names,
        "tabular Q-learning (epsilon-greedy) on the environment, acting greedily", details, q,
    )


class IndexEnv(gymnasium.Env):
    """A tabular text environment as RL libraries see it: ``Discrete`` states and actions.

    Observations are MDP state indices (stable-baselines3 one-hot encodes ``Discrete``
    observations), actions are indices into the MDP's action names, and an episode is
    truncated after ``max_steps`` steps. Nothing is kept across resets.
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self, env: Any, n_states: int, n_actions: int, max_steps: int):
        self.env = env
        self.max_steps = max_steps
        self.observation_space = spaces.Discrete(n_states)
        self.action_space = spaces.Discrete(n_actions)
        self._t = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
        """Reset the wrapped environment."""
        super().reset(seed=seed)
        obs, _ = self.env.reset(seed=seed)
        self._t = 0
        return int(obs), {}

    def step(self, action: Any) -> tuple[int, float, bool, bool, dict[str, Any]]:
        """Step the wrapped environment with action index ``action``."""
        obs, reward, terminated, truncated, info = self.env.step(int(action))
        self._t += 1
        truncated = bool(truncated) or (not terminated and self._t >= self.max_steps)
        return int(obs), float(reward), bool(terminated), truncated, {"success": bool(info.get("success", False))}

    def close(self) -> None:
        """Close the wrapped environment."""
        self.env.close()


@contextlib.contextmanager
def _torch_threads(n: int) -> Iterator[None]:
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class PPOAgent:
    """Acts from a trained stable-baselines3 PPO policy (sampled from its distribution)."""

    mode = "choose"
    name = "ppo"

    def __init__(self, model: Any, action_names: Sequence[str], config: PPOConfig, details: dict[str, Any] | None = None):
        #: The trained ``stable_baselines3.PPO``.
        self.model = model
        self.action_names = tuple(action_names)
        self.config = config
        self.details = dict(details or {})
        self._columns = {a: i for i, a in enumerate(self.action_names)}

    def distributions(self, indices: Sequence[int]) -> np.ndarray:
        """``[len(indices), A]``: the policy's action probabilities in those states."""
        import torch

        with _torch_threads(self.config.threads), torch.no_grad():
            obs, _ = self.model.policy.obs_to_tensor(np.asarray(indices, dtype=np.int64))
            probs = self.model.policy.get_distribution(obs).distribution.probs
        p = probs.cpu().numpy().astype(float)
        return p / p.sum(axis=1, keepdims=True)

    def act(self, decisions: Sequence[Decision]) -> list[Choice]:
        """One batched forward pass; each action is sampled from its distribution."""
        start = time.perf_counter()
        indices = [_state_index(d, self.name) for d in decisions]
        n_states = self.model.observation_space.n
        bad = [i for i in indices if not 0 <= i < n_states]
        if bad:
            raise BaselineError(f"state index {bad[0]} is outside the ppo agent's observation space (0..{n_states - 1})")
        dists = self.distributions(indices) if decisions else np.zeros((0, len(self.action_names)))
        picked = []
        for d, dist in zip(decisions, dists):
            try:
                p = dist[[self._columns[a] for a in d.legal]]
            except KeyError as exc:
                raise BaselineError(f"legal action {exc.args[0]!r} is not an action of the MDP") from None
            p = p / p.sum()
            picked.append((_sample(d, p), p))
        share = (time.perf_counter() - start) / max(len(decisions), 1)
        return [_choice(action, probs, share) for action, probs in picked]

    def info(self) -> ModelInfo:
        """For the manifest: the hyperparameters and the sb3 version."""
        return ModelInfo(self.name, "baseline", "stable-baselines3 PPO (MlpPolicy) trained on the environment", details=self.details)

    def close(self) -> None:
        """Nothing to release."""


def train_ppo(env: Any, config: PPOConfig = PPOConfig(), progress: ProgressFn | None = None) -> PPOAgent:
    """Train sb3 PPO on ``env`` (wrapped in :class:`IndexEnv`) on the CPU."""
    mdp = tabular_mdp(env, "ppo")
    try:
        import stable_baselines3
        from stable_baselines3 import PPO
        from stable_baselines3.common.callbacks import BaseCallback
    except ImportError:
        raise MissingDependencyError(RL_INSTALL_HINT) from None

    class _Report(BaseCallback):
        def _on_step(self) -> bool:
            if progress is not None and self.num_timesteps % 256 == 0:
                progress(min(self.num_timesteps, config.train_steps))
            return True

    wrapped = IndexEnv(env, mdp.n_states, mdp.n_actions, config.max_steps)
    with _torch_threads(config.threads):
        model = PPO(
            "MlpPolicy", wrapped, learning_rate=config.learning_rate, n_steps=config.n_steps,
            batch_size=config.batch_size, n_epochs=config.n_epochs, gamma=config.discount,
            gae_lambda=config.gae_lambda, clip_range=config.clip_range, ent_coef=config.ent_coef,
            policy_kwargs={"net_arch": list(config.net_arch)}, seed=config.seed, device="cpu", verbose=0,
        )
        model.learn(total_timesteps=config.train_steps, callback=_Report())
    if progress is not None:
        progress(config.train_steps)
    details = {**asdict(config), "net_arch": list(config.net_arch), "timesteps_done": int(model.num_timesteps),
               "stable_baselines3": stable_baselines3.__version__}
    return PPOAgent(model, mdp.action_names, config, details)


class StockfishAgent:
    """Chess: Stockfish's move at a fixed depth and skill level; ``probs`` is one-hot."""

    mode = "choose"
    name = "stockfish"

    def __init__(self, config: StockfishConfig = StockfishConfig()):
        import chess.engine

        from textenvs.chess.engine import EngineProcess

        self.config = config
        options = {} if config.skill is None else {"Skill Level": config.skill}
        self._process = EngineProcess(config.path, options)
        self._limit = chess.engine.Limit(depth=config.depth)

    def act(self, decisions: Sequence[Decision]) -> list[Choice]:
        """Ask the engine for each position's move (one search per decision)."""
        import chess

        choices = []
        for d in decisions:
            start = time.perf_counter()
            board = d.state if isinstance(d.state, chess.Board) else chess.Board(d.record["fen"])
            result = self._process.engine.play(board, self._limit)
            move = None if result.move is None else result.move.uci()
            if move not in d.legal:
                raise BaselineError(f"Stockfish returned {move!r}, not a legal move in {board.fen()}")
            probs = np.array([float(a == move) for a in d.legal])
            choices.append(_choice(move, probs, time.perf_counter() - start))
        return choices

    def info(self) -> ModelInfo:
        """For the manifest: the binary, the engine's name, depth and skill."""
        engine = self._process.engine
        details = {**asdict(self.config), "path": self._process.path, "engine": engine.id.get("name")}
        return ModelInfo(self.name, "baseline", f"Stockfish at {self._process.path}", details=details)

    def close(self) -> None:
        """Stop the engine process."""
        self._process.close()


# -- building from a run configuration ----------------------------------------------------


@dataclass(frozen=True)
class BaselineOptions:
    """What the command line sets for a baseline; each agent reads what concerns it."""

    temperature: float = 1.0
    discount: float = 0.99
    train_episodes: int = QLearningConfig.train_episodes
    train_steps: int = PPOConfig.train_steps
    depth: int = StockfishConfig.depth
    skill: int | None = None


def check_agent(name: str) -> str:
    """``name`` if it is a baseline agent, else an error suggesting the closest ones."""
    if name not in AGENTS:
        raise UnknownIdError("baseline agent", name, list(AGENTS))
    return name


def training_units(name: str, options: BaselineOptions) -> tuple[str, int] | None:
    """What training counts for ``name`` (``("episodes", N)``/``("steps", N)``), or None."""
    if name == "q-learning":
        return ("episodes", options.train_episodes)
    if name == "ppo":
        return ("steps", options.train_steps)
    return None


def build_agent(name: str, config: RunConfig, options: BaselineOptions = BaselineOptions(), progress: ProgressFn | None = None) -> Any:
    """Plan or train baseline ``name`` for ``config``'s environment; returns a ready agent.

    Training runs on a separate environment built from ``config`` (closed afterwards) and
    is seeded from ``config.seed``; its episodes last at most ``config.max_steps``.
    """
    from textenvs import make_env

    check_agent(name)
    if name == "random":
        return RandomAgent()
    if name == "stockfish":
        if config.env != "chess":
            raise BaselineError(f"agent 'stockfish' plays chess only, not {config.env!r}")
        path = config.env_options.get("stockfish_path")
        return StockfishAgent(StockfishConfig(depth=options.depth, skill=options.skill, path=path))
    env = make_env(config.env, config.variant, **config.env_options)
    try:
        if name in ("optimal", "soft-optimal"):
            mdp = tabular_mdp(env, name)
            planning = PlanningConfig(discount=options.discount, temperature=options.temperature)
            return plan_optimal(mdp, planning) if name == "optimal" else plan_soft_optimal(mdp, planning)
        if name == "q-learning":
            qcfg = QLearningConfig(
                train_episodes=options.train_episodes, max_steps=config.max_steps,
                discount=options.discount, seed=config.seed,
            )
            return train_q_learning(env, qcfg, progress)
        pcfg = PPOConfig(train_steps=options.train_steps, max_steps=config.max_steps, discount=options.discount, seed=config.seed)
        return train_ppo(env, pcfg, progress)
    finally:
        env.close()


# -- command line -------------------------------------------------------------------------


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``zso baseline`` to the ``zso`` command's subparsers."""
    p = subparsers.add_parser(
        "baseline", help="run an RL baseline (random, optimal, soft-optimal, q-learning, ppo, stockfish)",
        description="Plan or train an RL baseline on an environment, then run it like a model: "
        "same run directory, summary and validation.",
    )
    p.add_argument("--env", required=True, help="environment id (zso envs)")
    p.add_argument("--variant", help="named preset of the environment (zso envs)")
    p.add_argument("-o", "--env-option", action="append", metavar="KEY=VALUE", help="environment option (repeatable)")
    p.add_argument("--agent", required=True, metavar="AGENT", help=f"one of: {', '.join(AGENTS)}")
    p.add_argument("--temperature", type=float, default=1.0, help="soft-optimal: softmax temperature (default 1)")
    p.add_argument("--discount", type=float, default=0.99, help="optimal, soft-optimal, q-learning, ppo: gamma (default 0.99)")
    p.add_argument("--train-episodes", type=int, default=QLearningConfig.train_episodes, help="q-learning: training episodes")
    p.add_argument("--train-steps", type=int, default=PPOConfig.train_steps, help="ppo: training environment steps")
    p.add_argument("--depth", type=int, default=StockfishConfig.depth, help="stockfish: search depth in plies")
    p.add_argument("--skill", type=int, help="stockfish: skill level 0-20 (default 20)")
    p.add_argument("--episodes", type=int, default=10, help="evaluation episodes (default 10)")
    p.add_argument("--max-steps", type=int, default=100, help="decisions per episode, training and evaluation (default 100)")
    p.add_argument("--seed", type=int, default=0, help="seeds training and the evaluation episodes")
    p.add_argument("--encoding", help="encoding recorded with the steps (default: the env's first)")
    p.add_argument("--out", metavar="DIR", help="run directory (default results/<time>-<env>-...)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def baseline_config(args: argparse.Namespace) -> RunConfig:
    """The run configuration of ``zso baseline`` arguments (validated against the schema)."""
    from harness.config import parse_key_values, resolve_config
    from textenvs import ENVS, encodings_for

    name = check_agent(args.agent)
    ENVS.entry(args.env)
    encoding = args.encoding
    if encoding is None:
        known = encodings_for(args.env)
        if not known:
            raise BaselineError(f"environment {args.env!r} has no registered encoding")
        encoding = known[0]
    return resolve_config(
        None, env=args.env, variant=args.variant, encoding=encoding, model=name, backend="baseline", mode="choose",
        episodes=args.episodes, max_steps=args.max_steps, seed=args.seed,
        temperature=args.temperature if name == "soft-optimal" else 0.0,
        env_options=parse_key_values(args.env_option, "--env-option") or None, out=args.out,
    )


def _run_label(config: RunConfig, options: BaselineOptions) -> str:
    """The agent's name in default run directory names (with the temperature for soft-optimal)."""
    return f"{config.model}-t{options.temperature:g}" if config.model == "soft-optimal" else config.model


def cmd_baseline(args: argparse.Namespace) -> int:
    """``zso baseline``: plan or train, run, print the summary; 0 on success."""
    from harness.cli import ProgressBar, console, run_and_report
    from harness.runner import Runner, default_run_dir
    from textenvs import get_encoding

    config = baseline_config(args)
    get_encoding(config.env, config.encoding)  # a bad encoding fails before training
    options = BaselineOptions(
        temperature=args.temperature, discount=args.discount, train_episodes=args.train_episodes,
        train_steps=args.train_steps, depth=args.depth, skill=args.skill,
    )
    if config.out is None:
        config = replace(config, out=str(default_run_dir(replace(config, model=_run_label(config, options)))))
    units = training_units(config.model, options)
    if units is None:
        with console.status(f"preparing {config.model} on {config.env}"):
            agent = build_agent(config.model, config, options)
    else:
        unit, total = units
        with ProgressBar(f"training {config.model}", total, unit, args.no_progress) as update:
            agent = build_agent(config.model, config, options, update)
    try:
        with Runner(config, agent=agent) as runner:
            return run_and_report(runner, config.episodes, args.no_progress)
    finally:
        agent.close()
