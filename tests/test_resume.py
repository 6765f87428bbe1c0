"""Runs that survive: kill a real run at random points, resume it, get the uninterrupted run.

The fault-injection tests run the real ``zso`` console script with the embedded SmolLM2 on
chess and FrozenLake, kill it with SIGKILL (at seeded random moments) or SIGTERM, resume
it with ``zso run --resume``, and compare every episode with those of an uninterrupted run
of the same configuration: each episode exactly once, the same actions and rewards.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from harness.records import (
    EPISODES, STEPS, Manifest, ResultsError, RunWriter, load_episodes, load_steps, prepare_resume, read_manifest, run_status,
)
from harness.validate import validate_run
from test_records import episode, manifest, step

ZSO = str(Path(sys.executable).with_name("zso"))
MODEL = "smollm2-135m-instruct"


def _env() -> dict[str, str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.pop("ZSO_DEBUG", None)
    return env


def _run_args(env: str, out: Path) -> list[str]:
    common = ["--model", MODEL, "--episodes", "4", "--batch-size", "2", "--max-steps", "4", "--seed", "3", "--no-progress"]
    if env == "chess":
        return ["run", "--env", "chess", "--encoding", "fen", "-o", "analysis=off", *common, "--out", str(out)]
    return ["run", "--env", "frozenlake", "--encoding", "ascii", "--temperature", "1", *common, "--out", str(out)]


def _play(args: list[str], timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([ZSO, *args], env=_env(), capture_output=True, text=True, timeout=timeout)


def _start(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen([ZSO, *args], env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _episodes(run: Path) -> dict[int, tuple]:
    """Per episode: seed, length, return, end, and the (action, reward) of every step."""
    steps: dict[int, list] = {}
    for s in load_steps(run):
        steps.setdefault(s.episode, []).append((s.t, s.action, s.reward))
    result = {}
    for e in load_episodes(run):
        assert e.episode not in result, f"episode {e.episode} recorded twice"
        result[e.episode] = (e.seed, e.steps, e.total_reward, e.end_reason, tuple(sorted(steps.get(e.episode, []))))
    return result


def _wait_for_manifest(run: Path, proc: subprocess.Popen, limit: float = 300) -> None:
    deadline = time.monotonic() + limit
    while not (run / "manifest.json").exists():
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline, "the run never started"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """Uninterrupted runs of both configurations."""
    root = tmp_path_factory.mktemp("reference")
    runs = {}
    for env in ("chess", "frozenlake"):
        result = _play(_run_args(env, root / env))
        assert result.returncode == 0, result.stderr
        runs[env] = _episodes(root / env)
        assert sorted(runs[env]) == [0, 1, 2, 3]
    return runs


@pytest.mark.model
@pytest.mark.parametrize("env", ["chess", "frozenlake"])
def test_sigkill_at_random_points_then_resume_gives_the_uninterrupted_run(env, reference, tmp_path):
    rng = np.random.default_rng(7 if env == "chess" else 8)
    for attempt, delay in enumerate(rng.uniform(0.0, 4.0, size=2)):
        run = tmp_path / f"run{attempt}"
        proc = _start(_run_args(env, run))
        _wait_for_manifest(run, proc)
        time.sleep(float(delay))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        assert run_status(run) in ("killed", "complete")
        kept = set(_episodes(run))
        assert kept <= set(reference[env])
        result = _play(["run", "--resume", str(run), "--no-progress"])
        assert result.returncode == 0, result.stderr
        assert "Traceback" not in result.stderr
        assert _episodes(run) == reference[env], f"SIGKILL after {delay:.2f} s"
        assert validate_run(run) == []
        manifest = read_manifest(run)
        assert manifest["status"] == "complete" and manifest["counts"]["episodes"] == 4
        if kept != set(reference[env]):
            assert manifest["resumes"][-1]["episodes_kept"] == len(kept)


@pytest.mark.model
def test_sigterm_keeps_finished_episodes_and_resume_finishes_the_run(reference, tmp_path):
    run = tmp_path / "run"
    proc = _start(_run_args("frozenlake", run))
    _wait_for_manifest(run, proc)
    deadline = time.monotonic() + 300
    while not (run / EPISODES).exists() or not (run / EPISODES).read_text().strip():
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode in (0, 130), err
    assert "Traceback" not in err
    manifest = read_manifest(run)
    if proc.returncode == 130:
        assert manifest["status"] == "interrupted" and "zso run --resume" in err
    kept = _episodes(run)
    assert kept and all(kept[i] == reference["frozenlake"][i] for i in kept)
    result = _play(["run", "--resume", str(run), "--no-progress"])
    assert result.returncode == 0, result.stderr
    assert _episodes(run) == reference["frozenlake"]


# -- the files themselves, no model ----------------------------------------------------------


def _write(run: Path, episodes: int, status: str = "interrupted") -> None:
    m = manifest(episodes=4)
    writer = RunWriter(run, m)
    for ep in range(episodes):
        for t in range(2):
            writer.step(replace(step(t, done=t == 1), episode=ep))
        writer.episode(replace(episode(2), episode=ep))
    writer.step(replace(step(0), episode=episodes))  # an unfinished episode
    writer.close(status, "2026-01-01T00:01:00+00:00")


def test_unfinished_episodes_never_reach_the_files(tmp_path):
    _write(tmp_path / "run", 2)
    assert sorted({s.episode for s in load_steps(tmp_path / "run")}) == [0, 1]
    assert read_manifest(tmp_path / "run")["counts"] == {"episodes": 2, "steps": 4}


def test_prepare_resume_drops_torn_lines_repeats_and_orphan_steps(tmp_path):
    run = tmp_path / "run"
    _write(run, 3)
    lines = (run / EPISODES).read_text().splitlines(keepends=True)
    (run / EPISODES).write_text("".join(lines) + lines[0] + lines[1][:17])  # a repeat, then a torn line
    with open(run / STEPS, "a") as f:
        f.write(json.dumps({**step(0).to_json(), "episode": 3}) + "\n" + '{"episode": 3, "t"')
    state = prepare_resume(run)
    assert state.finished == {0, 1, 2} and state.steps == 6 and state.status_before == "interrupted"
    assert any("recorded again" in d for d in state.dropped)
    assert any("cut short" in d and "episodes.jsonl:5" in d for d in state.dropped)
    assert any("unfinished" in d for d in state.dropped)
    assert sorted(e.episode for e in load_episodes(run)) == [0, 1, 2]
    assert {s.episode for s in load_steps(run)} == {0, 1, 2}


def test_a_run_being_written_cannot_be_resumed_or_overwritten(tmp_path):
    run = tmp_path / "run"
    writer = RunWriter(run, manifest())
    try:
        assert run_status(run) == "running"
        with pytest.raises(ResultsError, match="being written by another zso process"):
            prepare_resume(run)
        with pytest.raises(ResultsError, match="already holds a run"):
            RunWriter(run, manifest())
    finally:
        writer.close("interrupted", "2026-01-01T00:01:00+00:00")
    assert run_status(run) == "interrupted"


def test_a_killed_writer_leaves_a_run_that_says_killed(tmp_path):
    run = tmp_path / "run"
    code = (
        "from test_records import manifest; from harness.records import RunWriter; import os, sys;"
        f"RunWriter({str(run)!r}, manifest()); os.kill(os.getpid(), 9)"
    )
    subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).parent, env={**_env(), "PYTHONPATH": str(Path(__file__).parent)})
    assert read_manifest(run)["status"] == "running"
    assert run_status(run) == "killed"
    assert any("killed" in p for p in validate_run(run))


def test_fitting_a_killed_run_says_so(tmp_path, capsys):
    from harness.cli import main

    run = tmp_path / "run"
    writer = RunWriter(run, replace(manifest(), config=replace(manifest().config, env="frozenlake", encoding="ascii")))
    writer._lock.close()  # as a SIGKILL leaves it: status running, nobody writing
    main(["irl", str(run), "--out", str(tmp_path / "fit")])
    assert "is killed: fitting its 0 finished episode(s) only" in capsys.readouterr().err


def test_credentials_never_reach_the_manifest(tmp_path):
    m = manifest()
    m.config = replace(m.config, backend_options={
        "base_url": "http://alice:s3cret@127.0.0.1:8000/v1?api_key=sk-123", "api_key": "sk-9", "api_key_env": "OPENAI_API_KEY"})
    m.model = replace(m.model, details={**m.model.details, "source": "http://alice:s3cret@127.0.0.1:8000/v1"})
    RunWriter(tmp_path / "run", m).close("complete", "x")
    text = (tmp_path / "run" / "manifest.json").read_text()
    assert "s3cret" not in text and "sk-123" not in text and "sk-9" not in text and "alice" not in text
    assert "OPENAI_API_KEY" in text and "127.0.0.1:8000" in text
    assert Manifest.from_json(json.loads(text)).config.backend_options["api_key"] == "REDACTED"


# -- baselines are ordinary runs: killed and resumed like any other ---------------------------

#: ``zso baseline`` arguments of each agent (frozenlake 8x8: long enough episodes to kill mid-run).
BASELINE_ARGS = {
    "random": [],
    "soft-optimal": ["--temperature", "0.5"],
    "q-learning": ["--train-episodes", "300"],
}


def _baseline_args(agent: str, out: Path) -> list[str]:
    return ["baseline", "--env", "frozenlake", "--variant", "8x8", "--agent", agent, *BASELINE_ARGS[agent],
            "--episodes", "60", "--max-steps", "60", "--seed", "5", "--no-progress", "--out", str(out)]


@pytest.mark.parametrize("agent", list(BASELINE_ARGS))
def test_a_baseline_run_killed_mid_run_resumes_to_the_uninterrupted_run(agent, tmp_path):
    from harness.cli import main
    from harness.records import load_manifest

    assert main(_baseline_args(agent, tmp_path / "reference")) == 0
    reference = _episodes(tmp_path / "reference")
    run = tmp_path / "run"
    proc = _start(_baseline_args(agent, run))
    _wait_for_manifest(run, proc)
    target = int(np.random.default_rng(len(agent)).integers(2, 20))
    deadline = time.monotonic() + 300
    while not (run / EPISODES).exists() or len((run / EPISODES).read_bytes().splitlines()) < target:
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[1]
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert run_status(run) == "killed"
    kept = _episodes(run)
    assert 0 < len(kept) < 60 and all(kept[i] == reference[i] for i in kept)
    result = _play(["run", "--resume", str(run), "--no-progress"])
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert _episodes(run) == reference
    assert validate_run(run) == []
    manifest, first = load_manifest(run), load_manifest(tmp_path / "reference")
    assert manifest.status == "complete" and manifest.resumes[-1]["episodes_kept"] == len(kept)
    assert manifest.config.agent == first.config.agent and manifest.config.agent.name == agent
    assert manifest.model == first.model  # the same agent, planned or retrained from the run's seed
