"""The results format: writing, streaming, corruption, and validation."""

from __future__ import annotations

import json

import pytest

from harness.records import (
    EpisodeRecord, Manifest, ResultsError, RunWriter, StepRecord, Timing, TornLineWarning, iter_episodes, iter_steps,
    read_manifest,
)
from harness.validate import validate_run


def manifest(episodes=1):
    return Manifest(
        run_id="r", created="2026-01-01T00:00:00+00:00",
        config={"env": "chess", "encoding": "fen", "mode": "choose", "episodes": episodes},
        model={"name": "m", "backend": "transformers", "source": "/m.gguf", "weights_sha256": "0" * 64},
        environment={"id": "chess", "variant": None, "options": {}, "class": "C", "encoding": "fen", "encoding_class": "E"},
        packages={"numpy": "2"}, code={"version": "0.1.0", "revision": None, "dirty": None},
        seeds={"base": 0, "episodes": [0]}, host={},
    )


def step(t, action="a", legal=("a", "b"), done=False):
    return StepRecord(
        episode=0, t=t, state={"fen": "x"}, encoding="fen", mode="choose", prompt="p", reply=None, action=action,
        action_source="model", legal_actions=list(legal), logprobs=[-0.1, -2.0], probs=[1.0, 0.0], attempts=[],
        reward=1.0 if done else 0.0, terminated=done, truncated=False, info={"metrics": {"cp_loss": 3.0}},
        timing=Timing(0.1, 0.01, 0.11),
    )


def episode(steps=2):
    return EpisodeRecord(
        episode=0, seed=0, start_state={"fen": "x"}, reset_info={}, steps=steps, total_reward=1.0, terminated=True,
        truncated=False, end_reason="terminated", success=True, outcome="checkmate", invalid_replies=0,
        invalid_by_kind={}, fallback_actions=0, metrics={"cp_loss": 3.0}, wall_s=0.5,
    )


def write_run(path, steps=(0, 1), status="complete"):
    writer = RunWriter(path, manifest())
    for t in steps:
        writer.step(step(t, done=t == steps[-1]))
    writer.episode(episode(len(steps)))
    writer.close(status, "2026-01-01T00:01:00+00:00")
    return path


def test_written_run_reads_back_and_validates(tmp_path):
    run = write_run(tmp_path / "run")
    assert read_manifest(run)["status"] == "complete"
    assert read_manifest(run)["counts"] == {"episodes": 1, "steps": 2}
    assert [s["t"] for s in iter_steps(run)] == [0, 1]
    assert next(iter_episodes(run))["outcome"] == "checkmate"
    assert validate_run(run) == []


def test_an_existing_run_is_never_overwritten(tmp_path):
    run = write_run(tmp_path / "run")
    with pytest.raises(ResultsError, match="already holds a run"):
        RunWriter(run, manifest())


def test_a_line_cut_short_is_reported_with_its_place(tmp_path):
    run = write_run(tmp_path / "run")
    with open(run / "steps.jsonl", "a") as f:
        f.write('{"episode": 0, "t": 2')
    with pytest.warns(TornLineWarning, match=r"steps.jsonl:3: skipped a line cut short"):
        assert len(list(iter_steps(run))) == 2
    problems = validate_run(run)
    assert any("steps.jsonl:3" in p for p in problems)


def test_a_bad_line_before_the_end_is_an_error_naming_its_place(tmp_path):
    run = write_run(tmp_path / "run")
    text = (run / "steps.jsonl").read_text()
    (run / "steps.jsonl").write_text('{"episode": 0, "t": 2\n' + text)
    with pytest.raises(ResultsError, match=r"steps.jsonl:1: not valid JSON"):
        list(iter_steps(run))


def test_a_non_object_line_is_reported(tmp_path):
    run = write_run(tmp_path / "run")
    (run / "episodes.jsonl").write_text("[1, 2]\n")
    with pytest.raises(ResultsError, match="episodes.jsonl:1: expected a JSON object"):
        list(iter_episodes(run))


def test_missing_manifest_and_newer_format_are_refused(tmp_path):
    with pytest.raises(ResultsError, match="not a run directory"):
        read_manifest(tmp_path)
    run = write_run(tmp_path / "run")
    data = json.loads((run / "manifest.json").read_text())
    data["format_version"] = "2.0"
    (run / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(ResultsError, match="format version 2.0"):
        read_manifest(run)


@pytest.mark.parametrize(
    "mutate, expected",
    [
        (lambda s: s.update(action="zzz"), "not among the recorded legal actions"),
        (lambda s: s.update(t=5), "expected t=1"),
        (lambda s: s.update(probs=[0.5, 0.2]), "sum to 1"),
        (lambda s: s.update(mode="dream"), "'dream' is not one of"),
        (lambda s: s.pop("reward"), "'reward' is a required property"),
        (lambda s: s.update(extra=1), "Additional properties"),
    ],
)
def test_validate_finds_tampered_steps(tmp_path, mutate, expected):
    run = write_run(tmp_path / "run")
    lines = (run / "steps.jsonl").read_text().splitlines()
    second = json.loads(lines[1])
    mutate(second)
    lines[1] = json.dumps(second)
    (run / "steps.jsonl").write_text("\n".join(lines) + "\n")
    problems = validate_run(run)
    assert any(expected in p for p in problems), problems


def test_validate_finds_missing_episodes_and_miscounts(tmp_path):
    run = write_run(tmp_path / "run", steps=(0, 1, 2))
    data = json.loads((run / "episodes.jsonl").read_text())
    data["steps"] = 7
    (run / "episodes.jsonl").write_text(json.dumps(data) + "\n")
    manifest_data = json.loads((run / "manifest.json").read_text())
    manifest_data["config"]["episodes"] = 2
    (run / "manifest.json").write_text(json.dumps(manifest_data))
    problems = validate_run(run)
    assert any("says 7 steps" in p for p in problems)
    assert any("1 of 2 episodes" in p for p in problems)


def test_nan_is_refused_when_writing(tmp_path):
    writer = RunWriter(tmp_path / "run", manifest())
    bad = step(0)
    object.__setattr__(bad, "reward", float("nan"))
    with pytest.raises(ValueError):
        writer.step(bad)


def test_the_summary_counts_each_outcome_with_a_rate_interval(tmp_path):
    from harness.summary import summarize

    run = write_run(tmp_path / "run")
    summary = summarize(run)
    assert set(summary.outcomes) == {"checkmate"}
    estimate, low, high = summary.outcomes["checkmate"]
    assert estimate == 1.0 and 0.0 < low < 1.0 and high == 1.0
