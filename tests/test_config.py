"""Run configuration: TOML files, flags, and errors that name the bad key."""

from __future__ import annotations

import pytest

from harness.config import ConfigError, RunConfig, parse_key_values, resolve_config


def write(tmp_path, text):
    path = tmp_path / "run.toml"
    path.write_text(text)
    return path


def test_defaults_then_file_then_flags(tmp_path):
    path = write(tmp_path, 'episodes = 3\nencoding = "ascii"\n[env_options]\nopponent = "random"\ncolor = "black"\n')
    cfg = resolve_config(path, episodes=5, env_options={"color": "white"})
    assert cfg.episodes == 5
    assert cfg.encoding == "ascii"
    assert cfg.env_options == {"opponent": "random", "color": "white"}
    assert cfg.max_steps == RunConfig().max_steps


def test_unknown_key_is_named_with_a_suggestion(tmp_path):
    path = write(tmp_path, "episdes = 3\n")
    with pytest.raises(ConfigError, match=r"unknown key 'episdes' \(did you mean 'episodes'\?\)"):
        resolve_config(path)


def test_wrong_type_names_the_key(tmp_path):
    path = write(tmp_path, 'episodes = "many"\n')
    with pytest.raises(ConfigError, match=r"key 'episodes': 'many' is not of type 'integer'"):
        resolve_config(path)


def test_bad_enum_names_the_key(tmp_path):
    path = write(tmp_path, 'mode = "think"\n')
    with pytest.raises(ConfigError, match=r"key 'mode'"):
        resolve_config(path)


def test_invalid_toml_is_reported(tmp_path):
    path = write(tmp_path, "episodes = = 3\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        resolve_config(path)


def test_missing_file_is_reported(tmp_path):
    with pytest.raises(ConfigError, match="no config file"):
        resolve_config(tmp_path / "nope.toml")


def test_flag_values_are_typed():
    assert parse_key_values(["depth=3", "analysis=false", "opponent=stockfish:depth=2", "x=1.5", "seed=None"], "-o") == {
        "depth": 3, "analysis": False, "opponent": "stockfish:depth=2", "x": 1.5, "seed": None,
    }
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_key_values(["depth"], "--env-option")


def test_the_shipped_default_config_is_valid():
    cfg = resolve_config("configs/default.toml")
    assert cfg.model == "smollm2-135m-instruct" and cfg.env == "chess"
