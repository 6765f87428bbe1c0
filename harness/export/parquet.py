"""Steps and episodes as two Parquet tables, one row per step or episode.

``OUT/<run>/steps.parquet`` and ``OUT/<run>/episodes.parquet``. Columns are flat: scalar
fields as they are, the state, info and episode metrics spread into dotted columns
(``state.index``, ``info.prob``, ``metrics.blunder``; a value that is not a scalar is kept
as JSON text), and the per-step lists (``legal_actions``, ``logprobs``, ``probs``) as list
columns. Each file carries the run's manifest as JSON under the metadata key
``zso.manifest``. One line loads either table::

    pandas.read_parquet("OUT/run/episodes.parquet")
    polars.read_parquet("OUT/run/steps.parquet")
    datasets.load_dataset("parquet", data_files="OUT/run/steps.parquet")
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from harness.export import Run, require, run_name

#: The metadata key of the manifest in both files.
MANIFEST_KEY = b"zso.manifest"


def export(runs: list[Run], out: Path) -> list[Path]:
    """Write ``OUT/<run>/steps.parquet`` and ``episodes.parquet`` for each run; returns the run folders."""
    pa = require("pyarrow", "pyarrow")
    pq = require("pyarrow.parquet", "pyarrow")
    written, taken = [], set()
    for run in runs:
        folder = out / run_name(run, taken)
        folder.mkdir(parents=True, exist_ok=True)
        meta = {MANIFEST_KEY: json.dumps(run.manifest.to_json()).encode("utf-8")}
        for name, rows in (("steps", step_rows(run)), ("episodes", episode_rows(run))):
            table = _table(pa, rows).replace_schema_metadata(meta)
            pq.write_table(table, folder / f"{name}.parquet")
        written.append(folder)
    return written


def step_rows(run: Run) -> list[dict[str, Any]]:
    """One flat row per step of the run's finished episodes."""
    rows = []
    for ep in run.episodes:
        for s in run.steps[ep.episode]:
            row: dict[str, Any] = {
                "run_id": run.manifest.run_id, "episode": s.episode, "t": s.t, "encoding": s.encoding, "mode": s.mode,
                "prompt": s.prompt, "reply": s.reply, "action": s.action,
                "action_index": s.legal_actions.index(s.action) if s.action in s.legal_actions else None,
                "action_source": s.action_source, "legal_actions": list(s.legal_actions),
                "logprobs": s.logprobs, "probs": s.probs, "invalid_attempts": len(s.attempts),
                "attempts": json.dumps([asdict(a) for a in s.attempts]) if s.attempts else None,
                "reward": s.reward, "terminated": s.terminated, "truncated": s.truncated,
                "backend_s": s.timing.backend_s, "env_s": s.timing.env_s, "total_s": s.timing.total_s,
            }
            row.update(_spread("state", s.state))
            row.update(_spread("info", s.info))
            rows.append(row)
    return rows


def episode_rows(run: Run) -> list[dict[str, Any]]:
    """One flat row per finished episode; ``total_reward`` is the episode's return."""
    rows = []
    for e in run.episodes:
        row: dict[str, Any] = {
            "run_id": run.manifest.run_id, "agent": run.who, "env": run.manifest.config.env,
            "variant": run.manifest.config.variant, "episode": e.episode, "seed": e.seed, "steps": e.steps,
            "total_reward": e.total_reward, "terminated": e.terminated, "truncated": e.truncated,
            "end_reason": e.end_reason, "success": e.success, "outcome": e.outcome,
            "invalid_replies": e.invalid_replies, "fallback_actions": e.fallback_actions, "wall_s": e.wall_s,
            "start_state": json.dumps(e.start_state), "reset_info": json.dumps(e.reset_info),
        }
        row.update(_spread("metrics", e.metrics))
        row.update(_spread("invalid_by_kind", e.invalid_by_kind))
        rows.append(row)
    return rows


def _spread(prefix: str, values: dict[str, Any]) -> dict[str, Any]:
    """``{"prefix.key": value}``, nested dicts spread further, other non-scalars as JSON text."""
    flat: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}.{key}"
        if isinstance(value, dict):
            flat.update(_spread(name, value))
        elif value is None or isinstance(value, (bool, int, float, str)):
            flat[name] = value
        else:
            flat[name] = json.dumps(value)
    return flat


def _table(pa: Any, rows: list[dict[str, Any]]) -> Any:
    """A table with a column per key seen in any row (missing: null); a column of mixed kinds becomes JSON text."""
    names: dict[str, None] = {}
    for row in rows:
        names.update(dict.fromkeys(row))
    columns = {}
    for name in names:
        values = [row.get(name) for row in rows]
        try:
            columns[name] = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            columns[name] = pa.array([None if v is None else json.dumps(v) for v in values], type=pa.string())
    return pa.table(columns)
