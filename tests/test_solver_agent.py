"""The exact game player (``solver`` baseline) on real games, through the runner and the CLI."""

from __future__ import annotations

import numpy as np
import pytest

from harness.agents import BaselineError, BaselineOptions, build_baseline
from harness.cli import main
from harness.config import RunConfig
from harness.records import iter_episodes, iter_steps
from harness.runner import Runner
from harness.summary import summarize
from harness.validate import validate_run


def play(tmp_path, env: str, variant: str, opponent: str, side: str, episodes: int = 6):
    cfg = RunConfig(env=env, variant=variant, encoding=None, model="solver", backend="baseline", mode="choose",
                    episodes=episodes, max_steps=40, env_options={"opponent": opponent, "side": side})
    agent = build_baseline("solver", cfg, BaselineOptions())
    with Runner(cfg, agent=agent) as runner:
        run_dir = runner.run(tmp_path / f"{variant}-{opponent}-{side}")
    assert validate_run(run_dir) == []
    return run_dir, list(iter_episodes(run_dir)), list(iter_steps(run_dir))


def test_solver_plays_only_optimal_moves_and_never_loses_a_won_position(tmp_path):
    run_dir, episodes, steps = play(tmp_path, "mnk", "tic-tac-toe", "random", "alternate", episodes=8)
    assert steps
    for s in steps:
        values = s["info"]["move_values"]
        best = max(values)
        chosen = values[s["legal_actions"].index(s["action"])]
        assert chosen == best
        # Its distribution is uniform over exactly the moves of the best outcome.
        probs = np.array(s["probs"])
        optimal = np.array([v == best for v in values], dtype=float)
        assert np.allclose(probs, optimal / optimal.sum())
    # Tic-tac-toe is a draw: the exact player never loses, from either side.
    assert all(e["outcome"] in ("win", "draw") for e in episodes)
    summary = summarize(run_dir)
    assert summary.metrics["optimal_move"].estimate == 1.0
    assert summary.opponent == "random"


def test_solver_against_the_solver_reaches_the_game_value(tmp_path):
    # Tic-tac-toe is a draw under perfect play; the 4x4 board with lines of three is a first-player win.
    _, draws, _ = play(tmp_path, "mnk", "tic-tac-toe", "optimal", "first", episodes=4)
    assert [e["outcome"] for e in draws] == ["draw"] * 4
    _, wins, _ = play(tmp_path, "mnk", "4x4x3", "optimal", "first", episodes=3)
    assert [e["outcome"] for e in wins] == ["win"] * 3
    _, losses, _ = play(tmp_path, "mnk", "4x4x3", "optimal", "second", episodes=3)
    assert [e["outcome"] for e in losses] == ["loss"] * 3


def test_solver_refuses_what_is_not_a_solved_game(tmp_path, capsys):
    cfg = RunConfig(env="frozenlake", variant="4x4", encoding=None, model="solver", backend="baseline", mode="choose")
    with pytest.raises(BaselineError, match="plays games solved exactly"):
        build_baseline("solver", cfg, BaselineOptions())
    assert main(["baseline", "--env", "frozenlake", "--agent", "solver", "--out", str(tmp_path / "x"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "plays games solved exactly" in err and "Traceback" not in err


def test_summary_names_the_opponent_of_each_column(tmp_path, capsys):
    out = tmp_path / "vs"
    assert main(["baseline", "--env", "take-away", "--variant", "nim", "--agent", "solver", "--episodes", "3",
                 "-o", "opponent=optimal", "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "vs optimal" in printed and "ended:" in printed


def test_stockfish_refuses_chess_variants():
    cfg = RunConfig(env="chess", variant="antichess", encoding=None, model="stockfish", backend="baseline", mode="choose")
    with pytest.raises(BaselineError, match="standard chess only"):
        build_baseline("stockfish", cfg, BaselineOptions())
