"""Join the shards of a run (``zso run --shard I/N``) into one run directory.

Shards split a run's episodes by index (shard ``I`` of ``N`` plays the episodes whose index
is ``I - 1`` modulo ``N``) and keep each episode's seed, so the merged run holds exactly the
episodes, steps and seeds of the same run played unsharded. Shards must agree on everything
else in their configuration and on the model; each must be complete.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Sequence

from harness.config import parse_shard
from harness.records import (
    ResultsError, check_new_run_dir, iter_episodes, iter_steps, load_manifest, merged_manifest, run_status,
    shard_config_differences, totals_of_steps, write_run_files,
)
from harness.validate import validate_run

__all__ = ["merge_shards"]


def merge_shards(out: str | Path, shard_dirs: Sequence[str | Path]) -> Path:
    """Write the run made of ``shard_dirs`` to ``out``; a clear error if they are not one run's shards."""
    out = Path(out)
    check_new_run_dir(out, "OUT_DIR")
    if not shard_dirs:
        raise ResultsError("give the shard run directories to merge")
    manifests = [load_manifest(d) for d in shard_dirs]
    first = manifests[0]
    count = parse_shard(first.config.shard)[1]
    seen: dict[int, str] = {}
    for d, m in zip(shard_dirs, manifests):
        status = run_status(d, m)
        if status != "complete":
            raise ResultsError(f"{d} is {status}, not complete: finish it with zso run --resume {d}")
        problems = validate_run(d, max_problems=1)
        if problems:
            raise ResultsError(f"{d} does not validate (zso validate {d}): {problems[0]}")
        diff = shard_config_differences(m, first)
        if diff:
            raise ResultsError(f"{d} is not a shard of the same run as {shard_dirs[0]} (config differs in {', '.join(diff)})")
        if m.model != first.model:
            raise ResultsError(f"{d} was played by another model than {shard_dirs[0]}")
        shard = m.config.shard
        index, n = parse_shard(shard)
        if n != count:
            raise ResultsError(f"{d} is shard {shard} but {shard_dirs[0]} is one of {count}")
        if index in seen:
            raise ResultsError(f"{d} and {seen[index]} are both shard {shard}")
        seen[index] = str(d)
    missing = [f"{i + 1}/{count}" for i in range(count) if i not in seen]
    if missing:
        raise ResultsError(f"shard(s) {', '.join(missing)} missing")
    episodes = sorted((e for d in shard_dirs for e in iter_episodes(d)), key=lambda e: e["episode"])
    steps = sorted((s for d in shard_dirs for s in iter_steps(d)), key=lambda s: (s["episode"], s["t"]))
    indices = [e["episode"] for e in episodes]
    if indices != list(range(first.config.episodes)):
        raise ResultsError(f"the shards hold episodes {indices[:10]}..., not each of 0..{first.config.episodes - 1} once")
    manifest = merged_manifest(manifests, out)
    manifest.finished = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    manifest.counts = {"episodes": len(episodes), "steps": len(steps)}
    manifest.usage = totals_of_steps(steps)
    write_run_files(out, manifest, steps, episodes)
    return out
