"""The results format: one directory per run.

``manifest.json``
    what was run (resolved config, model and its weights hash, package versions,
    code revision, seeds) and how it ended (``status``).
``steps.jsonl``
    one line per decision, written as it happens.
``episodes.jsonl``
    one line per finished episode, written the moment it finishes.

Lines are flushed as they are written, so an interrupted or crashed run keeps every
finished episode. Readers stream line by line and name the file and line of anything
they cannot read.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Iterator, TextIO

#: Version of the files written; readers refuse newer major versions.
FORMAT_VERSION = "1.0"
MANIFEST = "manifest.json"
STEPS = "steps.jsonl"
EPISODES = "episodes.jsonl"
#: ``manifest.model.backend`` of runs played by a reference agent (``zso baseline``).
BASELINE_BACKEND = "baseline"


class ResultsError(ValueError):
    """A run directory or results file that cannot be read; the message names the place."""


@dataclass(frozen=True)
class Attempt:
    """One refused reply in generate mode."""

    prompt: str
    reply: str
    error_kind: str
    error: str


@dataclass(frozen=True)
class Timing:
    """Seconds spent on one decision."""

    backend_s: float
    env_s: float
    total_s: float


@dataclass(frozen=True)
class StepRecord:
    """One decision of one episode."""

    episode: int
    t: int
    state: dict[str, Any]
    encoding: str
    mode: str
    prompt: str
    #: The accepted reply in generate mode (the last refused one if none was accepted);
    #: ``None`` in choose mode.
    reply: str | None
    #: The canonical action taken; ``None`` when the agent forfeited.
    action: str | None
    #: ``"model"``, or ``"fallback"`` when no reply was accepted.
    action_source: str
    legal_actions: list[str]
    #: Choose mode: log-probability of each legal action's text, aligned with ``legal_actions``.
    logprobs: list[float] | None
    #: Choose mode: the distribution the action was taken from.
    probs: list[float] | None
    attempts: list[Attempt]
    reward: float
    terminated: bool
    truncated: bool
    info: dict[str, Any]
    timing: Timing

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "StepRecord":
        """The record of one ``steps.jsonl`` object (as :meth:`to_json` wrote it)."""
        return cls(**{
            **data,
            "attempts": [Attempt(**a) for a in data["attempts"]],
            "timing": Timing(**data["timing"]),
        })


@dataclass(frozen=True)
class EpisodeRecord:
    """One finished episode."""

    episode: int
    seed: int
    start_state: dict[str, Any]
    reset_info: dict[str, Any]
    steps: int
    #: Sum of rewards.
    total_reward: float
    terminated: bool
    truncated: bool
    #: ``"terminated"``, ``"truncated"`` (step limit) or ``"forfeit"``.
    end_reason: str
    success: bool | None
    outcome: str | None
    #: Replies refused by the parser (generate mode), over all decisions.
    invalid_replies: int
    #: Refused replies by kind (``unparseable``, ``illegal``, ``ambiguous``).
    invalid_by_kind: dict[str, int]
    fallback_actions: int
    #: Mean of each per-step metric the environment reported.
    metrics: dict[str, float]
    wall_s: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "EpisodeRecord":
        """The record of one ``episodes.jsonl`` object."""
        return cls(**data)


@dataclass
class Manifest:
    """The header of a run; rewritten when the run's status changes."""

    run_id: str
    created: str
    config: dict[str, Any]
    model: dict[str, Any]
    environment: dict[str, Any]
    packages: dict[str, str]
    code: dict[str, Any]
    seeds: dict[str, Any]
    host: dict[str, Any]
    status: str = "running"
    finished: str | None = None
    counts: dict[str, int] = field(default_factory=lambda: {"episodes": 0, "steps": 0})
    format_version: str = FORMAT_VERSION

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Manifest":
        """The manifest of a ``manifest.json`` object."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    @property
    def is_baseline(self) -> bool:
        """Whether the run was played by a reference agent (``zso baseline``), not a model."""
        return self.model.get("backend") == BASELINE_BACKEND


class RunWriter:
    """Writes a run directory; every line is flushed at once.

    Refuses a directory that already holds a run, so results are never overwritten.
    """

    def __init__(self, out: str | Path, manifest: Manifest):
        self.dir = Path(out)
        if (self.dir / MANIFEST).exists():
            raise ResultsError(f"{self.dir} already holds a run; choose another --out")
        self.dir.mkdir(parents=True, exist_ok=True)
        self.manifest = manifest
        self._steps: TextIO = open(self.dir / STEPS, "a", encoding="utf-8")
        self._episodes: TextIO = open(self.dir / EPISODES, "a", encoding="utf-8")
        self.write_manifest()

    def write_manifest(self) -> None:
        """Rewrite ``manifest.json`` atomically (temp file + rename)."""
        tmp = self.dir / (MANIFEST + ".tmp")
        tmp.write_text(json.dumps(self.manifest.to_json(), indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, self.dir / MANIFEST)

    def step(self, record: StepRecord) -> None:
        _write_line(self._steps, record.to_json())
        self.manifest.counts["steps"] += 1

    def episode(self, record: EpisodeRecord) -> None:
        _write_line(self._episodes, record.to_json())
        self.manifest.counts["episodes"] += 1

    def close(self, status: str, finished: str) -> None:
        """Close the files and record how the run ended."""
        self._steps.close()
        self._episodes.close()
        self.manifest.status = status
        self.manifest.finished = finished
        self.write_manifest()


def _write_line(handle: TextIO, obj: dict[str, Any]) -> None:
    handle.write(json.dumps(obj, ensure_ascii=False, allow_nan=False) + "\n")
    handle.flush()


def read_manifest(run_dir: str | Path) -> dict[str, Any]:
    """The manifest of ``run_dir``; a clear error when missing, unreadable or too new."""
    path = Path(run_dir) / MANIFEST
    if not path.is_file():
        raise ResultsError(f"{run_dir} is not a run directory (no {MANIFEST})")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ResultsError(f"{path}: not valid JSON ({exc})") from None
    version = str(manifest.get("format_version", "?"))
    if version.split(".")[0] != FORMAT_VERSION.split(".")[0]:
        raise ResultsError(f"{path}: format version {version} is not readable by this zso (reads {FORMAT_VERSION})")
    return manifest


def iter_jsonl(path: str | Path) -> Iterator[dict[str, Any]]:
    """Stream the objects of a JSONL file; a bad line raises naming ``file:line``.

    A last line without its newline is a write cut short (a crash mid-line) and is
    reported as such.
    """
    path = Path(path)
    if not path.is_file():
        raise ResultsError(f"missing results file {path}")
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                cut = "" if line.endswith("\n") else " (the line is cut short: the run was killed while writing it)"
                raise ResultsError(f"{path}:{number}: not valid JSON{cut}: {exc.msg}") from None
            if not isinstance(obj, dict):
                raise ResultsError(f"{path}:{number}: expected a JSON object, got {type(obj).__name__}")
            yield obj


def iter_steps(run_dir: str | Path) -> Iterator[dict[str, Any]]:
    """The step records of a run, in the order they were taken."""
    return iter_jsonl(Path(run_dir) / STEPS)


def iter_episodes(run_dir: str | Path) -> Iterator[dict[str, Any]]:
    """The finished episodes of a run."""
    return iter_jsonl(Path(run_dir) / EPISODES)


def _typed(kind: type, path: Path) -> Iterator[Any]:
    for number, obj in enumerate(iter_jsonl(path), start=1):
        try:
            yield kind.from_json(obj)
        except (TypeError, KeyError) as exc:
            raise ResultsError(f"{path}: object {number}: not a {kind.__name__} ({exc})") from None


def load_manifest(run_dir: str | Path) -> Manifest:
    """The typed manifest of ``run_dir``."""
    return Manifest.from_json(read_manifest(run_dir))


def load_steps(run_dir: str | Path) -> Iterator[StepRecord]:
    """The typed step records of a run, in the order they were taken."""
    return _typed(StepRecord, Path(run_dir) / STEPS)


def load_episodes(run_dir: str | Path) -> Iterator[EpisodeRecord]:
    """The typed records of a run's finished episodes."""
    return _typed(EpisodeRecord, Path(run_dir) / EPISODES)
