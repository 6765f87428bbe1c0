"""A study: one file naming models, environments, encodings and baselines; one directory of answers.

:func:`load_study` reads and validates a study file (TOML, checked against
``results/schemas/study.schema.json``, errors naming the key). :meth:`Study.cells` expands it
into a grid of runs: every model x mode x environment x encoding, and every baseline on every
environment it can play. :func:`run_study` plays the cells (one loaded model serves all of its
cells), fits objectives to every run and scores them (:mod:`irl.analysis`), and writes::

    STUDY_DIR/study.toml        the study file as run (credentials removed)
    STUDY_DIR/study.json        its hash and every cell: id, run directory, status
    STUDY_DIR/runs/CELL/        one run directory per cell (manifest, steps, episodes)
    STUDY_DIR/analysis.json     the coherence report of every run: a fit file, as zso irl's fit.json
    STUDY_DIR/headline.json     the headline table, also as headline.csv
    STUDY_DIR/report.html       one self-contained page (see :mod:`zso.report`)

It is resumable: a cell's run directory is named by a hash of its configuration, so a
rerun skips finished cells, resumes interrupted or killed ones (``zso run --resume``'s
machinery) and runs only the cells a changed study file adds.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import re
import sys
import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from harness.agents import BASELINES, BaselineOptions, baseline_options, baseline_spec, playable_kinds_of
from harness.agents.controls import parse_weights
from textenvs.capabilities import LAYOUT_MDPS
from harness.backends import load_backend
from harness.config import RunConfig, schema
from harness.records import (
    ResultsError, check_new_run_dir, load_manifest, prepare_resume, redact, redact_text, run_status, sound_episodes,
)
from harness.runner import Runner, code_revision
from harness.summary import RunSummary, summarize
from textenvs import encodings_for
from textenvs.errors import UserError
from zso.executors import Executor, make_executor
from zso.report import write_report

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["Study", "Cell", "CellResult", "StudyResult", "load_study", "run_study"]

#: Key-collector control on keys-chests: the reference agent and the feature it seeks.
KEY_COLLECTOR = ("feature-seeker", "keys_held")


class StudyError(UserError, ValueError):
    """A study file that cannot be run; the message names the key."""


@dataclass(frozen=True)
class Cell:
    """One run of the grid: who plays, where, under which encoding and mode (its :attr:`config`,
    whose ``agent`` says who plays)."""

    #: Stable id and directory name: readable parts plus a hash of the configuration.
    id: str
    config: RunConfig

    @property
    def kind(self) -> str:
        """``"model"`` or ``"baseline"`` (``config.agent.kind``)."""
        return self.config.agent.kind

    @property
    def agent(self) -> str | None:
        """Which baseline, a registered name (``config.agent.name``); ``None`` for a model."""
        return self.config.agent.name

    @property
    def baseline(self) -> BaselineOptions | None:
        """For baselines: how the agent is built (``config.agent.options``); ``None`` for a model."""
        return baseline_options(self.config.agent.options) if self.kind == "baseline" else None

    @property
    def label(self) -> str:
        """``agent on env/variant / encoding / mode`` for progress and errors."""
        who = self.agent if self.kind == "baseline" else self.config.model
        if self.baseline is not None and self.baseline.feature:
            who = f"{who}:{self.baseline.feature}"
        env = f"{self.config.env}/{self.config.variant}" if self.config.variant else self.config.env
        return f"{who} on {env} / {self.config.encoding} / {self.config.mode}"


@dataclass(frozen=True)
class Study:
    """A validated study file."""

    name: str
    #: The study file's data, as read (what :func:`cells` expands).
    data: dict[str, Any]
    #: sha256 of the canonical JSON of :attr:`data`.
    digest: str
    #: The study file's text.
    source: str = ""

    def cells(self) -> list[Cell]:
        """The grid of runs, in a fixed order (models first, then baselines)."""
        d = self.data
        base = {"seed": d.get("seed", 0), **_episodes(d.get("episodes", 8)), "max_steps": d.get("max_steps", 20),
                "batch_size": d.get("batch_size", 8)}
        cells: list[Cell] = []
        for env in d["envs"]:
            encodings = env.get("encodings") or encodings_for(env["env"])[:1]
            run = {**base, **({"max_steps": env["max_steps"]} if "max_steps" in env else {}),
                   **(_episodes(env["episodes"]) if "episodes" in env else {})}
            common = {"env": env["env"], "variant": env.get("variant"), "env_options": dict(env.get("options", {})), **run}
            for model in d.get("models", []):
                for mode in model.get("modes", ["choose"]):
                    for encoding in encodings:
                        config = RunConfig(
                            **common, encoding=encoding, model=model["model"], backend=model.get("backend", "transformers"),
                            backend_options=dict(model.get("backend_options", {})), mode=mode,
                            temperature=float(model.get("temperature", 1.0)),
                        )
                        cells.append(_cell(config))
            for agent, options in self._baselines(env):
                config = RunConfig(**common, encoding=encodings[0], agent=baseline_spec(agent, options))
                cells.append(_cell(config))
        return cells

    def _baselines(self, env: dict[str, Any]) -> list[tuple[str, BaselineOptions]]:
        spec = self.data.get("baselines", {})
        options = BaselineOptions(**{k: spec[k] for k in ("temperature", "train_episodes", "train_steps", "depth", "position_decay") if k in spec},
                                  weights=parse_weights(spec["weights"]) if "weights" in spec else None)
        playable = _playable(env)
        picked = [(agent, options) for agent in spec.get("agents", []) if BASELINES.entry(agent).metadata.get("plays") in playable]
        if env["env"] == "keys-chests" and spec.get("key_collector", True) and LAYOUT_MDPS in playable:
            picked.append((KEY_COLLECTOR[0], replace(options, feature=KEY_COLLECTOR[1])))
        return picked


def _episodes(spec: int | dict[str, Any]) -> dict[str, Any]:
    """A study's ``episodes`` (a count, or ``{target, max}``: stop when GD's interval knows) as run settings."""
    if isinstance(spec, dict):
        return {"episodes": int(spec["max"]), "episodes_target": float(spec["target"])}
    return {"episodes": int(spec), "episodes_target": None}


def _playable(env: dict[str, Any]) -> set[str]:
    """Which kinds of reference agent (:data:`harness.agents.PLAYS`) can play ``env``."""
    return playable_kinds_of(env["env"], env.get("variant"), env.get("options", {}))


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-").lower()


def _cell(config: RunConfig) -> Cell:
    """The cell that runs ``config``, its id from the configuration."""
    cell = Cell("", config)
    baseline = cell.baseline
    identity = {"config": {**config.to_json(), "out": None}, "baseline": asdict(baseline) if baseline else None}
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:8]
    who = Path(config.model).name + (f"-{baseline.feature}" if baseline and baseline.feature else "")
    env = config.env + (f"-{config.variant}" if config.variant else "")
    return replace(cell, id=f"{_slug(who)}__{_slug(env)}__{config.encoding}__{config.mode}__{digest}")


def load_study(path: str | Path) -> Study:
    """Read and validate a study file; every problem is named by its key."""
    import jsonschema

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text)
    except FileNotFoundError:
        raise StudyError(f"no study file {path}") from None
    except IsADirectoryError:
        raise StudyError(f"{path} is a directory, not a study file") from None
    except UnicodeDecodeError as exc:
        raise StudyError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise StudyError(f"cannot read study file {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise StudyError(f"{path}: not valid TOML ({exc})") from None
    errors = sorted(jsonschema.Draft202012Validator(schema("study")).iter_errors(data), key=lambda e: list(e.path))
    if errors:
        where = ".".join(str(p) for p in errors[0].path) or "(top level)"
        raise StudyError(f"{path}: key {where!r}: {errors[0].message}")
    for i, env in enumerate(data["envs"]):
        for encoding in env.get("encodings", []):
            if encoding not in encodings_for(env["env"]):
                raise StudyError(f"{path}: envs[{i}]: {env['env']!r} has no encoding {encoding!r} (known: {', '.join(encodings_for(env['env']))})")
    for agent in data.get("baselines", {}).get("agents", []):
        BASELINES.entry(agent)
    for i, env in enumerate(data["envs"]):
        if isinstance(env.get("episodes", data.get("episodes")), dict) and LAYOUT_MDPS not in _playable(env):
            raise StudyError(f"{path}: envs[{i}]: a target for the episodes needs exact MDPs (GD's references): "
                             f"{env['env']!r} with these options has none")
    digest = hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()
    study = Study(str(data["name"]), data, digest, text)
    # Unknown environments, variants, options and fit features fail here, before any model loads.
    if not study.cells():
        raise StudyError(f"{path}: the study has no cells: give [[models]] or [baselines] agents that can play its [[envs]]")
    if "irl" in data:
        from irl.analysis import check_features

        try:
            settings = _settings(study)
            for env in data["envs"]:
                check_features(env["env"], env.get("variant"), dict(env.get("options", {})), settings)
        except UserError as exc:
            raise StudyError(f"{path}: [irl]: {exc}") from None
    return study


# -- running ----------------------------------------------------------------------------


@dataclass
class CellResult:
    """A cell after the study ran: where its run is and what it says."""

    cell: Cell
    run_dir: Path
    status: str
    summary: RunSummary | None = None
    #: The cell's :class:`irl.analysis.CoherenceReport`, when its environment has a fit.
    report: Any = None


@dataclass
class StudyResult:
    """What :func:`run_study` returns: every cell, the reports, the headline table."""

    study: Study
    out: Path
    cells: list[CellResult]
    #: Notes for the reader (cells skipped, fits not available...).
    notes: list[str] = field(default_factory=list)

    def headline(self) -> list[dict[str, Any]]:
        """The headline table as rows of plain values (one row per cell)."""
        return [headline_row(c) for c in self.cells]

    def to_pandas(self) -> Any:
        """The headline table as a ``pandas.DataFrame`` (a row per cell)."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError("to_pandas needs pandas: pip install pandas") from None
        return pd.DataFrame(self.headline())


def headline_row(result: CellResult) -> dict[str, Any]:
    """One headline row: who, where, and every score's columns (:func:`irl.analysis.specs.flat_scores`).

    A cell without a fit still gets its return, from the run summary."""
    from irl.analysis.scores import Score, gd_verdict
    from irl.analysis.specs import flat_scores, score_specs

    cfg = result.cell.config
    row: dict[str, Any] = {
        "cell": result.cell.id, "agent": result.cell.label.split(" on ")[0], "kind": result.cell.kind,
        "env": cfg.env, "variant": cfg.variant, "encoding": cfg.encoding, "mode": cfg.mode, "status": result.status,
        "episodes": result.summary.episodes if result.summary else 0,
        "stopped": result.summary.stopping.describe() if result.summary and result.summary.stopping else None,
        "stop_reason": result.summary.stopping.reason if result.summary and result.summary.stopping else None,
    }
    if result.report is not None:
        scores = result.report.scores()
        return {**row, "verdict": gd_verdict(scores["gd"]), **flat_scores(scores)}
    why = "no run" if result.summary is None else "no objective fit for this environment"
    scores: dict[str, Any] = {s.name: Score.missing(why) for s in score_specs()}
    total = result.summary.total_reward if result.summary else None
    if total is not None:
        scores["true_return"] = Score(total.estimate, total.low, total.high, total.level, result.summary.episodes, "run summary")
    return {**row, "verdict": gd_verdict(scores["gd"]), **flat_scores(scores)}


Progress = Callable[[str, int, int, str], None]


def run_study(
    study: Study | str | Path, out: str | Path, *, progress: Progress | None = None, analyse: bool = True,
    executor: str | Executor = "serial",
) -> StudyResult:
    """Play every unfinished cell of ``study``, fit and score every run, write the report.

    ``progress(stage, done, total, label)`` is called as cells and episodes advance
    (stages ``"cells"``, ``"episodes"``, ``"fits"``). Ctrl-C stops between writes: what
    finished is kept and the next call finishes the rest. ``executor`` plays the cells
    (:mod:`zso.executors`: ``"serial"``, ``"ray"``, or an :class:`~zso.executors.Executor`).
    """
    if not isinstance(study, Study):
        study = load_study(study)
    out = Path(out)
    try:
        return _run_study(study, out, progress, analyse, executor)
    except OSError as exc:
        # A file of the study directory could not be written (a full disk, a read-only directory).
        if exc.filename is None or not str(exc.filename).startswith(str(out)):
            raise
        raise StudyError(f"cannot write {exc.filename}: {exc.strerror or exc}") from None


def _run_study(study: Study, out: Path, progress: Progress | None, analyse: bool, executor: str | Executor) -> StudyResult:
    cells = study.cells()
    notes = _prepare_dir(out, study, cells)
    states = {c.id: _cell_state(out / "runs" / c.id) for c in cells}
    todo = [c for c in cells if states[c.id] != "complete"]
    done = len(cells) - len(todo)
    report = (lambda *a: None) if progress is None else progress
    report("cells", done, len(cells), "")
    _write_index(out, study, cells)

    def relay(stage: str, n: int, total: int, label: str) -> None:  # a cell starting: the cells bar names it
        report("cells", done, len(cells), label) if stage == "cell" else report(stage, n, total, label)

    for cell in (executor if isinstance(executor, Executor) else make_executor(executor)).run(_groups(todo), play_group, out, relay):
        done += 1
        report("cells", done, len(cells), cell.label)
        _write_index(out, study, cells)
    results = [CellResult(c, out / "runs" / c.id, _cell_state(out / "runs" / c.id)) for c in cells]
    for r in results:
        r.summary = summarize(r.run_dir)
    if analyse:
        notes += _analyse(study, out, results, report)
    result = StudyResult(study, out, results, notes)
    _write_tables(result)
    write_report(result, out / "report.html")
    return result


def play_group(group: Sequence[Cell], out: Path, report: Progress) -> Iterator[Cell]:
    """Play ``group``'s cells into ``out/runs`` (one loaded model serves them all), yielding each when finished.

    ``report("cell", 0, 0, label)`` announces each cell; its episodes are reported as in :func:`run_study`.
    """
    backend = None
    try:
        if group[0].kind == "model":
            cfg = group[0].config
            backend = load_backend(cfg.backend, cfg.model, cfg.backend_options)
        for cell in group:
            report("cell", 0, 0, cell.label)
            _play(cell, out / "runs" / cell.id, backend, report)
            yield cell
    finally:
        if backend is not None:
            backend.close()


def _prepare_dir(out: Path, study: Study, cells: Sequence[Cell]) -> list[str]:
    """Create the study directory; notes on what a changed study file adds or leaves behind."""
    notes = []
    index = out / "study.json"
    if index.is_file():
        try:
            before = json.loads(index.read_text(encoding="utf-8"))
        except ValueError:
            before = {}
        if before.get("digest") not in (None, study.digest):
            old = {c["id"] for c in before.get("cells", [])}
            new = [c for c in cells if c.id not in old]
            gone = old - {c.id for c in cells}
            notes.append(f"the study file changed since the last run: {len(new)} new cell(s) to run"
                         + (f", {len(gone)} cell(s) no longer in the study (their runs are kept, not reported)" if gone else ""))
    try:
        (out / "runs").mkdir(parents=True, exist_ok=True)
        (out / "study.toml").write_text(redact_text(study.source), encoding="utf-8")
    except OSError as exc:
        raise StudyError(f"cannot write the study to {out}: {exc.strerror or exc}") from None
    return notes


def _write_index(out: Path, study: Study, cells: Sequence[Cell]) -> None:
    doc = {
        "format": "zso-study/1", "name": study.name, "digest": study.digest, "study": study.data,
        "cells": [{"id": c.id, "kind": c.kind, "label": c.label, "status": _cell_state(out / "runs" / c.id)} for c in cells],
    }
    tmp = out / "study.json.tmp"
    tmp.write_text(json.dumps(redact(doc), indent=1, default=str) + "\n", encoding="utf-8")
    tmp.replace(out / "study.json")


def _cell_state(run_dir: Path) -> str:
    """``missing``, ``complete``, or how an unfinished run stands (``interrupted``, ``killed``, ``incomplete``:
    marked complete but an episode or a step line was lost, ``damaged``: unreadable)."""
    if not (run_dir / "manifest.json").is_file():
        return "missing"
    try:
        status = run_status(run_dir)
        if status == "complete" and not _whole(run_dir):
            return "incomplete"
        return status
    except ResultsError:
        return "damaged"


def _whole(run_dir: Path) -> bool:
    """Whether a run marked complete holds every episode, each with all its steps (no torn line)."""
    config = load_manifest(run_dir).config
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        kept = len(sound_episodes(run_dir))
    return not caught and kept == len(config.episode_indices())


def _groups(cells: Sequence[Cell]) -> list[list[Cell]]:
    """Cells grouped so one loaded model serves all of its cells; each baseline alone."""
    groups: dict[str, list[Cell]] = {}
    for c in cells:
        key = (json.dumps([c.config.backend, c.config.model, c.config.backend_options], sort_keys=True)
               if c.kind == "model" else c.id)
        groups.setdefault(key, []).append(c)
    return list(groups.values())


def _play(cell: Cell, run_dir: Path, backend: Any, report: Progress) -> None:
    state = _cell_state(run_dir)
    resume = None
    if state in ("missing",):
        if run_dir.exists():
            check_new_run_dir(run_dir)
    elif state == "damaged":
        raise StudyError(f"{run_dir} is damaged; remove it to run the cell again")
    else:
        resume = prepare_resume(run_dir)
    # A baseline cell's runner builds its agent from the config (and closes it).
    with Runner(replace(cell.config, out=str(run_dir)), backend=backend) as runner:
        runner.run(run_dir, progress=lambda done, steps: report("episodes", done, cell.config.episodes, cell.label),
                   resume=resume)


# -- analysis -------------------------------------------------------------------------------


def _settings(study: Study) -> Any:
    from irl.analysis import FitSettings

    spec = dict(study.data.get("irl", {}))
    features = spec.pop("features", "named")
    if features not in ("named", "onehot"):
        features = tuple(f.strip() for f in features.split(",") if f.strip())
    return FitSettings(features=features, **spec)


def _fittable(run_dir: Path) -> bool:
    """Whether :mod:`irl.analysis` has a fit for this run's environment (:func:`irl.analysis.kinds.fit_kind_of`)."""
    from irl.analysis.kinds import fit_kind_of

    config = load_manifest(run_dir).config
    return fit_kind_of(config.env, config.variant, config.env_options) is not None


def _analyse(study: Study, out: Path, results: list[CellResult], report: Progress) -> list[str]:
    """Fit every finished run (reusing ``analysis.json`` when nothing changed); returns notes."""
    from irl.analysis import analyse_runs
    from irl.analysis.fitfile import read_fit, read_fit_document, write_fit

    settings = _settings(study)
    runs = [r for r in results if r.summary is not None and r.summary.episodes > 0 and _fittable(r.run_dir)]
    notes = [f"{r.cell.label}: no objective fit for this environment" for r in results if r not in runs]
    # The fits are derived data: any change of the settings, the runs or the code refits.
    key = hashlib.sha256(json.dumps(
        [settings.to_json(), code_revision(), [(str(r.run_dir), r.summary.episodes, r.summary.decisions) for r in runs]],
        default=str,
    ).encode()).hexdigest()
    cache = out / "analysis.json"
    reports = None
    if cache.is_file():
        try:
            if read_fit_document(cache).get("key") == key:
                reports = read_fit(cache)
        except ResultsError:
            reports = None  # a damaged cache is refitted
    if reports is None:
        reports = analyse_runs([r.run_dir for r in runs], settings,
                               progress=lambda done, total, label: report("fits", done, total, label))
        write_fit(reports, settings, cache, key=key)
    for r, rep in zip(runs, reports):
        r.report = rep
    return notes


def _write_tables(result: StudyResult) -> None:
    rows = result.headline()
    (result.out / "headline.json").write_text(json.dumps(rows, indent=1, default=str) + "\n", encoding="utf-8")
    with open(result.out / "headline.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else ["cell"])
        writer.writeheader()
        writer.writerows(rows)
