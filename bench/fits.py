"""Wall time of the gridworld fits of the default study, and what the choice of ``l2`` costs.

Plays the reference agents of known quality (``optimal``, ``random``, ``state-blind``) on
keys-and-chests ``train`` with a new layout every episode (30 steps, 12 episodes: the
default study's cells), then analyses each run as the study does (``[irl]`` of
``configs/study.toml``) twice, interleaved: cross-validating ``l2`` over the whole grid,
and walking the grid until two values fall short of the best (the default,
:data:`irl.choice.CV_PATIENCE`). Reported per run: seconds of each, their ratio, whether
both chose the same ``l2``, and how many grid values the walk tried. A second table times
the soft Bellman backup over actions as numpy reduces a short last axis and as
:func:`textenvs.planning.soft_value_iteration` does (column by column).

Run::

    .venv/bin/python bench/fits.py [--episodes 12] [--repeats 2] [--out bench/out/fits.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
import timeit
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import irl.analysis.tabular as tabular  # noqa: E402
from harness.cli import main as zso  # noqa: E402
from irl.analysis import analyse_runs  # noqa: E402
from irl.choice import cross_validate_l2  # noqa: E402
from textenvs.planning import _soft_backup  # noqa: E402
from zso.study import _settings, load_study  # noqa: E402

AGENTS = ("optimal", "random", "state-blind")


def play(agent: str, episodes: int, root: Path) -> Path:
    out = root / agent
    argv = ["baseline", "--env", "keys-chests", "--variant", "train", "-o", "layout_seed=none", "--agent", agent,
            "--episodes", str(episodes), "--max-steps", "30", "--out", str(out), "--no-progress"]
    if agent == "state-blind":
        argv += ["--weights", "down=0.4,right=0.4,left=0.1,up=0.1"]
    if zso(argv) != 0:
        raise SystemExit(f"playing {agent} failed")
    return out


def analyse(run: Path, settings, patience: int | None) -> tuple[float, object]:
    """Seconds to analyse ``run``, with the grid walk stopped after ``patience`` (``None``: whole grid)."""
    original = tabular.cross_validate_l2
    tabular.cross_validate_l2 = lambda *args, **kwargs: cross_validate_l2(*args, **{**kwargs, "patience": patience})
    try:
        start = time.perf_counter()
        report = analyse_runs([run], settings)[0]
        return time.perf_counter() - start, report
    finally:
        tabular.cross_validate_l2 = original


def numpy_backup(q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The soft backup as numpy's reductions over the last axis compute it (the former code)."""
    m = q.max(axis=-1, keepdims=True)
    z = np.exp(q - m)
    total = z.sum(axis=-1, keepdims=True)
    return (m + np.log(total))[..., 0], z / total


def backups(states: tuple[int, ...], actions: int = 4) -> list[dict]:
    rows = []
    for S in states:
        q = np.random.default_rng(0).normal(size=(S, actions))
        assert np.allclose(numpy_backup(q)[1], _soft_backup(q, 1.0)[1])
        times = {}
        for name, fn in (("numpy", lambda: numpy_backup(q)), ("columns", lambda: _soft_backup(q, 1.0))):
            times[name] = min(timeit.repeat(fn, number=200, repeat=5)) / 200
        rows.append({"states": S, "actions": actions, "numpy_us": 1e6 * times["numpy"],
                     "columns_us": 1e6 * times["columns"], "ratio": times["numpy"] / times["columns"]})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=2, help="analyses of each run per method, interleaved (the least is kept)")
    parser.add_argument("--out", help="write the rows as JSON here")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    settings = _settings(load_study(ROOT / "configs" / "study.toml"))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for agent in AGENTS:
            run = play(agent, args.episodes, Path(tmp))
            whole, walk = [], []
            for _ in range(args.repeats):
                seconds, full = analyse(run, settings, None)
                whole.append(seconds)
                seconds, stopped = analyse(run, settings, 2)
                walk.append(seconds)
            rows.append({
                "agent": agent, "episodes": args.episodes, "whole_grid_s": min(whole), "walk_s": min(walk),
                "ratio": min(whole) / min(walk), "same_l2": full.l2 == stopped.l2, "l2": stopped.l2,
                "grid_tried": len(stopped.l2_selection["grid"]), "grid": len(full.l2_selection["grid"]),
            })
    print(f"{'agent':>12} {'whole grid s':>13} {'walk s':>8} {'ratio':>6} {'same l2':>8} {'tried':>6}")
    for r in rows:
        print(f"{r['agent']:>12} {r['whole_grid_s']:>13.1f} {r['walk_s']:>8.1f} {r['ratio']:>6.2f} {str(r['same_l2']):>8} "
              f"{r['grid_tried']:>3}/{r['grid']}")
    backup_rows = backups((2_000, 20_000, 100_000))
    print(f"\n{'states':>8} {'numpy us':>10} {'columns us':>11} {'ratio':>6}")
    for r in backup_rows:
        print(f"{r['states']:>8} {r['numpy_us']:>10.1f} {r['columns_us']:>11.1f} {r['ratio']:>6.1f}")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps({"machine": platform.machine(), "cpus": os.cpu_count(), "fits": rows,
                                              "backups": backup_rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
