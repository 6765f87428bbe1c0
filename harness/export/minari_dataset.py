"""A Minari dataset per run (Minari 0.5, arrow format), for offline-RL users.

The dataset id follows Minari's ``namespace/env/name-vN``: ``zso/<env>[-<variant>]/<agent>-<encoding>-<mode>-v0``;
``OUT`` is the datasets root (``MINARI_DATASETS_PATH=OUT`` loads it with ``minari.load_dataset``).
One Minari episode per zso episode, with the episode's seed:

observations
    ``T + 1`` of them: the MDP state index (``Discrete``) where the environment has an exact
    tabular MDP, otherwise the state as the run's encoding renders it (``Text``). The last
    one, the state the episode ended in, is not in the step records: each episode is
    replayed in the environment from its seed with the logged actions, and every replayed
    state is checked against the logged one, so the dataset is the run, not a re-run.
actions
    the index of the action taken in that step's legal-action list (``Discrete(max legal)``;
    one more index, the last, stands for a forfeit where a run has one).
rewards, terminations, truncations
    as logged.
infos
    aligned with the observations: ``probs`` and ``logprobs`` (the logged distribution over
    the legal actions, padded with 0 and NaN to the action space; NaN where none was logged)
    and ``n_legal``; the last row (no decision) holds 0, NaN and 0.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from harness.export import ExportError, Run, _slug, require

#: The namespace of every exported dataset.
NAMESPACE = "zso"
VERSION = 0


@dataclass(frozen=True)
class Replayed:
    """One episode after its replay: observations (``T + 1``) and action indices (``T``)."""

    observations: list[Any]
    actions: list[int | None]


def export(runs: list[Run], out: Path) -> list[Path]:
    """Write one dataset per run under the datasets root ``out``; returns the dataset folders."""
    minari = require("minari", "minari")
    from gymnasium import spaces

    out.mkdir(parents=True, exist_ok=True)
    written, taken = [], set()
    for run in runs:
        cfg = run.manifest.config
        env_name = NAMESPACE + "/" + _env_slug(cfg)
        dataset_id = f"{env_name}/{dataset_name(run, taken)}-v{VERSION}"
        episodes, index_obs, n_states = replay_run(run)
        n_legal = max(len(s.legal_actions) for steps in run.steps.values() for s in steps)
        forfeits = any(a is None for ep in episodes for a in ep.actions)
        action_space = spaces.Discrete(n_legal + int(forfeits))
        if index_obs:
            obs_space = spaces.Discrete(n_states)
        else:
            texts = [o for ep in episodes for o in ep.observations]
            obs_space = spaces.Text(max_length=max(len(t) for t in texts), min_length=0,
                                    charset="".join(sorted(set("".join(texts)))))
        buffers = [_buffer(minari, run, ep, replayed, n_legal, index_obs) for ep, replayed in zip(run.episodes, episodes)]
        with _datasets_root(out), warnings.catch_warnings():
            # Minari asks for authors, links and a gymnasium spec that a text environment has not.
            warnings.simplefilter("ignore", UserWarning)
            if (out / dataset_id).exists():
                raise ExportError(f"{out / dataset_id} already exists; choose another --out")
            minari.create_dataset_from_buffers(
                dataset_id, buffers, observation_space=obs_space, action_space=action_space,
                algorithm_name=f"{run.manifest.model.backend}:{run.who}",
                description=f"zso run {run.manifest.run_id}: {run.who} on {_env_slug(cfg)}, "
                f"encoding {cfg.encoding}, mode {cfg.mode}", data_format="arrow",
            )
        written.append(out / dataset_id)
    return written


def dataset_name(run: Run, taken: set[str]) -> str:
    """``<agent>-<encoding>-<mode>`` (Minari's dataset name), unique among ``taken`` of the same environment."""
    cfg = run.manifest.config
    base = _slug(f"{Path(run.who).name}-{cfg.encoding}-{cfg.mode}")
    name, number = base, 2
    while f"{_env_slug(cfg)}/{name}" in taken:
        name, number = f"{base}-{number}", number + 1
    taken.add(f"{_env_slug(cfg)}/{name}")
    return name


def _env_slug(cfg: Any) -> str:
    """``env[-variant]`` of a :class:`harness.config.RunConfig`."""
    return cfg.env + (f"-{cfg.variant}" if cfg.variant else "")


@contextlib.contextmanager
def _datasets_root(path: Path) -> Iterator[None]:
    """``MINARI_DATASETS_PATH`` set to ``path`` for the duration (Minari reads it on each call)."""
    before = os.environ.get("MINARI_DATASETS_PATH")
    os.environ["MINARI_DATASETS_PATH"] = str(path.resolve())
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("MINARI_DATASETS_PATH", None)
        else:
            os.environ["MINARI_DATASETS_PATH"] = before


def _buffer(minari: Any, run: Run, ep: Any, replayed: Replayed, n_legal: int, index_obs: bool) -> Any:
    steps = run.steps[ep.episode]
    width = n_legal
    probs = np.zeros((len(steps) + 1, width))
    logprobs = np.full((len(steps) + 1, width), np.nan)
    legal = np.zeros(len(steps) + 1, dtype=np.int64)
    for i, s in enumerate(steps):
        legal[i] = len(s.legal_actions)
        if s.probs is not None:
            probs[i, :len(s.probs)] = s.probs
        else:
            probs[i, :len(s.legal_actions)] = np.nan
        if s.logprobs is not None:
            logprobs[i, :len(s.logprobs)] = s.logprobs
    forfeit = n_legal  # the extra index, present only when some step forfeited
    return minari.data_collector.EpisodeBuffer(
        id=ep.episode, seed=ep.seed,
        observations=np.asarray(replayed.observations, dtype=np.int64) if index_obs else list(replayed.observations),
        actions=np.asarray([forfeit if a is None else a for a in replayed.actions], dtype=np.int64),
        rewards=np.asarray([s.reward for s in steps], dtype=np.float64),
        terminations=np.asarray([s.terminated for s in steps]), truncations=np.asarray([s.truncated for s in steps]),
        # A 1-d array would be written with an empty shape that Minari 0.5 cannot read back: a list.
        infos={"probs": probs, "logprobs": logprobs, "n_legal": legal.tolist()},
    )


def replay_run(run: Run) -> tuple[list[Replayed], bool, int]:
    """Replay every episode of ``run`` from its seed; ``(episodes, observations are state indices, number of states)``.

    Raises :class:`ExportError` naming the episode and step where the environment does not
    reproduce the logged state.
    """
    from textenvs import get_encoding

    cfg = run.manifest.config
    env = cfg.make_env()
    try:
        index_obs = callable(getattr(env, "mdp", None))
        n_states = int(env.mdp().transitions.shape[0]) if index_obs else 0
        encoding = get_encoding(env.family, cfg.encoding)
        observe = (lambda: int(env.state_index)) if index_obs else (lambda: encoding.render_state(env.text_state()))
        episodes = []
        for ep in run.episodes:
            env.reset(seed=ep.seed, options={"episode_index": ep.episode})
            observations, actions = [], []
            for s in run.steps[ep.episode]:
                if env.state_record() != s.state:
                    raise ExportError(f"{run.dir}: episode {ep.episode} does not replay at step {s.t}: "
                                      f"logged state {s.state}, replayed {env.state_record()}")
                observations.append(observe())
                actions.append(None if s.action is None else s.legal_actions.index(s.action))
                if s.action is not None:
                    env.step(s.action)
            observations.append(observe())
            episodes.append(Replayed(observations, actions))
        return episodes, index_obs, n_states
    finally:
        env.close()
