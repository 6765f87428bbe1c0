"""The chat backend against a real chat server (``zso serve``; vLLM in one test), and every fault kind.

Faults come from a small proxy on loopback in front of the real server: 429 with
Retry-After, 5xx, a hang past the time-out, a body trickled byte by byte, malformed JSON,
a connection closed mid-reply, and malformed ``choices``.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.request
from typing import Any

import pytest

from harness.backends import load_backend
from harness.backends.base import BackendError, GenerateOptions, ScoreRequest
from harness.backends.chat import ChatBackend
from harness.backends.openai import OpenAIBackend
from harness.config import RunConfig
from harness.records import iter_episodes, iter_steps, load_manifest
from harness.runner import Runner
from harness.serve import CompletionsServer
from harness.validate import validate_run

from fault_servers import FaultProxy

NAME = "smollm2-135m-instruct"
TEXTS = ("Say hello.", "Name a chess opening move.", "Count to three.")


@pytest.fixture(scope="module")
def server(smollm2_backend):
    srv = CompletionsServer(smollm2_backend, NAME, port=0)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def proxy(server):
    made: list[FaultProxy] = []

    def make(faults: list[Any], **kwargs: Any) -> FaultProxy:
        made.append(FaultProxy(server.url, faults, **kwargs))
        return made[-1]

    yield make
    for p in made:
        p.close()


def _chat(url: str, **options: Any) -> ChatBackend:
    return ChatBackend(NAME, base_url=url, **{"timeout_s": 60, **options})


# -- against the real server ----------------------------------------------------------------


@pytest.mark.model
def test_chat_replies_equal_completions_replies(server):
    chat, completions = _chat(server.url, concurrency=2), OpenAIBackend(NAME, base_url=server.url, timeout_s=60)
    for options in (GenerateOptions(max_new_tokens=10), GenerateOptions(max_new_tokens=10, temperature=0.8, seeds=(1, 2, 3))):
        assert chat.generate(list(TEXTS), options) == completions.generate([completions.format_prompt(t) for t in TEXTS], options)
    assert chat.token_usage.total().prompt_tokens > 0 and chat.token_usage.total().completion_tokens > 0


@pytest.mark.model
def test_chat_choose_scores_equal_completions_scores(server, smollm2_backend):
    chat = _chat(server.url)
    text, conts = "Name a chess opening move.", ("e2e4", " d2d4", "Nf3")
    by_chat = chat.score([ScoreRequest(text, conts)])[0]
    local = smollm2_backend.score([ScoreRequest(smollm2_backend.format_prompt(text), conts)])[0]
    assert [s.n_tokens for s in by_chat] == [s.n_tokens for s in local]
    assert [s.logprob for s in by_chat] == pytest.approx([s.logprob for s in local], abs=1e-4)


@pytest.mark.model
def test_a_chat_run_records_its_messages_and_validates(server, tmp_path):
    cfg = RunConfig(env="frozenlake", mode="generate", episodes=2, max_steps=3, max_new_tokens=8, model=NAME,
                    backend="chat", backend_options={"base_url": server.url, "system": "Answer with one word."})
    backend = load_backend("chat", NAME, dict(cfg.backend_options))
    run = Runner(cfg, backend).run(tmp_path / "run")
    assert validate_run(run) == []
    details = load_manifest(run).model.own_details
    assert details["messages"] == [{"role": "system", "content": "Answer with one word."},
                                   {"role": "user", "content": "{prompt}"}]


def test_the_key_is_sent_and_never_shown(monkeypatch):
    monkeypatch.setenv("ZSO_TEST_KEY", "sk-planted-123")
    chat = ChatBackend("m", api_key_env="ZSO_TEST_KEY", tokenizer="none")
    assert chat.endpoint.api_key == "sk-planted-123"
    assert "sk-planted-123" not in repr(chat.endpoint) + json.dumps(chat.info().details) + repr(chat.info())


def test_choose_mode_without_a_template_says_what_to_do():
    with pytest.raises(BackendError, match="tokenizer=PATH"):
        ChatBackend("served-model").score([ScoreRequest("x", ("a",))])


# -- faults --------------------------------------------------------------------------------


@pytest.mark.model
@pytest.mark.parametrize("faults", [[429], [500, 503], ["cut"], ["hang"], ["trickle"]], ids=str)
def test_transient_faults_are_retried(proxy, server, faults):
    p = proxy(faults, hang_s=12.0)
    chat = _chat(p.url, timeout_s=6, max_retries=2)
    expected = _chat(server.url)
    reply = chat.generate(["Say hello."], GenerateOptions(max_new_tokens=6))
    assert p.seen == len(faults) + 1
    assert reply == expected.generate(["Say hello."], GenerateOptions(max_new_tokens=6))
    if faults == [429]:
        assert p.times[1] - p.times[0] >= 1.0  # Retry-After honoured


@pytest.mark.model
@pytest.mark.parametrize("fault, words", [
    ("trickle", r"failed after 1 attempt\(s\): no answer within 1 s"),
    ("hang", r"failed after 1 attempt\(s\): no answer within 1 s"),
    ("cut", r"failed after 1 attempt\(s\): IncompleteRead"),
    (500, r"failed after 1 attempt\(s\): 500"),
    ("malformed", "answered with invalid JSON"),
    (lambda a: a.update(choices=[1, 2]), "returned 2 choices for 1 prompts"),
    (lambda a: a.update(choices=[7]), "a choice that is not an object: 7"),
    (lambda a: a["choices"][0].update(index="0"), r"choice indices \['0'\]"),
    (lambda a: a.update(choices=None), "returned 0 choices"),
], ids=["trickle", "hang", "cut", "500", "malformed", "two-ints", "int", "string-index", "none"])
def test_faults_past_the_retries_are_one_line_errors(proxy, fault, words):
    timed = fault in ("trickle", "hang")
    p = proxy([fault], hang_s=30.0)
    chat = _chat(p.url, timeout_s=1 if timed else 60, max_retries=0)
    start = time.monotonic()
    with pytest.raises(BackendError, match=words) as info:
        chat.generate(["Say hello."], GenerateOptions(max_new_tokens=6))
    assert "\n" not in str(info.value) and p.url.removesuffix("/v1") in str(info.value)
    if timed:  # the time-out bounds the whole attempt: the trickle would take 40 s, the hang 30 s
        assert time.monotonic() - start < 20


@pytest.mark.model
@pytest.mark.parametrize("fault", [429, 502, "cut", "malformed", "hang"], ids=str)
def test_a_failing_server_keeps_the_finished_episodes(proxy, server, tmp_path, fault):
    base = dict(env="frozenlake", mode="generate", max_steps=2, max_new_tokens=6, batch_size=1, model=NAME,
                backend="chat", max_retries=0, fallback="random")
    counter = proxy([])
    Runner(RunConfig(**base, episodes=1), _chat(counter.url)).run(tmp_path / "one")
    p = proxy([fault] * 10, clean=counter.seen, hang_s=12.0)
    with pytest.raises(BackendError) as info:
        Runner(RunConfig(**base, episodes=3), _chat(p.url, timeout_s=6, max_retries=1)).run(tmp_path / "run")
    assert "\n" not in str(info.value)
    assert [e["episode"] for e in iter_episodes(tmp_path / "run")] == [0]
    assert [s["reply"] for s in iter_steps(tmp_path / "run") if s["episode"] == 0] == [
        s["reply"] for s in iter_steps(tmp_path / "one")]


@pytest.mark.model
def test_a_servers_reasoning_field_is_kept_as_a_think_block(proxy):
    def think(answer):
        answer["choices"][0]["message"]["reasoning_content"] = "e2e4 or d2d4? Move: d2d4 is solid."
        answer["choices"][0]["message"]["content"] = "Move: e2e4"
        answer["usage"]["completion_tokens_details"] = {"reasoning_tokens": 9}

    p = proxy([think, think])
    chat = _chat(p.url)
    reply = chat.generate(["Your move?"], GenerateOptions(max_new_tokens=4))[0]
    assert reply == "<think>e2e4 or d2d4? Move: d2d4 is solid.</think>\nMove: e2e4"
    from textenvs.tagged import split_tagged

    split = split_tagged(reply, "Move")
    assert split.answer == "e2e4" and split.reasoning == "e2e4 or d2d4? Move: d2d4 is solid."
    assert chat.token_usage.total().reasoning_tokens == 9
    assert _chat(p.url, reasoning="drop").generate(["Your move?"], GenerateOptions(max_new_tokens=4)) == ["Move: e2e4"]


@pytest.mark.model
def test_a_runaway_reply_is_cut_to_its_token_budget(proxy):
    def runaway(answer):
        answer["choices"][0]["message"]["content"] = "up " * 2_000_000  # 6 MB

    chat = _chat(proxy([runaway]).url)
    reply = chat.generate(["Go."], GenerateOptions(max_new_tokens=6, stop=()))[0]
    assert reply == ("up " * 64)[: 6 * 32]


def test_a_server_that_never_answers_is_bounded():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    try:
        chat = ChatBackend("m", base_url=f"http://127.0.0.1:{listener.getsockname()[1]}/v1", timeout_s=0.3,
                           max_retries=1, tokenizer="none")
        with pytest.raises(BackendError, match=r"chat/completions failed after 2 attempt\(s\): no answer within 0.3 s"):
            chat.generate(["hi"], GenerateOptions())
    finally:
        listener.close()


# -- against vLLM ----------------------------------------------------------------------------


@pytest.mark.model
def test_chat_through_vllm_equals_completions_through_vllm(vllm_server, smollm2_backend, tmp_path):
    """vLLM's chat route renders SmolLM2's template as the completions backend does (one test: the server is slow to start)."""
    chat = ChatBackend(vllm_server.name, base_url=vllm_server.url, timeout_s=300, tokenizer=NAME)
    completions = OpenAIBackend(vllm_server.name, base_url=vllm_server.url, timeout_s=300, tokenizer=NAME)
    options = GenerateOptions(max_new_tokens=16)
    assert chat.generate(list(TEXTS), options) == completions.generate([completions.format_prompt(t) for t in TEXTS], options)
    assert chat.token_usage.total().prompt_tokens > 0
    conts = ("e2e4", " d2d4", "Nf3", "left")
    text = "Name a chess opening move."
    by_chat = chat.score([ScoreRequest(text, conts)])[0]
    by_echo = completions.score([ScoreRequest(completions.format_prompt(text), conts)])[0]
    assert [s.n_tokens for s in by_chat] == [s.n_tokens for s in by_echo]
    assert [s.logprob for s in by_chat] == pytest.approx([s.logprob for s in by_echo], abs=1e-4)
    cfg = RunConfig(env="frozenlake", mode="choose", episodes=1, max_steps=2, model=NAME, backend="chat")
    run = Runner(cfg, chat).run(tmp_path / "choose")
    assert validate_run(run) == []
