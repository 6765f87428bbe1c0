"""The command line as a user runs it, on the real embedded models."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness.cli import main
from harness.records import iter_episodes, read_manifest
from textenvs import ENCODINGS

from test_runner import replay_chess
from doc_examples import example

README = Path(__file__).resolve().parents[1] / "README.md"


def test_listings(capsys):
    assert main(["envs"]) == 0
    listed = capsys.readouterr().out
    for env in ("chess", "frozenlake", "keys-chests", "minigrid"):
        assert env in listed
    assert main(["encodings", "chess"]) == 0
    listed = capsys.readouterr().out
    assert all(name in listed for name in ("fen", "ascii", "pgn", "pieces")) and "frozenlake" not in listed
    assert main(["models"]) == 0
    listed = capsys.readouterr().out
    assert "smollm2-135m-instruct" in listed and "gemma3-270m" in listed


@pytest.mark.parametrize(
    "argv, message",
    [
        (["run", "--env", "chezz"], "did you mean 'chess'"),
        (["run", "--encoding", "fne"], "did you mean 'fen'"),
        (["run", "-o", "oponent=random"], "did you mean 'opponent'"),
        (["run", "--model", "smolm2"], "did you mean 'smollm2-135m-instruct'"),
        (["run", "-o", "opponent=stockfish:depth=x"], "opponent"),
        (["run", "-b", "dtype=float7"], "float7"),
        (["encodings", "frozen"], "did you mean 'frozenlake'"),
    ],
)
def test_bad_input_is_one_clear_line(capsys, tmp_path, argv, message):
    assert main([*argv, *(["--out", str(tmp_path / "r")] if argv[0] == "run" else [])]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_bad_config_file_names_the_key(capsys, tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('env = "chess"\nmax_step = 3\n')
    assert main(["run", "--config", str(path)]) == 2
    assert "unknown key 'max_step' (did you mean 'max_steps'?)" in capsys.readouterr().err


def test_validate_reports_a_broken_run(capsys, tmp_path):
    (tmp_path / "manifest.json").write_text("{not json")
    assert main(["validate", str(tmp_path)]) == 1
    assert "not valid JSON" in capsys.readouterr().out


@pytest.mark.model
@pytest.mark.parametrize(
    "model, mode, encoding",
    [("smollm2-135m-instruct", "choose", "fen"), ("gemma3-270m", "generate", "pgn")],
)
def test_run_then_validate_with_each_embedded_model(capsys, tmp_path, model, mode, encoding):
    out = tmp_path / "run"
    argv = ["run", "--env", "chess", "--encoding", encoding, "--model", model, "--mode", mode, "--episodes", "2",
            "--max-steps", "3", "--seed", "0", "--max-new-tokens", "6", "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    table = capsys.readouterr().out
    assert "results (95% confidence intervals)" in table and model in table
    assert main(["validate", str(out)]) == 0
    assert read_manifest(out)["status"] == "complete"
    assert len(list(iter_episodes(out))) == 2
    assert replay_chess(out) == 6




@pytest.mark.model
def test_the_readme_encoding_example_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    text = example("encoding")
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)[:2]
    assert len(blocks[0].strip().splitlines()) <= 12
    scope: dict = {}
    try:
        exec(blocks[0], scope)
        assert "goal-offset" in __import__("textenvs").encodings_for("frozenlake")
        exec(blocks[1], scope)
        run_dir = scope["run_dir"]
        assert main(["validate", str(run_dir)]) == 0
        steps = (run_dir / "steps.jsonl").read_text()
        assert "rows down and" in steps
    finally:
        if "frozenlake/goal-offset" in ENCODINGS:
            ENCODINGS.unregister("frozenlake/goal-offset")


@pytest.mark.model
def test_the_readme_irl_pipeline_runs_verbatim(tmp_path):
    """run -> irl -> compare for both embedded models and the baselines, as the README says."""
    import json
    import subprocess
    import sys

    text = example("pipeline")
    script = re.search(r"```sh\n(.*?)```", text, re.S).group(1)
    zso = Path(sys.executable).parent / "zso"
    script = script.replace("Z=.venv/bin/zso", f"Z={zso}")
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "comparison" in done.stdout
    rows = json.loads((tmp_path / "fits/compare/compare.json").read_text())
    text = json.dumps(rows)
    for name in ("smollm2-135m-instruct", "gemma3-270m", "optimal", "soft-optimal", "random", "q-learning", "stockfish"):
        assert name in text, name
    assert (tmp_path / "fits/compare/comparison.png").stat().st_size > 0
    assert list((tmp_path / "fits/frozenlake").glob("*.png"))
