"""Any OpenAI-compatible chat server: ``POST {base_url}/chat/completions``.

The prompt text an agent builds (the same text the completions backend renders with the
model's chat template) becomes the user's turn, after an optional ``system`` turn; the
server applies its own chat template. The manifest records those messages
(``details["messages"]``, with ``{prompt}`` for the user's text). The key is read from the
environment variable named by ``api_key_env`` and is never written.

* ``generate`` sends one request per prompt (``concurrency`` in flight) with
  ``temperature``, the prompt's ``seed``, ``stop`` and ``max_tokens``; the reply is the
  message's ``content``, cut at the first stop string (an empty reply where a reasoning
  model spent every token thinking). A separate reasoning field (``reasoning``, or
  ``reasoning_content``, as vLLM's reasoning parsers give it) goes before the reply as a
  ``<think>`` block (option ``reasoning="inline"``), so the step record keeps it and
  ``--mode tagged`` reads the answer after it. Each reply carries the server's
  ``finish_reason`` (``stop`` or ``length``). Every answer's ``usage`` is added to
  :attr:`ChatBackend.token_usage`.
* ``score`` (choose mode) needs a server that returns the prompt's log-probabilities on
  the chat route (vLLM and ``zso serve`` do, with ``prompt_logprobs``; OpenAI, Anthropic,
  Gemini and llama.cpp do not) and the model's tokenizer here (option ``tokenizer``, as
  for the completions backend). Each continuation is sent as an open assistant turn
  (``continue_final_message``) with ``prompt_logprobs=0`` and ``max_tokens=1``; its
  tokens are counted by :mod:`harness.backends.rendering` exactly as the completions and
  in-process backends count them, and their log-probabilities summed.

Retries and time-outs are those of :class:`~harness.backends.wire.Endpoint`.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Sequence

from harness.backends.base import (
    BackendError, ContinuationScore, GenerateOptions, ModelInfo, Reply, ScoreRequest, TokenCounter,
)
from harness.backends.openai import answer_choices, clean_text, count_usage, renderer_of
from harness.backends.rendering import Renderer
from harness.backends.wire import Endpoint, Pool, bounded_reply, finite_logprob

__all__ = ["REASONING", "ChatBackend"]

#: What becomes of a server's separate reasoning text: put before the reply as a
#: ``<think>`` block (kept in the step record; ``--mode tagged`` reads past it), or dropped.
REASONING = ("inline", "drop")


class ChatBackend:
    """Talks to a chat-completions server; only the tokenizer (for choose mode) is loaded here.

    Options: ``base_url``; ``api_key_env`` (the variable holding a bearer key);
    ``timeout_s`` (each whole attempt); ``max_retries``; ``concurrency`` (requests in
    flight); ``system`` (a system turn before every prompt, or none); ``tokenizer``
    (``"auto"``: the served name when it is an embedded model or a model directory;
    ``"none"``; or an embedded name or model directory), needed for choose mode only;
    ``reasoning`` (one of :data:`REASONING`).
    """

    def __init__(self, model: str, base_url: str = "http://127.0.0.1:8000/v1", api_key_env: str = "OPENAI_API_KEY",
                 timeout_s: float = 120.0, max_retries: int = 3, concurrency: int = 8, system: str | None = None,
                 tokenizer: str = "auto", reasoning: str = "inline"):
        if reasoning not in REASONING:
            raise ValueError(f"reasoning must be one of {REASONING}, not {reasoning!r}")
        self.reasoning = reasoning
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, not {concurrency}")
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, not {max_retries}")
        if not (isinstance(timeout_s, (int, float)) and math.isfinite(timeout_s) and timeout_s > 0):
            raise ValueError(f"timeout_s must be a positive number, not {timeout_s!r}")
        if system is not None and not isinstance(system, str):
            raise ValueError(f"system must be text, not {system!r}")
        self.model = model
        self.base_url = base_url.rstrip("/")
        self.url = self.base_url + "/chat/completions"
        self.endpoint = Endpoint(self.base_url, os.environ.get(api_key_env, ""), float(timeout_s), max_retries)
        self.concurrency = concurrency
        self.system = system
        self._pool = Pool(concurrency, "zso-chat")
        self.renderer: Renderer | None = None
        name = _tokenizer_name(model, tokenizer)
        if name is not None:
            self.renderer = renderer_of(name, system)
        self.tokenizer_source = name
        #: Totals of the ``usage`` the server reported: prompt, completion and reasoning tokens.
        self.token_usage = TokenCounter()

    def messages(self, text: str) -> list[dict[str, str]]:
        """The chat sent for prompt ``text``: the system turn (if any), then ``text`` as the user's."""
        turns = [{"role": "system", "content": self.system}] if self.system is not None else []
        return [*turns, {"role": "user", "content": text}]

    def info(self) -> ModelInfo:
        """The served model, the URL and the messages sent (``{prompt}`` for the prompt's text)."""
        details: dict[str, Any] = {
            "api": "chat", "messages": self.messages("{prompt}"), "tokenizer": self.tokenizer_source,
            "timeout_s": self.endpoint.timeout_s, "max_retries": self.endpoint.max_retries,
            "concurrency": self.concurrency, "reasoning": self.reasoning,
        }
        return ModelInfo(name=self.model, backend="chat", source=self.base_url, weights_sha256=None,
                         chat_template=True, details=details)

    def format_prompt(self, text: str) -> str:
        """``text`` itself: the server renders the chat (see :meth:`messages`)."""
        return text

    # -- Backend --------------------------------------------------------------------------

    def generate(self, prompts: Sequence[str], options: GenerateOptions) -> list[str]:
        """One :class:`~harness.backends.base.Reply` per prompt (the server's ``finish_reason``),
        one request each, ``concurrency`` at a time."""
        if not prompts:
            return []
        body: dict[str, Any] = {"model": self.model, "max_tokens": options.max_new_tokens,
                                "temperature": options.temperature}
        if options.stop:
            body["stop"] = list(options.stop)
        seeds = options.prompt_seeds(len(prompts))

        def one(i: int) -> Reply:
            seed = seeds[i]
            request = {**body, "messages": self.messages(prompts[i]), **({"seed": seed} if seed is not None else {})}
            answer = self._post(request)
            choice = answer_choices(answer, 1, self.url)[0]
            message = choice.get("message")
            content = message.get("content") if isinstance(message, dict) else None
            if content is None and isinstance(message, dict):
                content = ""  # a reasoning model that used every token thinking
            if not isinstance(content, str):
                raise BackendError(f"{self.url} returned no message content: {str(message)[:200]}")
            content = bounded_reply(content, options.max_new_tokens)
            finish = choice.get("finish_reason")
            for stop in options.stop:  # servers differ in whether they cut at stop strings
                if stop and stop in content:
                    content, finish = content.split(stop, 1)[0], "stop"
            thought = message.get("reasoning") or message.get("reasoning_content")
            if self.reasoning == "inline" and isinstance(thought, str) and thought.strip():
                content = f"<think>{bounded_reply(thought, options.max_new_tokens)}</think>\n{content}"
            return Reply(clean_text(content), finish)

        return self._pool.map(one, list(range(len(prompts))))

    def score(self, requests: Sequence[ScoreRequest]) -> list[list[ContinuationScore]]:
        """Log-probability of each continuation as an open assistant turn; one request per continuation."""
        if self.renderer is None or self.renderer.chat_template is None:
            raise BackendError(
                "choose mode through a chat server needs the model's chat template here to count tokens: "
                "give -b tokenizer=PATH (or use --mode generate)"
            )
        items = [(r.prompt, c) for r in requests for c in r.continuations]
        if any(not c for _, c in items):
            raise ValueError("cannot score an empty continuation")
        flat = self._pool.map(lambda item: self._score_one(*item), items)
        out, start = [], 0
        for r in requests:
            out.append(flat[start: start + len(r.continuations)])
            start += len(r.continuations)
        return out

    def _score_one(self, text: str, cont: str) -> ContinuationScore:
        renderer = self.renderer
        assert renderer is not None
        prompt = renderer.format_prompt(text)
        prompt_ids = renderer.encode(prompt)
        tokens = renderer.continuation(prompt, cont, prompt_ids)
        if not tokens.joined:
            raise BackendError(
                f"continuation {cont!r} merges with the prompt's last token, which a chat server cannot be told; "
                "score it with --backend openai"
            )
        full = prompt_ids + list(tokens.ids)
        messages = [*self.messages(text), {"role": "assistant", "content": cont}]
        body = {"model": self.model, "messages": messages, "max_tokens": 1, "temperature": 0.0, "prompt_logprobs": 0,
                "add_generation_prompt": False, "continue_final_message": True}
        answer = self._post(body)
        entries = answer.get("prompt_logprobs")
        if not isinstance(entries, list):
            raise BackendError(
                f"{self.url} returned no prompt log-probabilities: choose mode through a chat server needs "
                "'prompt_logprobs' (vLLM, zso serve); use --backend openai or --mode generate"
            )
        if len(entries) != len(full):
            raise BackendError(
                f"{self.url} read {len(entries)} prompt tokens where the client's template and tokenizer give "
                f"{len(full)}: the server renders or tokenizes the chat differently (same model and template?)"
            )
        total = 0.0
        for token, entry in zip(full[-len(tokens.ids):], entries[-len(tokens.ids):]):
            value = entry.get(str(token)) if isinstance(entry, dict) else None
            logprob = value.get("logprob") if isinstance(value, dict) else value
            number = finite_logprob(logprob, f"token id {token} of {cont!r}", self.url)
            total += number
        return ContinuationScore(total, len(tokens.ids))

    def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        answer = self.endpoint.post("/chat/completions", body)
        count_usage(answer, self.token_usage)
        return answer

    def close(self) -> None:
        """Stop the request threads."""
        self._pool.close()


def _tokenizer_name(model: str, tokenizer: str) -> str | None:
    if tokenizer == "none":
        return None
    if tokenizer == "auto":
        from harness.models import EMBEDDED

        return model if model in EMBEDDED or (Path(model).expanduser() / "config.json").is_file() else None
    return tokenizer
