"""Decisions per second of the harness on an embedded model, and where the time goes.

Plays chess (FEN encoding, random opponent, no engine analysis) in choose and generate
modes with 1 and 16 episodes in lockstep, and reports decisions per second and the share
of wall time spent outside the backend (prompting, parsing, environments, writing).

    .venv/bin/python bench/decisions.py [--model smollm2-135m-instruct] [--steps 6] [--out bench/out/decisions.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from harness.backends import load_backend
from harness.config import RunConfig
from harness.records import iter_steps
from harness.runner import Runner


def measure(backend, mode: str, batch: int, steps: int, model: str) -> dict:
    config = RunConfig(
        env="chess", encoding="fen", model=model, mode=mode, episodes=batch, batch_size=batch, max_steps=steps,
        seed=0, env_options={"opponent": "random", "analysis": "off"},
    )
    runner = Runner(config, backend=backend)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        run_dir = runner.run(out=Path(tmp) / "run")
        wall = time.perf_counter() - start
        records = list(iter_steps(run_dir))
    backend_s = sum(r["timing"]["backend_s"] for r in records)
    return {
        "mode": mode, "batch": batch, "decisions": len(records), "wall_s": round(wall, 3),
        "decisions_per_s": round(len(records) / wall, 3),
        "backend_s": round(backend_s, 3), "outside_backend_share": round(max(0.0, 1 - backend_s / wall), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--steps", type=int, default=6, help="decisions per episode")
    parser.add_argument("--out", default="bench/out/decisions.json")
    args = parser.parse_args()
    console = Console()
    start = time.perf_counter()
    backend = load_backend("transformers", args.model, {})
    load_s = time.perf_counter() - start
    rows = [measure(backend, mode, batch, args.steps, args.model) for mode in ("choose", "generate") for batch in (1, 16)]
    table = Table(title=f"decisions per second, {args.model} on {platform.machine()} (load {load_s:.1f} s)")
    for col in rows[0]:
        table.add_column(col)
    for row in rows:
        table.add_row(*(str(v) for v in row.values()))
    console.print(table)
    for mode in ("choose", "generate"):
        one, many = (next(r for r in rows if r["mode"] == mode and r["batch"] == b) for b in (1, 16))
        console.print(f"{mode}: batch 16 / batch 1 throughput = {many['decisions_per_s'] / one['decisions_per_s']:.2f}x")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"model": args.model, "load_s": round(load_s, 2), "machine": platform.machine(),
                               "steps_per_episode": args.steps, "rows": rows}, indent=2) + "\n")
    console.print(f"written {out}")


if __name__ == "__main__":
    main()
