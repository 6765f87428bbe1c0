"""Any OpenAI-compatible completions server (vLLM, llama.cpp, ``zso serve``...).

The prompt is rendered here, in the client, exactly as the in-process backend renders
it: the model's chat template with an open assistant turn (plain text for a base model)
and the BOS text that the in-process tokenizer would add, sent as text to
``POST {base_url}/completions`` with ``add_special_tokens: false`` so that the server
adds nothing of its own. The tokenizer comes from option ``tokenizer``: ``"auto"`` (the
default) takes the served model name when it is an embedded model or a model directory;
a path or embedded name names it; ``"none"`` sends prompts as they are. With no tokenizer
the rendering cannot be checked against the in-process one, and a warning says so.

* ``generate`` sends one request per prompt;
* ``score`` sends one request per prompt with ``prompt + continuation`` for each
  continuation, ``echo=true``, ``logprobs=0`` and ``max_tokens=1``. With a tokenizer the
  continuation is its tokens after the prompt's, counted as the in-process backend counts
  them, and the server's echoed token count is checked against the client's; without one,
  echoed tokens that carry text of the continuation (by ``text_offset``) are summed.

Requests run on a pool of ``concurrency`` threads. Connection errors (refused, reset, a
server that died mid-answer), time-outs (``timeout_s`` per attempt), 429 and 5xx are
retried ``max_retries`` times with a doubling pause (``Retry-After`` honoured), then
raise :class:`BackendError` naming the URL and the cause; other 4xx answers are not
retried. A non-finite log-probability raises :class:`BackendError`; reply text with lone
surrogates has them replaced by U+FFFD (so the reply parses as invalid, not a crash).
"""

from __future__ import annotations

import http.client
import json
import logging
import math
import os
import socket
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Sequence

from harness.backends.base import BackendError, ContinuationScore, GenerateOptions, ModelInfo, ScoreRequest

log = logging.getLogger(__name__)

#: Longest pause between two attempts, in seconds.
MAX_PAUSE_S = 8.0


class OpenAIBackend:
    """Talks to a completions server; only the tokenizer (if any) is loaded in-process.

    Options: ``base_url``; ``api_key_env`` (the variable holding a bearer key);
    ``timeout_s`` (per attempt); ``max_retries``; ``concurrency`` (requests in flight);
    ``tokenizer`` (``"auto"``, ``"none"``, an embedded name or a model directory);
    ``prompt_format`` (a string with ``{prompt}``, for a server whose model has no local
    tokenizer; it cannot be combined with a tokenizer).
    """

    def __init__(
        self,
        model: str,
        base_url: str = "http://127.0.0.1:8000/v1",
        api_key_env: str = "OPENAI_API_KEY",
        timeout_s: float = 120.0,
        max_retries: int = 3,
        concurrency: int = 8,
        tokenizer: str = "auto",
        prompt_format: str | None = None,
    ):
        if prompt_format is not None and "{prompt}" not in prompt_format:
            raise ValueError("prompt_format must contain '{prompt}'")
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, not {concurrency}")
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, not {max_retries}")
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive, not {timeout_s}")
        self.model = model
        self.base_url = base_url.rstrip("/")
        self.api_key = os.environ.get(api_key_env, "")
        self.timeout_s = float(timeout_s)
        self.max_retries = max_retries
        self.concurrency = concurrency
        self.prompt_format = prompt_format
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self.tokenizer: Any = None
        self.tokenizer_source: str | None = None
        self._bos = ""
        name = _tokenizer_name(model, tokenizer, prompt_format)
        if name is not None:
            from harness.backends.transformers import load_tokenizer, prefix_ids

            self.tokenizer = load_tokenizer(name)
            self.tokenizer_source = name
            prefix = prefix_ids(self.tokenizer)
            self._bos = "".join(self.tokenizer.convert_ids_to_tokens(prefix)) if prefix else ""
        elif prompt_format is None and tokenizer == "auto":
            log.warning(
                "openai backend: no tokenizer for model %r (not an embedded model or a model directory), so prompts "
                "are sent without a chat template and may not match the in-process backend; give -b tokenizer=PATH "
                "(or -b tokenizer=none for a base model)", model,
            )

    # -- rendering ------------------------------------------------------------------------

    @property
    def rendering(self) -> str:
        """How prompts are rendered: ``chat_template``, ``plain``, ``prompt_format`` or ``unchecked``."""
        if self.tokenizer is not None:
            return "chat_template" if self.tokenizer.chat_template else "plain"
        return "prompt_format" if self.prompt_format is not None else "unchecked"

    def info(self) -> ModelInfo:
        """The served model, the URL, and the exact prompt rendering."""
        template = self.tokenizer.chat_template if self.tokenizer is not None else None
        details: dict[str, Any] = {
            "rendering": self.rendering,
            "tokenizer": self.tokenizer_source,
            "bos_text": self._bos or None,
            "chat_template": template if isinstance(template, str) else None,
            "prompt_format": self.prompt_format,
            "example": self.wire_text(self.format_prompt("{prompt}")),
            "timeout_s": self.timeout_s, "max_retries": self.max_retries, "concurrency": self.concurrency,
        }
        return ModelInfo(name=self.model, backend="openai", source=self.base_url, weights_sha256=None,
                         chat_template=bool(template) or self.prompt_format is not None, details=details)

    def format_prompt(self, text: str) -> str:
        """The chat template with an open assistant turn, ``prompt_format``, or ``text`` itself."""
        if self.tokenizer is not None:
            if not self.tokenizer.chat_template:
                return text
            return self.tokenizer.apply_chat_template(
                [{"role": "user", "content": text}], tokenize=False, add_generation_prompt=True
            )
        if self.prompt_format is not None:
            return self.prompt_format.replace("{prompt}", text)
        return text

    def wire_text(self, formatted: str) -> str:
        """What is sent for a formatted prompt: the BOS text first where the tokenizer adds one."""
        if self._bos and not formatted.startswith(self._bos):
            return self._bos + formatted
        return formatted

    def _extra(self) -> dict[str, Any]:
        # With the BOS already in the text, the server must not add another.
        return {"add_special_tokens": False} if self.tokenizer is not None else {}

    # -- Backend --------------------------------------------------------------------------

    def generate(self, prompts: Sequence[str], options: GenerateOptions) -> list[str]:
        """One reply per formatted prompt, one request each, ``concurrency`` at a time."""
        if not prompts:
            return []
        body: dict[str, Any] = {
            "model": self.model, "max_tokens": options.max_new_tokens, "temperature": options.temperature,
            "stop": list(options.stop) or None, **self._extra(),
        }
        if options.seed is not None:
            body["seed"] = options.seed

        def one(prompt: str) -> str:
            choice = self._choices(self._post("/completions", {**body, "prompt": self.wire_text(prompt)}), 1)[0]
            text = choice.get("text")
            if not isinstance(text, str):
                raise BackendError(f"{self.base_url}/completions returned no text: {str(choice)[:200]}")
            for stop in options.stop:  # servers differ in whether they cut at stop strings
                text = text.split(stop, 1)[0] if stop else text
            return clean_text(text)

        return self._map(one, list(prompts))

    def score(self, requests: Sequence[ScoreRequest]) -> list[list[ContinuationScore]]:
        """Log-probability of each continuation; one request per prompt, ``concurrency`` at a time."""
        for request in requests:
            if any(not c for c in request.continuations):
                raise ValueError("cannot score an empty continuation")
        return self._map(self._score_one, list(requests))

    def _score_one(self, request: ScoreRequest) -> list[ContinuationScore]:
        if not request.continuations:
            return []
        prompt = self.wire_text(request.prompt)
        texts = [prompt + c for c in request.continuations]
        body = {"model": self.model, "prompt": texts, "max_tokens": 1, "echo": True, "logprobs": 0,
                "temperature": 0.0, **self._extra()}
        choices = self._choices(self._post("/completions", body), len(texts))
        if self.tokenizer is None:
            return [_offset_logprob(c, len(prompt), len(t), self.base_url) for c, t in zip(choices, texts)]
        encode = lambda text: list(self.tokenizer(text, add_special_tokens=False)["input_ids"])  # noqa: E731
        prompt_ids = encode(prompt)
        scores = []
        for choice, text, cont in zip(choices, texts, request.continuations):
            full = encode(text)
            n = len(prompt_ids)
            # As the in-process backend: the tokens past the prompt's, else the continuation alone.
            n_cont = len(full) - n if len(full) > n and full[:n] == prompt_ids else len(encode(cont))
            scores.append(_counted_logprob(choice, len(full), n_cont, cont, self.base_url))
        return scores

    def close(self) -> None:
        """Stop the request threads."""
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = None

    # -- HTTP -----------------------------------------------------------------------------

    def _map(self, fn: Any, items: list[Any]) -> list[Any]:
        if len(items) <= 1 or self.concurrency == 1:
            return [fn(item) for item in items]
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="zso-openai")
            pool = self._pool
        return list(pool.map(fn, items))

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        url = self.base_url + path
        data = json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        pause, last_error = 0.5, ""
        for attempt in range(self.max_retries + 1):
            request = urllib.request.Request(url, data=data, headers=headers, method="POST")
            wait = pause
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                    raw = response.read()
                try:
                    return json.loads(raw)
                except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                    raise BackendError(f"{url} answered with invalid JSON: {exc}") from None
            except urllib.error.HTTPError as exc:
                detail = exc.read().decode(errors="replace")[:300]
                if exc.code != 429 and exc.code < 500:
                    raise BackendError(f"{url} answered {exc.code}: {detail}") from None
                last_error = f"{exc.code}: {detail}"
                wait = max(pause, _retry_after(exc.headers.get("Retry-After")))
            except (TimeoutError, socket.timeout):
                last_error = f"no answer within {self.timeout_s:g} s"
            except urllib.error.URLError as exc:
                reason = exc.reason
                if isinstance(reason, (TimeoutError, socket.timeout)):
                    last_error = f"no answer within {self.timeout_s:g} s"
                else:
                    last_error = str(reason)
            except (http.client.HTTPException, ConnectionError, OSError) as exc:
                # RemoteDisconnected, IncompleteRead, a reset connection: the server went away.
                last_error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            if attempt < self.max_retries:
                time.sleep(min(wait, MAX_PAUSE_S))
                pause *= 2
        raise BackendError(f"{url} failed after {self.max_retries + 1} attempt(s): {last_error}")

    def _choices(self, response: dict[str, Any], expected: int) -> list[dict[str, Any]]:
        choices = response.get("choices") if isinstance(response, dict) else None
        if not isinstance(choices, list) or len(choices) != expected:
            n = len(choices) if isinstance(choices, list) else 0
            raise BackendError(f"{self.base_url}/completions returned {n} choices for {expected} prompts")
        # Servers may return choices out of order; each carries its prompt's index.
        return sorted(choices, key=lambda c: c.get("index", 0))


def _tokenizer_name(model: str, tokenizer: str, prompt_format: str | None) -> str | None:
    """Which tokenizer to load for option ``tokenizer``, or None for none."""
    if tokenizer == "none":
        return None
    if tokenizer == "auto":
        if prompt_format is not None:
            return None
        from harness.models import EMBEDDED

        path = Path(model).expanduser()
        return model if model in EMBEDDED or (path / "config.json").is_file() else None
    if prompt_format is not None:
        raise ValueError("give either prompt_format or tokenizer, not both")
    return tokenizer


def _retry_after(value: str | None) -> float:
    try:
        return max(0.0, float(value)) if value else 0.0
    except ValueError:
        return 0.0


def clean_text(text: str) -> str:
    """``text`` with lone surrogates (undecodable halves of a character) replaced by U+FFFD."""
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def _finite(value: Any, what: str, url: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise BackendError(f"{url}/completions gave a log-probability {value!r} for {what}") from None
    if not math.isfinite(number):
        raise BackendError(f"{url}/completions gave a non-finite log-probability ({number}) for {what}")
    return number


def _counted_logprob(choice: dict[str, Any], n_full: int, n_cont: int, cont: str, url: str) -> ContinuationScore:
    """The last ``n_cont`` of the ``n_full`` echoed prompt tokens (a generated token may follow)."""
    values = (choice.get("logprobs") or {}).get("token_logprobs")
    if values is None:
        raise BackendError(f"{url}/completions gave no echoed token log-probabilities (does it support echo with logprobs?)")
    if len(values) not in (n_full, n_full + 1):
        raise BackendError(
            f"{url}/completions echoed {len(values)} tokens where the client's tokenizer has {n_full}: "
            "the server tokenizes differently (is it serving the same model and tokenizer?)"
        )
    picked = values[n_full - n_cont: n_full]
    total = sum(_finite(v, f"continuation {cont!r}", url) for v in picked)
    return ContinuationScore(total, n_cont)


def _offset_logprob(choice: dict[str, Any], start: int, end: int, url: str) -> ContinuationScore:
    """Echoed tokens carrying text of ``[start, end)`` (a straddling token counts with it)."""
    logprobs = choice.get("logprobs") or {}
    offsets = logprobs.get("text_offset")
    values = logprobs.get("token_logprobs")
    if not offsets or values is None:
        raise BackendError(f"{url}/completions gave no echoed token log-probabilities (does it support echo with logprobs?)")
    total, count = 0.0, 0
    # A token's text runs up to the next token's offset.
    ends = list(offsets[1:]) + [end]
    for offset, token_end, value in zip(offsets, ends, values):
        if offset >= end:  # the generated token after the echo
            break
        if token_end > start and value is not None:
            total += _finite(value, "a continuation", url)
            count += 1
    if count == 0:
        raise BackendError(f"{url}/completions: no echoed token covers the continuation")
    return ContinuationScore(total, count)
