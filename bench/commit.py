"""Episodes committed per second as a run grows: the per-episode commit must not grow with it.

Each case is a real run (``harness.runner.Runner``) of FrozenLake 4x4 played by the
``random`` reference agent (no model: what is timed is the runner and the commit of each
episode to ``steps.jsonl``, ``episodes.jsonl`` and ``manifest.json``, each fsync'ed), with
``--max-steps 2``. A run configured for ``N`` episodes (10, 1,000 and 100,000 by default)
plays its first ``min(N, --window)`` episodes and is then stopped the way Ctrl-C stops it.
Reported: episodes per second over the window, over its first and its last tenth, and the
manifest's size. A commit that rewrote a list of every seed (or of every episode done)
would slow down as ``N`` grows; one that is O(1) runs at the same rate at every ``N``.
Run::

    .venv/bin/python bench/commit.py [--episodes 10 1000 100000] [--window 1000] [--out bench/out/commit.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.agents import BaselineOptions, build_baseline  # noqa: E402
from harness.config import RunConfig  # noqa: E402
from harness.runner import Runner, RunInterrupted  # noqa: E402


class _Stop(KeyboardInterrupt):
    """Ends a case after its window, as Ctrl-C would."""


def measure(episodes: int, window: int, root: Path) -> dict:
    """Play the first ``min(episodes, window)`` episodes of a run of ``episodes``; their rates."""
    config = RunConfig(env="frozenlake", encoding="ascii", model="random", backend="baseline", episodes=episodes,
                       max_steps=2, batch_size=1, out=str(root / f"run-{episodes}"))
    played = min(episodes, window)
    stamps: list[float] = []

    def progress(done: int, steps: int) -> None:
        while len(stamps) < done:
            stamps.append(time.perf_counter())
        if done >= played and done < episodes:
            raise _Stop()

    agent = build_baseline("random", config, BaselineOptions())
    start = time.perf_counter()
    with Runner(config, agent=agent) as runner:
        try:
            runner.run(progress=progress)
        except RunInterrupted:
            pass
    stamps = stamps[:played]
    tenth = max(played // 10, 1)

    def rate(first: int, last: int) -> float:
        begin = start if first == 0 else stamps[first - 1]
        return (last - first) / (stamps[last - 1] - begin)

    return {
        "episodes": episodes, "played": played, "per_s": rate(0, played),
        "first_tenth_per_s": rate(0, tenth), "last_tenth_per_s": rate(played - tenth, played),
        "manifest_bytes": (Path(config.out) / "manifest.json").stat().st_size,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, nargs="+", default=[10, 1000, 100000])
    parser.add_argument("--window", type=int, default=1000, help="episodes played in each case (default 1000)")
    parser.add_argument("--dir", help="where the runs are written (default a temporary directory)")
    parser.add_argument("--out", help="write the rows as JSON here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        rows = [measure(n, args.window, Path(tmp)) for n in args.episodes]
    print(f"{'episodes':>10} {'played':>7} {'ep/s':>8} {'first 10%':>10} {'last 10%':>9} {'manifest B':>11}")
    for r in rows:
        print(f"{r['episodes']:>10} {r['played']:>7} {r['per_s']:>8.1f} {r['first_tenth_per_s']:>10.1f} "
              f"{r['last_tenth_per_s']:>9.1f} {r['manifest_bytes']:>11}")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps({"machine": platform.machine(), "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
