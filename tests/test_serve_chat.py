"""``zso serve`` as a chat server: the chat template, ``usage``, refused streams, client errors as 400,
prompts beyond the context refused with bounded memory, quiet time-outs, a bad port in one line."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import pytest

from harness.backends.base import GenerateOptions
from harness.backends.vllm_server import free_port
from harness.serve import CompletionsServer

NAME = "smollm2-135m-instruct"
ZSO = os.path.join(os.path.dirname(sys.executable), "zso")


@pytest.fixture(scope="module")
def server(smollm2_backend):
    srv = CompletionsServer(smollm2_backend, NAME, port=0, request_timeout_s=0.5)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _post(server_address, path: str, body: bytes) -> tuple[int, dict]:
    conn = http.client.HTTPConnection(*server_address[:2], timeout=120)
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"{}")
    finally:
        conn.close()


@pytest.mark.model
def test_chat_uses_the_chat_template_and_reports_usage(server, smollm2_backend):
    messages = [{"role": "user", "content": "Say hello."}]
    code, answer = _post(server.server_address, "/v1/chat/completions",
                         json.dumps({"model": NAME, "messages": messages, "max_tokens": 8}).encode())
    assert code == 200
    prompt = smollm2_backend.format_prompt("Say hello.")
    reply = smollm2_backend.generate([prompt], GenerateOptions(max_new_tokens=8, stop=()))[0]
    assert answer["choices"][0]["message"] == {"role": "assistant", "content": reply}
    usage = answer["usage"]
    assert usage["prompt_tokens"] == len(smollm2_backend.encode(prompt))
    assert 0 < usage["completion_tokens"] <= 8 and usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    code, answer = _post(server.server_address, "/v1/completions", json.dumps({"prompt": prompt, "max_tokens": 4}).encode())
    assert code == 200 and answer["usage"]["prompt_tokens"] == usage["prompt_tokens"]


@pytest.mark.model
def test_the_official_client_talks_to_it(server, smollm2_backend):
    openai = pytest.importorskip("openai")
    client = openai.OpenAI(base_url=server.url, api_key="unused", max_retries=0)
    answer = client.chat.completions.create(model=NAME, messages=[{"role": "user", "content": "Say hello."}],
                                            max_tokens=8, temperature=0)
    prompt = smollm2_backend.format_prompt("Say hello.")
    assert answer.choices[0].message.content == smollm2_backend.generate([prompt], GenerateOptions(max_new_tokens=8, stop=()))[0]
    assert answer.usage is not None and answer.usage.prompt_tokens == len(smollm2_backend.encode(prompt))
    completion = client.completions.create(model=NAME, prompt=prompt, max_tokens=4)
    assert completion.usage is not None and completion.usage.prompt_tokens == answer.usage.prompt_tokens
    with pytest.raises(openai.BadRequestError, match="stream"):
        client.chat.completions.create(model=NAME, messages=[{"role": "user", "content": "hi"}], stream=True)


@pytest.mark.model
@pytest.mark.parametrize("path, body, words", [
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "stream": True}, "'stream': true is not supported"),
    ("/v1/chat/completions", {"messages": "hi"}, "'messages' must be"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": 3}]}, "'messages' must be"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "continue_final_message": True}, "assistant message last"),
    ("/v1/completions", {"prompt": "hi", "temperature": float("nan")}, "'temperature'"),
    ("/v1/completions", {"prompt": "hi", "temperature": "hot"}, "'temperature'"),
    ("/v1/completions", {"prompt": "hi", "seed": "abc"}, "'seed'"),
    ("/v1/completions", {"prompt": "hi", "seed": -1}, "'seed'"),
    ("/v1/completions", {"prompt": "hi", "stop": [1]}, "'stop'"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "n": 2}, "'n': 1"),
    ("/v1/completions", {"prompt": "hello " * 9000, "echo": True, "logprobs": 0}, "at most 4096 prompt tokens"),
], ids=lambda v: v if isinstance(v, str) and v.startswith("/") else None)
def test_client_errors_are_400_with_a_reason(server, path, body, words):
    code, answer = _post(server.server_address, path, json.dumps(body).encode())  # NaN goes as the token NaN
    assert code == 400 and words in answer["error"]["message"]


@pytest.mark.model
def test_a_client_that_sends_headers_and_no_body_is_dropped_quietly(server, capfd):
    sock = socket.create_connection(server.server_address[:2], timeout=30)
    try:
        sock.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")
        assert sock.recv(100) == b""  # closed by the server after its request time-out
    finally:
        sock.close()
    idle = socket.create_connection(server.server_address[:2], timeout=30)
    try:
        assert idle.recv(100) == b""  # no request line at all
    finally:
        idle.close()
    time.sleep(0.2)
    assert "Traceback" not in capfd.readouterr().err
    code, _ = _post(server.server_address, "/v1/completions", json.dumps({"prompt": "hi", "max_tokens": 1}).encode())
    assert code == 200


def _peak_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        line = next(l for l in status if l.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


@pytest.mark.model
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_prompt_beyond_the_context_is_refused_with_bounded_memory(tmp_path):
    port = free_port()
    log = open(tmp_path / "serve.log", "wb")
    proc = subprocess.Popen([ZSO, "serve", "--model", NAME, "--port", str(port)], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=2).close()
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
                time.sleep(0.5)
        loaded = _peak_rss_mb(proc.pid)
        for body in ({"prompt": "hello " * 16000, "echo": True, "logprobs": 0, "max_tokens": 0},
                     {"messages": [{"role": "user", "content": "hello " * 16000}], "prompt_logprobs": 0},
                     {"prompt": ["hello " * 3000] * 20, "echo": True, "logprobs": 0}):
            path = "/v1/chat/completions" if "messages" in body else "/v1/completions"
            code, answer = _post(("127.0.0.1", port), path, json.dumps(body).encode())
            assert code == 400 and "prompt tokens" in answer["error"]["message"]
        peak = _peak_rss_mb(proc.pid)
        print(f"zso serve peak RSS: {loaded:.0f} MB loaded, {peak:.0f} MB after the refused requests")
        assert peak < loaded + 500  # refused before any forward pass (the 16k-token echo once took 6 GB)
    finally:
        proc.kill()
        proc.wait(10)
        log.close()
    assert "Traceback" not in (tmp_path / "serve.log").read_text()


@pytest.mark.parametrize("port", ["99999", "-1", "http"])
def test_a_bad_port_is_one_line(port):
    result = subprocess.run([ZSO, "serve", f"--port={port}"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "argument --port" in result.stderr and "Traceback" not in result.stderr
