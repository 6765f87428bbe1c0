"""The OpenAI-compatible backend against a real vLLM server (CPU, float32): the same
numbers as the in-process backend, and the faults a server can have.

The server is the session fixture ``vllm_server`` (tests/conftest.py); faults are
injected by a small proxy on loopback that answers 429/500, drops the connection, stalls,
or corrupts an answer before passing requests on to the real server.
"""

from __future__ import annotations

import json
import math
import threading
import time
import urllib.request
from typing import Any, Callable

import pytest

from harness.backends.base import BackendError, GenerateOptions, ScoreRequest
from harness.backends.openai import OpenAIBackend
from harness.config import RunConfig
from harness.records import iter_steps
from harness.runner import Runner
from harness.validate import validate_run

from fault_servers import FaultProxy

pytestmark = pytest.mark.model

#: Runs compared between backends: a gridworld and chess, a few steps each.
RUNS = [
    dict(env="frozenlake", episodes=2, max_steps=4),
    dict(env="chess", encoding="fen", episodes=1, max_steps=3, env_options={"opponent": "random", "analysis": "off"}),
]


def _client(url: str, **options: Any) -> OpenAIBackend:
    return OpenAIBackend("smollm2-135m-instruct", base_url=url, timeout_s=120, **options)


def _steps(run_dir) -> list[dict[str, Any]]:
    return sorted(iter_steps(run_dir), key=lambda r: (r["episode"], r["t"]))


# -- one prompt, one experiment ---------------------------------------------------------


def test_rendering_is_the_in_process_one_and_recorded(vllm_server, smollm2_backend):
    client = _client(vllm_server.url)
    text = "Pick a move."
    assert client.format_prompt(text) == smollm2_backend.format_prompt(text)
    details = client.info().details
    assert details["rendering"] == "chat_template"
    assert details["bos_text"] is None  # SmolLM2's file adds no BOS
    assert details["example"].startswith("<|im_start|>") and details["example"].endswith("<|im_start|>assistant\n")
    assert details["chat_template"] == smollm2_backend.tokenizer.chat_template


@pytest.mark.parametrize("run", RUNS, ids=lambda r: r["env"])
def test_choose_mode_log_probs_agree_with_in_process(vllm_server, smollm2_backend, tmp_path, run):
    config = RunConfig(model="smollm2-135m-instruct", mode="choose", seed=3, **run)
    local = _steps(Runner(config, smollm2_backend).run(tmp_path / "local"))
    remote_dir = Runner(config, _client(vllm_server.url, concurrency=4)).run(tmp_path / "remote")
    assert validate_run(remote_dir) == []
    remote = _steps(remote_dir)
    assert [r["action"] for r in remote] == [r["action"] for r in local]
    gaps = [abs(a - b) for lr, rr in zip(local, remote) for a, b in zip(lr["logprobs"], rr["logprobs"])]
    assert len(gaps) >= 4 * len(local)
    print(f"\n{run['env']}: {len(gaps)} action log-probs, largest gap {max(gaps):.2e}")
    assert max(gaps) < 1e-3


@pytest.mark.parametrize("run", RUNS, ids=lambda r: r["env"])
def test_greedy_replies_are_identical(vllm_server, smollm2_backend, tmp_path, run):
    config = RunConfig(model="smollm2-135m-instruct", mode="generate", seed=3, max_new_tokens=12, **run)
    local = _steps(Runner(config, smollm2_backend).run(tmp_path / "local"))
    remote = _steps(Runner(config, _client(vllm_server.url)).run(tmp_path / "remote"))
    pairs = [(lr["reply"], rr["reply"]) for lr, rr in zip(local, remote)]
    pairs += [(la["reply"], ra["reply"]) for lr, rr in zip(local, remote) for la, ra in zip(lr["attempts"], rr["attempts"])]
    assert len(pairs) >= len(local) and all(r for r, _ in pairs)
    assert [r for _, r in pairs] == [l for l, _ in pairs]
    # vLLM's finish_reason for each reply is the one the in-process backend computes.
    ends = [(lr["finish_reason"], rr["finish_reason"]) for lr, rr in zip(local, remote)]
    ends += [(la["finish_reason"], ra["finish_reason"]) for lr, rr in zip(local, remote)
             for la, ra in zip(lr["attempts"], rr["attempts"])]
    assert all(l in ("stop", "length") for l, _ in ends) and [r for _, r in ends] == [l for l, _ in ends]


def test_concurrency_gives_the_same_scores(vllm_server, smollm2_backend):
    prompts = [smollm2_backend.format_prompt(f"Name the square of piece number {i}.") for i in range(6)]
    requests = [ScoreRequest(p, (" a1", " h8", " e4")) for p in prompts]
    one = _client(vllm_server.url, concurrency=1).score(requests)
    many = _client(vllm_server.url, concurrency=6).score(requests)
    flat = lambda scores: [s.logprob for r in scores for s in r]  # noqa: E731
    assert flat(one) == pytest.approx(flat(many), abs=1e-4)
    assert len(flat(one)) == 18


def test_a_different_tokenizer_is_caught(vllm_server, gemma_backend):
    client = OpenAIBackend("smollm2-135m-instruct", base_url=vllm_server.url, tokenizer="gemma3-270m")
    with pytest.raises(BackendError, match="tokenizes differently"):
        client.score([ScoreRequest("The quick brown fox jumps over the lazy", (" dog", " cat"))])


# -- faults -----------------------------------------------------------------------------


@pytest.fixture
def proxy(vllm_server):
    made: list[FaultProxy] = []

    def make(faults: list[Any], stall_s: float = 3.0) -> FaultProxy:
        made.append(FaultProxy(vllm_server.url, faults, stall_s=stall_s, retry_after="0"))
        return made[-1]

    yield make
    for p in made:
        p.close()


@pytest.mark.parametrize("faults", [[429], [500, 503], ["drop"], [429, "drop", 502]], ids=str)
def test_transient_faults_are_retried(proxy, smollm2_backend, faults):
    p = proxy(faults)
    prompt = smollm2_backend.format_prompt("Say yes.")
    request = ScoreRequest(prompt, (" yes", " no"))
    scores = _client(p.url, max_retries=3).score([request])[0]
    expected = smollm2_backend.score([request])[0]
    assert [s.logprob for s in scores] == pytest.approx([s.logprob for s in expected], abs=1e-3)
    assert p.seen == len(faults) + 1


def test_a_dropped_connection_past_the_retries_is_a_clear_error(proxy):
    p = proxy(["drop"] * 3)
    with pytest.raises(BackendError, match=r"failed after 2 attempt\(s\): RemoteDisconnected"):
        _client(p.url, max_retries=1).generate(["hi"], GenerateOptions(max_new_tokens=2))
    assert p.seen == 2


def test_the_timeout_is_honoured_and_retried(proxy, smollm2_backend):
    p = proxy(["stall"], stall_s=4.0)
    client = OpenAIBackend("smollm2-135m-instruct", base_url=p.url, timeout_s=1.0, max_retries=1)
    start = time.perf_counter()
    replies = client.generate([smollm2_backend.format_prompt("Say hello.")], GenerateOptions(max_new_tokens=4))
    assert replies and isinstance(replies[0], str)
    assert p.seen == 2
    assert time.perf_counter() - start >= 1.0


def test_a_client_error_is_not_retried(proxy):
    p = proxy([400])
    with pytest.raises(BackendError, match="answered 400"):
        _client(p.url, max_retries=3).generate(["hi"], GenerateOptions(max_new_tokens=2))
    assert p.seen == 1


def _nan_logprobs(answer: dict[str, Any]) -> None:
    for choice in answer["choices"]:
        choice["logprobs"]["token_logprobs"] = [None] + [math.nan] * (len(choice["logprobs"]["token_logprobs"]) - 1)


def _lone_surrogate(answer: dict[str, Any]) -> None:
    for choice in answer["choices"]:
        choice["text"] = "\ud800" + choice["text"]


def test_a_nan_log_prob_is_a_clear_error(proxy, smollm2_backend):
    p = proxy([_nan_logprobs])
    with pytest.raises(BackendError, match="non-finite log-probability"):
        _client(p.url).score([ScoreRequest(smollm2_backend.format_prompt("Say yes."), (" yes",))])


def test_an_undecodable_reply_becomes_an_invalid_reply(proxy, tmp_path):
    p = proxy([_lone_surrogate] * 20)
    config = RunConfig(env="frozenlake", mode="generate", episodes=1, max_steps=1, max_retries=0,
                       model="smollm2-135m-instruct", backend="openai")
    run = Runner(config, _client(p.url)).run(tmp_path / "run")
    assert validate_run(run) == []
    step = _steps(run)[0]
    assert step["reply"].startswith("\ufffd")
    assert step["action_source"] == "fallback"


def test_a_server_refusing_token_ids_says_why(proxy, smollm2_backend):
    # A continuation that merges with the prompt's last token goes as token ids: a server
    # that refuses them gets an error that says so, and how to do without.
    p = proxy([400])
    request = ScoreRequest(smollm2_backend.format_prompt("Say something."), ("\n\nOK, here is a longer answer.",))
    with pytest.raises(BackendError, match="answered 400.*token-id prompts.*tokenizer=none"):
        _client(p.url).score([request])
    assert p.seen == 1


def test_extra_server_flags_are_passed_and_managed_ones_refused():
    from harness.backends.vllm_server import MANAGED_FLAGS, VLLMServer

    server = VLLMServer("python", "/models/m", "m", extra_args=("--tensor-parallel-size", "2", "--enable-prefix-caching"))
    command = server.command(8123)
    assert command[-3:] == ["--tensor-parallel-size", "2", "--enable-prefix-caching"]
    assert command[command.index("--port") + 1] == "8123"
    for flag in MANAGED_FLAGS:
        with pytest.raises(ValueError, match=f"cannot set {flag}"):
            VLLMServer("python", "/models/m", "m", extra_args=(f"{flag}=x",))
