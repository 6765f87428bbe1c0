"""Exports of run directories to the formats other tools read.

Each format is one module with one function ``export(runs, out) -> list[Path]`` registered
in :data:`EXPORTERS`; each reads runs only through :mod:`harness.records`' typed readers
(:func:`read_run`) and imports its library lazily:

``inspect``
    an Inspect AI eval log per run (``inspect view`` opens the folder).
``minari``
    a Minari dataset per run, ``zso/<env>/<agent>-<encoding>-<mode>-v0``, under a datasets root.
``parquet``
    ``steps.parquet`` and ``episodes.parquet`` per run, the manifest as file metadata.

A study directory stands for all of its runs (``STUDY_DIR/runs/*``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from harness.records import EpisodeRecord, Manifest, ResultsError, StepRecord, load_episodes, load_manifest, load_steps
from textenvs.errors import UserError
from textenvs.registry import Registry

__all__ = ["EXPORTERS", "ExportError", "Run", "read_run", "run_dirs", "export_runs", "run_name", "require"]

#: Formats by name: ``"module:function"`` with ``function(runs: list[Run], out: Path) -> list[Path]``.
EXPORTERS: Registry[object] = Registry("export format")
EXPORTERS.register("inspect", "harness.export.inspect_log:export", "Inspect AI eval log (inspect view, read_eval_log)", package="inspect-ai")
EXPORTERS.register("minari", "harness.export.minari_dataset:export", "Minari offline-RL dataset (minari.load_dataset)", package="minari")
EXPORTERS.register("parquet", "harness.export.parquet:export", "steps and episodes as two Parquet tables (pandas, polars, datasets)", package="pyarrow")


class ExportError(UserError, ValueError):
    """A run that cannot be exported to a format; the message names the run and why."""


@dataclass(frozen=True)
class Run:
    """One run directory as its typed records: what every exporter reads."""

    dir: Path
    manifest: Manifest
    episodes: tuple[EpisodeRecord, ...]
    #: Steps of finished episodes, by episode, in the order taken.
    steps: dict[int, tuple[StepRecord, ...]]

    @property
    def who(self) -> str:
        """The model or reference agent that played."""
        return str(self.manifest.model.name or self.manifest.config.model)


def read_run(run_dir: str | Path) -> Run:
    """The typed records of ``run_dir`` (finished episodes only, with their steps)."""
    run_dir = Path(run_dir)
    manifest = load_manifest(run_dir)
    episodes = tuple(sorted(load_episodes(run_dir), key=lambda e: e.episode))
    finished = {e.episode for e in episodes}
    steps: dict[int, list[StepRecord]] = {e: [] for e in finished}
    for step in load_steps(run_dir):
        if step.episode in finished:
            steps[step.episode].append(step)
    for ep in episodes:
        if len(steps[ep.episode]) != ep.steps:
            raise ResultsError(f"{run_dir}: episode {ep.episode} records {ep.steps} steps but steps.jsonl holds {len(steps[ep.episode])}")
    return Run(run_dir, manifest, episodes, {e: tuple(sorted(s, key=lambda r: r.t)) for e, s in steps.items()})


def run_dirs(paths: Sequence[str | Path]) -> list[Path]:
    """Run directories named by ``paths``: each a run directory, or a study directory (all its runs)."""
    found: list[Path] = []
    for path in map(Path, paths):
        if (path / "manifest.json").is_file():
            found.append(path)
        elif (path / "study.json").is_file():
            runs = sorted(p for p in (path / "runs").glob("*") if (p / "manifest.json").is_file())
            if not runs:
                raise ExportError(f"study directory {path} holds no runs yet (run zso study first)")
            found.extend(runs)
        elif not path.exists():
            raise ExportError(f"no such run or study directory: {path}")
        else:
            raise ExportError(f"{path} is neither a run directory (no manifest.json) nor a study directory (no study.json)")
    return found


def run_name(run: Run, taken: set[str]) -> str:
    """A file-safe name for ``run``, unique among ``taken`` (which it joins): agent, env, encoding, mode."""
    cfg = run.manifest.config
    env = cfg.env + (f"-{cfg.variant}" if cfg.variant else "")
    base = _slug(f"{Path(run.who).name}-{env}-{cfg.encoding}-{cfg.mode}")
    name = base if base not in taken else _slug(f"{base}-{run.dir.name}")
    number = 2
    while name in taken:
        name, number = f"{base}-{number}", number + 1
    taken.add(name)
    return name


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()


def require(module: str, package: str, hint: str = "") -> object:
    """Import ``module``, or fail with the ``pip install`` that provides it (and ``hint``)."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(f"this export needs {package}: pip install {package}{hint}") from None


def export_runs(paths: Sequence[str | Path], to: str, out: str | Path) -> list[Path]:
    """Export the runs named by ``paths`` (run or study directories) to format ``to`` under ``out``.

    Returns the paths written (files, folders or dataset directories).
    """
    exporter = EXPORTERS.get(to)
    runs = [read_run(d) for d in run_dirs(paths)]
    empty = [str(r.dir) for r in runs if not r.episodes]
    if empty:
        raise ExportError(f"no finished episode to export in {', '.join(empty)}")
    return exporter(runs, Path(out))  # type: ignore[operator]
