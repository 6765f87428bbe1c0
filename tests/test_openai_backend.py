"""The OpenAI-compatible backend against a real local server (``zso serve``), and its failures."""

from __future__ import annotations

import socket
import threading

import pytest

from harness.backends.base import BackendError, GenerateOptions, ScoreRequest
from harness.backends.openai import OpenAIBackend
from harness.config import RunConfig
from harness.runner import Runner
from harness.serve import CompletionsServer
from harness.validate import validate_run


@pytest.fixture(scope="module")
def server(smollm2_backend):
    srv = CompletionsServer(smollm2_backend, "smollm2", port=0)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.mark.model
def test_scores_match_the_in_process_backend(server, smollm2_backend):
    client = OpenAIBackend("smollm2", base_url=server.url, timeout_s=60)
    prompt = smollm2_backend.format_prompt("Name a chess opening move.")
    conts = ("e2e4", "d2d4", "g1f3", "Nf3")
    remote = client.score([ScoreRequest(prompt, conts)])[0]
    local = smollm2_backend.score([ScoreRequest(prompt, conts)])[0]
    for r, l in zip(remote, local):
        assert r.n_tokens == l.n_tokens
        assert r.logprob == pytest.approx(l.logprob, abs=1e-3)


@pytest.mark.model
def test_generation_matches_the_in_process_backend(server, smollm2_backend):
    client = OpenAIBackend("smollm2", base_url=server.url)
    prompts = [smollm2_backend.format_prompt(p) for p in ("Say hello.", "Count to three.")]
    options = GenerateOptions(max_new_tokens=6)
    assert client.generate(prompts, options) == smollm2_backend.generate(prompts, options)


@pytest.mark.model
def test_a_run_through_the_server_validates(server, tmp_path):
    cfg = RunConfig(env="chess", encoding="fen", episodes=1, max_steps=2, backend="openai", model="smollm2",
                    env_options={"analysis": "off"})
    client = OpenAIBackend("smollm2", base_url=server.url, prompt_format="{prompt}")
    run = Runner(cfg, client).run(tmp_path / "run")
    assert validate_run(run) == []


@pytest.mark.model
def test_a_bad_request_is_not_retried(server):
    client = OpenAIBackend("smollm2", base_url=server.url, max_retries=3)
    with pytest.raises(BackendError, match="answered 400"):
        client._post("/completions", {"prompt": 7})


def test_a_silent_server_times_out_with_a_clear_error():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)  # accepts connections, never answers
    port = listener.getsockname()[1]
    try:
        client = OpenAIBackend("m", base_url=f"http://127.0.0.1:{port}/v1", timeout_s=0.3, max_retries=1)
        with pytest.raises(BackendError, match=r"failed after 2 attempt\(s\): no answer within 0.3 s"):
            client.generate(["hi"], GenerateOptions())
    finally:
        listener.close()


def test_a_refused_connection_names_the_url():
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens there now
    client = OpenAIBackend("m", base_url=f"http://127.0.0.1:{port}/v1", timeout_s=2, max_retries=0)
    with pytest.raises(BackendError, match=f"127.0.0.1:{port}/v1/completions failed after 1 attempt"):
        client.score([ScoreRequest("a", ("b",))])


def test_prompt_format_must_have_a_slot():
    with pytest.raises(ValueError, match="{prompt}"):
        OpenAIBackend("m", prompt_format="no slot")
