"""Run directories read into the inputs of the fits, through :mod:`harness.records`' typed readers.

Two kinds of run, told apart by the environment the manifest names:

* **tabular** (gridworlds: every environment with an exact ``mdp()``): the environment is
  rebuilt from the manifest (:meth:`RunInfo.make_env`) and each finished
  episode becomes a :class:`TabularEpisode`: the MDP state indices it visited
  (``state["index"]`` of each step), the indices of the actions taken in
  ``mdp.action_names``, and, when the run recorded one (choose mode, RL baselines), the
  per-step action distribution over all the MDP's actions. A terminated episode also gets
  the (absorbing) state it ended in, which finite-horizon MCE IRL needs; it is the only
  terminal successor of the last state that matches the recorded reward, or, when that
  is ambiguous (slippery ice), the state reached by replaying the episode's seed and
  actions in the rebuilt environment.
* **chess**: each decision becomes an :class:`irl.choice.Decision` whose rows are the
  features (:mod:`textenvs.chess.features`) of every legal move and whose target is the chosen move,
  or the recorded distribution over the legal moves (``targets="probs"``).

Only finished episodes (those in ``episodes.jsonl``) are read. Episodes that cannot be
used are skipped and counted by reason in ``skipped``: a forfeit (the agent gave up, so
the trajectory stops in a state that is not absorbing) or no decision at all. Steps whose
action came from the harness's fallback (generate mode) are kept: they are what happened.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from harness.records import EpisodeRecord, ResultsError, StepRecord, load_manifest, load_steps, sound_episodes
from irl.choice import Decision

__all__ = [
    "RunInfo",
    "TabularEpisode",
    "TabularRun",
    "ChessGame",
    "ChessRun",
    "TARGETS",
    "read_info",
    "load_tabular",
    "load_chess",
]

#: What a fit is fitted to: the recorded action distributions where present, or the actions.
TARGETS = ("probs", "actions")


@dataclass(frozen=True)
class RunInfo:
    """Who played what: the identity of a run, read from its manifest."""

    run_dir: str
    run_id: str
    #: ``manifest.model.name`` (a model, or a baseline agent's name).
    model: str
    #: ``manifest.model.backend`` (:data:`harness.records.BASELINE_BACKEND` for reference agents).
    backend: str
    env: str
    variant: str | None
    options: dict[str, Any]
    encoding: str
    mode: str
    #: The run's step limit: the horizon of finite-horizon fits.
    max_steps: int
    seed: int
    #: Whether a reference agent (``zso baseline``), not a language model, played.
    is_baseline: bool = False
    #: The least and greatest return possible within the step limit (the manifest's
    #: ``environment.return_range``), or ``None`` when the run did not record it.
    return_range: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if self.return_range is not None:  # read back from JSON as a list
            object.__setattr__(self, "return_range", (float(self.return_range[0]), float(self.return_range[1])))

    @property
    def env_label(self) -> str:
        """``env/variant`` (``env`` alone without a variant)."""
        return f"{self.env}/{self.variant}" if self.variant else self.env

    @property
    def agent(self) -> str:
        """A short name for tables: the model's, or ``baseline:<name>``."""
        return f"baseline:{self.model}" if self.is_baseline else self.model

    def group_key(self) -> tuple[str, str, str, str, str, str]:
        """Runs of one agent on one environment: encoding consistency compares within it.

        Model (and backend), environment, variant, options and mode: everything but the
        encoding.
        """
        import json

        return (self.model, self.backend, self.env, str(self.variant), json.dumps(self.options, sort_keys=True), self.mode)

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict of the fields."""
        from dataclasses import asdict

        return asdict(self)

    def make_env(self) -> Any:
        """The run's environment, rebuilt as every run is (:func:`harness.config.make_run_env`)."""
        from harness.config import make_run_env

        return make_run_env(self.env, self.variant, self.options)


def read_info(run_dir: str | Path) -> RunInfo:
    """The :class:`RunInfo` of ``run_dir`` (reads only its manifest)."""
    manifest = load_manifest(run_dir)
    cfg, env = manifest.config, manifest.environment
    return RunInfo(
        run_dir=str(run_dir),
        run_id=str(manifest.run_id or Path(run_dir).name),
        model=manifest.model.name,
        backend=manifest.model.backend,
        env=env.id,
        variant=env.variant,
        options=dict(env.options),
        encoding=env.encoding,
        mode=cfg.mode,
        max_steps=int(cfg.max_steps),
        seed=int(cfg.seed),
        is_baseline=manifest.is_baseline,
        return_range=env.return_range,
    )


def _finished(run_dir: str | Path) -> tuple[list[EpisodeRecord], dict[int, list[StepRecord]]]:
    """Finished episode records (by episode index) and their steps in order."""
    episodes = sound_episodes(run_dir)
    done = {e.episode for e in episodes}
    steps: dict[int, list[StepRecord]] = defaultdict(list)
    for step in load_steps(run_dir):
        if step.episode in done:
            steps[step.episode].append(step)
    for ep_steps in steps.values():
        ep_steps.sort(key=lambda s: s.t)
    return episodes, steps


# -- tabular --------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class TabularEpisode:
    """One finished episode as MDP indices."""

    episode: int
    seed: int
    #: ``[T]`` the states of the decisions, or ``[T + 1]`` with the absorbing final state
    #: of a terminated episode.
    states: np.ndarray
    #: ``[T]`` the actions taken (indices into ``mdp.action_names``).
    actions: np.ndarray
    #: ``[T, A]`` the recorded action distributions over all MDP actions, or ``None``.
    probs: np.ndarray | None
    total_reward: float
    end_reason: str

    @property
    def n_decisions(self) -> int:
        """Number of decisions ``T``."""
        return len(self.actions)

    @property
    def trajectory(self) -> tuple[np.ndarray, np.ndarray]:
        """``(states, actions)``: an :data:`irl.mce.Trajectory`."""
        return self.states, self.actions


@dataclass(frozen=True, eq=False)
class TabularRun:
    """A gridworld run ready for MCE IRL."""

    info: RunInfo
    mdp: Any  # textenvs.mdp.TabularMDP
    #: The usable episodes, in episode order.
    episodes: tuple[TabularEpisode, ...]
    #: Total reward of every finished episode (skipped ones included).
    returns: tuple[float, ...]
    #: Episodes left out, by reason.
    skipped: dict[str, int] = field(default_factory=dict)
    #: ``[S, A]``: the policy the agent played, when it is known exactly (a planned
    #: reference agent, :func:`harness.agents.known_policy`; over layouts, each layout's
    #: policy in its part of the stacked states); ``None`` otherwise.
    policy: Any = None
    #: For a run over layouts (``mdp`` a :class:`~textenvs.mdp.StackedMDP`): the layout
    #: (index into ``mdp.parts``) of each entry of ``returns``; ``None`` on one layout.
    layouts: tuple[int, ...] | None = None

    @property
    def n_layouts(self) -> int:
        """How many layouts the episodes were played on (1 unless the run drew one per episode)."""
        return len(getattr(self.mdp, "parts", ())) or 1

    @property
    def horizon(self) -> int:
        """The run's step limit (``max_steps``)."""
        return self.info.max_steps

    @property
    def n_decisions(self) -> int:
        """Decisions over the usable episodes."""
        return sum(e.n_decisions for e in self.episodes)

    @property
    def has_probs(self) -> bool:
        """Whether every usable episode recorded its action distributions."""
        return bool(self.episodes) and all(e.probs is not None for e in self.episodes)


def _final_state(mdp: Any, s: int, a: int, reward: float, replay: Any) -> int:
    """The absorbing state a terminated episode ended in (module docstring)."""
    candidates = np.flatnonzero((mdp.transitions[s, a] > 0) & np.asarray(mdp.terminal, dtype=bool))
    candidates = [int(c) for c in candidates if abs(float(mdp.rewards[s, a, c]) - reward) <= 1e-6 * max(1.0, abs(reward))]
    if len(candidates) == 1:
        return candidates[0]
    return replay()


def _replay_final(env: Any, info: RunInfo, record: EpisodeRecord, steps: Sequence[StepRecord]) -> int:
    """Replay an episode from its seed; the state index it ends in."""
    env.reset(seed=record.seed, options={"episode_index": record.episode})
    for step in steps:
        if int(env.state_record()["index"]) != int(step.state["index"]):
            raise ResultsError(
                f"{info.run_dir}: replaying episode {record.episode} from its seed does not reproduce "
                f"the recorded state at t={step.t}; the final state cannot be recovered"
            )
        env.step(step.action)
    return int(env.state_record()["index"])


def _tabular_episode(
    run_dir: str | Path, info: RunInfo, mdp: Any, record: EpisodeRecord, ep_steps: Sequence[StepRecord], replay_env: Any,
) -> TabularEpisode | str:
    """One finished episode as indices of ``mdp``, or the reason it is skipped."""
    if not ep_steps:
        return "no decisions"
    if record.end_reason == "forfeit" or any(s.action is None for s in ep_steps):
        return "forfeit"
    A = mdp.n_actions
    names = list(mdp.action_names)
    states, actions, dists = [], [], []
    for s in ep_steps:
        where = f"{run_dir}: episode {record.episode} t={s.t}"
        index = s.state.get("index")
        if index is None or not 0 <= int(index) < mdp.n_states:
            raise ResultsError(f"{where}: state record {s.state} has no MDP index in 0..{mdp.n_states - 1}")
        if s.action not in names:
            raise ResultsError(f"{where}: action {s.action!r} is not one of the MDP's {names}")
        states.append(int(index))
        actions.append(names.index(s.action))
        if s.probs is not None:
            dist = np.zeros(A)
            for name, p in zip(s.legal_actions, s.probs):
                dist[names.index(name)] += float(p)
            total = dist.sum()
            dists.append(dist / total if total > 0 else None)
        else:
            dists.append(None)
    for t in range(len(states) - 1):
        if mdp.transitions[states[t], actions[t], states[t + 1]] <= 0:
            raise ResultsError(
                f"{run_dir}: episode {record.episode} moves from state {states[t]} to {states[t + 1]} "
                f"by {names[actions[t]]!r}, impossible in the MDP of {info.env_label}: is it the same layout?"
            )
    if record.terminated:
        final = _final_state(mdp, states[-1], actions[-1], float(ep_steps[-1].reward),
                             lambda: _replay_final(replay_env(), info, record, ep_steps))
        states.append(final)
    probs = None if any(d is None for d in dists) else np.array(dists)
    return TabularEpisode(
        episode=int(record.episode), seed=int(record.seed),
        states=np.array(states, dtype=int), actions=np.array(actions, dtype=int), probs=probs,
        total_reward=float(record.total_reward), end_reason=str(record.end_reason),
    )


def load_tabular(run_dir: str | Path, *, mdp: Any = None) -> TabularRun:
    """Read a gridworld run (module docstring).

    An environment that draws a new layout every episode (``layout_seed=None``) is read
    over every episode's own layout: each episode's MDP is rebuilt by resetting the
    environment with the episode's seed, and the run's MDP is the
    :class:`~textenvs.mdp.StackedMDP` of the layouts met, each weighted by its number of
    episodes (state indices are shifted to the stacked numbering).

    Args:
        run_dir: the run directory.
        mdp: the environment's :class:`~textenvs.mdp.TabularMDP`; rebuilt from the manifest
            when not given.

    Raises:
        ResultsError: a run whose states or actions do not fit the MDP (a different layout,
            a state record without ``index``).
    """
    info = read_info(run_dir)
    env = None

    def replay_env() -> Any:
        nonlocal env
        if env is None:
            env = info.make_env()
        return env

    try:
        records, steps = _finished(run_dir)
        if mdp is None:
            env = info.make_env()
            if not hasattr(env, "mdp"):
                raise ResultsError(f"{run_dir}: environment {info.env!r} exports no tabular MDP")
            if getattr(env, "layout_seed", 0) is None:
                return _load_layouts(run_dir, info, env, records, steps)
            mdp = env.mdp()
        episodes: list[TabularEpisode] = []
        skipped: dict[str, int] = defaultdict(int)
        for record in records:
            got = _tabular_episode(run_dir, info, mdp, record, steps.get(record.episode, []), replay_env)
            if isinstance(got, str):
                skipped[got] += 1
            else:
                episodes.append(got)
        returns = tuple(float(r.total_reward) for r in records)
    finally:
        if env is not None:
            env.close()
    return TabularRun(info, mdp, tuple(episodes), returns, dict(skipped), _known_policy(run_dir, info, mdp))


def _known_policy(run_dir: str | Path, info: RunInfo, mdp: Any) -> np.ndarray | None:
    """The policy a reference agent played, when known exactly (:func:`harness.agents.known_policy`)."""
    if not info.is_baseline:
        return None
    from harness.agents import known_policy

    manifest = load_manifest(run_dir)
    agent = manifest.config.agent
    details = {**agent.options, **manifest.model.own_details}  # what the agent recorded wins
    # Over layouts, the agent planned on each episode's own layout: its policy on the
    # stacked MDP is each part's policy, side by side.
    policies = [known_policy(agent.name, part, details) for part in getattr(mdp, "parts", (mdp,))]
    if any(p is None for p in policies):
        return None
    return np.concatenate([np.asarray(p, dtype=float) for p in policies])


def _load_layouts(run_dir: str | Path, info: RunInfo, env: Any, records: Sequence[EpisodeRecord],
                  steps: dict[int, list[StepRecord]]) -> TabularRun:
    """:func:`load_tabular` of a run with a new layout every episode (see there)."""
    from dataclasses import replace

    from textenvs.mdp import StackedMDP

    parts: list[Any] = []
    where: dict[Any, int] = {}
    counts: list[int] = []
    placed: list[tuple[int, TabularEpisode]] = []
    skipped: dict[str, int] = defaultdict(int)
    layouts: list[int] = []
    for record in records:
        env.reset(seed=record.seed, options={"episode_index": record.episode})
        key = env.state_record().get("layout_seed", record.seed)
        if key not in where:
            where[key] = len(parts)
            parts.append(env.mdp())
            counts.append(0)
        i = where[key]
        layouts.append(i)
        got = _tabular_episode(run_dir, info, parts[i], record, steps.get(record.episode, []), lambda: env)
        if isinstance(got, str):
            skipped[got] += 1
            continue
        counts[i] += 1
        placed.append((i, got))
    if not parts:
        raise ResultsError(f"{run_dir}: no finished episode to read a layout from")
    # Every finished episode's layout stays (those of skipped episodes with weight 0), so that
    # runs of the same seeds under other encodings share one stacked numbering.
    stacked = StackedMDP.of(parts, counts if sum(counts) else None)
    offsets = stacked.offsets
    episodes = tuple(replace(ep, states=ep.states + offsets[i]) for i, ep in placed)
    returns = tuple(float(r.total_reward) for r in records)
    return TabularRun(info, stacked, episodes, returns, dict(skipped), _known_policy(run_dir, info, stacked), tuple(layouts))


# -- chess ----------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class ChessGame:
    """The agent's decisions in one game."""

    episode: int
    seed: int
    decisions: tuple[Decision, ...]
    #: The FEN of each decision and the move chosen (UCI).
    fens: tuple[str, ...]
    moves: tuple[str, ...]
    #: The index of the chosen move among each decision's legal moves.
    chosen: tuple[int, ...]
    total_reward: float
    #: Per decision, the reference utility of every legal move (Stockfish's evaluation
    #: change, pawns, for the mover), when asked for.
    utilities: tuple[np.ndarray, ...] | None = None
    #: Per decision, the position-blind features of every legal move (:mod:`irl.analysis.priors`).
    prior: tuple[np.ndarray, ...] | None = None


@dataclass(frozen=True, eq=False)
class ChessRun:
    """A chess run ready for the choice model."""

    info: RunInfo
    games: tuple[ChessGame, ...]
    #: The feature of each column of the decisions' feature matrices.
    feature_names: tuple[str, ...]
    #: Total reward of every finished game.
    returns: tuple[float, ...]
    #: ``"probs"`` when every target is a recorded distribution, else ``"actions"``.
    targets: str
    skipped: dict[str, int] = field(default_factory=dict)
    #: The fit kind (:mod:`irl.analysis.kinds`): ``"chess"``, or ``"game"`` for a game solved exactly.
    kind: str = "chess"
    #: The position-blind prior's feature names (the columns of every game's ``prior``); empty: no prior.
    prior_names: tuple[str, ...] = ()

    @property
    def decisions(self) -> list[Decision]:
        """All decisions, game after game."""
        return [d for g in self.games for d in g.decisions]

    @property
    def n_decisions(self) -> int:
        """Number of decisions over all games."""
        return sum(len(g.decisions) for g in self.games)

    @property
    def prior(self) -> list[Decision] | None:
        """All decisions with the position-blind prior's features (``None`` without a prior)."""
        if not self.prior_names or any(g.prior is None for g in self.games):
            return None
        return [Decision(x, d.target, d.weight) for g in self.games for d, x in zip(g.decisions, g.prior)]


def choice_target(step: StepRecord, legal: Sequence[str], targets: str) -> int | np.ndarray:
    """What the choice model fits at one step: the recorded distribution over ``legal`` (with
    ``targets == "probs"`` where the step has one), else the index of the move played."""
    if targets == "probs" and step.probs is not None and len(step.probs) == len(legal):
        p = np.asarray(step.probs, dtype=float)
        return p / p.sum()
    return list(legal).index(step.action)


def load_chess(
    run_dir: str | Path,
    features: Sequence[str] | None = None,
    *,
    targets: str = "probs",
    engine_depth: int = 6,
    stockfish_path: str | None = None,
    utility: bool = False,
) -> ChessRun:
    """Read a chess run into choice-model decisions.

    Args:
        run_dir: the run directory.
        features: names in :data:`textenvs.chess.features.FEATURES` (default: the default set, which
            leaves out the slow ``engine_eval_change``).
        targets: ``"probs"``: the recorded distribution over the legal moves where a step
            has one (choose mode), the chosen move elsewhere; ``"actions"``: always the
            chosen move.
        engine_depth: Stockfish search depth for engine features.
        stockfish_path: the Stockfish binary for engine features (default: found as
            :func:`textenvs.chess.engine.find_stockfish` does).
        utility: also record Stockfish's evaluation change of every legal move (the
            reference utility of chess alignment); needs Stockfish.
    """
    import chess

    from irl.analysis.priors import CHESS_MOVE_NAMES, chess_move_features
    from textenvs.chess.features import feature_matrix, needs_engine, resolve_features

    if targets not in TARGETS:
        raise ValueError(f"targets must be one of {TARGETS}, got {targets!r}")
    info = read_info(run_dir)
    if info.env != "chess":
        raise ResultsError(f"{run_dir}: a {info.env} run, not chess")
    rules = load_manifest(run_dir).environment.rules
    if rules != "standard":
        raise ResultsError(f"{run_dir}: chess variant {rules!r}; the chess choice model reads standard chess only (its features "
                           "and Stockfish's evaluations are for standard positions), so chess variants are not fitted")
    names = resolve_features(features)
    engine = None
    if needs_engine(names) or utility:
        from textenvs.chess.features import EngineEvaluator

        engine = EngineEvaluator(depth=engine_depth, path=stockfish_path)
    records, steps = _finished(run_dir)
    games: list[ChessGame] = []
    legals: list[list[list[str]]] = []
    extras: list[list[np.ndarray]] = []
    skipped: dict[str, int] = defaultdict(int)
    all_probs = True
    try:
        for record in records:
            decisions, fens, moves, chosen, utils, priors, listed = [], [], [], [], [], [], []
            for s in steps.get(record.episode, []):
                if s.action is None:
                    continue  # a forfeit: no choice was made
                legal = list(s.legal_actions)
                board = chess.Board(s.state["fen"])
                if s.action not in legal:
                    raise ResultsError(f"{run_dir}: episode {record.episode} t={s.t}: {s.action!r} is not among the legal moves")
                legal_moves = [chess.Move.from_uci(m) for m in legal]
                x = feature_matrix(board, legal_moves, names, engine=engine)
                priors.append(chess_move_features(board, legal_moves))
                listed.append(legal)
                if utility:
                    k = names.index("engine_eval_change") if "engine_eval_change" in names else None
                    utils.append(x[:, k].copy() if k is not None else feature_matrix(board, legal_moves, ["engine_eval_change"], engine=engine)[:, 0])
                target = choice_target(s, legal, targets)
                all_probs &= not isinstance(target, int)
                decisions.append(Decision(x, target))
                fens.append(s.state["fen"])
                moves.append(s.action)
                chosen.append(legal.index(s.action))
            if not decisions:
                skipped["no decisions"] += 1
                continue
            games.append(ChessGame(
                int(record.episode), int(record.seed), tuple(decisions), tuple(fens), tuple(moves),
                tuple(chosen), float(record.total_reward), tuple(utils) if utility else None,
            ))
            legals.append(listed)
            extras.append(priors)
    finally:
        if engine is not None:
            engine.close()
    games, prior_names = with_prior(games, legals, CHESS_MOVE_NAMES, extras, labels=False)
    returns = tuple(float(r.total_reward) for r in records)
    used = "probs" if targets == "probs" and all_probs and games else "actions"
    return ChessRun(info, tuple(games), tuple(names), returns, used, dict(skipped), prior_names=prior_names)


def with_prior(games: Sequence[ChessGame], legals: Sequence[Sequence[Sequence[str]]], extra_names: Sequence[str] = (),
               extras: Sequence[Sequence[np.ndarray]] | None = None, *, labels: bool = True) -> tuple[list[ChessGame], tuple[str, ...]]:
    """``games`` with their position-blind prior's features (:func:`irl.analysis.priors.label_prior`
    over every label met in the run: built once all games are read), and the prior's names.
    ``legals``: per game, each decision's listed legal moves; ``extras``: per game, each
    decision's further position-blind columns, named ``extra_names``; ``labels``: a column per move label."""
    from irl.analysis.priors import label_prior

    flat = [m for listed in legals for m in listed]
    extra = None if extras is None else [x for per_game in extras for x in per_game]
    prior_names, priors = label_prior(flat, extra_names, extra, labels=labels)
    at = np.cumsum([0] + [len(listed) for listed in legals])
    return [replace(g, prior=tuple(priors[at[i]:at[i + 1]])) for i, g in enumerate(games)], prior_names
