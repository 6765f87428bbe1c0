"""Wall time of our MCE IRL by feature matching (``bench/mce_dual.py``) against imitation's ``MCEIRL`` on the same MDPs.

Each case builds a finite-horizon MDP (random dense dynamics, or an ``n x n`` gridworld
with slippery moves), takes a soft-optimal demonstrator for a random state reward, and
gives both implementations its exact state occupancy with one-hot features:

* ``ours``: :func:`bench.mce_dual.mce_irl` (L-BFGS-B) stopped at ``gtol`` = the same ``linf_eps``
  as imitation, and again at the default ``gtol=1e-8``;
* ``imitation``: ``imitation.algorithms.mce_irl.MCEIRL`` with a linear (tabular) reward
  net, Adam (``lr``), stopped when the occupancy is within ``linf_eps`` or at ``max_iter``.

Reported per case: wall seconds, iterations (imitation: Adam steps, ours: L-BFGS steps),
and the final largest occupancy error against the demonstrator. Run::

    .venv/bin/python bench/irl.py [--quick] [--out bench/out/irl.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.mce_dual import mce_irl  # noqa: E402
from textenvs.planning import occupancy_measures, soft_value_iteration  # noqa: E402


def random_mdp(n_states: int, n_actions: int, seed: int):
    """Dense random dynamics (Dirichlet rows), a random initial distribution."""
    rng = np.random.default_rng(seed)
    P = rng.dirichlet(np.full(n_states, 0.3), size=(n_states, n_actions))
    return P, rng.dirichlet(np.ones(n_states)), rng


def gridworld(n: int, seed: int, slip: float = 0.1):
    """``n x n`` grid, 4 moves; a move slips to a uniformly random one with prob ``slip``."""
    S = n * n
    P = np.zeros((S, 4, S))
    moves = [(-1, 0), (1, 0), (0, -1), (0, 1)]
    for i in range(n):
        for j in range(n):
            dest = [min(max(i + di, 0), n - 1) * n + min(max(j + dj, 0), n - 1) for di, dj in moves]
            for a in range(4):
                P[i * n + j, a, dest[a]] += 1 - slip
                for b in range(4):
                    P[i * n + j, a, dest[b]] += slip / 4
    rho = np.zeros(S)
    rho[0] = 1.0
    return P, rho, np.random.default_rng(seed)


def run_imitation(P, rho, horizon, demo, *, lr, linf_eps, max_iter, seed):
    import torch as th
    from imitation.algorithms import mce_irl as ref
    from imitation.rewards import reward_nets
    from seals.base_envs import TabularModelPOMDP

    S = P.shape[0]
    env = TabularModelPOMDP(
        transition_matrix=P, observation_matrix=np.eye(S, dtype=np.float32),
        reward_matrix=np.zeros(S), horizon=horizon, initial_state_dist=rho,
    )
    th.manual_seed(seed)
    net = reward_nets.BasicRewardNet(env.observation_space, env.action_space, use_action=False, hid_sizes=[])
    algo = ref.MCEIRL(
        demo, env, net, rng=np.random.default_rng(seed), optimizer_kwargs={"lr": lr},
        linf_eps=linf_eps, grad_l2_eps=0.0, log_interval=None,
    )
    steps = 0
    inner = algo._train_step

    def counted(obs):
        nonlocal steps
        steps += 1
        return inner(obs)

    algo._train_step = counted
    t0 = time.perf_counter()
    occ = algo.train(max_iter=max_iter)
    return time.perf_counter() - t0, steps, occ


def run_ours(P, rho, horizon, demo_t, *, gtol, repeats):
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        res = mce_irl(P, np.eye(P.shape[0]), demo_t, initial=rho, horizon=horizon, gtol=gtol)
        best = min(best, time.perf_counter() - t0)
    return best, res


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="bench/out/irl.json", help="JSON output path")
    parser.add_argument("--quick", action="store_true", help="small cases only")
    parser.add_argument("--horizon", type=int, default=20)
    parser.add_argument("--linf-eps", type=float, default=1e-3)
    parser.add_argument("--lr", type=float, default=0.1, help="imitation's Adam learning rate")
    parser.add_argument("--max-iter", type=int, default=5000, help="imitation's most Adam steps")
    parser.add_argument("--repeats", type=int, default=3, help="ours: best of this many runs")
    parser.add_argument("--no-imitation", action="store_true", help="time ours only")
    args = parser.parse_args(argv)

    cases = [("random", 16), ("random", 64), ("grid", 5), ("grid", 10)]
    if not args.quick:
        cases += [("random", 256), ("grid", 20)]
    H = args.horizon
    rows = []
    for kind, size in cases:
        if kind == "random":
            P, rho, rng = random_mdp(size, 4, seed=size)
        else:
            P, rho, rng = gridworld(size, seed=size)
        S = P.shape[0]
        expert = soft_value_iteration(P, rng.normal(size=S), horizon=H)
        occ = occupancy_measures(P, expert.policy, rho)
        row = {"mdp": f"{kind}-{size}", "states": S, "actions": P.shape[1], "horizon": H}
        t, res = run_ours(P, rho, H, occ.state_t, gtol=args.linf_eps, repeats=args.repeats)
        row.update(ours_s=t, ours_iters=res.iterations, ours_linf=float(np.abs(res.occupancy - occ.state).max()))
        t, res = run_ours(P, rho, H, occ.state_t, gtol=1e-8, repeats=args.repeats)
        row.update(ours_tight_s=t, ours_tight_iters=res.iterations,
                   ours_tight_linf=float(np.abs(res.occupancy - occ.state).max()))
        if not args.no_imitation:
            t, steps, vis = run_imitation(
                P, rho, H, occ.state, lr=args.lr, linf_eps=args.linf_eps, max_iter=args.max_iter, seed=0
            )
            row.update(imitation_s=t, imitation_iters=steps,
                       imitation_linf=float(np.abs(vis - occ.state).max()),
                       speedup=t / row["ours_s"])
        rows.append(row)
        print_row(row, header=len(rows) == 1)

    meta = {
        "python": platform.python_version(), "numpy": np.__version__, "cpus": os.cpu_count(),
        "platform": platform.platform(), "linf_eps": args.linf_eps, "lr": args.lr,
        "max_iter": args.max_iter, "repeats": args.repeats, "horizon": H,
    }
    try:
        import imitation
        import torch

        meta.update(imitation=imitation.__version__, torch=torch.__version__)
    except ImportError:
        pass
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"meta": meta, "results": rows}, indent=2))
    print(f"wrote {out}")
    return 0


COLUMNS = [  # (key, header, width, format)
    ("mdp", "mdp", 10, "{}"), ("states", "S", 5, "{}"),
    ("ours_s", "ours s", 8, "{:.3f}"), ("ours_iters", "it", 4, "{}"), ("ours_linf", "linf", 8, "{:.1e}"),
    ("ours_tight_s", "tight s", 8, "{:.3f}"), ("ours_tight_iters", "it", 4, "{}"), ("ours_tight_linf", "linf", 8, "{:.1e}"),
    ("imitation_s", "imit s", 8, "{:.3f}"), ("imitation_iters", "it", 5, "{}"),
    ("imitation_linf", "linf", 8, "{:.1e}"), ("speedup", "x", 7, "{:.1f}"),
]


def print_row(row: dict, header: bool) -> None:
    """One table line (and the header first)."""
    if header:
        print(" ".join(f"{h:>{w}}" for _, h, w, _ in COLUMNS))
    print(" ".join(f"{(f.format(row[k]) if k in row else '-'):>{w}}" for k, _, w, f in COLUMNS), flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
