"""Sharded runs: ``--shard I/N`` splits the episodes deterministically, ``zso merge`` joins them
into a run that validates and equals the same run played unsharded."""

from __future__ import annotations

from dataclasses import replace

import pytest

from harness.agents import build_baseline, BaselineOptions
from harness.cli import main
from harness.config import ConfigError, RunConfig
from harness.records import iter_episodes, iter_steps, load_manifest, read_manifest, totals_of_steps
from harness.runner import Runner
from harness.validate import validate_run

CONFIG = RunConfig(env="frozenlake", encoding="ascii", model="soft-optimal", backend="baseline", episodes=7, max_steps=12,
                   seed=5, temperature=0.05)


def _play(config: RunConfig, out):
    agent = build_baseline("soft-optimal", config, BaselineOptions(temperature=0.05))
    with Runner(config, agent=agent) as runner:
        return runner.run(out)


def _content(run_dir):
    drop = ("timing", "wall_s")
    episodes = [{k: v for k, v in e.items() if k not in drop} for e in iter_episodes(run_dir)]
    steps = [{k: v for k, v in s.items() if k not in drop} for s in iter_steps(run_dir)]
    return sorted(episodes, key=lambda e: e["episode"]), sorted(steps, key=lambda s: (s["episode"], s["t"]))


def test_shards_split_the_episodes_and_merge_into_the_unsharded_run(tmp_path):
    whole = _play(CONFIG, tmp_path / "whole")
    shards = [_play(replace(CONFIG, shard=f"{i}/3"), tmp_path / f"shard{i}") for i in (1, 2, 3)]
    assert [sorted(e["episode"] for e in iter_episodes(d)) for d in shards] == [[0, 3, 6], [1, 4], [2, 5]]
    assert all(validate_run(d) == [] for d in shards)
    assert main(["merge", str(tmp_path / "merged"), *map(str, reversed(shards))]) == 0
    merged = tmp_path / "merged"
    assert validate_run(merged) == []
    assert _content(merged) == _content(whole)
    manifest = read_manifest(merged)
    assert manifest["status"] == "complete" and manifest["config"]["shard"] is None
    assert manifest["counts"] == read_manifest(whole)["counts"]
    totals = load_manifest(merged).usage  # recomputed over the merged steps, not copied from a shard
    assert totals == totals_of_steps(iter_steps(merged)) and totals.decisions == manifest["counts"]["steps"]
    assert totals.decisions == load_manifest(whole).usage.decisions and totals.usage is None  # reference agents count no tokens


def test_merge_refuses_what_is_not_one_runs_shards(tmp_path, capsys):
    one = _play(replace(CONFIG, shard="1/2"), tmp_path / "one")
    other = _play(replace(CONFIG, shard="2/2", seed=6), tmp_path / "other")
    assert main(["merge", str(tmp_path / "m1"), str(one)]) == 2
    assert "shard(s) 2/2 missing" in capsys.readouterr().err
    assert main(["merge", str(tmp_path / "m2"), str(one), str(other)]) == 2
    assert "config differs in seed" in capsys.readouterr().err
    assert main(["merge", str(tmp_path / "m3"), str(one), str(one)]) == 2
    assert "both shard 1/2" in capsys.readouterr().err


@pytest.mark.parametrize("shard", ["0/3", "4/3", "x", "1/0"])
def test_a_malformed_shard_is_a_config_error(shard):
    with pytest.raises(ConfigError, match="shard must look like I/N"):
        replace(CONFIG, shard=shard).episode_indices()
