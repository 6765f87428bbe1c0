"""One report per run: load it, fit its objective, score it, compare runs across encodings.

:func:`analyse_runs` reads run directories and returns one :class:`CoherenceReport` per
run, which serialises to JSON (``fit.json``, ``compare.json``). Encoding consistency is
the distance between the objectives fitted to the *same agent's* runs on the same
environment under *different encodings* (grouped by model and backend, environment,
variant, options and mode); its interval comes from the bootstrap refits (runs with
equally many episodes are resampled with the same indices: a paired bootstrap, so
identical behaviour gives exactly 0).
"""

from __future__ import annotations

import contextlib
import math
from collections import defaultdict
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from harness.records import BASELINE_BACKEND, ResultsError
from irl.analysis.games import load_game
from irl.analysis.chess import chess_alignment, chess_explained, chess_gd, chess_l2, chess_stability, games_as_units, joint_data
from irl.analysis.kinds import FIT_KINDS, features_check_of, fit_kind_for, fit_kind_of
from textenvs.capabilities import CHESS, capabilities_of
from irl.analysis.runs import ChessRun, RunInfo, TabularRun, load_chess, load_tabular, read_info
from irl.analysis.specs import score_specs, table_specs
from irl.analysis.scores import (
    WHY_NOISE, FitError, FitSettings, Score, boot_indices, explains_nothing, gate_interval, quantile_score,
    return_score,
)
from irl.analysis.tabular import TabularProblem, fit_with_bootstrap, score_tabular, true_return_score
from irl.choice import fit_choice, pack_decisions
from irl.epic import pearson_distance

__all__ = ["SCORES", "Analysis", "CoherenceReport", "analyse_tabular", "analyse_chess", "analyse_runs", "add_encoding_consistency"]

#: The built-in scores shown in tables, in table order: (field, column title); see :mod:`irl.analysis.specs`.
SCORES = tuple((s.name, s.title) for s in table_specs())


@dataclass
class CoherenceReport:
    """Everything fitted and scored for one run; :meth:`to_json` for ``fit.json``."""

    run_id: str
    run_dir: str
    #: The fit kind (:data:`irl.analysis.kinds.FIT_KINDS`): ``"tabular"``, ``"chess"`` or ``"game"``.
    kind: str
    #: The run's identity (model, backend, env, variant, options, encoding, mode, ...).
    info: dict[str, Any]
    settings: dict[str, Any]
    n_episodes: int
    n_decisions: int
    #: Episodes left out of the fits, by reason.
    skipped: dict[str, int]
    #: ``"probs"`` or ``"actions"``: what the fit was fitted to.
    targets: str
    feature_names: list[str]
    weights: list[float]
    #: Percentile bootstrap interval of each weight (over episodes / games).
    weights_low: list[float]
    weights_high: list[float]
    #: ``"starc"`` (tabular) or ``"pearson"`` (chess): the distance of stability and
    #: encoding consistency.
    distance: str
    explained: Score
    stability: Score
    #: ``None`` until compared with the same agent's runs under other encodings.
    encoding_consistency: Score | None
    alignment_distance: Score
    alignment_regret: Score
    gd: Score
    true_return: Score
    meg_unknown: Score = field(default_factory=lambda: Score.missing("not computed"))
    meg_known: Score = field(default_factory=lambda: Score.missing("not computed"))
    alignment_regret_soft: Score = field(default_factory=lambda: Score.missing("not computed"))
    #: Explained behaviour over uniform choice; ``explained`` is over the best policy blind to
    #: the state (tabular: an action prior; choice models: see :mod:`irl.analysis.chess`).
    explained_uniform: Score = field(default_factory=lambda: Score.missing("not computed"))
    #: Tabular only: ``[S, A]`` fitted reward and ``[S]`` state score.
    reward: list[list[float]] | None = None
    state_score: list[float] | None = None
    #: ``"arrival"`` or ``"delta"`` (tabular), the horizon and discount of the fit.
    form: str | None = None
    horizon: int | None = None
    discount: float | None = None
    l2: float | None = None
    #: How ``l2`` was chosen when not fixed: ``{"grid", "heldout_log_likelihood", "folds",
    #: "seed"}`` (K-fold cross-validation over episodes or decisions); ``None`` when fixed.
    l2_selection: dict[str, Any] | None = None
    #: Whether the full fit and every refit met the optimiser's convergence test.
    converged: bool = True
    notes: list[str] = field(default_factory=list)
    #: The registered scores that are not fields (:func:`irl.analysis.specs.register_score`), by name.
    extra: dict[str, Score] = field(default_factory=dict)

    @property
    def is_baseline(self) -> bool:
        """Whether a reference agent (``zso baseline``) played."""
        return bool(self.info.get("is_baseline", self.info.get("backend") == BASELINE_BACKEND))

    @property
    def agent(self) -> str:
        """The model's name, or ``baseline:<name>`` for a reference agent."""
        return f"baseline:{self.info['model']}" if self.is_baseline else str(self.info.get("model"))

    @property
    def env_label(self) -> str:
        """``env/variant``."""
        v = self.info.get("variant")
        return f"{self.info.get('env')}/{v}" if v else str(self.info.get("env"))

    def score(self, name: str) -> Score | None:
        """Score ``name`` (a field, or a registered score); ``None`` when it was not computed."""
        return getattr(self, name) if name in self.__dataclass_fields__ else self.extra.get(name)

    def scores(self) -> dict[str, Score | None]:
        """Every registered score (:data:`irl.analysis.specs.SCORES`) by name (``None``: not computed)."""
        return {s.name: self.score(s.name) for s in score_specs()}

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict (scores as dicts, ``nan`` as ``null``)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, Score):
                v = v.to_json()
            elif f.name == "extra":
                v = {name: score.to_json() for name, score in v.items()}
            elif isinstance(v, list):
                v = _nan_to_none(v)
            out[f.name] = v
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CoherenceReport:
        """The inverse of :meth:`to_json`."""
        kw = dict(data)
        for f in fields(cls):
            if isinstance(kw.get(f.name), dict) and "estimate" in kw[f.name]:
                kw[f.name] = Score.from_json(kw[f.name])
        kw["extra"] = {name: Score.from_json(v) for name, v in (kw.get("extra") or {}).items()}
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in kw.items() if k in known})


def _nan_to_none(v: Any) -> Any:
    if isinstance(v, list):
        return [_nan_to_none(x) for x in v]
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


@dataclass
class Analysis:
    """A report plus what cross-run and registered scores need (not serialised)."""

    report: CoherenceReport
    #: Full-data objective and its bootstrap refits: ``[S, A]`` rewards or weight vectors.
    objective: np.ndarray
    boot: list[np.ndarray]
    n_units: int
    distance: Callable[[np.ndarray, np.ndarray], float | None]
    #: The run that was fitted: a :class:`TabularRun` or a :class:`ChessRun`.
    run: Any = None


def analyse_tabular(run: TabularRun, settings: FitSettings = FitSettings()) -> CoherenceReport:
    """Fit and score a tabular run (encoding consistency is left ``None``)."""
    return _gate_intervals(_analyse_tabular(run, settings).report)


def _analyse_tabular(run: TabularRun, settings: FitSettings) -> Analysis:
    problem = TabularProblem(run, settings)
    n = len(run.episodes)
    fit, boot = fit_with_bootstrap(problem)
    W = np.array([b.weights for b in boot])
    low, high = np.quantile(W, [settings.alpha / 2, 1 - settings.alpha / 2], axis=0)
    scores = score_tabular(problem, fit, boot)
    converged = fit.converged and all(b.converged for b in boot)
    notes = []
    if not converged:
        stopped = (not fit.converged) + sum(not b.converged for b in boot)
        notes.append(f"{stopped} of {len(boot) + 1} MCE fits stopped before L-BFGS-B reported convergence; their scores are less certain")
    if problem.features.form == "delta":
        notes.append("delta features telescope: a fit sees where episodes start and end, not the paths between")
    report = CoherenceReport(
        run_id=run.info.run_id, run_dir=run.info.run_dir, kind="tabular", info=run.info.to_json(),
        settings=settings.to_json(), n_episodes=n, n_decisions=run.n_decisions, skipped=dict(run.skipped),
        targets="actions", feature_names=list(problem.features.names), weights=fit.weights.tolist(),
        weights_low=low.tolist(), weights_high=high.tolist(), distance="starc",
        explained=scores.explained, stability=scores.stability, encoding_consistency=None,
        alignment_distance=scores.alignment_distance, alignment_regret=scores.alignment_regret, gd=scores.gd,
        true_return=true_return_score(run, settings), meg_unknown=scores.meg_unknown, meg_known=scores.meg_known,
        alignment_regret_soft=scores.alignment_regret_soft, explained_uniform=scores.explained_uniform,
        reward=fit.reward.tolist(), state_score=fit.state_score.tolist(), form=problem.features.form,
        horizon=problem.horizon, discount=problem.discount, l2=problem.l2, converged=converged, notes=notes,
        l2_selection=None if problem.l2_selection is None else {
            "grid": list(problem.l2_selection.l2_grid),
            "heldout_log_likelihood": [float(v) for v in problem.l2_selection.heldout_log_likelihood],
            "folds": problem.l2_selection.k, "seed": problem.l2_selection.seed,
        },
    )
    return Analysis(report, fit.reward, [b.reward for b in boot], n, lambda a, b: problem.distance(a, b).value, run)


def analyse_chess(run: ChessRun, settings: FitSettings = FitSettings()) -> CoherenceReport:
    """Fit and score a chess run (encoding consistency is left ``None``)."""
    return _gate_intervals(_analyse_chess(run, settings).report)


def _analyse_chess(run: ChessRun, settings: FitSettings) -> Analysis:
    if not run.games:
        raise FitError(f"{run.info.run_dir}: no decisions to fit")
    data = joint_data(run)  # the objective's features and the position-blind prior's
    K = len(run.feature_names)
    l2 = chess_l2(data, settings)
    full = fit_choice(data, l2=l2)
    weights = full.weights[:K]  # the objective: the prior's weights stay out of it
    units = games_as_units(run)
    boot = []
    for idx in boot_indices(len(units), settings.n_boot, settings.seed):
        rows = np.concatenate([units[i] for i in idx])
        boot.append(fit_choice(data.subset(rows), l2=l2, theta_init=full.weights).weights[:K])
    W = np.array(boot)
    low, high = np.quantile(W, [settings.alpha / 2, 1 - settings.alpha / 2], axis=0)
    level = 1 - settings.alpha
    what = FIT_KINDS.entry(run.kind).metadata["what"]
    explained, explained_uniform = chess_explained(run, settings)
    if explains_nothing(explained):
        # As for tabular fits: weights fitted to noise say nothing about a goal.
        stability = alignment = Score.missing(WHY_NOISE, level)
    else:
        stability, alignment = chess_stability(run, settings, l2=l2), chess_alignment(run, weights, boot, settings)
    report = CoherenceReport(
        run_id=run.info.run_id, run_dir=run.info.run_dir, kind=run.kind, info=run.info.to_json(),
        settings=settings.to_json(), n_episodes=len(run.games), n_decisions=run.n_decisions, skipped=dict(run.skipped),
        targets=run.targets, feature_names=list(run.feature_names), weights=weights.tolist(),
        weights_low=low.tolist(), weights_high=high.tolist(), distance="pearson",
        explained=explained, explained_uniform=explained_uniform, stability=stability,
        encoding_consistency=None, alignment_distance=Score.missing(f"{what}: no tabular reward to compare", level),
        alignment_regret=alignment, gd=chess_gd(run, settings),
        true_return=return_score(run.returns, settings.alpha, run.info.return_range),
        meg_unknown=Score.missing(f"not computed for {what}", level), meg_known=Score.missing(f"not computed for {what}", level),
        alignment_regret_soft=Score.missing(f"not computed for {what}", level),
        l2=l2, converged=full.converged,
        notes=[f"{what}: no tabular reward; stability and encoding consistency use the Pearson distance between weight vectors"]
        + ([f"fitted with {len(run.prior_names)} position-blind prior features (move labels, list position), kept out of the weights"]
           if run.prior is not None else []),
    )
    return Analysis(report, weights, boot, len(units), lambda a, b: pearson_distance(a, b), run)


def _gate_intervals(report: CoherenceReport) -> CoherenceReport:
    """Drop the intervals of scores computed from fits below their episode minimum
    (``min_episodes`` of :mod:`irl.analysis.specs`), once every decision that reads
    them (a fit that explains nothing) is made. Tabular runs only: the simulations behind the
    minimums are tabular (a chess or game unit is a whole game of decisions)."""
    if report.kind != "tabular" or not report.settings.get("gate_intervals", True):
        return report
    for spec in score_specs():
        score = report.score(spec.name)
        if spec.min_episodes and score is not None:
            gated = gate_interval(spec.name, score, report.n_episodes)
            if spec.compute is None:
                setattr(report, spec.name, gated)
            else:
                report.extra[spec.name] = gated
    return report


def add_encoding_consistency(analyses: Sequence[Analysis], alpha: float = 0.05) -> None:
    """Fill ``encoding_consistency`` of every report whose group has another encoding."""
    groups: dict[tuple, list[Analysis]] = defaultdict(list)
    for a in analyses:
        groups[(a.report.kind, *RunInfo(**a.report.info).group_key())].append(a)
    for members in groups.values():
        for a in members:
            others = [b for b in members if b.report.info["encoding"] != a.report.info["encoding"]]
            if not others:
                continue
            name = "STARC distance" if a.report.distance == "starc" else "Pearson distance of weights"
            level = 1 - alpha

            def mean_distance(x: np.ndarray, ys: Sequence[np.ndarray]) -> float | None:
                ds = [a.distance(x, y) for y in ys]
                return None if any(d is None or not math.isfinite(d) for d in ds) else float(np.mean(ds))

            n_boot = min(len(a.boot), *(len(b.boot) for b in others))
            if any(explains_nothing(x.report.explained) for x in (a, *others)):
                a.report.encoding_consistency = Score.missing(WHY_NOISE, level, n_boot)
                continue
            estimate = mean_distance(a.objective, [b.objective for b in others])
            if estimate is None:
                a.report.encoding_consistency = Score.missing(f"{name} undefined: a fitted objective ranks nothing", level, n_boot)
                continue
            values = [mean_distance(a.boot[i], [b.boot[i] for b in others]) for i in range(n_boot)]
            paired = all(b.n_units == a.n_units for b in others)
            a.report.encoding_consistency = quantile_score(
                values, estimate, alpha,
                f"{name} to {len(others)} run(s) under other encodings; {'paired ' if paired else ''}percentile bootstrap ({n_boot} refits)",
            )


def analyse_tabular_dir(run_dir: str | Path, settings: FitSettings) -> Analysis:
    """The ``tabular`` fit kind: MCE IRL on the environment's exact MDP."""
    return _analyse_tabular(load_tabular(run_dir), settings)


def _choice_features(settings: FitSettings, what: str) -> Sequence[str] | None:
    names = None if settings.features == "named" else settings.features
    if isinstance(names, str):
        raise FitError(f"features {names!r} do not apply to {what}; give {what} feature names")
    return names


def analyse_game_dir(run_dir: str | Path, settings: FitSettings) -> Analysis:
    """The ``game`` fit kind: the choice model, with the exact move values as the reference."""
    return _analyse_chess(load_game(run_dir, _choice_features(settings, "games"), targets=settings.targets), settings)


def analyse_chess_dir(run_dir: str | Path, settings: FitSettings) -> Analysis:
    """The ``chess`` fit kind: the choice model, with Stockfish's evaluation as the reference when it is installed."""
    from textenvs.chess.engine import stockfish_available

    utility = settings.chess_alignment and stockfish_available()
    run = load_chess(run_dir, _choice_features(settings, "chess"), targets=settings.targets,
                     engine_depth=settings.engine_depth, utility=utility)
    return _analyse_chess(run, settings)


def check_tabular_features(open_env: Any, settings: FitSettings) -> None:
    """The ``tabular`` kind's check: the features resolve on the environment's exact MDP."""
    from irl.analysis.tabular import tabular_features

    with open_env() as instance:
        tabular_features(instance.mdp(), settings.features, settings.form, step=settings.step)


def check_game_features(open_env: Any, settings: FitSettings) -> None:
    """The ``game`` kind's check: the move features exist for the game the rules draw."""
    from textenvs.games.features import resolve_features

    names = _choice_features(settings, "games")
    if names is not None:
        with open_env() as instance:
            resolve_features(instance.game, names)


def check_chess_features(open_env: Any, settings: FitSettings) -> None:
    """The ``chess`` kind's check: the move features are chess's (no environment needed)."""
    from textenvs.chess.features import resolve_features

    names = _choice_features(settings, "chess")
    if names is not None:
        resolve_features(names)


def check_features(env: str, variant: str | None, options: dict[str, Any], settings: FitSettings) -> None:
    """Raise :class:`FitError` when ``settings.features`` names a feature the fits of ``env`` do not have.

    Made before anything is played (a study checks its ``[irl]`` table with it), by the
    ``features`` check of the environment's fit kind (:mod:`irl.analysis.kinds`), on the
    environment built as the runs will build it. An environment with no fit passes.
    """
    from harness.config import make_run_env
    from textenvs.errors import UserError

    kind = fit_kind_of(env, variant, options)
    if kind is None:
        return

    @contextlib.contextmanager
    def open_env() -> Iterator[Any]:
        instance = make_run_env(env, variant, options)
        try:
            instance.reset(seed=0)  # seeded games draw their rules, random layouts their map, at reset
            yield instance
        finally:
            instance.close()

    try:
        features_check_of(kind.name)(open_env, settings)
    except UserError as exc:
        raise FitError(f"{env}: {exc}") from None


def analyse_runs(
    run_dirs: Sequence[str | Path],
    settings: FitSettings = FitSettings(),
    *,
    progress: Callable[[int, int, str], None] | None = None,
) -> list[CoherenceReport]:
    """Load, fit and score every run, then compare runs of one agent across encodings.

    Each run gets the fit of its environment's kind (:func:`irl.analysis.kinds.fit_kind_of`).
    ``progress(done, total, label)`` is called before and after each run.
    """
    analyses = []
    total = len(run_dirs)
    for i, run_dir in enumerate(run_dirs):
        info = read_info(run_dir)
        if progress is not None:
            progress(i, total, info.run_id)
        offers = capabilities_of(info.env, info.variant, info.options)
        kind = fit_kind_for(offers)
        if kind is None:
            needs = ", ".join(f"{k.metadata['needs']} ({k.name})" for k in FIT_KINDS)
            why = ("; chess variants are not fitted (the chess features and Stockfish's evaluations are for standard positions)"
                   if CHESS in offers else "")
            raise ResultsError(f"{run_dir}: no objective fit for {info.env_label}: the fits need one of {needs}{why}")
        analysis = kind.load()(run_dir, settings)
        for spec in score_specs():
            if spec.compute is not None:
                analysis.report.extra[spec.name] = spec.computer()(analysis)
        analyses.append(analysis)
        if progress is not None:
            progress(i + 1, total, info.run_id)
    add_encoding_consistency(analyses, settings.alpha)
    return [_gate_intervals(a.report) for a in analyses]
