"""The run configuration: one frozen dataclass, read from flags or a TOML file.

Every run saves its resolved configuration in its manifest; ``zso run --config`` with that
``config`` table reproduces it.
"""

from __future__ import annotations

import copy
import difflib
import sys
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

import jsonschema

from harness.records import load_schema

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


class ConfigError(ValueError):
    """A configuration that cannot be run; the message names the bad key."""


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

    def __post_init__(self) -> None:
        if self.encoding is None:
            from textenvs import encodings_for

            known = encodings_for(self.env)
            object.__setattr__(self, "encoding", known[0] if known else None)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def episode_indices(self) -> list[int]:
        """The indices of the episodes this run plays (all of them, or its shard's)."""
        index, count = parse_shard(self.shard)
        return [i for i in range(self.episodes) if i % count == index]

    def episode_seeds(self) -> list[int]:
        """One seed per episode, derived from the base seed."""
        return [self.seed + i for i in range(self.episodes)]


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
    from harness.records import BASELINE_BACKEND

    if registry == "backends":
        return BACKENDS.names() + [BASELINE_BACKEND]
    if registry == "modes":
        return MODES.names()
    raise ValueError(f"unknown schema registry {registry!r}")


def validate_config(data: Mapping[str, Any], source: str = "config") -> None:
    """Check ``data`` against the config schema; the error names the key and what is wrong."""
    validator = jsonschema.Draft202012Validator(schema("config"))
    errors = sorted(validator.iter_errors(dict(data)), key=lambda e: list(e.path))
    messages = [
        f"{source}: key {key!r}: {value!r} is not a whole number"
        for key, value in data.items()
        if schema("config")["properties"].get(key, {}).get("type") == "integer" and isinstance(value, float)
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


def config_from_manifest(manifest: Mapping[str, Any], run_dir: str | Path) -> RunConfig:
    """The configuration a run was made with (its manifest's ``config``), writing to ``run_dir``."""
    data = dict(manifest.get("config") or {})
    data["out"] = str(run_dir)
    validate_config(data, source=f"{run_dir}/manifest.json config")
    names = {f.name for f in fields(RunConfig)}
    return RunConfig(**{k: v for k, v in data.items() if k in names})


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
