"""``zso serve``: an OpenAI-compatible server over an in-process backend.

Enough of the API for ``--backend openai``, ``--backend chat`` and the official ``openai``
client:

* ``GET /v1/models``;
* ``POST /v1/completions``: ``prompt`` as a string or a list; ``max_tokens``,
  ``temperature``, ``seed``, ``stop``; ``echo`` with ``logprobs`` returns the prompt's
  tokens with their log-probabilities and generates nothing, and takes the prompt as token
  ids too (a list of ids, or a list of such lists);
* ``POST /v1/chat/completions``: ``messages`` rendered with the model's chat template
  (:mod:`harness.backends.rendering`), the same options, ``max_completion_tokens`` for
  ``max_tokens``; as vLLM, ``prompt_logprobs`` returns the rendered prompt's token
  log-probabilities (top level, one entry per token, ``None`` first) and
  ``continue_final_message`` leaves the last (assistant) message open, so a client can
  score an answer. ``stream=true`` is refused with 400: replies are not streamed.

Every answer reports ``usage`` (prompt and completion tokens; completion tokens are the
reply's tokens as the tokenizer reads its text back) and each choice the model's own
``finish_reason``: ``stop`` (end of sequence or a stop string) or ``length``. Requests are bounded: a body over
``max_body_bytes`` (413), ``max_tokens`` over ``max_tokens``, more than
:data:`MAX_PROMPTS` prompts, a prompt over ``max_prompt_tokens`` tokens (at most the
model's context, less ``max_tokens``), or more than :data:`MAX_REQUEST_TOKENS` prompt
tokens in one request are refused with a 400 that says which. A client's mistake is a
400 with a message, never a 500. A connection that sends no complete request within
``request_timeout_s`` is closed quietly. Requests are served one at a time: the model is
not shared between threads.
"""

from __future__ import annotations

import json
import math
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from harness.backends.base import GenerateOptions, Reply, finish_reason_of

#: Largest request body accepted, in bytes (a larger one is refused with 413).
MAX_BODY_BYTES = 1 << 20
#: Most tokens one request may ask to generate (``max_tokens``), and most prompts per request.
MAX_TOKENS = 1024
MAX_PROMPTS = 256
#: Longest prompt served, in tokens, where the model's context is longer (echo scoring
#: holds a prompt-length x vocabulary matrix of log-probabilities).
MAX_PROMPT_TOKENS = 4096
#: Most prompt tokens in one request, all prompts together.
MAX_REQUEST_TOKENS = 32768
#: Seconds a connection may take to send a complete request.
REQUEST_TIMEOUT_S = 30.0


class RequestError(ValueError):
    """A request the server refuses: the client's mistake, answered with 400 and this message."""


def _context_length(backend: Any) -> int | None:
    config = getattr(getattr(backend, "model", None), "config", None)
    value = getattr(config, "max_position_embeddings", None)
    return int(value) if isinstance(value, int) and value > 0 else None


class CompletionsServer(ThreadingHTTPServer):
    """Serves one backend on ``host:port`` (port 0 picks a free one); loopback unless told otherwise.

    The backend must be in-process (it has a ``renderer`` and ``token_logprobs``), such as
    :class:`~harness.backends.transformers.TransformersBackend`. Bounds as in the module
    docstring; ``max_prompt_tokens`` is cut to the model's context.
    """

    daemon_threads = True

    def __init__(self, backend: Any, model_name: str, host: str = "127.0.0.1", port: int = 8000, *,
                 max_body_bytes: int = MAX_BODY_BYTES, max_tokens: int = MAX_TOKENS,
                 max_prompt_tokens: int = MAX_PROMPT_TOKENS, request_timeout_s: float = REQUEST_TIMEOUT_S):
        if not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValueError(f"port must be a whole number from 0 to 65535, not {port!r}")
        self.max_body_bytes = max_body_bytes
        self.max_tokens = max_tokens
        context = _context_length(backend)
        self.context_length = context
        self.max_prompt_tokens = min(max_prompt_tokens, context) if context else max_prompt_tokens
        self.request_timeout_s = request_timeout_s
        self.backend = backend
        self.model_name = model_name
        self.lock = threading.Lock()
        super().__init__((host, port), _Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/v1"

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away or timed out is no error of the server's: nothing is printed."""

    # -- checks -----------------------------------------------------------------------------

    def _options(self, body: dict[str, Any], max_tokens_key: str = "max_tokens") -> GenerateOptions:
        max_tokens = body.get(max_tokens_key, body.get("max_tokens", 16))
        if max_tokens is None:
            max_tokens = 16
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or not 0 <= max_tokens <= self.max_tokens:
            raise RequestError(f"'max_tokens' must be a whole number from 0 to {self.max_tokens}, got {max_tokens!r}")
        temperature = body.get("temperature", 0.0)
        if temperature is None:
            temperature = 0.0
        if (not isinstance(temperature, (int, float)) or isinstance(temperature, bool) or not math.isfinite(temperature)
                or not 0 <= temperature <= 2):
            raise RequestError(f"'temperature' must be a number from 0 to 2, got {temperature!r}")
        seed = body.get("seed")
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**63):
            raise RequestError(f"'seed' must be a whole number from 0 to 2**63 - 1, got {seed!r}")
        stop = body.get("stop") or ()
        stop = (stop,) if isinstance(stop, str) else stop
        if not isinstance(stop, (list, tuple)) or len(stop) > 4 or not all(isinstance(s, str) and s for s in stop):
            raise RequestError(f"'stop' must be a string or a list of at most 4 non-empty strings, got {str(stop)[:80]}")
        if body.get("n", 1) != 1:
            raise RequestError("only 'n': 1 is served")
        if body.get("stream"):
            raise RequestError("'stream': true is not supported by zso serve; send 'stream': false (replies come whole)")
        return GenerateOptions(max_new_tokens=max_tokens, temperature=float(temperature), seed=seed, stop=tuple(stop))

    def _check_lengths(self, lengths: list[int], max_tokens: int) -> None:
        limit = self.max_prompt_tokens
        if self.context_length:
            limit = min(limit, self.context_length - max_tokens)
        longest = max(lengths)
        if longest > limit:
            context = f"; the model's context is {self.context_length} tokens" if self.context_length else ""
            raise RequestError(f"a prompt of {longest} tokens (with max_tokens {max_tokens}): at most {limit} "
                               f"prompt tokens are served{context}")
        if sum(lengths) > MAX_REQUEST_TOKENS:
            raise RequestError(f"{sum(lengths)} prompt tokens in one request; at most {MAX_REQUEST_TOKENS} are served")

    # -- routes -----------------------------------------------------------------------------

    def completions(self, body: dict[str, Any]) -> dict[str, Any]:
        """The answer to ``POST /v1/completions``; raises :class:`RequestError` for a bad request."""
        prompts = body.get("prompt")
        if isinstance(prompts, str) or _is_token_ids(prompts):
            prompts = [prompts]
        if not isinstance(prompts, list) or not prompts or not (
                all(isinstance(p, str) for p in prompts) or all(_is_token_ids(p) for p in prompts)):
            raise RequestError("'prompt' must be a string, a list of token ids, or a non-empty list of either")
        echo = bool(body.get("echo")) and body.get("logprobs") is not None
        if not isinstance(prompts[0], str) and not echo:
            raise RequestError("token-id prompts are served for echo scoring only ('echo' with 'logprobs'); send text to generate")
        if len(prompts) > MAX_PROMPTS:
            raise RequestError(f"at most {MAX_PROMPTS} prompts per request, got {len(prompts)}")
        options = self._options(body)
        renderer = self.backend.renderer
        lengths = [len(renderer.encode(p)) if isinstance(p, str) else len(p) for p in prompts]
        self._check_lengths(lengths, 0 if echo else options.max_new_tokens)
        with self.lock:
            if echo:
                choices = [self._echo(i, p) for i, p in enumerate(prompts)]
                completion = [0] * len(prompts)
            else:
                texts = self.backend.generate(prompts, options)
                completion = [len(renderer.plain_ids(t)) for t in texts]
                choices = [{"index": i, "text": t, "logprobs": None, "finish_reason": _finish(t, n, options)}
                           for i, (t, n) in enumerate(zip(texts, completion))]
        return {"id": f"cmpl-{time.time_ns()}", "object": "text_completion", "created": int(time.time()),
                "model": self.model_name, "choices": choices, "usage": _usage(sum(lengths), sum(completion))}

    def chat_completions(self, body: dict[str, Any]) -> dict[str, Any]:
        """The answer to ``POST /v1/chat/completions``; raises :class:`RequestError` for a bad request."""
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages or not all(
                isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
                for m in messages):
            raise RequestError("'messages' must be a non-empty list of objects with a string 'role' and 'content'")
        renderer = self.backend.renderer
        if renderer.chat_template is None:
            raise RequestError(f"{self.model_name} has no chat template: use /v1/completions")
        options = self._options(body, "max_completion_tokens")
        cont = bool(body.get("continue_final_message"))
        if cont and messages[-1]["role"] != "assistant":
            raise RequestError("'continue_final_message' needs an assistant message last")
        try:
            prompt = renderer.render([{"role": m["role"], "content": m["content"]} for m in messages],
                                     add_generation_prompt=bool(body.get("add_generation_prompt", True)),
                                     continue_final_message=cont)
        except Exception as exc:  # the template refused these messages (raise_exception)
            raise RequestError(f"the chat template refused the messages: {exc}") from None
        ids = renderer.encode(prompt)
        want_logprobs = body.get("prompt_logprobs") is not None
        self._check_lengths([len(ids)], 0 if want_logprobs else options.max_new_tokens)
        with self.lock:
            prompt_logprobs = None
            if want_logprobs:
                prompt_logprobs = [None] + [
                    {str(i): {"logprob": t.logprob, "rank": None, "decoded_token": t.text}}
                    for i, t in zip(ids[1:], self.backend.ids_logprobs(ids)[1:])
                ]
                text = ""
            else:
                text = self.backend.generate([prompt], options)[0] if options.max_new_tokens else Reply("", "length")
        n = len(renderer.plain_ids(text)) if text else 0
        return {
            "id": f"chatcmpl-{time.time_ns()}", "object": "chat.completion", "created": int(time.time()),
            "model": self.model_name,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                         "logprobs": None, "finish_reason": _finish(text, n, options)}],
            "usage": _usage(len(ids), n), "prompt_logprobs": prompt_logprobs,
        }

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


def _finish(reply: str, n_tokens: int, options: GenerateOptions) -> str:
    """The backend's own finish reason for ``reply``; for a backend that gives none, ``length``
    when the reply took every token it could."""
    return finish_reason_of(reply) or ("length" if n_tokens >= options.max_new_tokens else "stop")


def _usage(prompt: int, completion: int) -> dict[str, int]:
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _is_token_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_token_ids(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(_is_token_id(t) for t in value)


#: Routes of ``POST``: path -> server method.
ROUTES = {"/v1/completions": "completions", "/v1/chat/completions": "chat_completions"}


class _Handler(BaseHTTPRequestHandler):
    server: CompletionsServer
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        self.timeout = self.server.request_timeout_s  # each read of the request line, headers and body
        super().setup()

    def log_message(self, format: str, *args: Any) -> None:  # quiet by default
        pass

    def _send(self, code: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path.rstrip("/") == "/v1/models":
            self._send(200, {"object": "list", "data": [{"id": self.server.model_name, "object": "model",
                                                         "owned_by": "zso", "created": 0}]})
        else:
            self._send(404, {"error": {"message": f"no route {self.path}"}})

    def do_POST(self) -> None:
        route = ROUTES.get(self.path.split("?", 1)[0].rstrip("/"))
        try:
            length = int(self.headers.get("Content-Length", 0))
        except ValueError:
            self.close_connection = True
            self._send(400, {"error": {"message": "Content-Length must be a number"}})
            return
        if not 0 <= length <= self.server.max_body_bytes:
            self.close_connection = True
            self._send(413, {"error": {"message": f"request body of {length} bytes; at most {self.server.max_body_bytes} accepted"}})
            return
        try:
            raw = self.rfile.read(length)
        except (TimeoutError, socket.timeout, OSError):
            self.close_connection = True  # a client that sent headers and no body
            return
        if route is None:
            self._send(404, {"error": {"message": f"no route {self.path}"}})
            return
        try:
            body = json.loads(raw or b"{}")
            if not isinstance(body, dict):
                raise RequestError("the request body must be a JSON object")
            answer = getattr(self.server, route)(body)
        except (RequestError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            self._send(400, {"error": {"message": str(exc), "type": "invalid_request_error"}})
            return
        except ValueError as exc:  # the backend refused the input (token ids outside the vocabulary...)
            self._send(400, {"error": {"message": str(exc), "type": "invalid_request_error"}})
            return
        except Exception as exc:  # a model failure is the server's fault, not the client's
            self._send(500, {"error": {"message": f"{type(exc).__name__}: {exc}"}})
            return
        self._send(200, answer)
