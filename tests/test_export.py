"""``zso export``: a chess, a gridworld and a game run through Parquet, Minari and Inspect AI and back.

Each format is read back by its own library (pandas and ``datasets``; ``minari.load_dataset``;
``inspect_ai.log.read_eval_log`` and a real ``inspect view`` server), and the episodes,
actions and returns must be the run's.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from harness.cli import main
from harness.export import read_run
from harness.summary import summarize
from textenvs import make_env

ROOT = Path(__file__).resolve().parents[1]
INSPECT_PYTHON = ROOT / ".venv-inspect" / "bin" / "python"
RAY_STUDY = ROOT / "tests" / "data" / "study-ray.toml"

#: name -> ``zso baseline`` arguments: cheap reference agents on a game of each kind.
RUNS = {
    "chess": ["--env", "chess", "--agent", "random", "-o", "opponent=random", "-o", "analysis=off",
              "--episodes", "3", "--max-steps", "6"],
    "grid": ["--env", "frozenlake", "--variant", "4x4", "--agent", "soft-optimal", "--temperature", "0.3",
             "--episodes", "5", "--max-steps", "12"],
    "game": ["--env", "take-away", "--variant", "seeded", "--agent", "solver", "--episodes", "4", "--max-steps", "10"],
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    for name, args in RUNS.items():
        assert main(["baseline", *args, "--seed", "3", "--out", str(root / name), "--no-progress"]) == 0
    return {name: root / name for name in RUNS}


def _logged(run_dir):
    run = read_run(run_dir)
    actions = {e.episode: [s.action for s in run.steps[e.episode]] for e in run.episodes}
    returns = {e.episode: e.total_reward for e in run.episodes}
    return run, actions, returns


def test_parquet_tables_hold_the_runs_steps_episodes_and_manifest(runs, tmp_path):
    import datasets
    import pandas as pd
    import pyarrow.parquet as pq

    assert main(["export", *map(str, runs.values()), "--to", "parquet", "--out", str(tmp_path)]) == 0
    folders = sorted(tmp_path.iterdir())
    assert len(folders) == 3
    for run_dir in runs.values():
        run, actions, returns = _logged(run_dir)
        (folder,) = [f for f in folders if json.loads(pq.read_metadata(f / "episodes.parquet").metadata[b"zso.manifest"])["run_id"]
                     == run.manifest.run_id]
        episodes = pd.read_parquet(folder / "episodes.parquet")
        steps = pd.read_parquet(folder / "steps.parquet")
        assert len(episodes) == len(run.episodes) and len(steps) == sum(len(a) for a in actions.values())
        assert dict(zip(episodes.episode, episodes.total_reward)) == returns
        # Per-episode returns: zso summary's mean, and the sum of the step rewards.
        assert episodes.total_reward.mean() == pytest.approx(summarize(run_dir).total_reward.estimate)
        assert steps.groupby("episode").reward.sum().to_dict() == pytest.approx(returns)
        for ep, group in steps.sort_values(["episode", "t"]).groupby("episode"):
            assert list(group.action) == actions[ep]
            assert all(legal[i] == a for legal, i, a in zip(group.legal_actions, group.action_index, group.action))
        assert json.loads(pq.read_schema(folder / "steps.parquet").metadata[b"zso.manifest"]) == run.manifest.to_json()
        assert not any(str(t).startswith("struct") for t in pq.read_schema(folder / "steps.parquet").types)  # flat
        # One line with Hugging Face datasets.
        table = datasets.load_dataset("parquet", data_files=str(folder / "steps.parquet"), split="train",
                                      cache_dir=str(tmp_path / "hf-cache"))
        assert table.num_rows == len(steps) and table["action"] == list(steps.action)
    state_columns = [c for c in pd.read_parquet(next(f for f in folders if "frozenlake" in f.name) / "steps.parquet").columns
                     if c.startswith("state.")]
    assert "state.index" in state_columns


def test_minari_datasets_load_and_replay_on_the_exact_mdp(runs, tmp_path, monkeypatch):
    import minari

    assert main(["export", *map(str, runs.values()), "--to", "minari", "--out", str(tmp_path)]) == 0
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    ids = {
        "chess": "zso/chess/random-fen-choose-v0",
        "grid": "zso/frozenlake-4x4/soft-optimal-ascii-choose-v0",
        "game": "zso/take-away-seeded/solver-heaps-choose-v0",
    }
    assert sorted(minari.list_local_datasets()) == sorted(ids.values())
    for name, dataset_id in ids.items():
        run, actions, returns = _logged(runs[name])
        data = minari.load_dataset(dataset_id)
        assert data.total_episodes == len(run.episodes)
        for ep, record in zip(data.iterate_episodes(), run.episodes):
            steps = run.steps[record.episode]
            assert ep.id == record.episode and len(ep.actions) == record.steps and len(ep.observations) == record.steps + 1
            assert [s.legal_actions[a] for s, a in zip(steps, ep.actions)] == actions[record.episode]
            assert float(np.sum(ep.rewards)) == pytest.approx(returns[record.episode])
            assert list(ep.terminations) == [s.terminated for s in steps] and list(ep.truncations) == [s.truncated for s in steps]
            for i, s in enumerate(steps):
                np.testing.assert_allclose(ep.infos["probs"][i][:len(s.legal_actions)], s.probs)
        if name == "grid":
            # Every logged transition is one the exact MDP can make, with the MDP's reward.
            env = make_env("frozenlake", "4x4")
            mdp = env.mdp()
            assert data.observation_space.n == mdp.transitions.shape[0]
            for ep, record in zip(data.iterate_episodes(), run.episodes):
                assert ep.observations[0] == record.start_state["index"]
                for t, s in enumerate(run.steps[record.episode]):
                    a = mdp.action_names.index(s.action)
                    here, there = int(ep.observations[t]), int(ep.observations[t + 1])
                    assert here == s.state["index"]
                    assert mdp.transitions[here, a, there] > 0
                    assert mdp.rewards[here, a, there] == pytest.approx(s.reward)
                assert bool(mdp.terminal[int(ep.observations[-1])]) == record.terminated
        else:
            # Text observations: the encoding's rendering, the first one of the start state.
            assert all(isinstance(o, str) and o for ep in data.iterate_episodes() for o in ep.observations)
            first = next(data.iterate_episodes())
            assert first.observations[0] != first.observations[1]


def test_a_run_that_does_not_replay_is_refused_by_name(runs, tmp_path, capsys):
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("manifest.json", "episodes.jsonl"):
        (broken / name).write_bytes((runs["grid"] / name).read_bytes())
    lines = (runs["grid"] / "steps.jsonl").read_text().splitlines()
    first = json.loads(lines[1])
    first["state"]["index"] = 15 if first["state"]["index"] != 15 else 14
    (broken / "steps.jsonl").write_text("\n".join([lines[0], json.dumps(first), *lines[2:]]) + "\n")
    assert main(["export", str(broken), "--to", "minari", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "does not replay at step 1" in err and "Traceback" not in err


def test_export_names_a_path_that_is_not_a_run(tmp_path, capsys):
    assert main(["export", str(tmp_path / "nowhere"), "--to", "parquet", "--out", str(tmp_path / "o")]) == 2
    assert "no such run or study directory" in capsys.readouterr().err
    assert main(["export", str(tmp_path), "--to", "parquet", "--out", str(tmp_path / "o")]) == 2
    assert "neither a run directory" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_a_study_directory_exports_all_its_runs(tmp_path):
    import pandas as pd

    from zso.study import load_study, run_study

    study = load_study(RAY_STUDY)
    run_study(study, tmp_path / "study", analyse=False)
    assert main(["export", str(tmp_path / "study"), "--to", "parquet", "--out", str(tmp_path / "pq")]) == 0
    folders = sorted(tmp_path.joinpath("pq").iterdir())
    assert len(folders) == len(study.cells())
    total = sum(len(pd.read_parquet(f / "episodes.parquet")) for f in folders)
    assert total == sum(c.config.episodes for c in study.cells())


@pytest.fixture(scope="module")
def inspect_python():
    if not INSPECT_PYTHON.exists():
        pytest.skip(".venv-inspect is absent: `make install-inspect` builds it (make test does)")
    return str(INSPECT_PYTHON)


READ_BACK = """
import json, sys
from inspect_ai.log import read_eval_log
log = read_eval_log(sys.argv[1])
print(json.dumps({
    "status": log.status, "run_id": log.eval.metadata["run_id"], "model": log.eval.model,
    "samples": [{"id": s.id, "return": s.scores["return"].value,
                 "actions": [m.metadata["action"] for m in s.messages if m.role == "assistant" and m.metadata],
                 "chose": [m.text.rsplit("chose: ", 1)[-1] for m in s.messages if m.role == "assistant" and m.metadata]}
                for s in log.samples],
    "mean_return": next(sc.metrics["mean"].value for sc in log.results.scores if sc.name == "return"),
}))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_inspect_logs_read_back_and_open_in_inspect_view(runs, tmp_path, inspect_python):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = tmp_path / "logs"
    subprocess.run([inspect_python, "-m", "harness.export", *map(str, runs.values()), "--to", "inspect", "--out", str(out)],
                   check=True, env=env, capture_output=True, text=True)
    files = sorted(out.glob("*.eval"))
    assert len(files) == 3
    by_run = {}
    for path in files:
        doc = json.loads(subprocess.run([inspect_python, "-c", READ_BACK, str(path)], check=True, env=env,
                                        capture_output=True, text=True).stdout)
        by_run[doc["run_id"]] = doc
    for run_dir in runs.values():
        run, actions, returns = _logged(run_dir)
        doc = by_run[run.manifest.run_id]
        assert doc["status"] == "success" and doc["model"] == f"baseline/{run.who}"
        assert {s["id"]: s["return"] for s in doc["samples"]} == returns
        assert {s["id"]: s["actions"] for s in doc["samples"]} == actions
        assert {s["id"]: s["chose"] for s in doc["samples"]} == actions
        assert doc["mean_return"] == pytest.approx(summarize(run_dir).total_reward.estimate)
    # The viewer lists the logs and serves each one's header.
    port = _free_port()
    inspect_bin = str(Path(inspect_python).parent / "inspect")
    viewer = subprocess.Popen([inspect_bin, "view", "--log-dir", str(out), "--host", "127.0.0.1", "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    try:
        listing = None
        for _ in range(240):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/log-files", timeout=5) as response:
                    listing = json.loads(response.read())
                break
            except OSError:
                if viewer.poll() is not None:
                    pytest.fail(f"inspect view exited: {viewer.stderr.read().decode()[-2000:]}")
                time.sleep(0.5)
        assert listing is not None, "inspect view did not answer"
        names = sorted(f["name"] for f in listing["files"])
        assert names == sorted(p.resolve().as_uri() for p in files)
        assert {f["task"] for f in listing["files"]} == {"zso/chess", "zso/frozenlake/4x4", "zso/take-away/seeded"}
        quoted = urllib.parse.quote(names[0], safe="")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/logs/{quoted}?header-only=1", timeout=30) as response:
            header = json.loads(response.read())
        assert header["eval"]["task"].startswith("zso/") and header["results"]["total_samples"] >= 3
    finally:
        viewer.terminate()
        viewer.wait(timeout=30)


@pytest.mark.model
def test_a_language_models_prompts_replies_and_refusals_are_exported(tmp_path, inspect_python, monkeypatch):
    """A real generate-mode run: Inspect holds every prompt, reply and refusal; Parquet and Minari its actions."""
    import minari
    import pandas as pd

    run_dir = tmp_path / "run"
    assert main(["run", "--env", "frozenlake", "--variant", "4x4", "--model", "gemma3-270m", "--mode", "generate",
                 "--episodes", "2", "--max-steps", "3", "--max-retries", "1", "--max-new-tokens", "6", "--seed", "0",
                 "--out", str(run_dir), "--no-progress"]) == 0
    run, actions, returns = _logged(run_dir)
    assert any(s.attempts for steps in run.steps.values() for s in steps)  # refusals to export (seeded: there are)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run([inspect_python, "-m", "harness.export", str(run_dir), "--to", "inspect", "--out", str(tmp_path / "logs")],
                   check=True, env=env, capture_output=True)
    dump = ("import json, sys\nfrom inspect_ai.log import read_eval_log\nlog = read_eval_log(sys.argv[1])\n"
            "print(json.dumps([[[m.role, m.text] for m in s.messages] for s in log.samples]))")
    (path,) = (tmp_path / "logs").glob("*.eval")
    samples = json.loads(subprocess.run([inspect_python, "-c", dump, str(path)], check=True, env=env,
                                        capture_output=True, text=True).stdout)
    assert len(samples) == len(run.episodes)
    for messages, ep in zip(samples, run.episodes):
        texts = [text for _, text in messages]
        for s in run.steps[ep.episode]:
            assert s.prompt in texts
            for a in s.attempts:
                assert a.reply in texts and any(t.startswith(f"refused ({a.error_kind})") for t in texts)
            if s.action_source == "model":
                assert s.reply in texts
            else:
                assert f"no reply accepted: the fallback took {s.action}" in texts
        assert messages[0][0] == "user" and messages[1][0] == "assistant"
    assert main(["export", str(run_dir), "--to", "parquet", "--out", str(tmp_path / "pq")]) == 0
    steps = pd.read_parquet(next((tmp_path / "pq").iterdir()) / "steps.parquet")
    assert list(steps.prompt) == [s.prompt for e in run.episodes for s in run.steps[e.episode]]
    assert list(steps.invalid_attempts) == [len(s.attempts) for e in run.episodes for s in run.steps[e.episode]]
    assert main(["export", str(run_dir), "--to", "minari", "--out", str(tmp_path / "mn")]) == 0
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "mn"))
    data = minari.load_dataset("zso/frozenlake-4x4/gemma3-270m-ascii-generate-v0")
    assert [[run.steps[r.episode][t].legal_actions[a] for t, a in enumerate(ep.actions)]
            for ep, r in zip(data.iterate_episodes(), run.episodes)] == [actions[r.episode] for r in run.episodes]
