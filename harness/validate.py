"""Check a run directory against the schemas and against itself."""

from __future__ import annotations

import math
import warnings
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterator

import jsonschema

from harness.config import schema
from harness.records import (
    EPISODES, MANIFEST, STEPS, Manifest, ResultsError, TornLineWarning, iter_jsonl, read_manifest, run_status, usage_totals,
)


def _validators() -> dict[str, Any]:
    """One validator per schema, with the registries' names as they are now."""
    return {kind: jsonschema.Draft202012Validator(schema(kind)) for kind in ("manifest", "step", "episode")}


def _schema_errors(validator: Any, obj: dict[str, Any], where: str) -> Iterator[str]:
    for error in sorted(validator.iter_errors(obj), key=lambda e: list(e.path)):
        path = ".".join(str(p) for p in error.path) or "(top level)"
        yield f"{where}: {path}: {error.message}"


def _non_finite(obj: Any, path: str = "") -> Iterator[str]:
    """Where ``obj`` holds NaN or an infinity (the writer never writes them: strict JSON)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        yield f"{path or '(top level)'}: {obj} is not a finite number"
    elif isinstance(obj, dict):
        for key, value in obj.items():
            yield from _non_finite(value, f"{path}.{key}" if path else str(key))
    elif isinstance(obj, list):
        for i, value in enumerate(obj):
            yield from _non_finite(value, f"{path}[{i}]")


def _expected_episodes(manifest: Manifest | None) -> int | None:
    """How many episodes a complete run holds (its shard's share); ``None`` when its config is unreadable."""
    from harness.config import ConfigError

    if manifest is None:
        return None
    try:
        return len(manifest.config.episode_indices())
    except ConfigError:
        return None


def validate_run(run_dir: str | Path, max_problems: int = 50) -> list[str]:
    """Every problem found in ``run_dir`` (empty when the run is valid).

    Checks each file against its schema (and that every number is finite), then consistency: steps of an episode are
    numbered 0, 1, ...; each action is one of the recorded legal actions; choose-mode
    distributions sum to 1; each finished episode has as many steps as it says; a
    ``complete`` run has all its episodes; the manifest's usage totals are its steps'.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", TornLineWarning)
        problems = _problems(Path(run_dir), max_problems)
    torn = [str(w.message) for w in caught if issubclass(w.category, TornLineWarning)]
    return (torn + problems)[:max_problems]


def _problems(run_dir: Path, max_problems: int) -> list[str]:
    problems: list[str] = []
    validators = _validators()
    try:
        raw = read_manifest(run_dir)
    except ResultsError as exc:
        return [str(exc)]
    problems += _schema_errors(validators["manifest"], raw, MANIFEST)
    manifest: Manifest | None = None
    try:
        manifest = Manifest.from_json(raw, MANIFEST, strict=True)  # the config against its schema
    except (ResultsError, TypeError) as exc:
        problems.append(str(exc))
    step_counts: Counter = Counter()
    next_t: dict[int, int] = {}
    try:
        for number, step in enumerate(iter_jsonl(run_dir / STEPS), start=1):
            where = f"{STEPS}:{number}"
            errors = list(_schema_errors(validators["step"], step, where)) + [f"{where}: {p}" for p in _non_finite(step)]
            problems += errors
            if errors:
                continue
            ep, t = step["episode"], step["t"]
            if t != next_t.get(ep, 0):
                problems.append(f"{where}: episode {ep} step t={t}, expected t={next_t.get(ep, 0)}")
            next_t[ep] = t + 1
            step_counts[ep] += 1
            if step["action"] is not None and step["action"] not in step["legal_actions"]:
                problems.append(f"{where}: action {step['action']!r} is not among the recorded legal actions")
            if step["probs"] is not None:
                if len(step["probs"]) != len(step["legal_actions"]) or not math.isclose(sum(step["probs"]), 1.0, abs_tol=1e-6):
                    problems.append(f"{where}: probs must have one entry per legal action and sum to 1")
            if step["logprobs"] is not None and len(step["logprobs"]) != len(step["legal_actions"]):
                problems.append(f"{where}: logprobs must have one entry per legal action")
            if len(problems) >= max_problems:
                return problems[:max_problems]
        episodes = set()
        for number, episode in enumerate(iter_jsonl(run_dir / EPISODES), start=1):
            where = f"{EPISODES}:{number}"
            errors = list(_schema_errors(validators["episode"], episode, where)) + [f"{where}: {p}" for p in _non_finite(episode)]
            problems += errors
            if errors:
                continue
            ep = episode["episode"]
            if ep in episodes:
                problems.append(f"{where}: episode {ep} recorded twice")
            episodes.add(ep)
            if step_counts[ep] != episode["steps"]:
                problems.append(f"{where}: episode {ep} says {episode['steps']} steps, {STEPS} has {step_counts[ep]}")
    except ResultsError as exc:
        problems.append(str(exc))
        return problems
    expected = _expected_episodes(manifest)
    if run_status(run_dir, raw) == "killed":
        problems.append(f"{MANIFEST}: status is running but no process is writing the run (it was killed); "
                        f"zso run --resume {run_dir} finishes it")
    orphans = sorted(set(step_counts) - episodes)
    if orphans:
        problems.append(f"{STEPS}: steps of episode(s) {orphans[:5]} that never finished")
    if manifest is not None and manifest.status == "complete" and expected is not None and len(episodes) != expected:
        problems.append(f"{MANIFEST}: status is complete but {len(episodes)} of {expected} episodes are recorded")
    if manifest is not None and manifest.usage is not None:
        recorded, actual = manifest.usage, usage_totals(run_dir)
        if replace(recorded, wall_s=0.0) != replace(actual, wall_s=0.0) or not math.isclose(
                recorded.wall_s, actual.wall_s, rel_tol=1e-6, abs_tol=1e-3):
            problems.append(f"{MANIFEST}: usage totals {recorded.to_json()} are not those of {STEPS} {actual.to_json()}")
    return problems[:max_problems]
