"""The OpenAI-compatible backend against a real local server (``zso serve``), and its failures."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import pytest

from harness.backends.base import BackendError, GenerateOptions, ScoreRequest
from harness.backends.openai import OpenAIBackend, clean_text
from harness.backends.vllm_server import free_port
from harness.config import RunConfig
from harness.records import iter_steps
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


@pytest.mark.parametrize("options, message", [
    ({"concurrency": 0}, "concurrency"), ({"max_retries": -1}, "max_retries"), ({"timeout_s": 0}, "timeout_s"),
    ({"prompt_format": "<{prompt}>", "tokenizer": "gemma3-270m"}, "either prompt_format or tokenizer"),
])
def test_bad_options(options, message):
    with pytest.raises(ValueError, match=message):
        OpenAIBackend("m", **options)


def test_an_unknown_model_warns_that_prompts_are_unchecked(caplog):
    with caplog.at_level(logging.WARNING):
        client = OpenAIBackend("some-served-model")
    assert "without a chat template" in caplog.text and "tokenizer=PATH" in caplog.text
    assert client.info().details["rendering"] == "unchecked"
    assert client.format_prompt("hi") == "hi"


def test_tokenizer_none_is_plain_and_quiet(caplog):
    with caplog.at_level(logging.WARNING):
        client = OpenAIBackend("some-base-model", tokenizer="none")
    assert caplog.text == ""
    assert client.info().details["rendering"] == "unchecked"


def test_lone_surrogates_are_replaced():
    assert clean_text("a\ud800b") == "a\ufffdb"
    assert clean_text("caf\u00e9 \U0001f600") == "caf\u00e9 \U0001f600"


@pytest.mark.model
def test_the_embedded_name_renders_like_in_process(smollm2_backend, gemma_backend):
    for backend, name, rendering in ((smollm2_backend, "smollm2-135m-instruct", "chat_template"),
                                     (gemma_backend, "gemma3-270m", "plain")):
        client = OpenAIBackend(name)
        assert client.format_prompt("Move?") == backend.format_prompt("Move?")
        assert client.info().details["rendering"] == rendering
    gemma = OpenAIBackend("gemma3-270m")
    # Gemma's tokenizer adds a BOS: it is sent as text, once.
    assert gemma.wire_text("Move?") == "<bos>Move?"
    assert gemma.wire_text("<bos>Move?") == "<bos>Move?"


@pytest.mark.model
def test_a_generate_run_through_the_server_equals_in_process(server, smollm2_backend, tmp_path):
    cfg = RunConfig(env="frozenlake", mode="generate", episodes=1, max_steps=3, max_new_tokens=8,
                    model="smollm2-135m-instruct")
    local = sorted(iter_steps(Runner(cfg, smollm2_backend).run(tmp_path / "local")), key=lambda r: r["t"])
    client = OpenAIBackend("smollm2-135m-instruct", base_url=server.url, concurrency=2)
    remote = sorted(iter_steps(Runner(cfg, client).run(tmp_path / "remote")), key=lambda r: r["t"])
    assert [r["reply"] for r in remote] == [r["reply"] for r in local]
    assert [r["logprobs"] for r in remote] == [r["logprobs"] for r in local]


@pytest.mark.model
def test_a_server_killed_mid_request_is_a_clear_error(tmp_path):
    port = free_port()
    zso = os.path.join(os.path.dirname(sys.executable), "zso")
    log = open(tmp_path / "serve.log", "wb")
    proc = subprocess.Popen([zso, "serve", "--model", "smollm2-135m-instruct", "--port", str(port)],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}/v1"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(url + "/models", timeout=2).close()
                break
            except OSError:
                assert proc.poll() is None, (tmp_path / "serve.log").read_text()
                time.sleep(0.5)
        client = OpenAIBackend("smollm2-135m-instruct", base_url=url, max_retries=1, timeout_s=60)
        killer = threading.Timer(2.0, proc.kill)
        killer.start()
        with pytest.raises(BackendError, match=r"failed after 2 attempt\(s\)"):
            for _ in range(20):  # long replies, so that the kill lands during one
                client.generate(["Count from 1 to 1000:"], GenerateOptions(max_new_tokens=400, stop=()))
        killer.join()
    finally:
        proc.kill()
        proc.wait(10)
        log.close()


# -- scoring="trie": vLLM's logprob_token_ids over the continuations' token trie ------------


def test_trie_rows_ask_for_at_most_the_server_limit():
    from harness.backends.openai import MAX_TOKEN_IDS, _chunks, _packed

    rows = [((), chunk) for chunk in _chunks(list(range(300)), MAX_TOKEN_IDS)]
    rows += [((i,), [1000 + i, 2000 + i]) for i in range(100)]
    batches = _packed(rows)
    assert [r for batch in batches for r in batch] == rows
    assert all(len({t for _, chunk in batch for t in chunk}) <= MAX_TOKEN_IDS for batch in batches)
    assert len(batches) == 4  # ids 128, 128, 44 + 42 paths of 2, then the other 58 paths


def test_trie_scoring_needs_a_tokenizer_and_a_known_name():
    with pytest.raises(ValueError, match="needs a tokenizer"):
        OpenAIBackend("some-served-model", tokenizer="none", scoring="trie")
    with pytest.raises(ValueError, match="scoring must be one of"):
        OpenAIBackend("m", tokenizer="none", scoring="packed")


@pytest.mark.model
def test_trie_scoring_against_a_server_without_it_is_a_clear_error(server, smollm2_backend):
    client = OpenAIBackend("smollm2-135m-instruct", base_url=server.url, scoring="trie", max_retries=0)
    with pytest.raises(BackendError):
        client.score([ScoreRequest(smollm2_backend.format_prompt("Say yes."), (" yes", " no"))])


#: Runs scored both ways through the real vLLM server: a gridworld and chess.
TRIE_RUNS = [
    dict(env="frozenlake", encoding="ascii", episodes=2, max_steps=3),
    dict(env="chess", encoding="fen", episodes=1, max_steps=2, env_options={"opponent": "random", "analysis": "off"}),
]


@pytest.mark.model
@pytest.mark.parametrize("run", TRIE_RUNS, ids=lambda r: r["env"])
def test_trie_scoring_gives_the_echo_log_probs(vllm_server, tmp_path, run):
    config = RunConfig(model="smollm2-135m-instruct", backend="openai", mode="choose", seed=5, **run)
    runs = {}
    for scoring in ("echo", "trie"):
        client = OpenAIBackend("smollm2-135m-instruct", base_url=vllm_server.url, concurrency=2, scoring=scoring)
        run_dir = Runner(config, client).run(tmp_path / scoring)
        assert validate_run(run_dir) == []
        runs[scoring] = sorted(iter_steps(run_dir), key=lambda r: (r["episode"], r["t"]))
    echo, trie = runs["echo"], runs["trie"]
    assert [r["action"] for r in trie] == [r["action"] for r in echo]
    gaps = [abs(a - b) for e, t in zip(echo, trie) for a, b in zip(e["logprobs"], t["logprobs"])]
    assert len(gaps) >= 4 * len(echo)
    print(f"\n{run['env']}: {len(gaps)} action log-probs, largest gap {max(gaps):.2e}")
    assert max(gaps) <= 1e-4


@pytest.mark.model
def test_trie_scoring_splits_many_continuations(vllm_server, smollm2_backend):
    tokenizer = smollm2_backend.tokenizer
    words = sorted({t for t in tokenizer.get_vocab() if t.startswith("\u0120") and t[1:].isalpha() and t[1:].islower()})
    conts = tuple(tokenizer.convert_tokens_to_string([w]) for w in words[:200])  # 200 distinct first tokens
    request = ScoreRequest(smollm2_backend.format_prompt("Say one word."), conts)
    echo = OpenAIBackend("smollm2-135m-instruct", base_url=vllm_server.url).score([request])[0]
    trie = OpenAIBackend("smollm2-135m-instruct", base_url=vllm_server.url, scoring="trie").score([request])[0]
    assert [s.n_tokens for s in trie] == [s.n_tokens for s in echo] == [1] * 200
    assert [s.logprob for s in trie] == pytest.approx([s.logprob for s in echo], abs=1e-4)


@pytest.mark.model
def test_trie_scoring_scores_the_in_process_tokens(vllm_server, smollm2_backend):
    # "\n\n" after the prompt's final "\n" merges with it: the in-process backend then
    # scores the continuation's own tokens after the prompt's, and so does the trie.
    request = ScoreRequest(smollm2_backend.format_prompt("Say something."), (" yes", "\n\nOK, here is a longer answer."))
    trie = OpenAIBackend("smollm2-135m-instruct", base_url=vllm_server.url, scoring="trie").score([request])[0]
    local = smollm2_backend.score([request])[0]
    assert [s.n_tokens for s in trie] == [s.n_tokens for s in local]
    assert [s.logprob for s in trie] == pytest.approx([s.logprob for s in local], abs=1e-3)


@pytest.mark.model
@pytest.mark.parametrize("fixture", ["server", "vllm_server"])
def test_echo_scores_a_merging_continuation_as_in_process(fixture, request, smollm2_backend):
    # "\n\n" after the prompt's final "\n" merges with it, so the text would tokenize
    # otherwise: echo sends that request as token ids, the continuation's own tokens after
    # the prompt's, as the in-process backend scores it.
    srv = request.getfixturevalue(fixture)
    name = getattr(srv, "model_name", None) or srv.name
    prompt = smollm2_backend.format_prompt("Say something.")
    merging = "\n\nOK, here is a longer answer."
    prompt_ids = smollm2_backend.encode(prompt)
    assert smollm2_backend.encode(prompt + merging)[: len(prompt_ids)] != prompt_ids
    score_request = ScoreRequest(prompt, (" yes", merging))
    client = OpenAIBackend(name, base_url=srv.url, tokenizer="smollm2-135m-instruct", timeout_s=120)
    remote = client.score([score_request])[0]
    local = smollm2_backend.score([score_request])[0]
    assert [s.n_tokens for s in remote] == [s.n_tokens for s in local]
    assert [s.logprob for s in remote] == pytest.approx([s.logprob for s in local], abs=1e-3)
