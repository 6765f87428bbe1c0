"""Negative controls (harness.agents.controls): agents blind to the state, on real environments."""

from __future__ import annotations

import json

import numpy as np
import pytest

from harness.agents import BaselineError, BaselineOptions, build_baseline
from harness.agents.controls import action_frequencies, format_weights, parse_weights
from harness.cli import main
from harness.config import RunConfig
from harness.records import iter_episodes, iter_steps
from harness.runner import Runner
from harness.validate import validate_run

BIAS = "down=0.4,right=0.4,left=0.1,up=0.1"


def play(tmp_path, env, variant, agent_name, options, episodes=4, max_steps=12, encoding="ascii", **env_options):
    cfg = RunConfig(env=env, variant=variant, encoding=encoding, model=agent_name, backend="baseline", mode="choose",
                    episodes=episodes, max_steps=max_steps, env_options=env_options)
    agent = build_baseline(agent_name, cfg, options)
    with Runner(cfg, agent=agent) as runner:
        run_dir = runner.run(tmp_path / f"{env}-{agent_name}")
    assert validate_run(run_dir) == []
    return run_dir, list(iter_steps(run_dir))


@pytest.mark.parametrize("text, expected", [
    (BIAS, (("down", 0.4), ("right", 0.4), ("left", 0.1), ("up", 0.1))),
    ("right=1, *=0.5", (("right", 1.0), ("*", 0.5))),
    ("pick up=2", (("pick up", 2.0),)),
])
def test_weights_parse_and_round_trip(text, expected):
    assert parse_weights(text) == expected
    assert parse_weights(format_weights(expected)) == expected


@pytest.mark.parametrize("text, message", [
    ("down", "NAME=WEIGHT"), ("down=x", "not a number"), ("down=-1", ">= 0"), ("down=nan", "finite"),
    ("down=1,down=2", "twice"), ("down=0,up=0", "positive"),
])
def test_bad_weights_are_named(text, message):
    with pytest.raises(BaselineError, match=message):
        parse_weights(text)


def test_state_blind_plays_its_weights_whatever_the_state(tmp_path):
    _, steps = play(tmp_path, "frozenlake", "4x4", "state-blind", BaselineOptions(weights=parse_weights(BIAS)), episodes=6)
    want = {"down": 0.4, "right": 0.4, "left": 0.1, "up": 0.1}
    for s in steps:
        assert s["probs"] == pytest.approx([want[a] for a in s["legal_actions"]])
    # Blind: the distribution is the same in every state visited.
    assert len({s["state"]["index"] for s in steps}) > 1


def test_state_blind_other_weight_and_all_zero_fallback():
    from harness.agents.controls import StateBlindAgent

    agent = StateBlindAgent((("right", 3.0), ("*", 1.0)))
    assert agent.probabilities(("left", "right", "up")) == pytest.approx([0.2, 0.6, 0.2])
    only = StateBlindAgent((("right", 1.0),))
    assert only.probabilities(("left", "up")) == pytest.approx([0.5, 0.5])


def test_list_position_prefers_the_first_listed(tmp_path):
    _, steps = play(tmp_path, "keys-chests", "train", "list-position", BaselineOptions(position_decay=0.5))
    for s in steps:
        n = len(s["legal_actions"])
        expected = 0.5 ** np.arange(n)
        assert s["probs"] == pytest.approx(list(expected / expected.sum()))
    first = sum(s["action"] == s["legal_actions"][0] for s in steps) / len(steps)
    assert first > 0.35  # 8/15 in expectation


def test_controls_play_games_and_chess(tmp_path):
    _, steps = play(tmp_path, "take-away", "nim", "list-position", BaselineOptions(position_decay=0.0),
                    episodes=2, encoding="counts")
    assert steps and all(s["action"] == s["legal_actions"][0] for s in steps)
    _, steps = play(tmp_path, "chess", None, "state-blind", BaselineOptions(weights=(("e2e4", 5.0), ("*", 1.0))),
                    episodes=1, max_steps=4, encoding="fen", analysis="off")
    first = steps[0]
    assert "e2e4" in first["legal_actions"]
    assert max(first["probs"]) == pytest.approx(first["probs"][first["legal_actions"].index("e2e4")])


def test_state_blind_refuses_names_the_environment_lacks():
    cfg = RunConfig(env="frozenlake", encoding="ascii", model="state-blind", backend="baseline")
    with pytest.raises(BaselineError, match="no action 'rigth'"):
        build_baseline("state-blind", cfg, BaselineOptions(weights=(("rigth", 1.0),)))
    with pytest.raises(BaselineError, match="needs weights"):
        build_baseline("state-blind", cfg, BaselineOptions())


def test_cli_fits_a_runs_label_bias(tmp_path):
    biased = tmp_path / "biased"
    assert main(["baseline", "--env", "frozenlake", "--agent", "state-blind", "--weights", BIAS, "--episodes", "3",
                 "--max-steps", "10", "--out", str(biased), "--no-progress"]) == 0
    weights = dict(action_frequencies(biased))
    assert weights == pytest.approx({"down": 0.4, "right": 0.4, "left": 0.1, "up": 0.1})
    # Fitted to a run where only the action is known: the frequencies of the actions.
    copy = tmp_path / "copy"
    assert main(["baseline", "--env", "frozenlake", "--agent", "state-blind", "--weights-from", str(biased),
                 "--episodes", "2", "--max-steps", "10", "--out", str(copy), "--no-progress"]) == 0
    manifest = json.loads((copy / "manifest.json").read_text())
    assert dict(parse_weights(manifest["model"]["details"]["weights"])) == pytest.approx(weights, abs=1e-6)
    assert len(list(iter_episodes(copy))) == 2


@pytest.mark.parametrize("argv, message", [
    (["--agent", "state-blind"], "needs weights"),
    (["--agent", "state-blind", "--weights", "down=1", "--weights-from", "x"], "not both"),
    (["--agent", "state-blind", "--weights", "dwn=1"], "no action 'dwn'"),
    (["--agent", "list-position", "--position-decay", "2"], "decay must lie in [0, 1]"),
])
def test_cli_control_errors(argv, message, tmp_path, capsys):
    assert main(["baseline", "--env", "frozenlake", *argv, "--out", str(tmp_path / "x"), "--no-progress"]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
