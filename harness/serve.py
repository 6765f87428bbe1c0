"""``zso serve``: an OpenAI-compatible completions server over an in-process backend.

Enough of the API for ``--backend openai`` and other clients that score with echoed
log-probabilities: ``GET /v1/models`` and ``POST /v1/completions`` (``prompt`` as a string
or a list; ``max_tokens``, ``temperature``, ``seed``, ``stop``; ``echo`` with ``logprobs``
returns the prompt's tokens with their log-probabilities and generates nothing, and takes
the prompt as token ids too: a list of ids, or a list of such lists).
Requests are served one at a time: the model is not shared between threads.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from harness.backends.base import GenerateOptions


#: Largest request body accepted, in bytes (a larger one is refused with 413).
MAX_BODY_BYTES = 1 << 20
#: Most tokens one request may ask to generate (``max_tokens``), and most prompts per request.
MAX_TOKENS = 1024
MAX_PROMPTS = 256


class CompletionsServer(ThreadingHTTPServer):
    """Serves one backend on ``host:port`` (port 0 picks a free one); loopback unless told otherwise.

    Requests are bounded: a body over ``max_body_bytes``, ``max_tokens`` over
    ``max_tokens`` or more than ``MAX_PROMPTS`` prompts are refused with a JSON error.
    """

    daemon_threads = True

    def __init__(self, backend: Any, model_name: str, host: str = "127.0.0.1", port: int = 8000, *,
                 max_body_bytes: int = MAX_BODY_BYTES, max_tokens: int = MAX_TOKENS):
        self.max_body_bytes = max_body_bytes
        self.max_tokens = max_tokens
        self.backend = backend
        self.model_name = model_name
        self.lock = threading.Lock()
        super().__init__((host, port), _Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/v1"

    def completions(self, body: dict[str, Any]) -> dict[str, Any]:
        prompts = body.get("prompt")
        if isinstance(prompts, str) or _is_token_ids(prompts):
            prompts = [prompts]
        if not isinstance(prompts, list) or not prompts or not (
                all(isinstance(p, str) for p in prompts) or all(_is_token_ids(p) for p in prompts)):
            raise ValueError("'prompt' must be a string, a list of token ids, or a non-empty list of either")
        echo = bool(body.get("echo")) and body.get("logprobs") is not None
        if not isinstance(prompts[0], str) and not echo:
            raise ValueError("token-id prompts are served for echo scoring only ('echo' with 'logprobs'); send text to generate")
        if len(prompts) > MAX_PROMPTS:
            raise ValueError(f"at most {MAX_PROMPTS} prompts per request, got {len(prompts)}")
        max_tokens = body.get("max_tokens", 16)
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or not 0 <= max_tokens <= self.max_tokens:
            raise ValueError(f"'max_tokens' must be a whole number from 0 to {self.max_tokens}, got {max_tokens!r}")
        with self.lock:
            if echo:
                choices = [self._echo(i, p) for i, p in enumerate(prompts)]
            else:
                stop = body.get("stop") or ()
                options = GenerateOptions(
                    max_new_tokens=max_tokens, temperature=float(body.get("temperature", 0.0)),
                    seed=body.get("seed"), stop=(stop,) if isinstance(stop, str) else tuple(stop),
                )
                texts = self.backend.generate(prompts, options)
                choices = [{"index": i, "text": t, "logprobs": None, "finish_reason": "stop"} for i, t in enumerate(texts)]
        return {"id": f"cmpl-{time.time_ns()}", "object": "text_completion", "created": int(time.time()),
                "model": self.model_name, "choices": choices}

    def _echo(self, index: int, prompt: str | list[int]) -> dict[str, Any]:
        if isinstance(prompt, str):
            tokens, text = self.backend.token_logprobs(prompt), prompt
        else:
            tokens = self.backend.ids_logprobs(prompt)
            text = "".join(t.text for t in tokens)
        return {
            "index": index, "text": text, "finish_reason": "length",
            "logprobs": {
                "tokens": [t.text for t in tokens],
                "text_offset": [t.offset for t in tokens],
                "token_logprobs": [t.logprob for t in tokens],
                "top_logprobs": None,
            },
        }


def _is_token_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_token_ids(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(_is_token_id(t) for t in value)


class _Handler(BaseHTTPRequestHandler):
    server: CompletionsServer

    def log_message(self, format: str, *args: Any) -> None:  # quiet by default
        pass

    def _send(self, code: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path.rstrip("/") == "/v1/models":
            self._send(200, {"object": "list", "data": [{"id": self.server.model_name, "object": "model"}]})
        else:
            self._send(404, {"error": {"message": f"no route {self.path}"}})

    def do_POST(self) -> None:
        if self.path.rstrip("/") != "/v1/completions":
            self._send(404, {"error": {"message": f"no route {self.path}"}})
            return
        try:
            length = int(self.headers.get("Content-Length", 0))
        except ValueError:
            self._send(400, {"error": {"message": "Content-Length must be a number"}})
            return
        if not 0 <= length <= self.server.max_body_bytes:
            self.close_connection = True
            self._send(413, {"error": {"message": f"request body of {length} bytes; at most {self.server.max_body_bytes} accepted"}})
            return
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
            if not isinstance(body, dict):
                raise ValueError("the request body must be a JSON object")
            self._send(200, self.server.completions(body))
        except (ValueError, TypeError) as exc:
            self._send(400, {"error": {"message": str(exc)}})
        except Exception as exc:  # a model failure is the server's fault, not the client's
            self._send(500, {"error": {"message": f"{type(exc).__name__}: {exc}"}})
