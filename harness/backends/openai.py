"""Any OpenAI-compatible completions server (vLLM, llama.cpp, ``zso serve``...).

Both operations use ``POST {base_url}/completions``:

* ``generate`` sends all prompts of a batch in one request (``prompt`` as a list);
* ``score`` sends ``prompt + continuation`` for every continuation with ``echo=true`` and
  ``logprobs=0``, and sums the log-probabilities of the echoed tokens that carry text of
  the continuation (located by ``text_offset``). A token that straddles the boundary is
  counted with the continuation.

The completions endpoint applies no chat template; give ``prompt_format`` (a string with
``{prompt}``) to wrap prompts in one. Failures (connection refused, time-outs, 5xx) are
retried ``max_retries`` times with a doubling pause, then raise :class:`BackendError`
naming the URL and the cause; 4xx answers are not retried.
"""

from __future__ import annotations

import json
import os
import socket
import time
import urllib.error
import urllib.request
from typing import Any, Sequence

from harness.backends.base import BackendError, ContinuationScore, GenerateOptions, ModelInfo, ScoreRequest, regroup


class OpenAIBackend:
    """Talks to a completions server; nothing is loaded in-process."""

    def __init__(
        self,
        model: str,
        base_url: str = "http://127.0.0.1:8000/v1",
        api_key_env: str = "OPENAI_API_KEY",
        timeout_s: float = 120.0,
        max_retries: int = 2,
        prompt_format: str = "{prompt}",
    ):
        if "{prompt}" not in prompt_format:
            raise ValueError("prompt_format must contain '{prompt}'")
        self.model = model
        self.base_url = base_url.rstrip("/")
        self.api_key = os.environ.get(api_key_env, "")
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.prompt_format = prompt_format

    def info(self) -> ModelInfo:
        return ModelInfo(
            name=self.model, backend="openai", source=self.base_url, weights_sha256=None,
            chat_template=self.prompt_format != "{prompt}",
            details={"prompt_format": self.prompt_format, "timeout_s": self.timeout_s, "max_retries": self.max_retries},
        )

    def format_prompt(self, text: str) -> str:
        return self.prompt_format.replace("{prompt}", text)

    def generate(self, prompts: Sequence[str], options: GenerateOptions) -> list[str]:
        if not prompts:
            return []
        body: dict[str, Any] = {
            "model": self.model, "prompt": list(prompts), "max_tokens": options.max_new_tokens,
            "temperature": options.temperature, "stop": list(options.stop) or None,
        }
        if options.seed is not None:
            body["seed"] = options.seed
        choices = self._choices(self._post("/completions", body), len(prompts))
        replies = []
        for choice in choices:
            text = choice.get("text", "")
            for stop in options.stop:  # servers differ in whether they cut at stop strings
                text = text.split(stop, 1)[0] if stop else text
            replies.append(text)
        return replies

    def score(self, requests: Sequence[ScoreRequest]) -> list[list[ContinuationScore]]:
        texts, bounds = [], []
        for request in requests:
            for cont in request.continuations:
                if not cont:
                    raise ValueError("cannot score an empty continuation")
                texts.append(request.prompt + cont)
                bounds.append((len(request.prompt), len(request.prompt) + len(cont)))
        if not texts:
            return [[] for _ in requests]
        body = {"model": self.model, "prompt": texts, "max_tokens": 1, "echo": True, "logprobs": 0, "temperature": 0.0}
        choices = self._choices(self._post("/completions", body), len(texts))
        flat = [_continuation_logprob(c, start, end, self.base_url) for c, (start, end) in zip(choices, bounds)]
        return regroup(flat, requests)

    def close(self) -> None:
        pass

    # -- HTTP -----------------------------------------------------------------------------

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        url = self.base_url + path
        data = json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        pause, last_error = 0.5, ""
        for attempt in range(self.max_retries + 1):
            request = urllib.request.Request(url, data=data, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                    return json.loads(response.read())
            except urllib.error.HTTPError as exc:
                detail = exc.read().decode(errors="replace")[:300]
                if exc.code < 500:
                    raise BackendError(f"{url} answered {exc.code}: {detail}") from None
                last_error = f"{exc.code}: {detail}"
            except (TimeoutError, socket.timeout):
                last_error = f"no answer within {self.timeout_s:g} s"
            except urllib.error.URLError as exc:
                last_error = str(exc.reason)
            except json.JSONDecodeError as exc:
                raise BackendError(f"{url} answered with invalid JSON: {exc}") from None
            if attempt < self.max_retries:
                time.sleep(pause)
                pause *= 2
        raise BackendError(f"{url} failed after {self.max_retries + 1} attempt(s): {last_error}")

    def _choices(self, response: dict[str, Any], expected: int) -> list[dict[str, Any]]:
        choices = response.get("choices")
        if not isinstance(choices, list) or len(choices) != expected:
            raise BackendError(f"{self.base_url}/completions returned {len(choices or [])} choices for {expected} prompts")
        # Servers may return choices out of order; each carries its prompt's index.
        return sorted(choices, key=lambda c: c.get("index", 0))


def _continuation_logprob(choice: dict[str, Any], start: int, end: int, url: str) -> ContinuationScore:
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
            total += float(value)
            count += 1
    if count == 0:
        raise BackendError(f"{url}/completions: no echoed token covers the continuation")
    return ContinuationScore(total, count)
