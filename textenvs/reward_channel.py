"""A reward side channel: the prompt shows a reward, which need not be the true one.

The experiment (from the "zero-shot objectives" agenda): give an agent its reward as part of
what it observes, change what the channel shows, and see whether behaviour follows the shown
reward or the true one. Two environment options, accepted by every environment with an exact
MDP (the gridworlds):

``reward_channel``
    ``none`` (the default: nothing is shown), ``previous`` (the prompt shows the observed
    reward of the last step) or ``next`` (beside each listed action, the observed reward it
    would give in expectation, read off the exact MDP).
``observed_reward``
    what the channel shows: ``true`` (the default), ``negated``, ``noise:SIGMA`` (the true
    reward plus Gaussian noise of standard deviation ``SIGMA``, drawn each step from the
    episode's seed), ``random`` or ``random:SEED`` (a fixed seeded random function of the
    transition, standard normal on each ``(s, a, s')``), or ``feature:NAME`` (the gains
    ``phi(s') - phi(s)`` of the MDP's state feature ``NAME``, or the value of its transition
    feature ``NAME``; ``feature:-NAME`` their negation: ``-keys_left`` pays a key picked up).

The environment's reward, its return and ``mdp()`` stay the true ones. Each step's ``info``
records ``observed_reward`` (what the channel showed for that step). :meth:`RewardChannelEnv.observed_mdp`
is the MDP with the expected observed reward in place of the true one: the problem an agent
that trusts the channel solves.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import gymnasium
import numpy as np

from textenvs.mdp import TabularMDP

__all__ = ["CHANNELS", "OBSERVED", "ObservedReward", "RewardChannelEnv", "observed_table", "channel_options"]

#: What the prompt shows: nothing, the last step's observed reward, or each action's.
CHANNELS = ("none", "previous", "next")
#: The kinds of ``observed_reward``.
OBSERVED = ("true", "negated", "noise", "random", "feature")


@dataclass(frozen=True)
class ObservedReward:
    """What the channel shows, parsed from ``-o observed_reward=...``."""

    kind: str = "true"
    #: ``noise``: the standard deviation of the noise added each step.
    sigma: float = 0.0
    #: ``random``: the seed of the random reward table.
    seed: int = 0
    #: ``feature``: the MDP feature whose gains are shown.
    feature: str = ""

    @classmethod
    def parse(cls, spec: Any) -> ObservedReward:
        """``true``, ``negated``, ``noise:SIGMA``, ``random[:SEED]`` or ``feature:NAME``; ``ValueError`` otherwise."""
        text = "true" if spec is True or spec is None else str(spec).strip()
        kind, _, arg = text.partition(":")
        usage = "expected true, negated, noise:SIGMA, random, random:SEED or feature:NAME"
        if kind in ("true", "negated") and not arg:
            return cls(kind)
        if kind == "noise":
            try:
                sigma = float(arg)
            except ValueError:
                raise ValueError(f"observed_reward {text!r}: noise needs a standard deviation, e.g. noise:0.5") from None
            if not sigma >= 0:
                raise ValueError(f"observed_reward {text!r}: the noise's standard deviation must be >= 0")
            return cls("noise", sigma=sigma)
        if kind == "random":
            try:
                return cls("random", seed=int(arg) if arg else 0)
            except ValueError:
                raise ValueError(f"observed_reward {text!r}: random takes an integer seed, e.g. random:3") from None
        if kind == "feature" and arg:
            return cls("feature", feature=arg)
        raise ValueError(f"observed_reward {text!r} is not understood ({usage})")

    @property
    def label(self) -> str:
        """The spec as written: ``negated``, ``noise:0.5``, ``feature:keys_held``."""
        return {"noise": f"noise:{self.sigma:g}", "random": f"random:{self.seed}", "feature": f"feature:{self.feature}"}.get(self.kind, self.kind)


def observed_table(mdp: TabularMDP, observed: ObservedReward) -> np.ndarray:
    """``R_obs[s, a, s']``: the expected observed reward of every transition (0 on terminal self-loops).

    Noise has mean 0, so its table is the true reward; ``random`` is standard normal on the
    transitions the MDP can make; ``feature`` the gains of a state feature or the value of a
    transition feature.
    """
    R = np.asarray(mdp.rewards, dtype=float)
    if observed.kind in ("true", "noise"):
        table = R.copy()
    elif observed.kind == "negated":
        table = -R
    elif observed.kind == "random":
        rng = np.random.default_rng(observed.seed)
        table = np.where(np.asarray(mdp.transitions) > 0, rng.standard_normal(R.shape), 0.0)
    elif observed.kind == "feature":
        sign, name = (-1.0, observed.feature[1:]) if observed.feature.startswith("-") else (1.0, observed.feature)
        if name in mdp.feature_names:
            phi = mdp.features[:, mdp.feature_names.index(name)]
            table = sign * np.broadcast_to(phi[None, None, :] - phi[:, None, None], R.shape)
        elif name in mdp.transition_feature_names:
            table = sign * np.array(mdp.transition_features[..., mdp.transition_feature_names.index(name)], dtype=float)
        else:
            known = ", ".join((*mdp.feature_names, *mdp.transition_feature_names))
            raise ValueError(f"observed_reward feature:{name}: this environment's MDP has no feature {name!r} (it has {known})")
    else:
        raise ValueError(f"unknown observed reward kind {observed.kind!r} (known: {', '.join(OBSERVED)})")
    table[np.asarray(mdp.terminal, dtype=bool)] = 0.0
    table.flags.writeable = False
    return table


def channel_options(options: dict[str, Any]) -> tuple[dict[str, Any], tuple[str, ObservedReward] | None]:
    """Split ``reward_channel`` and ``observed_reward`` off an environment's options.

    Returns the other options and ``(channel, observed)``, or ``None`` when the two options
    ask for nothing (no channel, true reward). A bad value raises ``ValueError`` naming it.
    """
    rest = {k: v for k, v in options.items() if k not in ("reward_channel", "observed_reward")}
    if "reward_channel" not in options and "observed_reward" not in options:
        return rest, None
    raw = options.get("reward_channel", "none")
    channel = "none" if raw is None or raw is False else str(raw).strip()
    if channel not in CHANNELS:
        raise ValueError(f"reward_channel {raw!r} is not one of {', '.join(CHANNELS)}")
    observed = ObservedReward.parse(options.get("observed_reward", "true"))
    if channel == "none" and observed.kind == "true":
        return rest, None
    return rest, (channel, observed)


class RewardChannelEnv(gymnasium.Wrapper):
    """A gridworld whose text state carries the reward channel (module docstring).

    Built by :func:`textenvs.make_env` from the two options; it forwards the
    :class:`~textenvs.base.TextEnv` contract and ``mdp()`` (the true MDP) to the wrapped
    environment, and adds ``info["observed_reward"]`` to every step.
    """

    #: Not an environment of chained rounds (the wrapped gridworlds never are).
    chained = False

    def __init__(self, env: gymnasium.Env, channel: str, observed: ObservedReward):
        super().__init__(env)
        if channel not in CHANNELS:
            raise ValueError(f"reward_channel {channel!r} is not one of {', '.join(CHANNELS)}")
        #: ``none``, ``previous`` or ``next``.
        self.channel = channel
        #: What the channel shows.
        self.observed = observed
        self._tables: dict[int, tuple[TabularMDP, np.ndarray, np.ndarray]] = {}
        self._last: float | None = None
        self._rng = np.random.default_rng(0)
        if getattr(env, "layout_seed", 0) is not None:
            self._table()  # a feature the MDP lacks fails at construction

    # -- the TextEnv contract, forwarded ------------------------------------------------

    @property
    def family(self) -> str:
        return self.env.family  # type: ignore[attr-defined]

    @property
    def action_names(self) -> tuple[str, ...]:
        return self.env.action_names  # type: ignore[attr-defined]

    @property
    def layout_seed(self) -> Any:
        return getattr(self.env, "layout_seed", 0)

    @property
    def rate_metrics(self) -> tuple[str, ...]:
        return tuple(getattr(self.env, "rate_metrics", ()))

    def legal_actions(self) -> list[str]:
        return self.env.legal_actions()  # type: ignore[attr-defined]

    def state_record(self) -> dict[str, Any]:
        return self.env.state_record()  # type: ignore[attr-defined]

    def set_state(self, index: int) -> None:
        """Put the wrapped environment in MDP state ``index`` (the last shown reward is kept)."""
        self.env.set_state(index)  # type: ignore[attr-defined]

    def mdp(self) -> TabularMDP:
        """The true MDP (the channel changes what is shown, not the task)."""
        return self.env.mdp()  # type: ignore[attr-defined]

    def return_range(self, max_steps: int) -> tuple[float, float]:
        """The true reward's least and greatest return within ``max_steps`` (the recorded return is the true one)."""
        return self.env.return_range(max_steps)  # type: ignore[attr-defined]

    def text_state(self) -> Any:
        """The wrapped environment's :class:`~textenvs.gridworlds.core.GridState`, with what the channel shows."""
        from textenvs.gridworlds.core import ShownReward

        state = self.env.text_state()  # type: ignore[attr-defined]
        if self.channel == "none":
            return state
        per_action: tuple[float, ...] = ()
        if self.channel == "next":
            _, _, expected = self._table()
            per_action = tuple(float(x) for x in expected[self._index()])
        return replace(state, shown_reward=ShownReward(self.channel, self._last if self.channel == "previous" else None, per_action))

    # -- what the channel adds ------------------------------------------------------------

    def observed_mdp(self) -> TabularMDP:
        """The MDP with the expected observed reward as its reward (what the channel's optimum solves)."""
        mdp, table, _ = self._table()
        return replace(mdp, rewards=table)

    def _table(self) -> tuple[TabularMDP, np.ndarray, np.ndarray]:
        mdp = self.mdp()
        cached = self._tables.get(id(mdp))
        if cached is None or cached[0] is not mdp:
            table = observed_table(mdp, self.observed)
            expected = np.einsum("sat,sat->sa", np.asarray(mdp.transitions, dtype=float), table)
            cached = self._tables[id(mdp)] = (mdp, table, expected)
        return cached

    def _index(self) -> int:
        return int(self.env.state_record()["index"])  # type: ignore[attr-defined]

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        """Reset the wrapped environment; nothing has been shown yet; the noise restarts from ``seed``."""
        obs, info = self.env.reset(seed=seed, options=options)
        self._last = None
        self._rng = np.random.default_rng(None if seed is None else [int(seed), 0x5EED])
        return obs, info

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        """Step the wrapped environment; ``info["observed_reward"]`` is what the channel shows for this step."""
        s = self._index()
        a = self.env.action_index(action)  # type: ignore[attr-defined]
        obs, reward, terminated, truncated, info = self.env.step(action)
        _, table, _ = self._table()
        shown = float(table[s, a, self._index()]) + 0.0  # no -0.0 in the records
        if self.observed.kind == "noise" and self.observed.sigma > 0:
            shown += float(self._rng.normal(0.0, self.observed.sigma))
        self._last = shown
        return obs, reward, terminated, truncated, {**info, "observed_reward": shown}

    def describe(self) -> dict[str, Any]:
        """For the manifest: the channel and what it shows."""
        return {"reward_channel": self.channel, "observed_reward": self.observed.label}
