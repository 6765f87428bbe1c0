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
from harness.stopping import GDScale, Stopping, StoppingError, decide
from zso.study import StudyError, load_study, run_study

ROOT = Path(__file__).resolve().parents[1]
#: FrozenLake 4x4 within 20 steps: random ~0.012, optimal 1, returns in [0, 1].
SCALE = GDScale(random=0.0125, optimal=1.0, low=0.0, high=1.0)

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
    with pytest.raises(StudyError, match="needs one exact MDP"):
        load_study(path)
    # A new layout every episode: no one MDP gives GD's references.
    path.write_text('name = "x"\nepisodes = { target = 0.1, max = 8 }\n[[envs]]\nenv = "frozenlake"\nvariant = "random"\n'
                    'options = { layout_seed = "none" }\n')
    with pytest.raises(StudyError, match="one layout for every episode"):
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
