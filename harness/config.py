"""The run configuration: one frozen dataclass, read from flags or a TOML file.

Every run saves its resolved configuration in its manifest; ``zso run --config`` with that
``config`` table reproduces it.
"""

from __future__ import annotations

import copy
import difflib
import json
import math
import sys
from dataclasses import asdict, dataclass, field, fields
from functools import lru_cache
from importlib.resources import files
from pathlib import Path
from typing import Any, Callable, Mapping

import jsonschema

from textenvs.errors import UserError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


class ConfigError(UserError, ValueError):
    """A configuration that cannot be run; the message names the bad key."""


#: ``backend`` (and ``manifest.model.backend``) of runs played by a reference agent: it is
#: derived from the agent spec (:class:`AgentSpec`), never decided on.
BASELINE_BACKEND = "baseline"
#: Who can play a run: a language model, or a registered reference agent (``harness.agents.BASELINES``).
AGENT_KINDS = ("model", "baseline")
#: An environment option given as ``"model:NAME"`` is played by that model (a chess opponent).
MODEL_PREFIX = "model:"


@dataclass(frozen=True)
class AgentSpec:
    """Who plays a run, so that the run can be rebuilt (and resumed) from its configuration.

    ``kind="model"``: the language model named by the config's ``model``, ``backend`` and
    ``mode`` (``name`` and ``options`` stay empty). ``kind="baseline"``: the reference agent
    ``name`` built with ``options`` (the fields of :class:`harness.agents.BaselineOptions`
    it was given: temperature, discount, train_episodes...); a trained agent is retrained
    from the run's seed, so it is the same agent every time.
    """

    kind: str = "model"
    name: str | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in AGENT_KINDS:
            raise ConfigError(f"agent kind must be one of {', '.join(AGENT_KINDS)}, got {self.kind!r}")
        if self.kind == "baseline" and not self.name:
            raise ConfigError("a baseline agent needs a name (e.g. random, soft-optimal, q-learning)")
        if self.kind == "model" and (self.name is not None or self.options):
            raise ConfigError("agent: a model is named by the config's model, backend and mode; give no agent name or options")

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "AgentSpec":
        """The spec of a config's ``agent`` table."""
        return cls(str(data.get("kind", "model")), data.get("name"), dict(data.get("options") or {}))


@dataclass(frozen=True)
class RunConfig:
    """Everything that decides what a run does."""

    env: str = "chess"
    variant: str | None = None
    env_options: dict[str, Any] = field(default_factory=dict)
    #: ``None``: the environment's first registered encoding.
    encoding: str | None = None
    model: str = "smollm2-135m-instruct"
    backend: str = "transformers"
    backend_options: dict[str, Any] = field(default_factory=dict)
    mode: str = "choose"
    #: Episodes to play; with :attr:`episodes_target`, the most to play (the budget).
    episodes: int = 4
    #: Stop early, in rounds of ``batch_size`` episodes, once GD's anytime-valid interval
    #: excludes 0 or its half-width is at most this (:mod:`harness.stopping`); ``None``: play all.
    episodes_target: float | None = None
    max_steps: int = 40
    #: Episodes in play at once. A new one starts as soon as one finishes, so an interrupt
    #: loses at most this many; on CPU batching gains little (see Benchmarks), on a GPU raise it.
    batch_size: int = 4
    seed: int = 0
    temperature: float = 0.0
    score_norm: str = "sum"
    list_order: str = "shuffled"
    max_new_tokens: int = 16
    max_retries: int = 2
    fallback: str = "random"
    out: str | None = None
    #: ``"I/N"``: play only shard I of N (1-based) of the episodes: those whose index is
    #: ``I - 1`` modulo ``N``, with the seeds they have in the whole run (``zso merge``).
    shard: str | None = None
    #: Who plays: a model (``model``, ``backend``, ``mode`` above) or a reference agent, whose
    #: name then also stands in ``model`` and whose ``backend`` is :data:`BASELINE_BACKEND`.
    agent: AgentSpec = field(default_factory=AgentSpec)

    def __post_init__(self) -> None:
        if self.encoding is None:
            from textenvs import encodings_for

            known = encodings_for(self.env)
            object.__setattr__(self, "encoding", known[0] if known else None)
        if isinstance(self.agent, Mapping):
            object.__setattr__(self, "agent", AgentSpec.from_json(self.agent))
        if self.backend == BASELINE_BACKEND and self.agent.kind == "model":
            # The baseline backend names a reference agent: ``model`` (as configs said before agent specs).
            object.__setattr__(self, "agent", AgentSpec("baseline", self.model))
        if self.agent.kind == "baseline":
            # A reference agent acts in choose mode (its full distribution in ``probs``).
            object.__setattr__(self, "model", self.agent.name)
            object.__setattr__(self, "backend", BASELINE_BACKEND)
            object.__setattr__(self, "mode", "choose")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "RunConfig":
        """The config of a manifest's ``config`` object, leniently (keys this zso does not know are ignored).

        A config written before runs recorded their agent (format 1.0) that names the
        ``baseline`` backend is read as a baseline run of the agent ``model``; such runs
        recorded the softmax temperature (``soft-optimal``'s) in ``temperature``.
        """
        names = {f.name for f in fields(cls)}
        data = {k: v for k, v in data.items() if k in names}
        if "agent" not in data and data.get("backend") == BASELINE_BACKEND and data.get("temperature"):
            data["agent"] = {"kind": "baseline", "name": data.get("model"), "options": {"temperature": float(data["temperature"])}}
            data["temperature"] = 0.0
        return cls(**data)

    @property
    def is_baseline(self) -> bool:
        """Whether a reference agent, not a language model, plays the run."""
        return self.agent.kind == "baseline"

    def make_env(self, policy: Callable[[str], Any] | None = None) -> Any:
        """The run's environment, built fresh (see :func:`make_run_env`)."""
        return make_run_env(self.env, self.variant, self.env_options, policy)

    def episode_indices(self) -> range:
        """The indices of the episodes this run plays (all of them, or its shard's), lazily."""
        index, count = parse_shard(self.shard)
        return range(index, self.episodes, count)

    def episode_seed(self, index: int) -> int:
        """The seed of episode ``index``: the base seed plus the index (:data:`EPISODE_SEED_RULE`)."""
        return self.seed + index


#: How each episode's seed follows from the run's base seed (recorded in every manifest).
#: The bounds on ``episodes``, ``batch_size`` and ``seed`` live in the config schema.
EPISODE_SEED_RULE = "base + episode"


def make_run_env(env: str, variant: str | None, options: Mapping[str, Any], policy: Callable[[str], Any] | None = None) -> Any:
    """Build a run's environment from its recorded identity: the one place runs are rebuilt.

    ``options`` given as ``"model:NAME"`` (an opponent played by a model) are replaced by
    ``policy(NAME)``; without ``policy`` they are left out, so the environment's default
    stands in: enough to check options, read an exact MDP or replay a run, not to play it.
    """
    from textenvs import make_env

    resolved = {}
    for key, value in options.items():
        if isinstance(value, str) and value.startswith(MODEL_PREFIX):
            if policy is None:
                continue
            value = policy(value.removeprefix(MODEL_PREFIX))
        resolved[key] = value
    return make_env(env, variant, **resolved)


@lru_cache(maxsize=None)
def load_schema(name: str) -> dict[str, Any]:
    """The JSON Schema ``results/schemas/<name>.schema.json`` as shipped.

    Fields marked ``"x-registry"`` take the names of a registry; :func:`schema` fills those
    in for validation.
    """
    return json.loads(files("harness.schemas").joinpath(f"{name}.schema.json").read_text(encoding="utf-8"))


def schema(name: str) -> dict[str, Any]:
    """The JSON Schema ``results/schemas/<name>.schema.json``, with the registered names filled in.

    Fields whose values come from a registry (``backend``, ``mode``) carry ``"x-registry"``
    in the file; their ``enum`` is read from that registry at each call, so registering a
    backend or an agent mode is all it takes for configs and results to accept it.
    """
    doc = copy.deepcopy(load_schema(name))
    for prop in doc.get("properties", {}).values():
        if isinstance(prop, dict) and "x-registry" in prop:
            prop["enum"] = registered_names(prop["x-registry"])
    return doc


def registered_names(registry: str) -> list[str]:
    """The names a schema field may take: ``"backends"`` (and ``baseline``) or ``"modes"``."""
    from harness.agents import MODES
    from harness.backends import BACKENDS

    if registry == "backends":
        return BACKENDS.names() + [BASELINE_BACKEND]
    if registry == "modes":
        return MODES.names()
    raise ValueError(f"unknown schema registry {registry!r}")


def validate_config(data: Mapping[str, Any], source: str = "config") -> None:
    """Check ``data`` against the config schema; the error names the key and what is wrong."""
    validator = jsonschema.Draft202012Validator(schema("config"))
    errors = sorted(validator.iter_errors(dict(data)), key=lambda e: list(e.path))
    types = {key: schema("config")["properties"].get(key, {}).get("type") for key in data}
    messages = [
        f"{source}: key {key!r}: {value!r} is not a whole number"
        for key, value in data.items() if types[key] == "integer" and isinstance(value, float)
    ] + [
        f"{source}: key {key!r}: {value!r} is not a finite number"
        for key, value in data.items() if types[key] == "number" and isinstance(value, float) and not math.isfinite(value)
    ]
    if not errors and not messages:
        return
    known = list(schema("config")["properties"])
    for error in errors:
        if error.validator == "additionalProperties":
            extra = [k for k in data if k not in known]
            for key in extra:
                close = difflib.get_close_matches(key, known, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                messages.append(f"{source}: unknown key {key!r}{hint}")
        else:
            where = ".".join(str(p) for p in error.path) or "(top level)"
            messages.append(f"{source}: key {where!r}: {error.message}")
    raise ConfigError("; ".join(messages))


def load_toml(path: str | Path) -> dict[str, Any]:
    """The raw table of a TOML config file, or a clear error."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"no config file {path}") from None
    except IsADirectoryError:
        raise ConfigError(f"{path} is a directory, not a TOML config file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {getattr(exc, 'strerror', None) or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    return data


def resolve_config(file: str | Path | None = None, **overrides: Any) -> RunConfig:
    """Defaults, then the TOML file, then explicit ``overrides`` (``None`` means unset)."""
    data: dict[str, Any] = {}
    if file is not None:
        data = load_toml(file)
        validate_config(data, source=str(file))
    set_overrides = {k: v for k, v in overrides.items() if v is not None}
    for key in ("env_options", "backend_options"):
        if key in set_overrides:
            set_overrides[key] = {**data.get(key, {}), **set_overrides[key]}
    merged = {**data, **set_overrides}
    validate_config(merged, source=str(file) if file else "options")
    names = {f.name for f in fields(RunConfig)}
    return RunConfig(**{k: v for k, v in merged.items() if k in names})


def config_from_manifest(manifest: Any, run_dir: str | Path) -> RunConfig:
    """The configuration a run was made with (``manifest``: its :class:`harness.records.Manifest`), writing to ``run_dir``."""
    from dataclasses import replace

    return replace(manifest.config, out=str(run_dir))


def parse_shard(shard: str | None) -> tuple[int, int]:
    """``"2/4"`` -> ``(1, 4)`` (0-based index, count); ``None`` -> ``(0, 1)``."""
    if shard is None:
        return 0, 1
    i, sep, n = str(shard).partition("/")
    try:
        index, count = int(i), int(n)
    except ValueError:
        index = count = 0
    if not sep or count < 1 or not 1 <= index <= count:
        raise ConfigError(f"shard must look like I/N with 1 <= I <= N (e.g. 2/4), got {shard!r}")
    return index - 1, count


def parse_key_values(pairs: list[str] | None, flag: str) -> dict[str, Any]:
    """``["opponent=stockfish", "depth=3"]`` -> ``{"opponent": "stockfish", "depth": 3}``.

    Values are read as TOML scalars when they parse as one (numbers, booleans), ``none``
    as ``None``, anything else as a string.
    """
    result: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{flag} expects KEY=VALUE, got {pair!r}")
        if value.strip().lower() == "none":
            result[key.strip()] = None
            continue
        try:
            result[key.strip()] = tomllib.loads(f"v = {value}")["v"]
        except tomllib.TOMLDecodeError:
            result[key.strip()] = value
    return result
