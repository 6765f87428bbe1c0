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

import fcntl
import json
import os
import re
import warnings
from dataclasses import asdict, dataclass, field, fields
from functools import lru_cache
from importlib.resources import files
from pathlib import Path
from typing import Any, BinaryIO, Iterator

from harness.backends.base import Usage

#: Version of the files written; readers refuse newer major versions.
FORMAT_VERSION = "1.0"
MANIFEST = "manifest.json"
STEPS = "steps.jsonl"
EPISODES = "episodes.jsonl"
#: Held locked by the process writing the run.
LOCK = ".lock"
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
    #: Tokens this decision's backend calls read and wrote, all attempts (its share of a
    #: batch's), or None where the backend counts none; absent in files written before.
    usage: Usage | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "StepRecord":
        """The record of one ``steps.jsonl`` object (as :meth:`to_json` wrote it)."""
        return cls(**{
            **data,
            "attempts": [Attempt(**a) for a in data["attempts"]],
            "timing": Timing(**data["timing"]),
            "usage": Usage(**data["usage"]) if data.get("usage") else None,
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
    #: One entry per resume: ``{"at", "status_before", "episodes_kept", "dropped"}``.
    resumes: list[dict[str, Any]] = field(default_factory=list)

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
    """Writes a run directory so that no episode is ever half-written.

    A step is held in memory until its episode ends; then the episode's steps and its
    line in ``episodes.jsonl`` are written, flushed and fsync'ed together (the episode
    line last: it is the commit). The manifest is replaced atomically (temp file +
    rename) after every episode, so its counts follow the files. While the writer is
    open it holds an exclusive lock on ``DIR/.lock``; a run whose manifest says
    ``running`` but whose lock is free was killed (see :func:`run_status`).

    A new run refuses a directory that already holds results; ``resume=True`` appends to
    the run that is there (see :func:`prepare_resume`).
    """

    def __init__(self, out: str | Path, manifest: Manifest, *, resume: bool = False):
        self.dir = Path(out)
        if not resume:
            check_new_run_dir(self.dir)
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            self._lock = _acquire_lock(self.dir)
        except OSError as exc:
            raise ResultsError(f"cannot write results to {self.dir}: {exc.strerror or exc}") from None
        self.manifest = manifest
        self._pending: dict[int, list[str]] = {}
        self._steps: BinaryIO = open(self.dir / STEPS, "ab")
        self._episodes: BinaryIO = open(self.dir / EPISODES, "ab")
        self.write_manifest()

    def write_manifest(self) -> None:
        """Replace ``manifest.json`` atomically (temp file, fsync, rename)."""
        tmp = self.dir / (MANIFEST + ".tmp")
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(redact(self.manifest.to_json()), indent=2, allow_nan=False) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.dir / MANIFEST)

    def step(self, record: StepRecord) -> None:
        """Hold ``record`` until its episode is committed by :meth:`episode`."""
        self._pending.setdefault(record.episode, []).append(_dumps(record.to_json()))

    def episode(self, record: EpisodeRecord) -> None:
        """Commit a finished episode: its held steps, then its episode line, both on disk."""
        steps = self._pending.pop(record.episode, [])
        line = _dumps(record.to_json())
        _append(self._steps, "".join(steps))
        _append(self._episodes, line)
        self.manifest.counts["episodes"] += 1
        self.manifest.counts["steps"] += len(steps)
        self.write_manifest()

    def close(self, status: str, finished: str) -> None:
        """Drop unfinished episodes, close the files and record how the run ended."""
        self._pending.clear()
        self._steps.close()
        self._episodes.close()
        self.manifest.status = status
        self.manifest.finished = finished
        self.write_manifest()
        self._lock.close()


_SECRET_KEY = re.compile(r"(api[_-]?key|token|secret|password|passwd|authorization|credential)s?$", re.IGNORECASE)
_URL_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/@\s]+@")
_SECRET_QUERY = re.compile(r"(?P<key>[?&](?:api[_-]?key|key|token|access_token|secret|password)=)[^&#\s]+", re.IGNORECASE)
REDACTED = "REDACTED"


def redact(obj: Any) -> Any:
    """``obj`` with credentials removed, before anything is written.

    User and password in URLs (``http://user:pw@host``) are dropped, secret-looking query
    parameters (``?api_key=...``) and values under secret-looking keys (``api_key``,
    ``token``, ``password``...) become ``REDACTED``. The *name* of an environment variable
    holding a key (``api_key_env``) is kept.
    """
    if isinstance(obj, dict):
        return {
            k: REDACTED if isinstance(k, str) and _SECRET_KEY.search(k) and isinstance(v, str) and v else redact(v)
            for k, v in obj.items()
        }
    if isinstance(obj, (list, tuple)):
        return [redact(v) for v in obj]
    if isinstance(obj, str) and "://" in obj or isinstance(obj, str) and "=" in obj:
        return _SECRET_QUERY.sub(lambda m: m["key"] + REDACTED, _URL_USERINFO.sub(lambda m: m["scheme"], obj))
    return obj


def check_new_run_dir(path: Path) -> None:
    """Refuse an output directory that already holds results, or that cannot be written."""
    if (path / MANIFEST).exists():
        raise ResultsError(f"{path} already holds a run; choose another --out, or --resume {path} to finish it")
    leftovers = [name for name in (STEPS, EPISODES) if (path / name).exists()]
    if leftovers:
        raise ResultsError(f"{path} holds {' and '.join(leftovers)} but no {MANIFEST}; choose another --out")
    existing = next((p for p in (path, *path.parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise ResultsError(f"cannot write results to {path}: {existing} is a file")
    if existing is not None and not os.access(existing, os.W_OK | os.X_OK):
        raise ResultsError(f"cannot write results to {path}: {existing} is not writable")


def _acquire_lock(run_dir: Path) -> BinaryIO:
    """An exclusive lock on ``run_dir/.lock``, held until the returned file is closed."""
    handle = open(run_dir / LOCK, "ab")
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise ResultsError(f"{run_dir} is being written by another zso process") from None
    return handle


def run_status(run_dir: str | Path, manifest: dict[str, Any] | None = None) -> str:
    """How a run stands: its manifest's status, or ``killed`` for a ``running`` run nobody writes.

    (The writer's lock is released by the operating system however its process ends.)
    """
    status = str((manifest or read_manifest(run_dir)).get("status"))
    if status != "running":
        return status
    try:
        with open(Path(run_dir) / LOCK, "ab") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return "running"
    except OSError:
        return status
    return "killed"


def _dumps(obj: dict[str, Any]) -> str:
    return json.dumps(obj, ensure_ascii=False, allow_nan=False) + "\n"


def _append(handle: BinaryIO, text: str) -> None:
    if text:
        handle.write(text.encode("utf-8"))
    handle.flush()
    os.fsync(handle.fileno())


def read_manifest(run_dir: str | Path) -> dict[str, Any]:
    """The manifest of ``run_dir``; a clear error when missing, unreadable or too new."""
    path = Path(run_dir) / MANIFEST
    if not path.is_file():
        raise ResultsError(f"{run_dir} is not a run directory (no {MANIFEST})")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ResultsError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(manifest, dict):
        raise ResultsError(f"{path}: expected a JSON object, got {type(manifest).__name__}")
    version = str(manifest.get("format_version", "?"))
    if version.split(".")[0] != FORMAT_VERSION.split(".")[0]:
        raise ResultsError(f"{path}: format version {version} is not readable by this zso (reads {FORMAT_VERSION})")
    return manifest


@dataclass(frozen=True)
class ResumeState:
    """What an interrupted run keeps, once :func:`prepare_resume` has tidied its files."""

    manifest: dict[str, Any]
    #: How the run stood before the resume (``interrupted``, ``failed``, ``killed``...).
    status_before: str
    #: Indices of the episodes finished and kept.
    finished: frozenset[int]
    #: Steps kept (those of finished episodes).
    steps: int
    #: What was dropped, one line each (``steps.jsonl:41: torn line``...).
    dropped: tuple[str, ...]


def prepare_resume(run_dir: str | Path) -> ResumeState:
    """Make an interrupted or killed run ready to be continued; returns what it keeps.

    Keeps every finished episode once (a repeated episode line keeps its first copy) and
    the steps of those episodes only; a torn last line and the steps of unfinished
    episodes are dropped. Both files are rewritten atomically. A run that another process
    is still writing, or one with a corrupt line before its end, is refused.
    """
    run_dir = Path(run_dir)
    manifest = read_manifest(run_dir)
    status = run_status(run_dir, manifest)
    if status == "running":
        raise ResultsError(f"{run_dir} is being written by another zso process; stop it before resuming")
    dropped: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", TornLineWarning)
        episode_lines, finished = [], set()
        for number, obj in _numbered_jsonl(run_dir / EPISODES) if (run_dir / EPISODES).exists() else ():
            ep = obj.get("episode")
            if not isinstance(ep, int) or ep in finished:
                dropped.append(f"{EPISODES}:{number}: episode {ep!r} " + ("recorded again" if ep in finished else "has no index"))
                continue
            finished.add(ep)
            episode_lines.append(_dumps(obj))
        step_lines, seen = [], set()
        for number, obj in _numbered_jsonl(run_dir / STEPS) if (run_dir / STEPS).exists() else ():
            key = (obj.get("episode"), obj.get("t"))
            if key[0] in finished and key not in seen:
                seen.add(key)
                step_lines.append(_dumps(obj))
        dropped += [str(w.message) for w in caught]
    steps_dropped = sum(1 for _ in _raw_lines(run_dir / STEPS)) - len(step_lines)
    if steps_dropped > 0:
        dropped.append(f"{STEPS}: {steps_dropped} step line(s) of unfinished episodes")
    _replace_text(run_dir / EPISODES, "".join(episode_lines))
    _replace_text(run_dir / STEPS, "".join(step_lines))
    return ResumeState(manifest, status, frozenset(finished), len(step_lines), tuple(dropped))


def write_run_files(run_dir: str | Path, manifest: Manifest, steps: list[dict[str, Any]], episodes: list[dict[str, Any]]) -> None:
    """Write a whole run at once (a merge of shards): steps, episodes, then the manifest."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    _replace_text(run_dir / STEPS, "".join(_dumps(s) for s in steps))
    _replace_text(run_dir / EPISODES, "".join(_dumps(e) for e in episodes))
    _replace_text(run_dir / MANIFEST, json.dumps(redact(manifest.to_json()), indent=2, allow_nan=False) + "\n")


def _raw_lines(path: Path) -> Iterator[bytes]:
    if path.exists():
        with open(path, "rb") as handle:
            yield from (line for line in handle if line.strip())


def _replace_text(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` atomically."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as handle:
        handle.write(text.encode("utf-8"))
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


class TornLineWarning(UserWarning):
    """The last line of a results file was cut short (the run was killed while writing it) and is skipped."""


def iter_jsonl(path: str | Path) -> Iterator[dict[str, Any]]:
    """Stream the objects of a JSONL file; a bad line raises naming ``file:line``.

    A last line without its newline that does not parse is a write cut short by a kill:
    it is skipped with a :class:`TornLineWarning` naming the file and line.
    """
    for _, obj in _numbered_jsonl(Path(path)):
        yield obj


def _numbered_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    if not path.is_file():
        raise ResultsError(f"missing results file {path}")
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            torn = not raw.endswith(b"\n")
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                if torn:
                    warnings.warn(TornLineWarning(f"{path}:{number}: skipped a line cut short (not UTF-8)"), stacklevel=2)
                    return
                raise ResultsError(f"{path}:{number}: not UTF-8 text") from None
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                if torn:
                    warnings.warn(TornLineWarning(f"{path}:{number}: skipped a line cut short (the run was killed while writing it)"), stacklevel=2)
                    return
                raise ResultsError(f"{path}:{number}: not valid JSON: {exc.msg}") from None
            if not isinstance(obj, dict):
                raise ResultsError(f"{path}:{number}: expected a JSON object, got {type(obj).__name__}")
            yield number, obj


def iter_steps(run_dir: str | Path) -> Iterator[dict[str, Any]]:
    """The step records of a run as raw JSON objects, in the order they were written."""
    return iter_jsonl(Path(run_dir) / STEPS)


def iter_episodes(run_dir: str | Path) -> Iterator[dict[str, Any]]:
    """The finished episodes of a run as raw JSON objects."""
    return iter_jsonl(Path(run_dir) / EPISODES)


@lru_cache(maxsize=None)
def load_schema(name: str) -> dict[str, Any]:
    """The JSON Schema ``results/schemas/<name>.schema.json`` as shipped.

    Fields marked ``"x-registry"`` take the names of a registry; :func:`harness.config.schema`
    fills those in for validation.
    """
    return json.loads(files("harness.schemas").joinpath(f"{name}.schema.json").read_text(encoding="utf-8"))


@lru_cache(maxsize=None)
def _validator(name: str) -> Any:
    import jsonschema

    return jsonschema.Draft202012Validator(load_schema(name))


def _typed(kind: type, schema_name: str, path: Path) -> Iterator[Any]:
    validator = _validator(schema_name)
    for number, obj in _numbered_jsonl(path):
        error = next(iter(sorted(validator.iter_errors(obj), key=lambda e: list(e.path))), None)
        if error is not None:
            where = ".".join(str(p) for p in error.path) or "(top level)"
            raise ResultsError(f"{path}:{number}: {where}: {error.message}")
        yield kind.from_json(obj)


def load_manifest(run_dir: str | Path) -> Manifest:
    """The typed manifest of ``run_dir``."""
    return Manifest.from_json(read_manifest(run_dir))


def load_steps(run_dir: str | Path) -> Iterator[StepRecord]:
    """The typed step records of a run, in the order they were taken."""
    return _typed(StepRecord, "step", Path(run_dir) / STEPS)


def load_episodes(run_dir: str | Path) -> Iterator[EpisodeRecord]:
    """The typed records of a run's finished episodes."""
    return _typed(EpisodeRecord, "episode", Path(run_dir) / EPISODES)
