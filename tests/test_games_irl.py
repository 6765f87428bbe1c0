"""The choice-model IRL on games given only their rules: an exact player's objective is the
game's own, a random mover's is nothing, measured against the recorded exact move values."""

from __future__ import annotations

import numpy as np
import pytest

from harness.config import RunConfig
from harness.agents import BaselineOptions, build_baseline
from harness.runner import Runner
from harness.agents.controls import parse_weights
from irl.analysis import FitSettings, analyse_runs
from irl.analysis.priors import LIST_FEATURES, label_prior, list_features
from irl.analysis.scores import WHY_NOISE, explains_nothing
from irl.analysis.games import load_game
from irl.analysis.kinds import fit_kind_of
from harness.agents.solvers import SolverAgent

SETTINGS = FitSettings(n_boot=20, splits=4, folds=3)


#: Take-away rules: the seed's (one heap, take 1 to 3), and Nim on three heaps.
RULES = {"subtraction": {}, "nim": {"heaps": [3, 4, 5], "removals": "any"}}


def _config(name, variant="subtraction"):
    return RunConfig(env="take-away", variant="subtraction", encoding="counts", model=name, backend="baseline",
                     mode="choose", episodes=24, max_steps=20, seed=3, env_options=RULES[variant])


def _run(tmp_path, name, agent, variant="subtraction"):
    with Runner(_config(name, variant), agent=agent) as runner:
        return runner.run(tmp_path / variant / name)


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
    random = _run(tmp_path, "random", build_baseline("random", _config("random"), BaselineOptions()))
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


def test_the_position_blind_prior_reads_labels_and_list_places_only():
    names, xs = label_prior([["1:2", "1:1", "2:1"], ["2:1"]])
    assert names[:4] == LIST_FEATURES
    assert names[4:] == ("label=1:1", "label=1:2", "label=2:1", "field1=1", "field1=2", "field2=1", "field2=2")
    first = xs[0]
    assert first[:, :4].tolist() == [[1, 0, 0, 0], [0, 0, 1, 0.5], [0, 1, 2, 1]]
    assert first[0, names.index("label=1:2")] == 1 and first[0, names.index("field2=2")] == 1
    assert first[2, names.index("field2=1")] == 1 and first[1, names.index("field2=1")] == 1  # taking 1 from any heap
    assert xs[1].tolist() == [[1, 1, 0, 0, 0, 0, 1, 0, 1, 1, 0]]  # a single move is first and last
    assert list_features(4)[:, 3].tolist() == [0, 1 / 3, 2 / 3, 1]


#: Controls on take-away: a label bias (the first heap, one item) and a list-position bias.
CONTROLS = {
    "state-blind": BaselineOptions(weights=parse_weights("1:1=0.6,2:1=0.2,*=0.05")),
    "list-position": BaselineOptions(position_decay=0.5),
}


@pytest.mark.parametrize("variant", list(RULES))
def test_a_position_blind_agent_earns_no_objective_and_the_solver_keeps_its_own(variant, tmp_path):
    dirs = [_run(tmp_path, "exact", SolverAgent(), variant), _run(tmp_path, "random", build_baseline("random", _config("random", variant), BaselineOptions()), variant)]
    for name, options in CONTROLS.items():
        dirs.append(_run(tmp_path, name, build_baseline(name, _config(name, variant), options), variant))
    reports = {r.run_id: r for r in analyse_runs(dirs, SETTINGS)}
    for name, r in reports.items():
        print(f"\n{variant} {name}: explained {r.explained.format(3)}, vs uniform {r.explained_uniform.format(3)}, GD {r.gd.format(2)}")
    exact = reports["exact"]
    assert exact.explained.low > 0.2 and exact.explained_uniform.low > 0.2
    assert exact.weights[exact.feature_names.index("value")] > 1.0
    # Every refit prefers the best move: the estimate, and no point interval (or one above 0.9).
    regret = exact.alignment_regret
    assert regret.estimate > 0.9 > reports["random"].gd.high and not regret.low <= 0.9
    for name in CONTROLS:
        r = reports[name]
        # Against uniform the bias alone earns explained behaviour; beyond the prior it earns none.
        assert r.explained_uniform.low > 0.05, name
        assert explains_nothing(r.explained) and r.explained.estimate < 0.02, name
        for score in (r.stability, r.alignment_regret):
            assert not score.ok and score.method == WHY_NOISE, name
