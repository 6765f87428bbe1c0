"""``zso serve`` bounds what one request may ask: body size, ``max_tokens``, prompts per request."""

from __future__ import annotations

import http.client
import json
import threading

import pytest

from harness.serve import MAX_PROMPTS, CompletionsServer


@pytest.fixture(scope="module")
def server(smollm2_backend):
    srv = CompletionsServer(smollm2_backend, "smollm2", port=0, max_body_bytes=4096, max_tokens=8)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _post(server, body: bytes) -> tuple[int, dict]:
    host, port = server.server_address[:2]
    conn = http.client.HTTPConnection(host, port, timeout=60)
    try:
        conn.request("POST", "/v1/completions", body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"{}")
    finally:
        conn.close()


@pytest.mark.model
def test_the_server_listens_on_loopback_by_default(server):
    assert server.server_address[0] == "127.0.0.1"


@pytest.mark.model
@pytest.mark.parametrize("body, status, words", [
    ({"prompt": "x" * 5000}, 413, "at most 4096"),
    ({"prompt": "hi", "max_tokens": 9}, 400, "from 0 to 8"),
    ({"prompt": "hi", "max_tokens": "lots"}, 400, "max_tokens"),
    ({"prompt": ["a"] * (MAX_PROMPTS + 1)}, 400, f"at most {MAX_PROMPTS} prompts"),
])
def test_oversized_requests_are_refused_with_a_reason(server, body, status, words):
    code, answer = _post(server, json.dumps(body).encode())
    assert code == status and words in answer["error"]["message"]


@pytest.mark.model
def test_a_request_within_the_bounds_is_served(server):
    code, answer = _post(server, json.dumps({"prompt": "Hello", "max_tokens": 2}).encode())
    assert code == 200 and len(answer["choices"]) == 1


@pytest.mark.model
def test_token_id_prompts_echo_the_same_log_probs_as_their_text(server, smollm2_backend):
    text = "The cat sat on the mat."
    ids = smollm2_backend.encode(text)
    code, by_text = _post(server, json.dumps({"prompt": text, "echo": True, "logprobs": 0, "max_tokens": 0}).encode())
    assert code == 200
    for prompt in (ids, [ids, ids]):  # one list of ids, or a list of them
        code, by_ids = _post(server, json.dumps({"prompt": prompt, "echo": True, "logprobs": 0, "max_tokens": 0}).encode())
        assert code == 200 and len(by_ids["choices"]) == (2 if prompt is not ids else 1)
        for choice in by_ids["choices"]:
            assert choice["logprobs"]["tokens"] == by_text["choices"][0]["logprobs"]["tokens"]
            assert choice["logprobs"]["token_logprobs"] == pytest.approx(by_text["choices"][0]["logprobs"]["token_logprobs"])
            assert choice["text"] == text


@pytest.mark.model
@pytest.mark.parametrize("body, words", [
    ({"prompt": [1, 2, 3], "max_tokens": 2}, "echo scoring only"),
    ({"prompt": [1, 10**9], "echo": True, "logprobs": 0, "max_tokens": 0}, "outside the vocabulary"),
    ({"prompt": [[1, 2], "text"], "echo": True, "logprobs": 0}, "list of token ids"),
    ({"prompt": [[]], "echo": True, "logprobs": 0}, "list of token ids"),
    ({"prompt": [1, True], "echo": True, "logprobs": 0}, "list of token ids"),
])
def test_bad_token_id_prompts_are_refused_with_a_reason(server, body, words):
    code, answer = _post(server, json.dumps(body).encode())
    assert code == 400 and words in answer["error"]["message"]
