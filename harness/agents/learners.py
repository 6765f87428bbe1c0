"""Learners: agents trained on the environment itself with its true reward.

``q-learning`` is tabular Q-learning acting greedily; ``ppo`` is stable-baselines3's PPO
sampled from its policy. Both read the MDP state index from the decision's state record.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import asdict, dataclass
from typing import Any, Iterator, Sequence

import gymnasium
import numpy as np
from gymnasium import spaces

from harness.agents.base import (
    RL_INSTALL_HINT, BaselineError, Choice, Decision, ProgressFn, draw, reference_choice, state_index,
)
from harness.agents.planners import TabularPolicyAgent, greedy_policy, tabular_mdp
from harness.backends.base import MissingDependencyError, ModelInfo
from harness.records import BASELINE_BACKEND

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
        indices = [state_index(d, self.name) for d in decisions]
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
            picked.append((draw(d, p), p))
        share = (time.perf_counter() - start) / max(len(decisions), 1)
        return [reference_choice(action, probs, share) for action, probs in picked]

    def info(self) -> ModelInfo:
        """For the manifest: the hyperparameters and the sb3 version."""
        return ModelInfo(self.name, BASELINE_BACKEND, "stable-baselines3 PPO (MlpPolicy) trained on the environment", details=self.details)

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


def build_q_learning(config: Any, options: Any, progress: ProgressFn | None = None) -> TabularPolicyAgent:
    """Train the ``q-learning`` baseline on a fresh environment of ``config`` (closed afterwards)."""
    qcfg = QLearningConfig(
        train_episodes=options.train_episodes, max_steps=config.max_steps, discount=options.discount, seed=config.seed,
    )
    env = config.make_env()
    try:
        return train_q_learning(env, qcfg, progress)
    finally:
        env.close()


def build_ppo(config: Any, options: Any, progress: ProgressFn | None = None) -> PPOAgent:
    """Train the ``ppo`` baseline on a fresh environment of ``config`` (closed afterwards)."""
    pcfg = PPOConfig(train_steps=options.train_steps, max_steps=config.max_steps, discount=options.discount, seed=config.seed)
    env = config.make_env()
    try:
        return train_ppo(env, pcfg, progress)
    finally:
        env.close()
