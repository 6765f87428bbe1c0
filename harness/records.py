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

import contextlib
import fcntl
import json
import os
import re
import signal
import threading
import warnings
from dataclasses import asdict, dataclass, field, fields, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, BinaryIO, Iterable, Iterator, Sequence

# BASELINE_BACKEND and load_schema are also read from here.
from harness.config import BASELINE_BACKEND, ConfigError, RunConfig, load_schema, validate_config  # noqa: F401

from textenvs.errors import UserError

from harness.backends.base import Usage

#: Version of the files written; readers refuse newer major versions.
#: 1.1: the manifest records the episode seed rule, not every seed; 1.2: the config records
#: who played (``config.agent``); a 1.0 baseline run is read as one; 1.3: steps (and their
#: refused attempts) record the backend's ``finish_reason``, the manifest its ``usage`` totals.
FORMAT_VERSION = "1.3"
MANIFEST = "manifest.json"
STEPS = "steps.jsonl"
EPISODES = "episodes.jsonl"
#: Held locked by the process writing the run.
LOCK = ".lock"


class ResultsError(UserError, ValueError):
    """A run directory or results file that cannot be read; the message names the place."""


@dataclass(frozen=True)
class Attempt:
    """One refused reply in generate mode."""

    prompt: str
    reply: str
    error_kind: str
    error: str
    #: Why the backend says the reply ended (``stop``, ``length``), or None; absent in files
    #: written before format 1.3.
    finish_reason: str | None = None


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
    #: Why the backend says ``reply`` ended: ``stop`` (end of sequence or a stop string) or
    #: ``length`` (``max_new_tokens``); None in choose mode, where the backend does not say,
    #: and in files written before format 1.3.
    finish_reason: str | None = None

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


@dataclass(frozen=True)
class ModelIdentity:
    """Who played, as ``manifest.model`` records it (a backend's or reference agent's ``info()``)."""

    #: The model's name, or the reference agent's.
    name: str
    #: The backend that ran it (:data:`BASELINE_BACKEND` for reference agents).
    backend: str
    #: Everything else recorded: ``source``, ``weights_sha256``, ``chat_template``, ``details``.
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "backend": self.backend, **self.details}

    @property
    def own_details(self) -> dict[str, Any]:
        """What the backend or reference agent recorded of itself (its info's ``details``: a
        planner's discount and temperature, a seeker's feature, a model's hyperparameters)."""
        return dict(self.details.get("details") or {})

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "ModelIdentity":
        rest = {k: v for k, v in data.items() if k not in ("name", "backend")}
        return cls(str(data.get("name", "?")), str(data.get("backend", "?")), rest)


@dataclass(frozen=True)
class EnvironmentIdentity:
    """The environment a run played, as ``manifest.environment`` records it."""

    id: str
    #: The variant played (the environment's default variant when none was asked for).
    variant: str | None
    options: dict[str, Any]
    encoding: str
    #: What the environment says of itself (a game's generated rules, the opponent), if anything.
    description: dict[str, Any] | None = None
    #: Which of its per-step metrics are rates (summarised with rate intervals).
    rate_metrics: tuple[str, ...] = ()
    #: Everything else recorded: ``class``, ``encoding_class``, ``option_models``.
    details: dict[str, Any] = field(default_factory=dict)
    #: ``(least, greatest)`` return an episode can have within the run's step limit, as the
    #: environment states it; the range of the summaries' bounded-mean intervals. ``None``: unknown.
    return_range: tuple[float, float] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "variant": self.variant, "options": self.options, **self.details, "encoding": self.encoding,
            **({} if self.description is None else {"description": self.description}),
            "rate_metrics": list(self.rate_metrics),
            **({} if self.return_range is None else {"return_range": list(self.return_range)}),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], config: RunConfig) -> "EnvironmentIdentity":
        """Read ``manifest.environment``; what it lacks is taken from the run's ``config``."""
        known = ("id", "variant", "options", "encoding", "description", "rate_metrics", "return_range")
        bounds = data.get("return_range")
        return cls(
            id=str(data.get("id", config.env)), variant=data.get("variant", config.variant),
            options=dict(data.get("options", config.env_options) or {}), encoding=str(data.get("encoding", config.encoding)),
            description=data.get("description"), rate_metrics=tuple(data.get("rate_metrics", ())),
            details={k: v for k, v in data.items() if k not in known},
            return_range=None if bounds is None else (float(bounds[0]), float(bounds[1])),
        )

    @property
    def opponent(self) -> str | None:
        """Who the agent played against (a game's or chess's opponent), if anyone."""
        opponent = (self.description or {}).get("opponent") or self.options.get("opponent")
        return None if opponent is None else str(opponent)

    @property
    def rules(self) -> str:
        """The rules the environment described itself with (``standard`` when it did not say)."""
        return str((self.description or {}).get("rules", "standard"))


@dataclass(frozen=True)
class UsageTotals:
    """What a run's decisions cost, summed over its steps file (``manifest.usage``).

    Recomputed from ``steps.jsonl`` whenever the run ends (:func:`usage_totals`), never
    carried in memory, so it stays right over resumes and merged shards.
    """

    #: Tokens read, written, and of those written spent reasoning, over the decisions whose
    #: backend counted them.
    prompt_tokens: int
    completion_tokens: int
    reasoning_tokens: int
    #: Every decision of the steps file.
    decisions: int
    #: The decisions whose backend counted tokens (reference agents count none).
    counted_decisions: int
    #: Seconds the decisions took (their ``timing.total_s``: each one's share of its batch's
    #: backend time plus its environment time): the run's working time, pauses left out.
    wall_s: float

    @property
    def usage(self) -> Usage | None:
        """The token totals, or None when no decision's backend counted any."""
        if not self.counted_decisions:
            return None
        return Usage(self.prompt_tokens, self.completion_tokens, self.reasoning_tokens)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "UsageTotals":
        """Read ``manifest.usage``; raises ``TypeError`` naming a missing or mistyped total."""
        values = {}
        for f in fields(cls):
            value = data.get(f.name)
            whole = isinstance(value, int) and not isinstance(value, bool) and value >= 0
            number = isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0
            if not (number if f.name == "wall_s" else whole):
                raise TypeError(f"usage.{f.name}: expected a {'number' if f.name == 'wall_s' else 'whole number'} >= 0, "
                                f"got {value!r}")
            values[f.name] = float(value) if f.name == "wall_s" else value
        return cls(**values)


def totals_of_steps(steps: Iterable[dict[str, Any]]) -> UsageTotals:
    """The :class:`UsageTotals` of step records as ``steps.jsonl`` holds them."""
    prompt = completion = reasoning = decisions = counted = 0
    wall = 0.0
    for step in steps:
        decisions += 1
        wall += float((step.get("timing") or {}).get("total_s", 0.0))
        usage = step.get("usage")
        if usage:
            counted += 1
            prompt += int(usage.get("prompt_tokens", 0))
            completion += int(usage.get("completion_tokens", 0))
            reasoning += int(usage.get("reasoning_tokens", 0))
    return UsageTotals(prompt, completion, reasoning, decisions, counted, round(wall, 6))


def usage_totals(run_dir: str | Path) -> UsageTotals:
    """The :class:`UsageTotals` of ``run_dir``'s steps file, read from disk."""
    return totals_of_steps(iter_steps(run_dir))


@dataclass
class Manifest:
    """The header of a run; rewritten when the run's status changes."""

    run_id: str
    created: str
    #: The resolved configuration (its ``out``: the run directory it was written to).
    config: RunConfig
    model: ModelIdentity
    environment: EnvironmentIdentity
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
    #: Runs with an episode target: where the stopping rule stands (:class:`harness.stopping.Stopping`).
    stopping: dict[str, Any] | None = None
    #: Totals over the steps file, recomputed when the run ends; None while it runs and in
    #: files written before format 1.3.
    usage: UsageTotals | None = None

    def __post_init__(self) -> None:
        # Plain JSON objects (as a manifest.json holds them) become the typed values.
        if isinstance(self.config, dict):
            self.config = RunConfig.from_json(self.config)
        if isinstance(self.model, dict):
            self.model = ModelIdentity.from_json(self.model)
        if isinstance(self.environment, dict):
            self.environment = EnvironmentIdentity.from_json(self.environment, self.config)
        if isinstance(self.usage, dict):
            self.usage = UsageTotals.from_json(self.usage)

    def to_json(self) -> dict[str, Any]:
        typed = {"config": self.config.to_json(), "model": self.model.to_json(), "environment": self.environment.to_json(),
                 "usage": None if self.usage is None else self.usage.to_json()}
        return {f.name: typed[f.name] if f.name in typed else _copy_json(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_json(cls, data: dict[str, Any], source: str = MANIFEST, strict: bool = False) -> "Manifest":
        """The manifest of a ``manifest.json`` object.

        Leniently by default (config keys this zso does not know are ignored, so newer
        minor versions stay readable); ``strict`` checks the config against the schema, as
        a run about to be continued must be.
        """
        raw = data.get("config")
        if not isinstance(raw, dict):
            raise ResultsError(f"{source}: config: expected a JSON object, got {type(raw).__name__}")
        try:
            if strict:
                validate_config(raw, source=f"{source} config")
            config = RunConfig.from_json(raw)
        except (ConfigError, TypeError) as exc:
            raise ResultsError(f"{source} config: {exc}") from None
        for key in ("model", "environment"):
            if not isinstance(data.get(key, {}), dict):
                raise ResultsError(f"{source}: {key}: expected a JSON object, got {type(data[key]).__name__}")
        known = {f.name for f in fields(cls)} - {"config", "model", "environment"}
        if data.get("usage") is not None and not isinstance(data["usage"], dict):
            raise ResultsError(f"{source}: usage: expected a JSON object, got {type(data['usage']).__name__}")
        try:
            return cls(**{
                **{k: v for k, v in data.items() if k in known},
                "config": config, "model": ModelIdentity.from_json(data.get("model", {})),
                "environment": EnvironmentIdentity.from_json(data.get("environment", {}), config),
            })
        except (TypeError, KeyError) as exc:
            raise ResultsError(f"{source}: {exc}") from None

    @property
    def is_baseline(self) -> bool:
        """Whether the run was played by a reference agent (``zso baseline``), not a model."""
        return self.config.is_baseline


def _copy_json(value: Any) -> Any:
    """A deep copy of a JSON-like value (dicts, lists, scalars)."""
    return json.loads(json.dumps(value))


def shard_config_differences(a: Manifest, b: Manifest) -> list[str]:
    """The config keys in which two runs differ, their shard and run directory aside (``[]``: the same run)."""
    ca = replace(a.config, shard=None, out=None).to_json()
    cb = replace(b.config, shard=None, out=None).to_json()
    return sorted(k for k in set(ca) | set(cb) if ca.get(k) != cb.get(k))


#: Manifest fields that may differ between the shards of one run.
_PER_SHARD = ("run_id", "created", "finished", "counts", "resumes", "host", "status", "usage")


def merged_manifest(manifests: Sequence[Manifest], out: str | Path) -> Manifest:
    """The manifest of the run made of shards ``manifests`` (checked to be one run's), written to ``out``.

    What every shard shares is the first one's; it is ``complete``, created when the first
    shard was, and its ``host`` lists the shards' hosts.
    """
    first = manifests[0]
    out = Path(out)
    return replace(
        first, run_id=out.name, created=min(m.created for m in manifests), config=replace(first.config, shard=None, out=str(out)),
        host={"shards": [_copy_json(m.host) for m in manifests]}, status="complete", finished=None, counts={"episodes": 0, "steps": 0},
        resumes=[], packages=_copy_json(first.packages), code=_copy_json(first.code), seeds=_copy_json(first.seeds), usage=None,
    )


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
        created = not self.dir.exists()
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            self._lock = _acquire_lock(self.dir)
        except OSError as exc:
            raise ResultsError(f"cannot write results to {self.dir}: {exc.strerror or exc}") from None
        self.manifest = manifest
        self._pending: dict[int, list[str]] = {}
        opened: list[BinaryIO] = []
        try:
            opened.append(open(self.dir / STEPS, "ab"))
            opened.append(open(self.dir / EPISODES, "ab"))
            self._steps, self._episodes = opened
            #: Sizes of the two files after the last committed episode: what :meth:`close` cuts them back to.
            self._committed = (self._steps.tell(), self._episodes.tell())
            self.write_manifest()
        except (OSError, ResultsError) as exc:
            # A new run that could not start leaves nothing that would block the same --out.
            for handle in opened:
                handle.close()
            if not resume:
                for name in (STEPS, EPISODES, MANIFEST, LOCK):
                    with contextlib.suppress(OSError):
                        (self.dir / name).unlink(missing_ok=True)
                if created:
                    with contextlib.suppress(OSError):
                        self.dir.rmdir()
            self._lock.close()
            if isinstance(exc, ResultsError):
                raise
            raise ResultsError(f"cannot write results to {self.dir}: {exc.strerror or exc}") from None

    def write_manifest(self) -> None:
        """Replace ``manifest.json`` atomically (temp file, fsync, rename)."""
        _replace_text(self.dir / MANIFEST, manifest_text(self.manifest))

    def step(self, record: StepRecord) -> None:
        """Hold ``record`` until its episode is committed by :meth:`episode`."""
        self._pending.setdefault(record.episode, []).append(_dumps(record.to_json()))

    def episode(self, record: EpisodeRecord) -> None:
        """Commit a finished episode: its held steps, then its episode line, both on disk."""
        steps = self._pending.pop(record.episode, [])
        line = _dumps(record.to_json())
        with _signals_held():  # Ctrl-C or SIGTERM lands after the commit, never inside it
            _append(self._steps, "".join(steps))
            _append(self._episodes, line)
            self._committed = (self._steps.tell(), self._episodes.tell())
            self.manifest.counts["episodes"] += 1
            self.manifest.counts["steps"] += len(steps)
            self.write_manifest()

    def close(self, status: str, finished: str) -> None:
        """Drop unfinished episodes, close the files and record how the run ended.

        The lock is released even when the last manifest cannot be written (a full disk).
        """
        self._pending.clear()
        try:
            # A write that failed between an episode's steps and its line (a full disk) leaves
            # steps no episode commits, or half a line: cut both files back to the last commit.
            for handle, size in zip((self._steps, self._episodes), self._committed):
                with contextlib.suppress(OSError, ValueError):
                    if handle.tell() > size:
                        handle.truncate(size)
                        os.fsync(handle.fileno())
                with contextlib.suppress(OSError):
                    handle.close()
            self.manifest.status = status
            self.manifest.finished = finished
            with contextlib.suppress(ResultsError, OSError, ValueError, TypeError), warnings.catch_warnings():
                # The files decide; a damaged one leaves none. A line cut short (a full disk)
                # is not counted, and the error that cut it is the one the user reads.
                warnings.simplefilter("ignore", TornLineWarning)
                self.manifest.usage = None
                self.manifest.usage = usage_totals(self.dir)
            self.write_manifest()
        finally:
            self._lock.close()


_SECRET_WORDS = r"api[_-]?key|key|token|secret|password|passwd|pwd|authorization|auth|credential|signature|sig"
_SECRET_KEY = re.compile(r"(api[_-]?key|token|secret|password|passwd|authorization|credential)s?$", re.IGNORECASE)
#: ``scheme://user:password@`` up to the *last* ``@`` before the path: a password may hold ``@``.
_URL_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/?#\s]*@")
#: ``?access_token=...``, ``&api-key=...``: any query parameter whose name holds a secret word.
_SECRET_QUERY = re.compile(rf"(?P<key>[?&;][\w.-]*(?:{_SECRET_WORDS})[\w.-]*=)[^&#\s'\"]+", re.IGNORECASE)
#: ``api_key = "..."``, ``"token": "..."``: a secret-looking key assigned in TOML, JSON or prose.
_SECRET_ASSIGNMENT = re.compile(
    r"(?P<key>(?<![\w-])(?:api[_-]?key|token|secret|password|passwd|authorization|credential)s?[\"']?\s*[=:]\s*[\"']?)"
    r"(?!REDACTED)[^\"'\s,}&#]+", re.IGNORECASE)
REDACTED = "REDACTED"


def redact_text(text: str) -> str:
    """``text`` with the credentials of every URL in it, and values assigned to secret-looking keys, removed (see :func:`redact`)."""
    if "@" not in text and "=" not in text and ":" not in text:
        return text
    text = _URL_USERINFO.sub(lambda m: m["scheme"], text)
    text = _SECRET_QUERY.sub(lambda m: m["key"] + REDACTED, text)
    return _SECRET_ASSIGNMENT.sub(lambda m: m["key"] + REDACTED, text)


def redact(obj: Any) -> Any:
    """``obj`` with credentials removed, before anything is written or printed.

    User and password in URLs (``http://user:pw@host``, a password holding ``@`` too) are
    dropped, secret-looking query parameters (``?token=...``, ``&api_key=...``) and values
    under secret-looking keys (``api_key``, ``token``, ``password``...) become ``REDACTED``.
    The *name* of an environment variable holding a key (``api_key_env``) is kept. Every
    file and message ``zso`` writes goes through this function or :func:`redact_text`.
    """
    if isinstance(obj, dict):
        return {
            k: REDACTED if isinstance(k, str) and _SECRET_KEY.search(k) and isinstance(v, str) and v else redact(v)
            for k, v in obj.items()
        }
    if isinstance(obj, (list, tuple)):
        return [redact(v) for v in obj]
    if isinstance(obj, str):
        return redact_text(obj)
    return obj


def check_new_run_dir(path: Path, what: str = "--out") -> None:
    """Refuse an output directory that already holds results, or that cannot be written.

    ``what`` names the argument that chose ``path`` in the advice (``--out``, ``OUT_DIR``...).
    """
    if (path / MANIFEST).exists():
        resume = f", or --resume {path} to finish it" if what == "--out" else ""
        raise ResultsError(f"{path} already holds a run; choose another {what}{resume}")
    leftovers = [name for name in (STEPS, EPISODES) if (path / name).exists()]
    if leftovers:
        raise ResultsError(f"{path} holds {' and '.join(leftovers)} but no {MANIFEST}; choose another {what}")
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


def run_status(run_dir: str | Path, manifest: "Manifest | dict[str, Any] | None" = None) -> str:
    """How a run stands: its manifest's status, or ``killed`` for a ``running`` run nobody writes.

    (The writer's lock is released by the operating system however its process ends.)
    """
    if isinstance(manifest, Manifest):
        status = manifest.status
    else:
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


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Within the block, SIGINT and SIGTERM are held; after it, each is handled as it would have
    been (Ctrl-C's KeyboardInterrupt, the runner's SIGTERM handler). Main thread only."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[tuple[int, Any]] = []
    previous = {sig: signal.signal(sig, lambda signum, frame: held.append((signum, frame))) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for signum, frame in held[:1]:
            handler = previous[signum]
            if callable(handler):
                handler(signum, frame)
            elif handler == signal.SIG_DFL:
                os.kill(os.getpid(), signum)


def _append(handle: BinaryIO, text: str) -> None:
    try:
        if text:
            handle.write(text.encode("utf-8"))
        handle.flush()
        os.fsync(handle.fileno())
    except OSError as exc:
        raise ResultsError(f"cannot write {handle.name}: {exc.strerror or exc}") from None


def read_manifest(run_dir: str | Path) -> dict[str, Any]:
    """The manifest of ``run_dir``; a clear error when missing, unreadable or too new."""
    path = Path(run_dir) / MANIFEST
    if not path.is_file():
        raise ResultsError(f"{run_dir} is not a run directory (no {MANIFEST})")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ResultsError(f"{path}: not valid JSON ({exc})") from None
    except OSError as exc:
        raise ResultsError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not isinstance(manifest, dict):
        raise ResultsError(f"{path}: expected a JSON object, got {type(manifest).__name__}")
    version = str(manifest.get("format_version", "?"))
    if version.split(".")[0] != FORMAT_VERSION.split(".")[0]:
        raise ResultsError(f"{path}: format version {version} is not readable by this zso (reads {FORMAT_VERSION})")
    _check_config(manifest.get("config"), path)
    return manifest


def _check_config(config: Any, path: Path) -> None:
    """Refuse a manifest whose ``config`` lacks what every reader uses (the run's size and place)."""
    if not isinstance(config, dict):
        raise ResultsError(f"{path}: 'config' must be an object, got {type(config).__name__ if config is not None else 'nothing'}")
    whole = lambda v: isinstance(v, int) and not isinstance(v, bool)  # noqa: E731
    checks = {
        "env": (lambda v: isinstance(v, str) and bool(v), "an environment id"),
        "episodes": (lambda v: whole(v) and v >= 1, "a whole number >= 1"),
        "max_steps": (lambda v: whole(v) and v >= 1, "a whole number >= 1"),
        "seed": (lambda v: whole(v) and v >= 0, "a whole number >= 0"),
        "encoding": (lambda v: v is None or isinstance(v, str), "an encoding id"),
        "env_options": (lambda v: isinstance(v, dict), "an object"),
        "backend_options": (lambda v: isinstance(v, dict), "an object"),
    }
    required = ("env", "episodes")
    for key, (ok, expected) in checks.items():
        if key not in config:
            if key in required:
                raise ResultsError(f"{path}: config.{key} is missing")
            continue
        if not ok(config[key]):
            raise ResultsError(f"{path}: config.{key}: expected {expected}, got {config[key]!r}")


@dataclass(frozen=True)
class ResumeState:
    """What an interrupted run keeps, once :func:`prepare_resume` has tidied its files."""

    #: The run's manifest, its config checked strictly (the run is about to continue).
    manifest: Manifest
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
    the steps of those episodes only; a torn last line, the steps of unfinished episodes
    and finished episodes that lost one of their steps are dropped (those are played again). Both files are rewritten atomically. A run that another process
    is still writing, or one with a corrupt line before its end, is refused.
    """
    run_dir = Path(run_dir)
    manifest = load_manifest(run_dir, strict=True)
    status = run_status(run_dir, manifest)
    if status == "running":
        raise ResultsError(f"{run_dir} is being written by another zso process; stop it before resuming")
    dropped: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", TornLineWarning)
        episode_lines: dict[int, tuple[int, dict[str, Any]]] = {}
        for number, obj in _numbered_jsonl(run_dir / EPISODES) if (run_dir / EPISODES).exists() else ():
            ep = obj.get("episode")
            if not isinstance(ep, int) or ep in episode_lines:
                dropped.append(f"{EPISODES}:{number}: episode {ep!r} " + ("recorded again" if ep in episode_lines else "has no index"))
                continue
            episode_lines[ep] = (number, obj)
        steps_of: dict[int, dict[int, str]] = {}
        for number, obj in _numbered_jsonl(run_dir / STEPS) if (run_dir / STEPS).exists() else ():
            ep, t = obj.get("episode"), obj.get("t")
            if ep in episode_lines and isinstance(t, int):
                steps_of.setdefault(ep, {}).setdefault(t, _dumps(obj))
        dropped += [str(w.message) for w in caught]
    # A kept episode must have every one of its steps, t = 0 .. steps - 1: one that lost a
    # step (or whose steps line was torn) is dropped with its steps, and played again.
    finished: set[int] = set()
    kept_lines, step_lines = [], []
    for ep, (number, obj) in episode_lines.items():
        held = steps_of.get(ep, {})
        count = obj.get("steps")
        if not isinstance(count, int) or sorted(held) != list(range(count)):
            dropped.append(f"{EPISODES}:{number}: episode {ep} says {obj.get('steps')!r} steps but {STEPS} holds "
                           f"{len(held)} of them; it is played again")
            continue
        finished.add(ep)
        kept_lines.append(_dumps(obj))
        step_lines += [held[t] for t in sorted(held)]
    steps_dropped = sum(1 for _ in _raw_lines(run_dir / STEPS)) - len(step_lines)
    if steps_dropped > 0:
        dropped.append(f"{STEPS}: {steps_dropped} step line(s) of unfinished episodes")
    _replace_text(run_dir / EPISODES, "".join(kept_lines))
    _replace_text(run_dir / STEPS, "".join(step_lines))
    return ResumeState(manifest, status, frozenset(finished), len(step_lines), tuple(dropped))


def write_run_files(run_dir: str | Path, manifest: Manifest, steps: list[dict[str, Any]], episodes: list[dict[str, Any]]) -> None:
    """Write a whole run at once (a merge of shards): steps, episodes, then the manifest."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    _replace_text(run_dir / STEPS, "".join(_dumps(s) for s in steps))
    _replace_text(run_dir / EPISODES, "".join(_dumps(e) for e in episodes))
    _replace_text(run_dir / MANIFEST, manifest_text(manifest))


def manifest_text(manifest: Manifest) -> str:
    """The text of ``manifest.json``: redacted, strict JSON (a NaN in it is a :class:`ResultsError`)."""
    try:
        return json.dumps(redact(manifest.to_json()), indent=2, allow_nan=False) + "\n"
    except ValueError as exc:
        raise ResultsError(f"{MANIFEST} of {manifest.run_id}: {exc} (a value is NaN or infinite)") from None


def _raw_lines(path: Path) -> Iterator[bytes]:
    if path.exists():
        with open(path, "rb") as handle:
            yield from (line for line in handle if line.strip())


def _replace_text(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` atomically; no temporary file is left behind if that fails."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as handle:
            handle.write(text.encode("utf-8"))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ResultsError(f"cannot write {path}: {exc.strerror or exc}") from None


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
    try:
        handle = open(path, "rb")
    except OSError as exc:
        raise ResultsError(f"cannot read {path}: {exc.strerror or exc}") from None
    with handle:
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
def _validator(name: str) -> Any:
    import jsonschema

    return jsonschema.Draft202012Validator(load_schema(name))


def _typed(kind: type, schema_name: str, path: Path) -> Iterator[Any]:
    for _, record in _typed_numbered(kind, schema_name, path):
        yield record


def _typed_numbered(kind: type, schema_name: str, path: Path) -> Iterator[tuple[int, Any]]:
    validator = _validator(schema_name)
    for number, obj in _numbered_jsonl(path):
        error = next(iter(sorted(validator.iter_errors(obj), key=lambda e: list(e.path))), None)
        if error is not None:
            where = ".".join(str(p) for p in error.path) or "(top level)"
            raise ResultsError(f"{path}:{number}: {where}: {error.message}")
        yield number, kind.from_json(obj)


class DamagedRunWarning(UserWarning):
    """A finished episode whose records do not agree (repeated, or steps missing): readers leave it out."""


def _step_problems(path: Path) -> tuple[dict[int, str], dict[int, int]]:
    """Read ``steps.jsonl`` once: the episodes whose steps are not numbered 0, 1, ... once each
    (index -> ``file:line: why``), and how many steps each episode holds."""
    problems: dict[int, str] = {}
    next_t: dict[int, int] = {}
    for number, obj in _numbered_jsonl(path):
        ep, t = obj.get("episode"), obj.get("t")
        if not isinstance(ep, int) or not isinstance(t, int):
            raise ResultsError(f"{path}:{number}: a step needs whole-number 'episode' and 't'")
        expected = next_t.get(ep, 0)
        if t != expected and ep not in problems:
            problems[ep] = f"{path}:{number}: episode {ep} step t={t}, expected t={expected}"
        next_t[ep] = max(expected, t + 1)
    return problems, next_t


def sound_episodes(run_dir: str | Path) -> list[EpisodeRecord]:
    """The finished episodes of ``run_dir`` that agree with their steps, in index order.

    What ``zso summary``, ``irl`` and ``compare`` read. A repeated episode line keeps its
    first copy; an episode whose steps are missing, repeated or out of order (a torn or
    edited ``steps.jsonl``) is left out. Each is reported by a :class:`DamagedRunWarning`
    naming the file and line (``zso validate`` lists every problem).
    """
    run_dir = Path(run_dir)
    problems, counts = _step_problems(run_dir / STEPS) if (run_dir / STEPS).exists() else ({}, {})
    kept: dict[int, EpisodeRecord | None] = {}
    for number, record in _typed_numbered(EpisodeRecord, "episode", run_dir / EPISODES):
        where = f"{run_dir / EPISODES}:{number}"
        if record.episode in kept:
            warnings.warn(DamagedRunWarning(f"{where}: episode {record.episode} recorded again; the repeat is ignored"), stacklevel=2)
            continue
        held = counts.get(record.episode, 0)
        why = problems.get(record.episode)
        if why is None and held != record.steps:
            why = f"{where}: episode {record.episode} says {record.steps} steps, {STEPS} holds {held}"
        if why is not None:
            warnings.warn(DamagedRunWarning(f"{why}; episode {record.episode} left out"), stacklevel=2)
            kept[record.episode] = None  # its repeats are ignored too
            continue
        kept[record.episode] = record
    return [record for _, record in sorted(kept.items()) if record is not None]


def load_manifest(run_dir: str | Path, strict: bool = False) -> Manifest:
    """The typed manifest of ``run_dir`` (``strict``: its config checked against the schema, see :meth:`Manifest.from_json`)."""
    return Manifest.from_json(read_manifest(run_dir), f"{Path(run_dir) / MANIFEST}", strict)


def load_steps(run_dir: str | Path) -> Iterator[StepRecord]:
    """The typed step records of a run, in the order they were taken."""
    return _typed(StepRecord, "step", Path(run_dir) / STEPS)


def load_episodes(run_dir: str | Path) -> Iterator[EpisodeRecord]:
    """The typed records of a run's finished episodes."""
    return _typed(EpisodeRecord, "episode", Path(run_dir) / EPISODES)
