"""The choice-model IRL on games given only their rules: an exact player's objective is the
game's own, a random mover's is nothing, measured against the recorded exact move values."""

from __future__ import annotations

import numpy as np
import pytest

from harness.config import RunConfig
from harness.agents import BaselineOptions, build_baseline
from harness.runner import Runner
from irl.analysis import FitSettings, analyse_runs
from irl.analysis.games import load_game
from irl.analysis.kinds import fit_kind_of
from harness.agents.solvers import SolverAgent

SETTINGS = FitSettings(n_boot=20, splits=4, folds=3)


def _run(tmp_path, name, agent):
    config = RunConfig(env="take-away", variant="subtraction", encoding="counts", model=name, backend="baseline",
                       episodes=24, max_steps=20, seed=3)
    with Runner(config, agent=agent) as runner:
        return runner.run(tmp_path / name)


def test_game_runs_are_recognised_and_replayed(tmp_path):
    kinds = {env: fit_kind_of(env) for env in ("take-away", "mnk", "frozenlake", "chess")}
    assert {env: k.name for env, k in kinds.items()} == {"take-away": "game", "mnk": "game", "frozenlake": "tabular", "chess": "chess"}
    assert fit_kind_of("chess", options={"rules": "atomic"}) is None  # Stockfish and the chess features read standard chess only
    run = load_game(_run(tmp_path, "exact", SolverAgent()))
    assert "value" in run.feature_names and run.n_decisions > 24
    for game in run.games:
        for decision, utilities, chosen in zip(game.decisions, game.utilities, game.chosen):
            assert utilities[chosen] == utilities.max()  # the exact player always keeps the best value
            assert decision.features.shape[0] == len(utilities)


def test_an_exact_player_is_explained_by_the_games_objective_and_random_by_nothing(tmp_path):
    exact = _run(tmp_path, "exact", SolverAgent())
    config = RunConfig(env="take-away", variant="subtraction", encoding="counts", model="random", backend="baseline",
                       episodes=24, max_steps=20, seed=3)
    random = _run(tmp_path, "random", build_baseline("random", config, BaselineOptions()))
    by_name = {r.run_id: r for r in analyse_runs([exact, random], SETTINGS)}
    good, rand = by_name["exact"], by_name["random"]
    assert good.weights[good.feature_names.index("value")] > 1.0
    assert good.explained.low > 0.2
    assert good.gd.estimate == pytest.approx(1.0) and good.gd.low > 0.9
    assert rand.gd.low <= 0.0 <= rand.gd.high
    assert rand.explained.low <= 0.0 + 1e-9
    # The footnotes name the games' reference, the exact move values, not chess's engine.
    for score in (good.gd, good.alignment_regret):
        assert "exact move value" in score.method and "Stockfish" not in score.method
