"""Any OpenAI-compatible completions server (vLLM, llama.cpp, ``zso serve``...).

The prompt is rendered here, in the client, exactly as the in-process backend renders
it: the model's chat template with an open assistant turn (plain text for a base model)
and the BOS text that the in-process tokenizer would add, sent as text to
``POST {base_url}/completions`` with ``add_special_tokens: false`` so that the server
adds nothing of its own. The tokenizer comes from option ``tokenizer``: ``"auto"`` (the
default) takes the served model name when it is an embedded model or a model directory;
a path or embedded name names it; ``"none"`` sends prompts as they are. With no tokenizer
the rendering cannot be checked against the in-process one, and a warning says so.

* ``generate`` sends one request per prompt; each reply carries the server's
  ``finish_reason`` (``stop`` or ``length``; ``None`` where it gives neither);
* ``score`` sends one request per prompt with ``prompt + continuation`` for each
  continuation, ``echo=true``, ``logprobs=0`` and ``max_tokens=1``. With a tokenizer the
  continuation is its tokens after the prompt's, counted as the in-process backend counts
  them, and the server's echoed token count is checked against the client's; where a
  continuation's first characters would merge with the prompt's last token, the request
  goes as token ids (the prompt's, then the continuation's own), as in-process scores it.
  Without a tokenizer, echoed tokens that carry text of the continuation (by
  ``text_offset``) are summed.
  vLLM computes such prompt log-probabilities without its prefix cache and with the LM
  head at every prompt position, so each continuation costs a full prefill;
* ``score`` with ``scoring="trie"`` (vLLM only: its ``logprob_token_ids`` extension; needs
  a tokenizer) sends token ids instead: the prompt and every path of the trie of the
  continuations' tokens that has children, each asking with ``max_tokens=1`` for the
  log-probabilities of its children's tokens only. The prompt goes first, alone, so that
  the other paths read its key/value cache from vLLM's prefix cache. The same
  log-probabilities as ``echo`` and as in-process, at a fraction of the server's work on
  chess (README, "Against a server").

Requests run on a pool of ``concurrency`` threads and go through
:class:`~harness.backends.wire.Endpoint`: connection errors, time-outs (``timeout_s``
bounds each whole attempt), 429 (``Retry-After`` honoured) and 5xx are retried
``max_retries`` times, then raise :class:`BackendError` naming the URL and the cause;
other 4xx answers are not retried. Malformed ``choices`` (not objects, indices that are
not 0 to n-1) raise :class:`BackendError`. A non-finite log-probability raises :class:`BackendError`; reply text with lone
surrogates has them replaced by U+FFFD (so the reply parses as invalid, not a crash).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, Sequence

from harness.backends.base import (
    BackendError, ContinuationScore, GenerateOptions, ModelInfo, Reply, ScoreRequest, TokenCounter,
)
from harness.backends.rendering import Renderer, load_renderer
from harness.backends.wire import Endpoint, Pool, bounded_reply, finite_logprob

log = logging.getLogger(__name__)

#: How continuations are scored: echoed prompt log-probabilities (any server), or a token
#: trie with vLLM's ``logprob_token_ids``.
SCORINGS = ("echo", "trie")

#: The most token ids one vLLM request may ask log-probabilities for (``logprob_token_ids``).
MAX_TOKEN_IDS = 128


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
        scoring: str = "echo",
    ):
        if scoring not in SCORINGS:
            raise ValueError(f"scoring must be one of {SCORINGS}, not {scoring!r}")
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
        self.endpoint = Endpoint(self.base_url, os.environ.get(api_key_env, ""), float(timeout_s), max_retries)
        self.timeout_s = float(timeout_s)
        self.max_retries = max_retries
        self.concurrency = concurrency
        self.prompt_format = prompt_format
        self.scoring = scoring
        self._pool = Pool(concurrency, "zso-openai")
        #: Totals of the ``usage`` the server reported.
        self.token_usage = TokenCounter()
        #: The prompt rendering and tokenizer (:mod:`harness.backends.rendering`), or None.
        self.renderer: Renderer | None = None
        self.tokenizer_source: str | None = None
        name = _tokenizer_name(model, tokenizer, prompt_format)
        if name is not None:
            self.renderer = renderer_of(name)
            self.tokenizer_source = name
        elif prompt_format is None and tokenizer == "auto":
            log.warning(
                "openai backend: no tokenizer for model %r (not an embedded model or a model directory), so prompts "
                "are sent without a chat template and may not match the in-process backend; give -b tokenizer=PATH "
                "(or -b tokenizer=none for a base model)", model,
            )
        if scoring == "trie" and self.renderer is None:
            raise ValueError("scoring='trie' sends token ids, so it needs a tokenizer (-b tokenizer=PATH)")

    # -- rendering ------------------------------------------------------------------------

    @property
    def rendering(self) -> str:
        """How prompts are rendered: ``chat_template``, ``plain``, ``prompt_format`` or ``unchecked``."""
        if self.renderer is not None:
            return "chat_template" if self.renderer.chat_template else "plain"
        return "prompt_format" if self.prompt_format is not None else "unchecked"

    def info(self) -> ModelInfo:
        """The served model, the URL, and the exact prompt rendering."""
        template = self.renderer.chat_template if self.renderer is not None else None
        details: dict[str, Any] = {
            "rendering": self.rendering,
            "tokenizer": self.tokenizer_source,
            "bos_text": (self.renderer.bos_text or None) if self.renderer is not None else None,
            "chat_template": template,
            "prompt_format": self.prompt_format,
            "example": self.wire_text(self.format_prompt("{prompt}")),
            "timeout_s": self.timeout_s, "max_retries": self.max_retries, "concurrency": self.concurrency,
            "scoring": self.scoring,
        }
        return ModelInfo(name=self.model, backend="openai", source=self.base_url, weights_sha256=None,
                         chat_template=bool(template) or self.prompt_format is not None, details=details)

    def format_prompt(self, text: str) -> str:
        """The chat template with an open assistant turn, ``prompt_format``, or ``text`` itself."""
        if self.renderer is not None:
            return self.renderer.format_prompt(text)
        if self.prompt_format is not None:
            return self.prompt_format.replace("{prompt}", text)
        return text

    def wire_text(self, formatted: str) -> str:
        """What is sent for a formatted prompt: the BOS text first where the tokenizer adds one."""
        return self.renderer.wire_text(formatted) if self.renderer is not None else formatted

    def _extra(self) -> dict[str, Any]:
        # With the BOS already in the text, the server must not add another.
        return {"add_special_tokens": False} if self.renderer is not None else {}

    # -- Backend --------------------------------------------------------------------------

    def generate(self, prompts: Sequence[str], options: GenerateOptions) -> list[str]:
        """One :class:`~harness.backends.base.Reply` per formatted prompt (the server's
        ``finish_reason``), one request each, ``concurrency`` at a time."""
        if not prompts:
            return []
        body: dict[str, Any] = {
            "model": self.model, "max_tokens": options.max_new_tokens, "temperature": options.temperature,
            "stop": list(options.stop) or None, **self._extra(),
        }
        seeds = options.prompt_seeds(len(prompts))

        def one(i: int) -> Reply:
            seed = seeds[i]
            request = {**body, "prompt": self.wire_text(prompts[i]), **({"seed": seed} if seed is not None else {})}
            choice = self._choices(self._post("/completions", request), 1)[0]
            text = choice.get("text")
            if not isinstance(text, str):
                raise BackendError(f"{self.base_url}/completions returned no text: {str(choice)[:200]}")
            text = bounded_reply(text, options.max_new_tokens)
            finish = choice.get("finish_reason")
            for stop in options.stop:  # servers differ in whether they cut at stop strings
                if stop and stop in text:
                    text, finish = text.split(stop, 1)[0], "stop"
            return Reply(clean_text(text), finish)

        return self._map(one, list(range(len(prompts))))

    def score(self, requests: Sequence[ScoreRequest]) -> list[list[ContinuationScore]]:
        """Log-probability of each continuation; one request per prompt, ``concurrency`` at a time."""
        for request in requests:
            if any(not c for c in request.continuations):
                raise ValueError("cannot score an empty continuation")
        return self._map(self._score_one, list(requests))

    def _score_one(self, request: ScoreRequest) -> list[ContinuationScore]:
        if not request.continuations:
            return []
        if self.scoring == "trie":
            return self._score_trie(request)
        prompt = self.wire_text(request.prompt)
        texts = [prompt + c for c in request.continuations]
        rows, merged = [], False
        if self.renderer is not None:
            prompt_ids = self._encode(prompt)
            rows = [self._continuation_tokens(prompt, prompt_ids, cont) for cont in request.continuations]
            # Text, so the server's tokenizer is checked against the client's; token ids where a
            # continuation's first characters would merge with the prompt's last token.
            merged = any(not joined for _, _, joined in rows)
        body = {"model": self.model, "prompt": [ids for ids, _, _ in rows] if merged else texts, "max_tokens": 1,
                "echo": True, "logprobs": 0, "temperature": 0.0, **self._extra()}
        try:
            choices = self._choices(self._post("/completions", body), len(texts))
        except BackendError as exc:
            if not merged:
                raise
            raise BackendError(
                f"{exc}; a continuation of this prompt merges with its last token, so the request was sent as "
                "token ids (scored as in-process scores it): the server must take token-id prompts (vLLM, "
                "llama.cpp and zso serve do), or use -b tokenizer=none"
            ) from exc
        if self.renderer is None:
            return [_offset_logprob(c, len(prompt), len(t), self.base_url) for c, t in zip(choices, texts)]
        return [_counted_logprob(choice, len(ids), n_cont, cont, self.base_url)
                for choice, (ids, n_cont, _), cont in zip(choices, rows, request.continuations)]

    def _continuation_tokens(self, prompt: str, prompt_ids: list[int], cont: str) -> tuple[list[int], int, bool]:
        """Prompt and continuation token ids, the continuation's token count, and whether its tokens follow the prompt's.

        As the in-process backend: the tokens of ``prompt + cont`` past the prompt's, else
        (the texts merge at the boundary) the continuation's own tokens after the prompt's.
        """
        tokens = self.renderer.continuation(prompt, cont, prompt_ids)  # type: ignore[union-attr]
        return prompt_ids + list(tokens.ids), len(tokens.ids), tokens.joined

    def _encode(self, text: str) -> list[int]:
        return self.renderer.plain_ids(text)  # type: ignore[union-attr]

    def _score_trie(self, request: ScoreRequest) -> list[ContinuationScore]:
        """The continuations' tokens as a trie: one ``max_tokens=1`` row per path with children."""
        prompt = self.wire_text(request.prompt)
        prompt_ids = self._encode(prompt)
        if not prompt_ids:
            raise ValueError("scoring='trie' cannot score after an empty prompt")
        n = len(prompt_ids)
        paths = [tuple(self._continuation_tokens(prompt, prompt_ids, cont)[0][n:]) for cont in request.continuations]
        children: dict[tuple[int, ...], set[int]] = {}
        for ids in paths:
            for depth in range(len(ids)):
                children.setdefault(ids[:depth], set()).add(ids[depth])
        # (path, some of its children) rows, at most MAX_TOKEN_IDS children each.
        rows = [(path, chunk) for path, kids in children.items()
                for chunk in _chunks(sorted(kids), MAX_TOKEN_IDS)]
        logprobs: dict[tuple[tuple[int, ...], int], float] = {}
        # The prompt first, alone: the other rows then read its key/value cache.
        for group in (_packed([r for r in rows if not r[0]]), _packed([r for r in rows if r[0]])):
            for batch in group:
                self._trie_request(prompt_ids, batch, logprobs)
        return [ContinuationScore(sum(logprobs[ids[:d], ids[d]] for d in range(len(ids))), len(ids)) for ids in paths]

    def _trie_request(self, prompt_ids: list[int], rows: list[tuple[tuple[int, ...], list[int]]],
                      logprobs: dict[tuple[tuple[int, ...], int], float]) -> None:
        wanted = sorted({t for _, chunk in rows for t in chunk})
        body = {"model": self.model, "prompt": [prompt_ids + list(path) for path, _ in rows], "max_tokens": 1,
                "temperature": 0.0, "logprobs": 0, "logprob_token_ids": wanted, "return_tokens_as_token_ids": True}
        choices = self._choices(self._post("/completions", body), len(rows))
        for (path, chunk), choice in zip(rows, choices):
            tops = (choice.get("logprobs") or {}).get("top_logprobs") or [None]
            top = tops[0] if isinstance(tops[0], dict) else {}
            for token in chunk:
                value = top.get(f"token_id:{token}")
                if value is None:
                    raise BackendError(
                        f"{self.base_url}/completions gave no log-probability for token id {token}: scoring='trie' "
                        "needs vLLM's logprob_token_ids (use scoring='echo' with other servers)"
                    )
                logprobs[path, token] = finite_logprob(value, f"token id {token}", f"{self.base_url}/completions")

    def close(self) -> None:
        """Stop the request threads."""
        self._pool.close()

    # -- HTTP -----------------------------------------------------------------------------

    def _map(self, fn: Any, items: list[Any]) -> list[Any]:
        return self._pool.map(fn, items)

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        answer = self.endpoint.post(path, body)
        count_usage(answer, self.token_usage)
        return answer

    def _choices(self, response: dict[str, Any], expected: int) -> list[dict[str, Any]]:
        return answer_choices(response, expected, f"{self.base_url}/completions")


def renderer_of(model: str, system: str | None = None) -> Renderer:
    """:func:`~harness.backends.rendering.load_renderer`, converting a GGUF model first where it is not cached."""

    def convert(name: str) -> Path:
        from harness.backends.gguf import model_dir

        return model_dir(name)

    return load_renderer(model, system, convert)


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


def _chunks(items: list[int], size: int) -> list[list[int]]:
    return [items[i: i + size] for i in range(0, len(items), size)]


def _packed(rows: list[tuple[tuple[int, ...], list[int]]]) -> list[list[tuple[tuple[int, ...], list[int]]]]:
    """``rows`` in requests that ask for at most :data:`MAX_TOKEN_IDS` distinct token ids each."""
    batches: list[list[tuple[tuple[int, ...], list[int]]]] = []
    wanted: set[int] = set()
    for row in rows:
        if not batches or len(wanted | set(row[1])) > MAX_TOKEN_IDS:
            batches.append([])
            wanted = set()
        batches[-1].append(row)
        wanted |= set(row[1])
    return batches


def count_usage(answer: dict[str, Any], counter: TokenCounter) -> None:
    """Add an answer's ``usage`` (prompt, completion and reasoning tokens) to ``counter``; a missing or odd one adds nothing."""
    usage = answer.get("usage")
    if not isinstance(usage, dict):
        return
    details = usage.get("completion_tokens_details")
    values = [usage.get("prompt_tokens"), usage.get("completion_tokens"),
              details.get("reasoning_tokens") if isinstance(details, dict) else None]
    counter.add(*(v if isinstance(v, int) and not isinstance(v, bool) and v >= 0 else 0 for v in values))


def answer_choices(response: dict[str, Any], expected: int, url: str) -> list[dict[str, Any]]:
    """The ``choices`` of an answer, one object per prompt, in prompt order.

    Servers may return choices out of order; each carries its prompt's ``index``. Raises
    :class:`BackendError` naming the URL for a count, type or index that does not fit.
    """
    choices = response.get("choices") if isinstance(response, dict) else None
    if not isinstance(choices, list) or len(choices) != expected:
        n = len(choices) if isinstance(choices, list) else 0
        raise BackendError(f"{url} returned {n} choices for {expected} prompts")
    if not all(isinstance(c, dict) for c in choices):
        bad = next(c for c in choices if not isinstance(c, dict))
        raise BackendError(f"{url} returned a choice that is not an object: {str(bad)[:100]}")
    indices = [c.get("index", i) for i, c in enumerate(choices)]
    if sorted(i for i in indices if isinstance(i, int) and not isinstance(i, bool)) != list(range(expected)):
        raise BackendError(f"{url} returned choice indices {str(indices)[:100]}, not 0 to {expected - 1}")
    return [c for _, c in sorted(zip(indices, choices))]


def clean_text(text: str) -> str:
    """``text`` with lone surrogates (undecodable halves of a character) replaced by U+FFFD."""
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


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
    total = sum(finite_logprob(v, f"continuation {cont!r}", f"{url}/completions") for v in picked)
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
            total += finite_logprob(value, "a continuation", f"{url}/completions")
            count += 1
    if count == 0:
        raise BackendError(f"{url}/completions: no echoed token covers the continuation")
    return ContinuationScore(total, count)
