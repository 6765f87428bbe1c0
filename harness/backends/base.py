"""The seam between agents and language models: two batched operations.

A backend turns prompts into replies (``generate``) and scores candidate continuations
of a prompt (``score``). Prompts handed to a backend are the *user's text*; the backend
applies the model's chat template, or none for a base model, in ``format_prompt``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Protocol, Sequence, runtime_checkable

from textenvs.errors import UserError


class BackendError(UserError, RuntimeError):
    """A backend could not answer: a model that failed to load, a server that timed out..."""


class MissingDependencyError(UserError, ImportError):
    """An optional backend whose package is not installed; the message says what to install."""


@dataclass(frozen=True)
class GenerateOptions:
    """How to sample free text."""

    max_new_tokens: int = 24
    #: 0 means greedy decoding.
    temperature: float = 0.0
    #: Seed for sampling, so a run is reproducible from its manifest.
    seed: int | None = None
    #: Generation stops at the first of these strings (it is cut from the reply).
    stop: tuple[str, ...] = ("\n",)
    #: One seed per prompt, in place of ``seed``: each reply then depends on its own prompt
    #: and seed only, not on the prompts it was batched with (so a resumed or re-batched
    #: run samples the same replies).
    seeds: tuple[int, ...] | None = None

    def prompt_seeds(self, n: int) -> list[int | None]:
        """The seed of each of ``n`` prompts: ``seeds``, else ``seed`` for every one.

        Raises ``ValueError`` when ``seeds`` has another length.
        """
        if self.seeds is None:
            return [self.seed] * n
        if len(self.seeds) != n:
            raise ValueError(f"{len(self.seeds)} seeds for {n} prompts")
        return list(self.seeds)


#: Why a generated reply ended: ``stop`` (a stop string or end-of-sequence) or ``length``
#: (``max_new_tokens`` reached), the values of OpenAI's ``finish_reason``.
FINISH_REASONS = ("stop", "length")


class Reply(str):
    """A generated reply: its text (a ``Reply`` is a ``str``) and why generation ended.

    ``finish_reason`` is one of :data:`FINISH_REASONS`, or ``None`` where the backend cannot
    say (a plain ``str`` from a backend that does not know reads the same way: see
    :func:`finish_reason_of`).
    """

    finish_reason: str | None

    def __new__(cls, text: str, finish_reason: str | None = None) -> "Reply":
        reply = super().__new__(cls, text)
        reply.finish_reason = finish_reason if finish_reason in FINISH_REASONS else None
        return reply

    def with_text(self, text: str) -> "Reply":
        """Another text (cut, cleaned) that ended the same way."""
        return Reply(text, self.finish_reason)


def finish_reason_of(reply: str) -> str | None:
    """Why ``reply`` ended (:data:`FINISH_REASONS`), or ``None`` when its backend did not say."""
    return getattr(reply, "finish_reason", None)


@dataclass(frozen=True)
class ScoreRequest:
    """Score each continuation after one shared prompt (already formatted)."""

    prompt: str
    continuations: tuple[str, ...]


@dataclass(frozen=True)
class ContinuationScore:
    """Log-probability of one continuation given its prompt."""

    #: Sum of the token log-probabilities of the continuation.
    logprob: float
    #: Number of tokens the continuation took.
    n_tokens: int


@dataclass(frozen=True)
class ModelInfo:
    """What a results manifest records about the model."""

    name: str
    backend: str
    #: Path or URL the weights came from.
    source: str
    #: sha256 of the weights file, when there is one file.
    weights_sha256: str | None = None
    chat_template: bool = False
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Usage:
    """Tokens a model read and wrote (for one decision, a run, or so far)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    #: Of the completion tokens, those spent reasoning: the server's count where it reports
    #: one (``completion_tokens_details.reasoning_tokens``), else, in ``--mode tagged``, the
    #: reasoning text's tokens by the model's tokenizer (0 when neither says).
    reasoning_tokens: int = 0

    def __add__(self, other: "Usage") -> "Usage":
        return Usage(self.prompt_tokens + other.prompt_tokens, self.completion_tokens + other.completion_tokens,
                     self.reasoning_tokens + other.reasoning_tokens)

    def __sub__(self, other: "Usage") -> "Usage":
        return Usage(self.prompt_tokens - other.prompt_tokens, self.completion_tokens - other.completion_tokens,
                     self.reasoning_tokens - other.reasoning_tokens)

    def split(self, n: int) -> list["Usage"]:
        """``n`` shares that sum to this usage (as even as whole tokens allow)."""
        def parts(total: int) -> list[int]:
            return [total // n + (1 if i < total % n else 0) for i in range(n)]

        return [Usage(*values) for values in zip(parts(self.prompt_tokens), parts(self.completion_tokens),
                                                 parts(self.reasoning_tokens))]


class TokenCounter:
    """A backend's running token totals (attribute ``token_usage``), safe across request threads.

    Agents read it before and after each call and record the difference per decision.
    """

    def __init__(self) -> None:
        self._total = Usage()
        self._lock = threading.Lock()

    def add(self, prompt_tokens: int = 0, completion_tokens: int = 0, reasoning_tokens: int = 0) -> None:
        """Count one request's tokens."""
        with self._lock:
            self._total = self._total + Usage(prompt_tokens, completion_tokens, reasoning_tokens)

    def total(self) -> Usage:
        """Everything counted so far."""
        return self._total


def regroup(flat: Sequence[ContinuationScore], requests: Sequence[ScoreRequest]) -> list[list[ContinuationScore]]:
    """Split scores of all continuations, in order, back into one list per request."""
    result, start = [], 0
    for request in requests:
        result.append(list(flat[start: start + len(request.continuations)]))
        start += len(request.continuations)
    return result


@runtime_checkable
class Backend(Protocol):
    """A language model behind two batched operations."""

    def info(self) -> ModelInfo:
        """The model's identity, for the manifest."""
        ...

    def format_prompt(self, text: str) -> str:
        """Wrap user text for the model: chat template + assistant turn, or as is."""
        ...

    def generate(self, prompts: Sequence[str], options: GenerateOptions) -> list[str]:
        """One reply per formatted prompt, all in one batch: :class:`Reply` values where the
        backend knows why each ended (every backend here does), else plain text."""
        ...

    def score(self, requests: Sequence[ScoreRequest]) -> list[list[ContinuationScore]]:
        """For each request, the log-probability of each continuation."""
        ...

    def close(self) -> None:
        """Release the model or connection."""
        ...
