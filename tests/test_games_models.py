"""The game families end to end with the embedded models: every seeded family with SmolLM2
and every known-game control with each embedded model in choose mode, one in generate mode
through the command line, the summary's rates next to the random mover's, and the README's
user-defined game run verbatim."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from harness.config import RunConfig
from harness.models import EMBEDDED
from harness.records import iter_steps, read_manifest
from harness.runner import Runner
from harness.summary import summarize
from harness.validate import validate_run
from textenvs import ENVS, encodings_for, make_env
from textenvs.games import solver_for
from doc_examples import example

README = Path(__file__).resolve().parents[1] / "README.md"
RATES = ("optimal_move", "random_optimal")
FAMILIES = ("take-away", "mnk", "movement")
#: Every known-game control (the families' named variants), each with one of its family's
#: encodings in turn.
CONTROLS = [
    (family, variant, encodings_for(family)[i % len(encodings_for(family))])
    for family in FAMILIES
    for i, variant in enumerate(v for v in ENVS.entry(family).metadata["variants"] if v != "seeded")
]
#: Each embedded model's session fixture (conftest.py).
BACKENDS = {"smollm2-135m-instruct": "smollm2_backend", "gemma3-270m": "gemma_backend"}


def check_run(run: Path, family: str, variant: str) -> None:
    """Valid files; every step's values are the solver's; the manifest re-creates the rules."""
    assert validate_run(run) == []
    manifest = read_manifest(run)
    described = manifest["environment"]["description"]["game"]
    assert set(RATES) <= set(manifest["environment"]["rate_metrics"])
    env = make_env(family, variant)
    assert described["parameters"] == env.game.parameters() and described["rules"] == env.game.rules_text()
    solver = solver_for(env.game)
    steps = list(iter_steps(run))
    assert steps
    for step in steps:
        info = step["info"]
        assert len(info["move_values"]) == len(step["legal_actions"])
        assert max(info["move_values"]) == step["state"]["value"]
        chosen = info["move_values"][step["legal_actions"].index(step["action"])]
        assert info["metrics"]["optimal_move"] == float(chosen == max(info["move_values"]))
        assert step["terminated"] is not True or step["truncated"] is False
    # The first decision of each episode is the start position, whose value the solver knows.
    first = next(s for s in steps if s["t"] == 0)
    assert first["state"]["value"] == solver.value(env.game.initial()).outcome
    summary = summarize(run)
    for name in RATES:
        assert name in summary.metrics and name in summary.rate_metrics


def test_the_controls_are_the_registered_variants():
    assert {v for _, v, _ in CONTROLS} == {
        "nim", "misere-nim", "subtraction", "tic-tac-toe", "4x4x3", "connect-four-4x4", "chess-pieces"}
    assert set(BACKENDS) == set(EMBEDDED)


@pytest.mark.model
@pytest.mark.parametrize("family, encoding", [("take-away", "heaps"), ("mnk", "board"), ("movement", "prose")])
def test_each_seeded_family_runs_with_smollm2(smollm2_backend, tmp_path, family, encoding):
    cfg = RunConfig(env=family, variant="seeded", encoding=encoding, mode="choose", episodes=2, max_steps=3,
                    model="smollm2-135m-instruct")
    run = Runner(cfg, smollm2_backend).run(tmp_path / "run")
    check_run(run, family, "seeded")
    if family == "take-away":
        assert all("heaps" in s["state"] for s in iter_steps(run))


@pytest.mark.model
@pytest.mark.parametrize("model", list(EMBEDDED))
@pytest.mark.parametrize("family, variant, encoding", CONTROLS)
def test_each_control_runs_with_each_embedded_model(request, tmp_path, model, family, variant, encoding):
    backend = request.getfixturevalue(BACKENDS[model])
    cfg = RunConfig(env=family, variant=variant, encoding=encoding, mode="choose", episodes=1, max_steps=2, model=model)
    run = Runner(cfg, backend).run(tmp_path / "run")
    check_run(run, family, variant)
    assert read_manifest(run)["model"]["name"] == model
    rules = make_env(family, variant).game.rules_text()
    assert all(rules in s["prompt"] for s in iter_steps(run))


@pytest.mark.model
def test_generate_mode_from_the_command_line_prints_the_rates(tmp_path, capsys):
    from harness.cli import main

    out = tmp_path / "ttt"
    argv = ["run", "--env", "mnk", "--variant", "tic-tac-toe", "--encoding", "board", "--model", "smollm2-135m-instruct",
            "--mode", "generate", "--episodes", "2", "--max-steps", "3", "--max-new-tokens", "6", "--max-retries", "0",
            "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    assert main(["validate", str(out)]) == 0
    capsys.readouterr()
    assert main(["summary", str(out)]) == 0
    table = capsys.readouterr().out
    for name in RATES:
        assert re.search(rf"{name}\s*│\s*\d+\.\d%", table), table
    check_run(out, "mnk", "tic-tac-toe")


GRUNDY_ZERO = {1, 2, 4, 7, 10}  # Grundy's game: single piles of 1..12 with Grundy value 0 (OEIS A002188)


@pytest.mark.model
def test_the_readme_user_game_runs_verbatim(tmp_path):
    text = example("game")
    code = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    script = re.search(r"```sh\n(.*?)```", text, re.S).group(1)
    (tmp_path / "grundy.py").write_text(code)
    scope: dict = {}
    exec(compile(code, str(tmp_path / "grundy.py"), "exec"), scope)
    grundy = scope["Grundy"]
    for n in range(1, 13):
        game = grundy(size=n)
        assert solver_for(game).value(game.initial()).outcome == (-1 if n in GRUNDY_ZERO else 1), n
    zso = Path(sys.executable).parent / "zso"
    script = script.replace(".venv/bin/zso", str(zso))
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    steps = list(iter_steps(tmp_path / "runs/grundy"))
    assert steps and all(re.fullmatch(r"\d+=\d+\+\d+", s["action"]) for s in steps)
    assert json.dumps(read_manifest(tmp_path / "runs/grundy")["environment"]["description"]["game"]["title"]) == '"Grundy\'s game"'
