"""What an adversarial user found, each reproduced on the real ``zso`` command (issue 24).

Secrets never reach a file or a message; huge counts and long replies stay bounded; the
commit of an episode does not grow with the run; damaged runs are refused or left out
with their file and line named; errors a user can fix exit 2, anything else is internal.
Reference agents (``zso baseline --agent random``) play wherever the model is not the point.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import warnings
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from harness.records import (
    EPISODES, MANIFEST, STEPS, DamagedRunWarning, prepare_resume, redact, redact_text, sound_episodes,
)
from harness.validate import validate_run

ZSO = str(Path(sys.executable).with_name("zso"))
TOKEN = "PLANTED7TOKEN"


def _env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "100", **extra}
    env.pop("ZSO_DEBUG", None)
    return env


def zso(*argv: str, cwd: Path | None = None, timeout: float = 300, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([ZSO, *argv], cwd=cwd, env=_env(), capture_output=True, text=True, timeout=timeout, **kwargs)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def baseline(out: Path, episodes: int = 6, max_steps: int = 4, *extra: str) -> Path:
    result = zso("baseline", "--env", "frozenlake", "--agent", "random", "--episodes", str(episodes),
                 "--max-steps", str(max_steps), "--seed", "5", "--out", str(out), "--no-progress", *extra)
    assert result.returncode == 0, result.stderr
    return out


@pytest.fixture(scope="module")
def played(tmp_path_factory) -> Path:
    """A finished run of 6 random FrozenLake episodes, copied by each test that damages it."""
    return baseline(tmp_path_factory.mktemp("played") / "run")


def _copy(run: Path, to: Path) -> Path:
    shutil.copytree(run, to, ignore=shutil.ignore_patterns(".lock"))
    return to


# -- secrets -----------------------------------------------------------------------------------


@pytest.mark.parametrize("text, secret", [
    ("http://alice:p@ssSECRET444@127.0.0.1:9/v1", "SECRET444"),
    ("http://alice:PW9@host/v1", "PW9"),
    ("https://host/v1?token=T0K&x=1", "T0K"),
    ("https://host/v1?x=1&api-key=K3Y#frag", "K3Y"),
    ('api_key = "sk-abc"', "sk-abc"),
    ('{"password": "hunter2"}', "hunter2"),
])
def test_redact_text_removes_userinfo_query_tokens_and_assigned_secrets(text, secret):
    assert secret not in redact_text(text)
    assert "REDACTED" in redact_text(text) or "@" not in redact_text(text)


def test_redact_keeps_what_is_not_a_secret():
    assert redact_text("user@example.com wrote x = 3") == "user@example.com wrote x = 3"
    assert redact({"api_key_env": "OPENAI_API_KEY", "max_tokens": 16}) == {"api_key_env": "OPENAI_API_KEY", "max_tokens": 16}


def test_a_planted_token_reaches_no_file_and_no_stderr_line(tmp_path):
    port = _closed_port()
    url = f"http://alice:p@ss{TOKEN}@127.0.0.1:{port}/v1?token={TOKEN}"
    (tmp_path / "study.toml").write_text(f"""
name = "secrets"
episodes = 2
max_steps = 2
[[models]]
model = "served"
backend = "openai"
backend_options = {{base_url = "{url}", timeout_s = 2, max_retries = 0, tokenizer = "none"}}
[[envs]]
env = "frozenlake"
encodings = ["ascii"]
[baselines]
agents = ["random"]
""")
    stderr = []
    study = zso("study", "study.toml", "--out", "out", "--no-progress", cwd=tmp_path)
    stderr.append(study.stderr + study.stdout)
    run = zso("run", "--env", "frozenlake", "--backend", "openai", "--model", "served", "-b", f"base_url={url}",
              "-b", "tokenizer=none", "-b", "max_retries=0", "--episodes", "1", "--out", "run", "--no-progress", cwd=tmp_path)
    stderr.append(run.stderr + run.stdout)
    assert study.returncode == 2 and run.returncode == 2, stderr  # the server is not there: a user's error
    assert all(f"127.0.0.1:{port}" in text for text in stderr), stderr  # the message names the server...
    assert not any(TOKEN in text for text in stderr), stderr  # ...without its credentials
    written = [p for p in (tmp_path / "out").rglob("*") if p.is_file()] + [p for p in (tmp_path / "run").rglob("*") if p.is_file()]
    assert any(p.name == "study.toml" for p in written) and any(p.name == MANIFEST for p in written)
    leaks = [str(p) for p in written if TOKEN.encode() in p.read_bytes()]
    assert not leaks, leaks


# -- memory and cost -----------------------------------------------------------------------------


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def test_a_hundred_million_episodes_start_in_bounded_memory_with_a_small_manifest(tmp_path):
    out = tmp_path / "huge"
    proc = subprocess.Popen([ZSO, "baseline", "--env", "frozenlake", "--agent", "random", "--max-steps", "1",
                             "--episodes", "100000000", "--out", str(out), "--no-progress"],
                            env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            lines = (out / EPISODES).read_bytes().count(b"\n") if (out / EPISODES).exists() else 0
            if lines >= 20:
                break
            time.sleep(0.2)
        assert proc.poll() is None, proc.communicate()[1]
        peak = _peak_rss_mb(proc.pid)
        size = (out / MANIFEST).stat().st_size
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    # A list of 10**8 seeds alone takes gigabytes; the process itself needs a few hundred MB.
    assert peak < 1500, f"peak RSS {peak:.0f} MB"
    assert size < 10_000, f"manifest of {size} bytes"
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["seeds"] == {"base": 0, "rule": "base + episode"} and manifest["status"] == "interrupted"
    assert proc.returncode == 130, err
    assert validate_run(out) == []


def test_an_episode_count_beyond_the_bound_is_refused_before_anything_runs(tmp_path):
    (tmp_path / "huge.toml").write_text('env = "frozenlake"\nepisodes = 99999999999999999999999\n')
    result = zso("run", "--config", "huge.toml", "--out", "x", cwd=tmp_path, timeout=60)
    assert result.returncode == 2 and "'episodes'" in result.stderr and "maximum" in result.stderr, result.stderr
    assert not (tmp_path / "x").exists()


def test_match_named_action_agrees_with_the_definition_and_is_linear():
    from textenvs import AmbiguousActionError, match_named_action
    from textenvs.base import normalize

    names = {"up": "up", "down": "down", "pick up": "pickup", "up down": "updown", "left": "left"}

    def by_definition(reply: str) -> set[str]:
        text = f" {normalize(reply)} "
        spans = [(i + 1, i + 1 + len(n), a) for n, a in ((normalize(k), v) for k, v in names.items())
                 for i in range(len(text)) if text.startswith(f" {n} ", i)]
        return {a for s, e, a in spans if not any(s2 <= s and e <= e2 and e2 - s2 > e - s for s2, e2, _ in spans)}

    rng = np.random.default_rng(0)
    words = ["up", "down", "pick", "left", "now", "go"]
    for _ in range(300):
        reply = " ".join(rng.choice(words, size=int(rng.integers(1, 9))))
        expected = by_definition(reply)
        try:
            got = {match_named_action(reply, names, "s")}
        except AmbiguousActionError:
            got = {"ambiguous"} if len(expected) > 1 else set()
        except ValueError:
            got = set()
        assert got == (expected if len(expected) <= 1 else {"ambiguous"}) or reply.strip() in {normalize(k) for k in names}, reply
    # 200,000 mentions: a quadratic matcher would compare 4e10 pairs.
    assert match_named_action("up " * 200_000, names, "s") == "up"


class _Flood(BaseHTTPRequestHandler):
    """A completions server that answers every request with a 6 MB reply."""

    reply = json.dumps({"choices": [{"index": 0, "text": "up " * 2_000_000, "finish_reason": "length"}]}).encode()

    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.reply)))
        self.end_headers()
        self.wfile.write(self.reply)

    def log_message(self, *args) -> None:
        pass


def test_a_six_megabyte_reply_is_cut_to_what_max_new_tokens_can_spell(tmp_path):
    from harness.agents.language import MAX_CHARS_PER_TOKEN

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Flood)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        result = zso("run", "--env", "frozenlake", "--backend", "openai", "--model", "served", "--mode", "generate",
                     "-b", f"base_url=http://127.0.0.1:{server.server_address[1]}/v1", "-b", "tokenizer=none",
                     "--episodes", "1", "--max-steps", "2", "--max-new-tokens", "8", "--out", "run", "--no-progress",
                     cwd=tmp_path, timeout=240)
    finally:
        server.shutdown()
        server.server_close()
    assert result.returncode == 0, result.stderr
    steps = [json.loads(line) for line in (tmp_path / "run" / STEPS).read_text().splitlines()]
    assert steps and all(len(s["reply"]) <= 8 * MAX_CHARS_PER_TOKEN for s in steps)
    assert all(s["action"] == "up" for s in steps)


# -- errors ----------------------------------------------------------------------------------------


def test_every_error_a_user_can_fix_shares_one_base():
    from harness.agents.base import BaselineError
    from harness.backends.base import BackendError, MissingDependencyError
    from harness.config import ConfigError
    from harness.models import UnknownModelError
    from harness.records import ResultsError
    from irl.analysis import FitError
    from textenvs import OptionError, UnknownIdError, UserError
    from textenvs.chess.engine import StockfishNotFoundError
    from textenvs.games import GameError
    from zso.study import StudyError

    kinds = (BaselineError, BackendError, MissingDependencyError, ConfigError, UnknownModelError, ResultsError,
             FitError, OptionError, UnknownIdError, StockfishNotFoundError, GameError, StudyError)
    assert all(issubclass(kind, UserError) for kind in kinds)
    assert not issubclass(ValueError, UserError) and not issubclass(KeyError, UserError)


def test_a_bug_is_an_internal_error_not_the_users(tmp_path):
    """A ValueError from inside a game (a bug in its code) exits 1 with the ZSO_DEBUG hint."""
    (tmp_path / "buggy.py").write_text('''
from textenvs.games.examples import RaceToTen

class Buggy(RaceToTen):
    def legal_moves(self, position):
        raise ValueError("a bug in legal_moves")
''')
    result = zso("baseline", "--env", "game", "-o", "game=buggy.py:Buggy", "--agent", "random", "--episodes", "1",
                 "--out", "run", "--no-progress", cwd=tmp_path, timeout=120)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 1 and lines[-1].startswith("internal error: ValueError"), result.stderr
    assert "ZSO_DEBUG=1" in lines[-1] and "Traceback" not in result.stderr


def test_a_full_disk_names_the_file_and_leaves_no_lock_open(tmp_path):
    """Files may not grow past 20 kB (RLIMIT_FSIZE, as a full disk would refuse them)."""

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))

    out = tmp_path / "run"
    result = subprocess.run([ZSO, "baseline", "--env", "frozenlake", "--agent", "random", "--episodes", "1000",
                             "--max-steps", "4", "--out", str(out), "--no-progress"],
                            env=_env(PYTHONDONTWRITEBYTECODE="1"), capture_output=True, text=True, timeout=300, preexec_fn=limit)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1 and lines[0].startswith("error: cannot write") and str(out) in lines[0], result.stderr
    assert "unclosed" not in result.stderr and "Traceback" not in result.stderr
    assert json.loads((out / MANIFEST).read_text())["status"] == "failed"


def test_a_failure_at_start_leaves_nothing_that_blocks_the_same_out(tmp_path):
    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (100, 100))

    out = tmp_path / "run"
    result = subprocess.run([ZSO, "baseline", "--env", "frozenlake", "--agent", "random", "--episodes", "2",
                             "--out", str(out), "--no-progress"],
                            env=_env(PYTHONDONTWRITEBYTECODE="1"), capture_output=True, text=True, timeout=120, preexec_fn=limit)
    assert result.returncode == 2 and f"cannot write {out}" in result.stderr, result.stderr
    assert "unclosed" not in result.stderr
    assert not (out / "manifest.json.tmp").exists()
    baseline(out, 2)


def test_temperature_nan_is_refused_before_a_model_loads_and_leaves_no_directory(tmp_path):
    result = zso("run", "--env", "frozenlake", "--temperature", "nan", "--out", "x", cwd=tmp_path, timeout=60)
    assert result.returncode == 2 and "'temperature': nan is not a finite number" in result.stderr, result.stderr
    assert not (tmp_path / "x").exists()
    baseline(tmp_path / "x", 1)  # the corrected command runs into the same directory


# -- damaged runs ---------------------------------------------------------------------------------


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def _summary_of(run: Path) -> tuple[object, list[str]]:
    from harness.summary import summarize

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        summary = summarize(run)
    return summary, [str(w.message) for w in caught if issubclass(w.category, (DamagedRunWarning, UserWarning))]


def test_a_repeated_episode_line_is_counted_once_and_named(played, tmp_path):
    run = _copy(played, tmp_path / "run")
    lines = _lines(run / EPISODES)
    (run / EPISODES).write_bytes(b"".join(lines + lines[2:3]))
    summary, messages = _summary_of(run)
    assert summary.episodes == 6
    assert any(f"{EPISODES}:7" in m and "recorded again" in m for m in messages), messages


def test_an_episode_that_lost_a_step_is_left_out_by_summary_and_irl(played, tmp_path):
    from irl.analysis import load_tabular

    run = _copy(played, tmp_path / "run")
    steps = [json.loads(line) for line in _lines(run / STEPS)]
    long = next(e for e in (json.loads(line) for line in _lines(run / EPISODES)) if e["steps"] >= 3)
    middle = next(i for i, s in enumerate(steps) if s["episode"] == long["episode"] and s["t"] == 1)
    (run / STEPS).write_bytes(b"".join(line for i, line in enumerate(_lines(run / STEPS)) if i != middle))
    summary, messages = _summary_of(run)
    assert summary.episodes == 5
    assert any(f"{STEPS}:{middle + 1}:" in m and f"episode {long['episode']}" in m for m in messages), messages
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        assert long["episode"] not in {e.episode for e in load_tabular(run).episodes}


def test_a_torn_steps_file_leaves_out_the_episodes_it_cut(played, tmp_path):
    run = _copy(played, tmp_path / "run")
    raw = (run / STEPS).read_bytes()
    (run / STEPS).write_bytes(raw[: len(raw) // 2])
    summary, messages = _summary_of(run)
    assert 0 < summary.episodes < 6
    assert any(f"{STEPS}:" in m for m in messages), messages
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        kept = sound_episodes(run)
    assert validate_run(run) and len(kept) == summary.episodes


def test_the_cli_warns_once_with_the_place_and_summarises_the_rest(played, tmp_path):
    run = _copy(played, tmp_path / "run")
    (run / EPISODES).write_bytes(b"".join(_lines(run / EPISODES) * 2))
    result = zso("summary", str(run), timeout=120)
    assert result.returncode == 0, result.stderr
    assert "recorded again" in result.stderr and f"{EPISODES}:7" in result.stderr


def test_resume_replays_a_kept_episode_that_lost_a_step(played, tmp_path):
    from harness.agents import BaselineOptions, build_baseline
    from harness.config import config_from_manifest
    from harness.runner import Runner

    run = _copy(played, tmp_path / "run")
    steps = _lines(run / STEPS)
    long = next(e for e in (json.loads(line) for line in _lines(run / EPISODES)) if e["steps"] >= 3)
    middle = next(i for i, line in enumerate(steps) if json.loads(line)["episode"] == long["episode"] and json.loads(line)["t"] == 1)
    (run / STEPS).write_bytes(b"".join(line for i, line in enumerate(steps) if i != middle))
    state = prepare_resume(run)
    assert long["episode"] not in state.finished and len(state.finished) == 5
    assert any("played again" in line for line in state.dropped)
    config = config_from_manifest(state.manifest, run)
    agent = build_baseline("random", config, BaselineOptions())
    with Runner(replace(config, out=str(run)), agent=agent) as runner:
        runner.run(run, resume=state)
    assert validate_run(run) == []
    replayed = {e["episode"]: e for e in map(json.loads, _lines(run / EPISODES))}
    original = {e["episode"]: e for e in map(json.loads, _lines(played / EPISODES))}
    assert {k: (v["seed"], v["steps"], v["total_reward"]) for k, v in replayed.items()} == \
        {k: (v["seed"], v["steps"], v["total_reward"]) for k, v in original.items()}


def test_validate_refuses_a_nan_reward_and_merge_names_the_shard(played, tmp_path):
    run = _copy(played, tmp_path / "run")
    lines = _lines(run / STEPS)
    step = json.loads(lines[1])
    lines[1] = json.dumps({**step, "reward": float("nan")}).encode() + b"\n"
    (run / STEPS).write_bytes(b"".join(lines))
    problems = validate_run(run)
    assert any(p.startswith(f"{STEPS}:2: reward: nan") for p in problems), problems


def test_a_torn_line_in_a_complete_study_cell_is_resumed(tmp_path):
    from zso.study import load_study, run_study

    (tmp_path / "study.toml").write_text('name = "torn"\nepisodes = 3\nmax_steps = 3\n[[envs]]\nenv = "frozenlake"\n'
                                         '[baselines]\nagents = ["random"]\n')
    study = load_study(tmp_path / "study.toml")
    first = run_study(study, tmp_path / "out", analyse=False)
    run = first.cells[0].run_dir
    raw = (run / EPISODES).read_bytes()
    (run / EPISODES).write_bytes(raw[:-10])
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        again = run_study(study, tmp_path / "out", analyse=False)
    assert again.cells[0].status == "complete" and again.cells[0].summary.episodes == 3
    assert validate_run(run) == []


def test_zso_compare_names_a_fit_file_that_is_not_one(tmp_path):
    for name, text in (("list", "[]"), ("broken", "{"), ("binary", "\xff")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "fit.json").write_bytes(text.encode("latin-1"))
        result = zso("compare", name, cwd=tmp_path, timeout=60)
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert result.returncode == 2 and len(lines) == 1 and f"{name}/fit.json" in lines[0], result.stderr
