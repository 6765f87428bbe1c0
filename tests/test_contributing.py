"""The contributing examples (docs/contributing.md), run verbatim: a gridworld, a backend, a
reference agent, a score, a fit kind and a game family.

Each block is executed as the page shows it, then used the way a user would: the new
gridworld through the registry, the environment contract and its MDP; the new backend
through ``--backend``; the new agent through ``zso baseline``; the score and the fit kind
through ``zso compare``; the game family through ``zso baseline`` and ``zso compare``.
Registrations are undone afterwards so no other test sees them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from harness.agents import BASELINES
from harness.backends import BACKENDS
from harness.cli import main
from harness.records import load_episodes, load_manifest, load_steps
from harness.validate import validate_run
from textenvs import ENCODINGS, ENVS, encodings_for, get_encoding, make_env
from textenvs.planning import hard_value_iteration
from doc_examples import example as doc_example

def example(name: str) -> str:
    """The python block after ``<!-- example: NAME -->`` in the docs."""
    return re.search(r"```python\n(.*?)```", doc_example(name), re.S).group(1)


@pytest.fixture
def corridor():
    scope: dict = {}
    exec(example("contrib-gridworld"), scope)
    yield scope["Corridor"]
    ENVS.unregister("corridor")
    for name in encodings_for("corridor"):
        ENCODINGS.unregister(f"corridor/{name}")


@pytest.fixture
def myopic(corridor):
    exec(example("contrib-agent"), {})
    yield
    BASELINES.unregister("myopic")


@pytest.fixture
def plain_backend():
    exec(example("contrib-backend"), {})
    yield
    BACKENDS.unregister("transformers-plain")


def test_the_gridworld_example_is_a_registered_env_with_an_exact_mdp(corridor):
    assert encodings_for("corridor") == ["ascii", "coords", "text", "json"]
    env = make_env("corridor", length=4)
    obs, _ = env.reset(seed=0)
    for encoding in encodings_for("corridor"):
        enc = get_encoding("corridor", encoding)
        assert enc.render_state(env.text_state())
        assert enc.parse_action(env.text_state(), "go right", env.legal_actions()) == "right"
    mdp = env.mdp()
    values = hard_value_iteration(mdp.transitions, mdp.rewards, discount=0.9)
    assert [mdp.action_names[a] for a in values.policy[:3].argmax(axis=1)] == ["right"] * 3
    # The MDP is the environment: stepping agrees with the transition table.
    for action in ("left", "right", "right", "right", "right"):
        s = env.state_record()["index"]
        obs, reward, terminated, _, _ = env.step(action)
        a = mdp.action_names.index(action)
        assert mdp.transitions[s, a, obs] == 1.0 and mdp.rewards[s, a, obs] == reward
        if terminated:
            break
    assert terminated and obs == 3


def test_the_agent_example_runs_through_zso_baseline(myopic, tmp_path):
    out = tmp_path / "myopic"
    assert main(["baseline", "--env", "corridor", "--agent", "myopic", "--episodes", "2", "--max-steps", "8",
                 "--out", str(out), "--no-progress"]) == 0
    assert validate_run(out) == []
    # One step from the goal the myopic agent steps onto it; elsewhere it has no preference.
    last = [s for s in load_steps(out) if s.state["index"] == 3]
    assert last and all(np.isclose(s.probs[s.legal_actions.index("right")], 1.0) for s in last)
    assert load_manifest(out).is_baseline


@pytest.mark.model
def test_the_backend_example_runs_a_model_on_the_new_gridworld(corridor, plain_backend, tmp_path):
    out = tmp_path / "plain"
    assert main(["run", "--env", "corridor", "--backend", "transformers-plain", "--model", "smollm2-135m-instruct",
                 "--episodes", "1", "--max-steps", "3", "--out", str(out), "--no-progress"]) == 0
    assert validate_run(out) == []
    steps = list(load_steps(out))
    assert steps and steps[0].prompt.startswith("You are playing a gridworld game.")
    manifest = load_manifest(out)
    assert manifest.config.backend == "transformers-plain" and manifest.config.encoding == "ascii"
    assert len(list(load_episodes(out))) == 1


@pytest.fixture
def objective_scale():
    from irl.analysis.specs import SCORES

    exec(example("contrib-score"), {})
    yield
    SCORES.unregister("objective_scale")


def test_the_score_example_reaches_every_table(myopic, objective_scale, tmp_path, capsys):
    import csv
    import io

    out = tmp_path / "myopic"
    assert main(["baseline", "--env", "corridor", "--agent", "myopic", "--episodes", "6", "--max-steps", "8",
                 "--out", str(out), "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["compare", str(out), "--format", "csv", "--folds", "2", "--splits", "2", "--n-boot", "6", "--no-progress"]) == 0
    row = next(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert float(row["objective_scale"]) > 0 and float(row["objective_scale_low"]) <= float(row["objective_scale_high"])
    assert main(["compare", str(out), "--format", "json", "--folds", "2", "--splits", "2", "--n-boot", "6", "--no-progress"]) == 0
    report = json.loads(capsys.readouterr().out)["runs"][0]
    assert report["extra"]["objective_scale"]["estimate"] == pytest.approx(float(row["objective_scale"]))


def compare_report(run_dir, capsys) -> dict:
    """``zso compare --format json`` on one run (small fits): its report."""
    capsys.readouterr()
    assert main(["compare", str(run_dir), "--format", "json", "--folds", "2", "--splits", "2", "--n-boot", "6",
                 "--no-progress"]) == 0
    return json.loads(capsys.readouterr().out)["runs"][0]


def test_the_fit_kind_example_takes_over_the_fixed_layouts(myopic, tmp_path, capsys):
    from irl.analysis import FitError, FitSettings, check_features
    from irl.analysis.kinds import FIT_KINDS, fit_kind_of

    out = tmp_path / "myopic"
    assert main(["baseline", "--env", "corridor", "--agent", "myopic", "--episodes", "6", "--max-steps", "8",
                 "--out", str(out), "--no-progress"]) == 0
    named = compare_report(out, capsys)
    assert named["feature_names"][0] == "progress"
    exec(example("contrib-fit-kind"), {})
    try:
        assert fit_kind_of("corridor").name == "free-reward"
        # Random layouts have no one MDP: they keep the tabular kind.
        assert fit_kind_of("frozenlake", "4x4", {"layout_seed": None}).name == "tabular"
        free = compare_report(out, capsys)
        # A kind registered without a features check takes only the default set.
        check_features("corridor", None, {}, FitSettings())
        with pytest.raises(FitError, match="the free-reward fit takes no feature names"):
            check_features("corridor", None, {}, FitSettings(features=("progress",)))
    finally:
        FIT_KINDS.unregister("free-reward")
    assert free["settings"]["features"] == "onehot" and named["settings"]["features"] == "named"
    assert len(free["weights"]) >= 5 > len(named["weights"])  # a reward per corridor cell
    assert fit_kind_of("corridor").name == "tabular"


@pytest.fixture
def splitting():
    scope: dict = {}
    exec(example("contrib-game-family"), scope)
    yield scope["SplitGame"]
    ENVS.unregister("splitting")
    ENCODINGS.unregister("splitting/text")


def test_the_game_family_example_is_solved_played_and_fitted(splitting, tmp_path, capsys):
    from irl.analysis.kinds import fit_kind_of
    from textenvs.games import solver_for

    # Gap 1 is Grundy's game: single piles of 1..12 with Grundy value 0 lose for the mover (OEIS A002188).
    for n in range(1, 13):
        assert solver_for(splitting(size=n)).value(splitting(size=n).initial()).outcome == (-1 if n in {1, 2, 4, 7, 10} else 1)
    env = make_env("splitting", rules_seed=8)
    env.reset(seed=0)
    assert env.game == splitting(size=8, gap=2) and env.legal_actions() == ["8=7+1", "8=6+2", "8=5+3"]
    assert fit_kind_of("splitting").name == "game"
    out = tmp_path / "split"
    assert main(["baseline", "--env", "splitting", "--agent", "random", "--episodes", "6", "--max-steps", "10",
                 "--out", str(out), "--no-progress"]) == 0
    assert validate_run(out) == []
    report = compare_report(out, capsys)
    assert report["kind"] == "game" and "value" in report["feature_names"]

