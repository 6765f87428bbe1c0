"""Every bad input a user can type: exit code 2, one line on stderr, no traceback, no model loaded.

Each case runs the real ``zso`` console script in a subprocess, with a model cache that
does not exist: a command that got as far as loading a model would convert one there, so
an empty cache afterwards shows no model was loaded.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ZSO = str(Path(sys.executable).with_name("zso"))


def zso(*argv: str, cwd: Path, cache: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "ZSO_CACHE": str(cache), "HF_HUB_OFFLINE": "1", "COLUMNS": "80"}
    env.pop("ZSO_DEBUG", None)
    return subprocess.run([ZSO, *argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def _setup(tmp: Path) -> None:
    (tmp / "adir").mkdir()
    (tmp / "afile").write_text("x")
    (tmp / "float.toml").write_text('env = "frozenlake"\nepisodes = 2.0\n')
    (tmp / "old").mkdir()
    (tmp / "old" / "steps.jsonl").write_text('{"episode": 0}\n')
    locked = tmp / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    (tmp / "fitted").mkdir()
    (tmp / "fitted" / "fit.json").write_text("{}")
    run = tmp / "run"
    run.mkdir()
    (run / "manifest.json").write_text(json.dumps({"format_version": "1.0", "status": "complete", "config": {}}))
    config = {"env": "frozenlake", "encoding": "ascii", "episodes": 2, "max_steps": 2}
    for name, bad in (("six", {**config, "episodes": "six"}), ("nullsteps", {**config, "max_steps": None}), ("noconfig", None)):
        (tmp / name).mkdir()
        manifest = {"format_version": "1.1", "status": "complete", **({"config": bad} if bad is not None else {})}
        (tmp / name / "manifest.json").write_text(json.dumps(manifest))
        (tmp / name / "steps.jsonl").write_text("")
        (tmp / name / "episodes.jsonl").write_text("")
    (tmp / "latin1.toml").write_bytes(b'name = "caf\xe9"\n')
    (tmp / "nocells.toml").write_text('name = "x"\n[[envs]]\nenv = "frozenlake"\n')
    (tmp / "features.toml").write_text('name = "x"\n[[envs]]\nenv = "frozenlake"\n[baselines]\nagents = ["random"]\n'
                                       '[irl]\nfeatures = "at_goal,nope"\n')
    for name, env in (("chess", 'env = "chess"'), ("game", 'env = "take-away"\nvariant = "seeded"')):
        (tmp / f"{name}-features.toml").write_text(f'name = "x"\n[[envs]]\n{env}\n[baselines]\nagents = ["random"]\n'
                                                   '[irl]\nfeatures = "nope"\n')


CASES = [
    (["run", "--config", "adir"], "adir is a directory"),
    (["run", "--config", "missing.toml"], "no config file missing.toml"),
    (["run", "--config", "float.toml"], "'episodes': 2.0 is not a whole number"),
    (["run", "--env", "frozenlake", "-b", "model=x"], "'model' is not a backend option"),
    (["run", "--env", "frozenlake", "--model", "[/bold]"], "unknown model '[/bold]'"),
    (["run", "--env", "frozenlake", "--model", "[red]x"], "unknown model '[red]x'"),
    (["run", "--env", "frozenlake", "--out", "afile/run"], "afile is a file"),
    (["run", "--env", "frozenlake", "--out", "old"], "holds steps.jsonl but no manifest.json"),
    (["run", "--env", "frozenlake", "--out", "run"], "already holds a run"),
    (["run", "--env", "frozenlake", "--encoding", "fen"], "unknown encoding of 'frozenlake' 'fen'"),
    (["run", "--resume", "nowhere"], "nowhere is not a run directory"),
    (["run", "--resume", "run", "--episodes", "3"], "--resume takes the run's own configuration"),
    (["summary", "adir"], "adir is not a run directory"),
    (["irl", "adir", "--out", "fits"], "adir"),
    (["irl", "run", "--out", "afile/fits"], "afile is a file"),
    (["irl", "run", "--out", "fitted"], "fitted already holds fit.json"),
    (["compare", "run", "--out", "afile/cmp"], "afile is a file"),
    # Issue 24: values checked before anything loads, each naming what is wrong.
    (["run", "--env", "frozenlake", "--seed", "-1"], "'seed': -1 is less than the minimum of 0"),
    (["baseline", "--env", "frozenlake", "--agent", "random", "--seed", "-1"], "'seed': -1 is less than the minimum of 0"),
    (["run", "--env", "keys-chests", "--encoding", "text", "-o", "layout_seed=abc"], "option 'layout_seed' takes int or none, got 'abc'"),
    (["run", "--env", "frozenlake", "-o", "is_slippery=maybe"], "option 'is_slippery' takes bool, got 'maybe'"),
    (["run", "--env", "frozenlake", "-o", "map_name=foo"], "option 'map_name': unknown value 'foo'"),
    (["run", "--env", "frozenlake", "-b", "timeout_s=abc", "--backend", "openai"], "option 'timeout_s' takes float"),
    (["run", "--env", "frozenlake", "--batch-size", "100000"], "'batch_size': 100000 is greater than the maximum"),
    (["run", "--resume", "run", "-b", "base_url=http://elsewhere/v1"], "drop --backend-option"),
    (["summary", "six"], "six/manifest.json: config.episodes: expected a whole number >= 1, got 'six'"),
    (["summary", "nullsteps"], "config.max_steps: expected a whole number >= 1, got None"),
    (["summary", "noconfig"], "noconfig/manifest.json: 'config' must be an object"),
    (["irl", "six", "--out", "fits"], "config.episodes"),
    (["compare", "nullsteps"], "config.max_steps"),
    (["merge", "merged", "noconfig"], "'config' must be an object"),
    (["merge", "run", "six"], "run already holds a run; choose another OUT_DIR"),
    (["study", "latin1.toml", "--out", "s"], "latin1.toml: not UTF-8 text"),
    (["study", "nocells.toml", "--out", "s"], "nocells.toml: the study has no cells"),
    (["study", "features.toml", "--out", "s"], "features.toml: [irl]: frozenlake: unknown features ['nope']"),
    (["study", "chess-features.toml", "--out", "s"], "[irl]: chess: unknown chess feature 'nope'"),
    (["study", "game-features.toml", "--out", "s"], "[irl]: take-away: unknown game feature 'nope'"),
]
if os.geteuid() != 0:  # root writes anywhere
    CASES.append((["run", "--env", "frozenlake", "--out", "locked/run"], "locked is not writable"))


@pytest.mark.parametrize("argv, message", CASES, ids=[" ".join(c[0]) for c in CASES])
def test_bad_input_is_one_line_and_loads_no_model(tmp_path, argv, message):
    _setup(tmp_path)
    cache = tmp_path / "cache"
    result = zso(*argv, cwd=tmp_path, cache=cache)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1, result.stderr
    assert message in lines[0] and lines[0].startswith("error:")
    assert "Traceback" not in result.stderr + result.stdout
    assert not cache.exists() or not any(cache.rglob("*")), "a model was loaded"


def test_without_an_encoding_a_run_takes_the_environments_first(tmp_path):
    from harness.config import resolve_config

    assert resolve_config(None, env="frozenlake").encoding == "ascii"
    assert resolve_config(None, env="chess").encoding == "fen"
    assert resolve_config(None, env="keys-chests", encoding="text").encoding == "text"
