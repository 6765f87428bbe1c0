"""The README's contributing examples, run verbatim: a gridworld, a backend, a reference agent.

Each block is executed as the README shows it, then used the way a user would: the new
gridworld through the registry, the environment contract and its MDP; the new backend
through ``--backend``; the new agent through ``zso baseline``. Registrations are undone
afterwards so no other test sees them.
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
