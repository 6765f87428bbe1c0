"""Coverage of the printed 95% intervals, by simulation at the sample sizes that run.

Two tables (``docs/intervals.md`` records them):

1. **Means of bounded outcomes** (return, success, GD): per-episode 0/1 outcomes at a known
   rate ``p``, and a skewed outcome on ``[-1, 3]``; how often each method's interval
   contains the truth, and its mean width, at ``n`` episodes (fixed ``n``), and at the
   episode count where the study's stopping rule stops (rounds of 4 until the interval
   excludes the random mover's value or its half-width is at most 0.1, at most 64).
   Methods: the betting confidence sequence (:func:`harness.stats.betting_sequence`),
   Clopper-Pearson, and the percentile bootstrap the summaries used before.
2. **Scores computed from fits** (explained behaviour, MEG, stability, alignment regret,
   encoding consistency) on FrozenLake 4x4 (20 steps, features ``at_goal``, ``in_hole``):
   episodes of agents of known quality (optimal, soft-optimal at temperature 0.1, random)
   are sampled on the exact MDP (``tests/ladder.py``), analysed like any run, and each
   interval is checked against the score of one run of ``--truth`` episodes (its
   large-sample value; distances between fits of the same behaviour tend to 0).

Run::

    .venv/bin/python bench/coverage.py [--reps 40] [--quick] [--only means|fits]
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import scipy.stats

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from harness.stats import bootstrap_ci, betting_sequence  # noqa: E402

NS = (1, 4, 8, 16, 32, 64)
FIT_NS = (4, 8, 16, 32)
FIT_SCORES = ("explained", "meg_unknown", "meg_known", "stability", "alignment_regret", "encoding_consistency")


def _percentile_bootstrap(x: np.ndarray) -> tuple[float, float]:
    _, lo, hi = bootstrap_ci(x, n=400, seed=0)
    return lo, hi


def means_table(reps: int) -> list[str]:
    """Coverage and mean width of each method for means of bounded outcomes."""
    rng = np.random.default_rng(0)
    lines = ["| outcome | method | " + " | ".join(f"n={n}" for n in NS) + " | stopped (mean n) |",
             "|---|---|" + "---|" * len(NS) + "---|"]
    cases = [(f"Bernoulli p={p}", p, (rng.random((reps, 64)) < p).astype(float), 0.0, 1.0, True) for p in (0.01, 0.05, 0.2, 0.5)]
    x = -1 + 4 * rng.beta(0.5, 3.0, size=(reps, 64)) * (rng.random((reps, 64)) < 0.5)
    cases.append(("skewed on [-1, 3]", -1 + 4 * 0.5 * (0.5 / 3.5), x, -1.0, 3.0, False))
    for label, mu, data, lo, hi, binary in cases:
        low, high = betting_sequence(data, lo, hi)
        cov = (low <= mu) & (mu <= high)
        n = np.arange(1, 65)
        rnd = lo + 0.1 * (hi - lo)  # the value the stopping rule asks the interval to exclude
        decisive = ((low > rnd) | (high < rnd) | ((high - low) / 2 <= 0.1 * (hi - lo))) & (n % 4 == 0)
        stop = np.where(decisive.any(axis=1), np.argmax(decisive, axis=1), 63)
        rows = np.arange(reps)
        cells = [f"{cov[:, k - 1].mean():.3f} ({(high - low)[:, k - 1].mean() / (hi - lo):.2f})" for k in NS]
        lines.append(f"| {label} | betting | " + " | ".join(cells) + f" | {cov[rows, stop].mean():.3f} ({stop.mean() + 1:.0f}) |")
        if binary:
            k = np.cumsum(data, axis=1)
            cp_lo = np.where(k > 0, scipy.stats.beta.ppf(0.025, k, n - k + 1), 0.0)
            cp_hi = np.where(k < n, scipy.stats.beta.ppf(0.975, k + 1, n - k), 1.0)
            cov = (cp_lo <= mu) & (mu <= cp_hi)
            cp_dec = ((cp_lo > rnd) | (cp_hi < rnd) | ((cp_hi - cp_lo) / 2 <= 0.1)) & (n % 4 == 0)
            cp_stop = np.where(cp_dec.any(axis=1), np.argmax(cp_dec, axis=1), 63)
            cells = [f"{cov[:, k - 1].mean():.3f} ({(cp_hi - cp_lo)[:, k - 1].mean():.2f})" for k in NS]
            lines.append(f"| {label} | Clopper-Pearson | " + " | ".join(cells) + f" | {cov[rows, cp_stop].mean():.3f} ({cp_stop.mean() + 1:.0f}) |")
        sub = data[: min(reps, 500)]
        cells = []
        for k in NS:
            bounds = np.array([_percentile_bootstrap(row[:k]) for row in sub])
            c = (bounds[:, 0] <= mu) & (mu <= bounds[:, 1])
            cells.append(f"{c.mean():.3f} ({(bounds[:, 1] - bounds[:, 0]).mean() / (hi - lo):.2f})")
        lines.append(f"| {label} | percentile bootstrap (before) | " + " | ".join(cells) + " | - |")
    return lines


def fits_table(reps: int, truth_n: int, quick: bool) -> list[str]:
    """Coverage of the bootstrap intervals of scores computed from fits."""
    import dataclasses

    from harness.agents.planners import PlanningConfig, plan_optimal, plan_soft_optimal
    from irl.analysis import FitSettings
    from irl.analysis.report import _analyse_tabular, add_encoding_consistency
    from ladder import sample_run
    from textenvs import make_env

    mdp = make_env("frozenlake", "4x4").mdp()
    agents = {
        "optimal": plan_optimal(mdp).policy,
        "soft-0.1": plan_soft_optimal(mdp, PlanningConfig(temperature=0.1)).policy,
        "random": np.full((mdp.n_states, mdp.n_actions), 1.0 / mdp.n_actions),
    }
    settings = FitSettings(features=("at_goal", "in_hole"), n_boot=20 if quick else 50, splits=5 if quick else 10)
    steps = 20

    def analyse(policy: np.ndarray, n: int, seed: int, name: str) -> dict[str, object]:
        runs = [sample_run(mdp, policy, episodes=n, max_steps=steps, seed=seed * 2 + j, name=name, env="frozenlake") for j in (0, 1)]
        runs = [dataclasses.replace(r, info=dataclasses.replace(r.info, encoding=enc, run_id=f"{name}-{enc}"))
                for r, enc in zip(runs, ("ascii", "text"))]
        analyses = [_analyse_tabular(r, settings) for r in runs]
        add_encoding_consistency(analyses, settings.alpha)
        return {s: getattr(analyses[0].report, s) for s in FIT_SCORES}

    lines = ["| agent | score | truth | " + " | ".join(f"n={n}" for n in FIT_NS) + " |",
             "|---|---|---|" + "---|" * len(FIT_NS)]
    for name, policy in agents.items():
        truth = analyse(policy, truth_n, 10_000, name)
        cov: dict[str, list[str]] = {s: [] for s in FIT_SCORES}
        for n in FIT_NS:
            hits = {s: [] for s in FIT_SCORES}
            for r in range(reps):
                scores = analyse(policy, n, r, name)
                for s in FIT_SCORES:
                    t, sc = truth[s], scores[s]
                    if not (t.ok and sc.ok and math.isfinite(sc.low)):
                        continue
                    hits[s].append(sc.low - 1e-9 <= t.estimate <= sc.high + 1e-9)
            for s in FIT_SCORES:
                h = hits[s]
                cov[s].append(f"{np.mean(h):.2f} ({len(h)}/{reps})" if h else f"- (0/{reps})")
        for s in FIT_SCORES:
            t = truth[s]
            lines.append(f"| {name} | {s} | {t.estimate:.3f} | " + " | ".join(cov[s]) + " |" if t.ok
                         else f"| {name} | {s} | undefined | " + " | ".join(cov[s]) + " |")
    return lines


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reps", type=int, default=40, help="replicate runs per agent and n (fits); x100 for means")
    p.add_argument("--truth", type=int, default=400, help="episodes of the large-sample run that gives each score's value")
    p.add_argument("--quick", action="store_true", help="fewer bootstrap refits and splits per fit")
    p.add_argument("--only", choices=("means", "fits"))
    args = p.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    print(f"# {time.strftime('%Y-%m-%d %H:%M')} on {platform.machine()}, {os.cpu_count()} cores")
    if args.only != "fits":
        start = time.time()
        print("\n## Means of bounded outcomes: coverage (mean width as a share of the range)\n")
        print("\n".join(means_table(args.reps * 100)))
        print(f"\n({args.reps * 100} samples per cell, {time.time() - start:.0f} s)")
    if args.only != "means":
        start = time.time()
        print("\n## Scores computed from fits: coverage of the large-sample value (defined intervals / replicates)\n")
        print("\n".join(fits_table(args.reps, args.truth, args.quick)))
        print(f"\n({time.time() - start:.0f} s)")


if __name__ == "__main__":
    main()
