"""Runs and study cells that stop when they know (harness.stopping): early for an optimal agent,
at the budget for a random mover, and the same after a SIGKILL and a resume."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.records import load_episodes, read_manifest, run_status
import numpy as np

from harness.stats import betting_interval
from harness.stopping import GDReferences, Stopping, StoppingError, decide, gd_interval
from zso.study import StudyError, load_study, run_study

ROOT = Path(__file__).resolve().parents[1]
#: FrozenLake 4x4 within 20 steps: random ~0.012, optimal 1, returns in [0, 1].
SCALE = GDReferences(max_steps=20, low=0.0, high=1.0, one_layout=True, fixed=(0.0125, 1.0))

STUDY = """
name = "stopping"
seed = 3
batch_size = 4
max_steps = 20
episodes = { target = 0.1, max = 16 }
[[envs]]
env = "frozenlake"
variant = "4x4"
[baselines]
agents = ["optimal", "random"]
[irl]
n_boot = 2
folds = 2
splits = 1
"""


def test_the_rule_stops_at_the_first_decisive_round_and_replays_to_the_same_decision():
    ones = {i: 1.0 for i in range(16)}
    state = decide(ones, SCALE, target=0.1, budget=16, round=4)
    assert (state.stopped, state.reason, state.episodes) == (True, "decisive", 4)
    assert state.gd_low > 0 and state.gd == 1.0
    zeros = {i: 0.0 for i in range(16)}
    state = decide(zeros, SCALE, target=0.1, budget=16, round=4)
    assert (state.stopped, state.reason, state.episodes) == (True, "budget", 16)
    assert state.gd_low <= 0 <= state.gd_high and state.gd_high > state.gd_low
    # Unfinished rounds: the rule says where to play to, and decides only on complete rounds.
    partial = {i: 0.0 for i in (0, 1, 2, 3, 4, 6)}
    state = decide(partial, SCALE, target=0.1, budget=16, round=4)
    assert (state.stopped, state.episodes, state.next_end) == (False, 4, 8)
    assert Stopping.from_json(json.loads(json.dumps(state.to_json()))) == state
    # A loose target is met by the interval's width alone.
    assert decide(zeros, SCALE, target=0.5, budget=64, round=4).reason == "precise"
    with pytest.raises(StoppingError):
        decide(zeros, SCALE, target=0.0, budget=16, round=4)


def _study(tmp_path: Path) -> Path:
    path = tmp_path / "stopping.toml"
    path.write_text(STUDY)
    return path


def _cells(out: Path) -> dict[str, tuple[dict, dict[int, float]]]:
    """Per cell: the manifest's stopping state and every episode's return."""
    found = {}
    for run in sorted((out / "runs").iterdir()):
        manifest = read_manifest(run)
        found[manifest["config"]["model"]] = (manifest["stopping"], {e.episode: e.total_reward for e in load_episodes(run)})
    return found


#: Plays the study and SIGKILLs itself once the random mover has finished 6 episodes (mid-round).
KILLER = """
import os, signal, sys
from zso.study import run_study

def progress(stage, done, total, label):
    if stage == "episodes" and label.startswith("random") and done >= 6:
        os.kill(os.getpid(), signal.SIGKILL)

run_study(sys.argv[1], sys.argv[2], progress=progress, analyse=False)
"""


def test_a_study_cell_stops_early_when_it_knows_and_resumes_after_a_kill_to_the_same_result(tmp_path):
    study = _study(tmp_path)
    result = run_study(study, tmp_path / "whole")
    rows = {r["agent"]: r for r in result.headline()}
    whole = _cells(tmp_path / "whole")
    assert whole["optimal"][0]["episodes"] == 4 and whole["optimal"][0]["reason"] == "decisive"
    assert len(whole["optimal"][1]) == 4
    assert whole["random"][0]["episodes"] == 16 and whole["random"][0]["reason"] == "budget"
    assert whole["random"][0]["gd_low"] <= 0 <= whole["random"][0]["gd_high"]
    assert rows["optimal"]["episodes"] == 4 and rows["optimal"]["stopped"] == "4 episodes: GD's interval excludes 0"
    page = (tmp_path / "whole" / "report.html").read_text()
    assert "episode budget is spent" in page
    # The forest plot comes before the headline table, with the planned agents' exact values.
    forest = page.index('id="forest"')
    assert forest < page.index('id="headline-table"') and "<img" in page[forest:page.index('id="headline-table"')]
    gd = {r["agent"]: (r["gd"], r["gd_low"], r["gd_high"]) for r in result.headline()}
    assert gd["optimal"][0] == pytest.approx(1.0) and gd["optimal"][1] == gd["optimal"][2]  # exact

    killed = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", KILLER, str(study), str(killed)], env=env, cwd=ROOT, timeout=600)
    assert proc.returncode == -9
    random_run = next(p for p in (killed / "runs").iterdir() if p.name.startswith("random"))
    assert run_status(random_run) == "killed"
    assert 6 <= len(list(load_episodes(random_run))) < 16
    run_study(study, killed, analyse=False)
    assert _cells(killed) == whole


def test_a_target_needs_an_exact_mdp(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('name = "x"\nepisodes = { target = 0.1, max = 8 }\n[[envs]]\nenv = "mnk"\nvariant = "tic-tac-toe"\n')
    with pytest.raises(StudyError, match="needs exact MDPs"):
        load_study(path)
    path.write_text('name = "x"\nepisodes = { target = 0.1 }\n[[envs]]\nenv = "frozenlake"\n')
    with pytest.raises(StudyError, match="key 'episodes'"):
        load_study(path)


def test_zso_run_and_baseline_take_a_target(tmp_path, capsys):
    from harness.cli import main

    out = tmp_path / "opt"
    assert main(["baseline", "--env", "frozenlake", "--agent", "optimal", "--episodes", "32", "--episodes-target", "0.1",
                 "--max-steps", "20", "--out", str(out), "--no-progress"]) == 0
    assert "4 episodes: GD's interval excludes 0" in capsys.readouterr().out
    assert main(["run", "--env", "mnk", "--variant", "tic-tac-toe", "--model", "smollm2-135m-instruct",
                 "--episodes-target", "0.1", "--out", str(tmp_path / "x"), "--no-progress"]) == 2
    assert "exact MDP" in capsys.readouterr().err


def test_gd_on_one_layout_is_the_map_of_the_returns_interval_and_over_layouts_pairs_each_episode_with_its_own():
    rng = np.random.default_rng(0)
    returns = rng.integers(0, 2, 12).astype(float)
    one = gd_interval(returns, [0.2] * 12, [0.9] * 12, 0.0, 1.0, one_layout=True)
    plain = betting_interval(returns, 0.0, 1.0)
    assert one is not None
    assert np.allclose([one.estimate, one.low, one.high], [(x - 0.2) / 0.7 for x in (plain.estimate, plain.low, plain.high)])
    randoms, optimals = rng.uniform(0, 0.5, 12), np.ones(12)
    many = gd_interval(returns, randoms, optimals, 0.0, 1.0, one_layout=False)
    assert many is not None and many.low < many.estimate < many.high
    assert many.estimate == pytest.approx((returns.mean() - randoms.mean()) / (1 - randoms.mean()))
    # No policy beats random on the layouts met: GD is undefined.
    assert gd_interval(returns, [1.0] * 12, [1.0] * 12, 0.0, 1.0, one_layout=False) is None


def test_over_layouts_the_stopping_rule_keeps_a_random_movers_gd_interval_on_zero():
    """Layouts whose random mover succeeds with probability q ~ U(0, 0.6) and whose optimal
    agent always does; an agent that succeeds exactly as often as the random mover (GD 0)
    plays in rounds of 4 up to 32 episodes. Over 400 simulated runs the interval at the
    stopping time must contain 0 at least 94% of the time (Monte Carlo error about 0.012)."""
    rng = np.random.default_rng(7)
    hits = 0
    for _ in range(400):
        q = rng.uniform(0, 0.6, 32)
        returns = (rng.uniform(size=32) < q).astype(float)
        refs = {i: (float(q[i]), 1.0) for i in range(32)}

        class Layouts(GDReferences):
            def of(self, index: int) -> tuple[float, float]:
                return refs[index]

        state = decide(dict(enumerate(returns)), Layouts(20, 0.0, 1.0, False), target=0.05, budget=32, round=4)
        hits += state.gd_low <= 0 <= state.gd_high
    assert hits / 400 >= 0.94


STUDY_LAYOUTS = """
name = "stopping over layouts"
seed = 1
batch_size = 4
max_steps = 20
episodes = { target = 0.1, max = 24 }
[[envs]]
env = "frozenlake"
variant = "random"
options = { layout_seed = "none" }
[baselines]
agents = ["optimal", "random"]
"""


def test_a_cell_over_random_layouts_stops_early_for_the_optimal_agent_and_at_its_budget_for_a_random_mover(tmp_path):
    path = tmp_path / "layouts.toml"
    path.write_text(STUDY_LAYOUTS)
    run_study(path, tmp_path / "out", analyse=False)
    cells = _cells(tmp_path / "out")
    optimal = next(v for k, v in cells.items() if "optimal" in k)[0]
    random = next(v for k, v in cells.items() if "random" in k)[0]
    # Over layouts a paired difference may lie anywhere in [-1, 1], so it takes more than
    # one round of 4 to be sure, but not the budget.
    assert optimal["reason"] == "decisive" and optimal["episodes"] < 24 and optimal["gd"] == pytest.approx(1.0)
    assert random["episodes"] == 24 and random["reason"] == "budget" and random["gd_low"] <= 0 <= random["gd_high"]
