"""Play many episodes in lockstep and write every step.

Up to ``batch_size`` episodes are live at once; at each step all their pending decisions
go to the agent (and so to the backend) as one batch. A finished episode is written at
once and its slot starts the next episode. Ctrl-C stops the run between steps: finished
episodes are already on disk and the manifest says ``interrupted``.
"""

from __future__ import annotations

import contextlib
import itertools
import datetime as dt
import importlib.metadata
import platform
import re
import signal
import subprocess
import threading
import time
import zlib
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

from harness.agents import Agent, Decision, baseline_options, baseline_spec, build_reference_agent, make_agent
from harness.agents.language import ChooseAgent
from harness.backends import Backend, load_backend
from harness.config import EPISODE_SEED_RULE, RunConfig
from harness.records import (
    EnvironmentIdentity, EpisodeRecord, Manifest, ModelIdentity, ResultsError, ResumeState, RunWriter, StepRecord, Timing,
    load_episodes,
)
from harness.stopping import decide, gd_references
from textenvs import ENVS, TextEnv, get_encoding

#: Distributions whose versions every manifest records (when installed).
RECORDED_PACKAGES = (
    "zso", "torch", "transformers", "gguf", "accelerate", "chess", "gymnasium", "minigrid",
    "numpy", "scipy", "imitation", "stable-baselines3", "vllm",
)


class AgentPolicy:
    """A policy ``(state, legal) -> action`` played by an agent, one decision at a time.

    A reply that yields no action (a forfeit) is replaced by a random legal action.
    """

    def __init__(self, agent: Agent, seed: int):
        self.agent = agent
        self.rng = np.random.default_rng([seed, 2])

    def __call__(self, state: Any, legal: list[str]) -> str:
        choice = self.agent.act([Decision(state, tuple(legal), self.rng)])[0]
        return choice.action if choice.action is not None else str(self.rng.choice(legal))


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run; the run directory holds every finished episode."""

    def __init__(self, run_dir: Path, episodes_done: int):
        self.run_dir = run_dir
        self.episodes_done = episodes_done
        super().__init__(f"interrupted: {episodes_done} finished episode(s) saved in {run_dir}")


@dataclass
class _Episode:
    """The runner's bookkeeping for one live episode."""

    index: int
    seed: int
    env: Any
    rng: np.random.Generator
    start_state: dict[str, Any]
    reset_info: dict[str, Any]
    started: float
    t: int = 0
    total_reward: float = 0.0
    invalid: Counter = field(default_factory=Counter)
    fallbacks: int = 0
    metrics: dict[str, list[float]] = field(default_factory=dict)


def agent_stream(seed: int, config: RunConfig) -> list[int]:
    """The seed of an episode's agent stream (listing order, sampling, fallbacks).

    It is independent of the environment's stream. A language model's stream also depends on
    the encoding, so the same episode under two encodings is neither listed in the same
    order nor sampled with the same numbers: that would make its choices agree across
    encodings for no reason of its own (small models follow list positions). A reference
    agent never reads the encoding, so its stream is the same under every one.
    """
    if config.is_baseline:
        return [seed, 1]
    return [seed, 1, zlib.crc32(str(config.encoding).encode())]


def default_run_dir(config: RunConfig, root: str | Path = "results", label: str | None = None) -> Path:
    """``results/<time>-<env>-<encoding>-<model>`` (``label`` in place of the model's name when given)."""
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    model = re.sub(r"[^A-Za-z0-9.]+", "-", Path(label or config.model).name).strip("-")
    shard = "" if config.shard is None else "-shard" + config.shard.replace("/", "of")
    return Path(root) / f"{stamp}-{config.env}-{config.encoding}-{model}-{config.mode}{shard}"


class Runner:
    """Runs one configuration against one backend."""

    def __init__(self, config: RunConfig, backend: Backend | None = None, agent: Agent | None = None):
        """Load ``config``'s backend (unless ``backend`` is given) and build its agent.

        A baseline run (``config.agent``) builds its reference agent (planned or trained
        from the run's seed). A ready ``agent`` replaces both; it must have an ``info()``
        that says what it is, for the manifest, and it belongs to the caller.
        """
        self.config = config
        self._policy_backends: dict[str, Backend] = {}
        # Fail on a bad environment, variant, option or encoding before loading a model.
        self.encoding = get_encoding(config.env, config.encoding)
        probe = self._new_env()
        if not isinstance(probe, TextEnv):
            raise TypeError(f"environment {config.env!r} does not implement textenvs.TextEnv")
        self._envs: list[Any] = [probe]
        #: GD's references when the run stops at a target (:mod:`harness.stopping`).
        self._gd_refs = None
        if config.episodes_target is not None:
            if config.shard is not None:
                raise ValueError("a target for the episodes decides on all of them: it cannot be combined with a shard")
            refs_env = self._new_env()  # its own: over layouts, it is reset to rebuild each episode's
            try:
                self._gd_refs = gd_references(refs_env, config.max_steps, config.episode_seed)
            finally:
                if self._gd_refs is None or self._gd_refs.env is None:
                    refs_env.close()
        self.backend: Backend | None = None
        #: A backend given to the runner belongs to the caller, who closes it.
        self._owns_backend = backend is None
        #: A reference agent built here is closed here.
        self._owned_agent: Any = None
        if agent is None and config.is_baseline:
            # The manifest records every option the agent was built with, defaults included.
            self.config = config = replace(config, agent=baseline_spec(config.agent.name, baseline_options(config.agent.options)))
            agent = self._owned_agent = build_reference_agent(config)
        elif agent is None:
            self.backend = backend if backend is not None else load_backend(config.backend, config.model, config.backend_options)
            agent = make_agent(config, self.backend, self.encoding)
        self.agent = agent

    def _new_env(self) -> Any:
        return self.config.make_env(self._model_policy)

    def _model_policy(self, model: str) -> "AgentPolicy":
        """A policy played by ``model`` (choose mode, same encoding), for ``model:NAME`` options."""
        cfg = self.config
        if model not in self._policy_backends:
            self._policy_backends[model] = load_backend(cfg.backend, model, cfg.backend_options)
        agent = ChooseAgent(self._policy_backends[model], self.encoding, cfg.temperature, cfg.score_norm, cfg.list_order)
        return AgentPolicy(agent, seed=cfg.seed)

    def run(self, out: str | Path | None = None, progress: Any = None, resume: ResumeState | None = None) -> Path:
        """Play all episodes (with ``resume``, those the run has not finished); returns the run directory.

        ``progress`` is an optional callable ``(episodes_done, steps_done)`` called after
        every step (the CLI draws a progress bar with it). Ctrl-C and SIGTERM stop the run
        between writes: every finished episode is on disk, the manifest says
        ``interrupted``, and :class:`RunInterrupted` is raised. Each episode keeps its own
        seed, so a resumed run plays exactly the episodes an uninterrupted one would have.
        With ``episodes_target`` set, episodes are played in rounds of ``batch_size`` until
        GD's interval is decisive or the budget is spent (:mod:`harness.stopping`; the state
        is the manifest's ``stopping``, replayed from the finished episodes on resume).
        """
        cfg = self.config
        run_dir = Path(out or cfg.out or default_run_dir(cfg))
        finished = resume.finished if resume is not None else frozenset()
        # Lazily: a run of 10**8 episodes holds no list of them.
        queue = (i for i in cfg.episode_indices() if i not in finished)
        n_todo = len(cfg.episode_indices()) - sum(1 for i in finished if i in cfg.episode_indices())
        if resume is not None:
            manifest = replace(resume.manifest, counts=dict(resume.manifest.counts), resumes=list(resume.manifest.resumes))
            manifest.status, manifest.finished = "running", None
            manifest.usage = None  # recomputed from the steps file when the run ends
            manifest.counts = {"episodes": len(finished), "steps": resume.steps}
            manifest.resumes = [*manifest.resumes, {
                "at": _now(), "status_before": resume.status_before, "episodes_kept": len(finished),
                "dropped": list(resume.dropped),
            }]
            writer = RunWriter(run_dir, manifest, resume=True)
        else:
            writer = RunWriter(run_dir, self._manifest(run_dir))
        n_slots = min(cfg.batch_size, max(n_todo, 1))
        while len(self._envs) < n_slots:
            self._envs.append(self._new_env())
        done, steps = len(finished), resume.steps if resume is not None else 0
        returns = {e.episode: e.total_reward for e in load_episodes(run_dir) if e.episode in finished} if finished else {}

        def play(indices: Iterable[int]) -> None:
            """Play episodes ``indices`` to their end, ``batch_size`` at a time."""
            nonlocal done, steps
            queue = iter(indices)
            live: list[_Episode] = []

            def start_next(env: Any) -> None:
                """Start episodes in ``env`` until one needs a decision (or none are left)."""
                nonlocal done
                for index in queue:
                    ep = self._start(env, index, cfg.episode_seed(index))
                    if ep.env.legal_actions():
                        live.append(ep)
                        return
                    # Over before its first decision (the opponent mated at once, say).
                    record = self._record(ep, ep.reset_info, True, False, "terminated")
                    writer.episode(record)
                    returns[record.episode] = record.total_reward
                    done += 1

            for env in self._envs[:n_slots]:
                start_next(env)
            while live:
                decisions = [
                    Decision(ep.env.text_state(), tuple(ep.env.legal_actions()), ep.rng, ep.env.state_record()) for ep in live
                ]
                choices = self.agent.act(decisions)
                current, live = live, []
                for ep, decision, choice in zip(current, decisions, choices):
                    ended = self._apply(ep, decision, choice, writer)
                    steps += 1
                    if ended is None:
                        live.append(ep)
                        continue
                    writer.episode(ended)
                    returns[ended.episode] = ended.total_reward
                    done += 1
                    start_next(ep.env)
                if progress is not None:
                    progress(done, steps)

        try:
            with _sigterm_as_interrupt():
                if self._gd_refs is None:
                    play(queue)
                else:
                    # Rounds of batch_size episodes until GD's interval is decisive (harness.stopping).
                    while True:
                        state = decide(returns, self._gd_refs, target=float(cfg.episodes_target), budget=cfg.episodes,
                                       round=cfg.batch_size)
                        writer.manifest.stopping = state.to_json()
                        writer.write_manifest()
                        if state.stopped:
                            break
                        round_ = itertools.takewhile(lambda i: i < state.next_end, cfg.episode_indices())
                        play(i for i in round_ if i not in returns)
        except KeyboardInterrupt:
            writer.close("interrupted", _now())
            raise RunInterrupted(run_dir, done) from None
        except BaseException:
            with contextlib.suppress(ResultsError):  # the first failure is the one to report
                writer.close("failed", _now())
            raise
        writer.close("complete", _now())
        return run_dir

    def close(self) -> None:
        """Close the environments (and their engine processes) and the backend it loaded."""
        for env in self._envs:
            env.close()
        if self.backend is not None and self._owns_backend:
            self.backend.close()
        if self._owned_agent is not None:
            self._owned_agent.close()
        for backend in self._policy_backends.values():
            backend.close()
        if self._gd_refs is not None:
            self._gd_refs.close()

    def __enter__(self) -> "Runner":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- one episode ----------------------------------------------------------------------

    def _start(self, env: Any, index: int, seed: int) -> _Episode:
        _, info = env.reset(seed=seed, options={"episode_index": index})
        rng = np.random.default_rng(agent_stream(seed, self.config))
        return _Episode(index, seed, env, rng, env.state_record(), dict(info), time.perf_counter())

    @staticmethod
    def _record(ep: _Episode, info: dict[str, Any], terminated: bool, truncated: bool, end_reason: str) -> EpisodeRecord:
        """The record of ``ep``, which has just ended; ``info`` is the last one the env gave."""
        # An episode cut at the step limit did not reach its goal.
        success = False if truncated else info.get("success")
        return EpisodeRecord(
            episode=ep.index, seed=ep.seed, start_state=ep.start_state, reset_info=ep.reset_info,
            steps=ep.t, total_reward=ep.total_reward, terminated=terminated, truncated=truncated,
            end_reason=end_reason, success=None if success is None else bool(success),
            outcome=info.get("outcome"), invalid_replies=sum(ep.invalid.values()),
            invalid_by_kind=dict(ep.invalid), fallback_actions=ep.fallbacks,
            metrics={k: float(np.mean(v)) for k, v in ep.metrics.items()},
            wall_s=time.perf_counter() - ep.started,
        )

    def _apply(self, ep: _Episode, decision: Decision, choice: Any, writer: RunWriter) -> EpisodeRecord | None:
        """Take ``choice`` in ``ep``; write the step; return the episode record if it ended."""
        state = decision.record
        for attempt in choice.attempts:
            ep.invalid[attempt.error_kind] += 1
        ep.fallbacks += choice.source == "fallback"
        start = time.perf_counter()
        if choice.action is None:  # forfeit
            reward, terminated, truncated, info = 0.0, False, False, {"outcome": "forfeit", "success": False}
        else:
            _, reward, terminated, truncated, info = ep.env.step(choice.action)
            info = dict(info)
        env_s = time.perf_counter() - start
        ep.t += 1
        truncated = bool(truncated) or (not terminated and choice.action is not None and ep.t >= self.config.max_steps)
        ep.total_reward += float(reward)
        if choice.source != "fallback":  # play metrics describe the agent's own moves
            for name, value in (info.get("metrics") or {}).items():
                ep.metrics.setdefault(name, []).append(float(value))
        writer.step(StepRecord(
            episode=ep.index, t=ep.t - 1, state=state, encoding=self.config.encoding, mode=self.agent.mode,
            prompt=choice.prompt, reply=choice.reply, action=choice.action, action_source=choice.source,
            legal_actions=list(decision.legal), logprobs=choice.logprobs, probs=choice.probs,
            attempts=list(choice.attempts), reward=float(reward), terminated=bool(terminated),
            truncated=truncated, info=info,
            timing=Timing(choice.backend_s, env_s, choice.backend_s + env_s), usage=choice.usage,
            finish_reason=choice.finish_reason,
        ))
        if choice.action is not None and not terminated and not truncated:
            return None
        end_reason = "forfeit" if choice.action is None else "terminated" if terminated else "truncated"
        return self._record(ep, info, bool(terminated), truncated, end_reason)

    # -- provenance -----------------------------------------------------------------------

    def _manifest(self, run_dir: Path) -> Manifest:
        cfg = self.config
        env = self._envs[0]
        entry = ENVS.entry(cfg.env)
        return Manifest(
            run_id=run_dir.name,
            created=_now(),
            config=replace(cfg, out=str(run_dir)),
            model=ModelIdentity.from_json(asdict((self.backend or self.agent).info())),
            environment=EnvironmentIdentity(
                id=cfg.env,
                variant=cfg.variant or entry.metadata.get("default_variant"),
                options=cfg.env_options,
                encoding=cfg.encoding,
                # What the environment says of itself (a game's generated rules), and which
                # of its step metrics are rates.
                description=env.describe() if callable(getattr(env, "describe", None)) else None,
                rate_metrics=tuple(getattr(env, "rate_metrics", ())),
                # The least and greatest return possible within max_steps: the range of the
                # bounded-mean intervals of summaries (harness.stats.betting_interval).
                return_range=episode_return_range(env, cfg.max_steps),
                details={
                    "class": f"{type(env).__module__}.{type(env).__qualname__}",
                    "encoding_class": f"{type(self.encoding).__module__}.{type(self.encoding).__qualname__}",
                    "option_models": {name: asdict(b.info()) for name, b in self._policy_backends.items()},
                },
            ),
            packages=package_versions(),
            code=code_revision(),
            seeds={"base": cfg.seed, "rule": EPISODE_SEED_RULE},
            host={"python": platform.python_version(), "platform": platform.platform(), "machine": platform.machine()},
        )


def episode_return_range(env: Any, max_steps: int) -> tuple[float, float] | None:
    """``[least, greatest]`` return an episode of ``env`` can have within ``max_steps``
    decisions, as the environment states it (``return_range``), or ``None`` when unknown."""
    own = getattr(env, "return_range", None)
    found = own(int(max_steps)) if callable(own) else None
    return None if found is None else (float(found[0]), float(found[1]))


class Terminated(KeyboardInterrupt):
    """SIGTERM during a run: handled like Ctrl-C."""


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`Terminated` (in the main thread; elsewhere a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def package_versions() -> dict[str, str]:
    """Installed versions of the packages a result depends on."""
    versions = {}
    for name in RECORDED_PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def code_revision() -> dict[str, Any]:
    """zso's version and, in a git checkout, the commit and whether the tree was modified."""
    root = Path(__file__).resolve().parents[1]
    info: dict[str, Any] = {"version": importlib.metadata.version("zso"), "revision": None, "dirty": None}
    try:
        info["revision"] = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True, timeout=5
        ).stdout.strip() or None
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=root, capture_output=True, text=True, check=True, timeout=5
        ).stdout
        info["dirty"] = bool(status.strip())
    except (OSError, subprocess.SubprocessError):
        pass
    return info
