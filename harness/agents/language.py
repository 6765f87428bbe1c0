"""Language-model agents: an encoding and a backend turned into actions, many decisions per batch.

``ChooseAgent`` scores the text of every legal action after the prompt and picks by
likelihood (greedy, or sampled at a temperature); the full distribution is kept.
``GenerateAgent`` asks for free text, parses it, re-prompts refused replies with the reason,
and after ``max_retries`` falls back to a random legal action or forfeits; every refused
reply is kept.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any, Sequence

import numpy as np

from harness.agents.base import Choice, Decision, listed_actions
from harness.backends.base import Backend, GenerateOptions, ScoreRequest, Usage, finish_reason_of
from harness.records import Attempt
from textenvs import ActionError, Encoding, build_prompt
from textenvs.prompting import feedback_text
from textenvs.tagged import parse_tagged, reasoning_text

FALLBACKS = ("random", "forfeit")
#: Characters of reply kept per requested token: no vocabulary's token is longer, so a
#: backend or server that ignores ``max_new_tokens`` cannot hand the parser (or the
#: results files) more text than the reply could hold.
MAX_CHARS_PER_TOKEN = 64


def bound_reply(reply: str, max_new_tokens: int) -> str:
    """``reply`` cut to what ``max_new_tokens`` tokens can spell (:data:`MAX_CHARS_PER_TOKEN` each)."""
    return reply[: max(max_new_tokens, 1) * MAX_CHARS_PER_TOKEN]


def action_distribution(logprobs: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(logprobs / temperature); temperature 0 puts all mass on the (first) best."""
    if temperature <= 0:
        probs = np.zeros_like(logprobs)
        probs[int(np.argmax(logprobs))] = 1.0
        return probs
    z = logprobs / temperature
    z = np.exp(z - z.max())
    return z / z.sum()


def _usage_now(backend: Backend) -> Usage | None:
    """The backend's token totals so far (its ``token_usage``), or None when it counts none."""
    counter = getattr(backend, "token_usage", None)
    return counter.total() if counter is not None else None


def _shares(backend: Backend, before: Usage | None, n: int) -> list[Usage | None]:
    """The tokens counted since ``before``, shared among ``n`` decisions."""
    after = _usage_now(backend)
    if before is None or after is None:
        return [None] * n
    return (after - before).split(n)


def _count_tokens(backend: Backend, text: str) -> int | None:
    """Tokens of ``text`` by the backend's own tokenizer (its ``renderer``), or None when it has none."""
    renderer = getattr(backend, "renderer", None)
    return renderer.count_tokens(text) if renderer is not None else None


def _separator(formatted_prompt: str) -> str:
    """A space before the action text unless the prompt already ends in whitespace."""
    return "" if not formatted_prompt or formatted_prompt[-1].isspace() else " "


class ChooseAgent:
    """Picks among the legal actions by the model's likelihood of their text."""

    mode = "choose"

    def __init__(self, backend: Backend, encoding: Encoding[Any], temperature: float = 0.0, score_norm: str = "sum",
                 list_order: str = "shuffled"):
        if score_norm not in ("sum", "mean"):
            raise ValueError(f"score_norm must be 'sum' or 'mean', got {score_norm!r}")
        self.backend = backend
        self.encoding = encoding
        self.temperature = temperature
        self.score_norm = score_norm
        self.list_order = list_order

    def act(self, decisions: Sequence[Decision]) -> list[Choice]:
        prompts, requests = [], []
        for d in decisions:
            prompt = build_prompt(self.encoding, d.state, listed_actions(d, self.list_order), self.mode)
            formatted = self.backend.format_prompt(prompt)
            sep = _separator(formatted)
            prompts.append(prompt)
            requests.append(ScoreRequest(formatted, tuple(sep + self.encoding.render_action(d.state, a) for a in d.legal)))
        start, before = time.perf_counter(), _usage_now(self.backend)
        scored = self.backend.score(requests) if requests else []
        share = (time.perf_counter() - start) / max(len(decisions), 1)
        usages = _shares(self.backend, before, len(decisions)) if decisions else []
        choices = []
        for d, prompt, scores, usage in zip(decisions, prompts, scored, usages):
            logprobs = np.array([s.logprob for s in scores])
            values = logprobs / np.array([s.n_tokens for s in scores]) if self.score_norm == "mean" else logprobs
            probs = action_distribution(values, self.temperature)
            index = int(np.argmax(probs)) if self.temperature <= 0 else int(d.rng.choice(len(probs), p=probs))
            choices.append(Choice(d.legal[index], "model", prompt, None, logprobs.tolist(), probs.tolist(), (), share, usage))
        return choices


class GenerateAgent:
    """Parses free-text replies into actions, re-prompting refused ones with the reason."""

    mode = "generate"

    def __init__(
        self,
        backend: Backend,
        encoding: Encoding[Any],
        options: GenerateOptions = GenerateOptions(),
        max_retries: int = 2,
        fallback: str = "random",
        seed: int = 0,
        list_order: str = "shuffled",
    ):
        if fallback not in FALLBACKS:
            raise ValueError(f"fallback must be one of {FALLBACKS}, got {fallback!r}")
        if max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        self.backend = backend
        self.encoding = encoding
        self.options = options
        self.max_retries = max_retries
        self.fallback = fallback
        self.list_order = list_order
        # Sampling seeds for successive backend calls: reproducible from the run's seed.
        self._seeds = np.random.default_rng(seed)

    def act(self, decisions: Sequence[Decision]) -> list[Choice]:
        n = len(decisions)
        feedback = [""] * n
        attempts: list[list[Attempt]] = [[] for _ in range(n)]
        accepted: dict[int, tuple[str, str, str, str | None]] = {}  # index -> (action, prompt, reply, finish)
        last: dict[int, tuple[str, str, str | None]] = {}
        backend_s = 0.0
        used: list[Usage | None] = [Usage()] * n
        thought: list[int | None] = [0] * n  # reasoning tokens by the backend's tokenizer
        pending = list(range(n))
        for _round in range(self.max_retries + 1):
            if not pending:
                break
            prompts = [
                build_prompt(self.encoding, decisions[i].state, listed_actions(decisions[i], self.list_order), self.mode, feedback[i])
                for i in pending
            ]
            options = self._call_options([decisions[i] for i in pending])
            start, before = time.perf_counter(), _usage_now(self.backend)
            replies = self.backend.generate([self.backend.format_prompt(p) for p in prompts], options)
            finishes = [finish_reason_of(reply) for reply in replies]
            replies = [bound_reply(str(reply), options.max_new_tokens) for reply in replies]
            backend_s += time.perf_counter() - start
            for i, usage in zip(pending, _shares(self.backend, before, len(pending))):
                used[i] = None if usage is None or used[i] is None else used[i] + usage
            still = []
            for i, prompt, reply, finish in zip(pending, prompts, replies, finishes):
                d = decisions[i]
                counted = thought[i]
                reasoning = self._reasoning(reply)
                if counted is not None and reasoning:
                    tokens = _count_tokens(self.backend, reasoning)
                    thought[i] = None if tokens is None else counted + tokens
                try:
                    action = self._parse(d, reply, finish)
                except ActionError as error:
                    attempts[i].append(Attempt(prompt, reply, error.kind, str(error), finish))
                    feedback[i] = feedback_text(reply, error)
                    last[i] = (prompt, reply, finish)
                    still.append(i)
                else:
                    accepted[i] = (action, prompt, reply, finish)
            pending = still
        share = backend_s / max(n, 1)
        choices = []
        for i, d in enumerate(decisions):
            usage, counted = used[i], thought[i]
            if usage is not None and not usage.reasoning_tokens and counted:
                usage = replace(usage, reasoning_tokens=counted)  # the server reported none
            if i in accepted:
                action, prompt, reply, finish = accepted[i]
                choices.append(Choice(action, "model", prompt, reply, None, None, tuple(attempts[i]), share, usage, finish))
            else:
                prompt, reply, finish = last[i]
                action = str(d.rng.choice(list(d.legal))) if self.fallback == "random" else None
                choices.append(Choice(action, "fallback", prompt, reply, None, None, tuple(attempts[i]), share, usage, finish))
        return choices

    def _parse(self, d: Decision, reply: str, finish_reason: str | None) -> str:
        """The legal action ``reply`` names; raises :class:`~textenvs.ActionError`.

        ``finish_reason``: why the backend says the reply ended (``stop``, ``length``) or None.
        """
        return self.encoding.parse_action(d.state, reply, d.legal)

    def _reasoning(self, reply: str) -> str:
        """The part of ``reply`` spent reasoning (none: a generate reply is only its answer)."""
        return ""

    def _call_options(self, decisions: Sequence[Decision]) -> GenerateOptions:
        """Options of one backend call; sampled replies get one seed each, from their episode's stream.

        So a reply depends on its episode alone, not on which episodes share the batch: a
        resumed run, or one with another batch size, samples the same replies. Greedy
        calls draw nothing from the streams.
        """
        seed = int(self._seeds.integers(2**31 - 1))
        seeds = tuple(int(d.rng.integers(2**31 - 1)) for d in decisions) if self.options.temperature > 0 else None
        return GenerateOptions(self.options.max_new_tokens, self.options.temperature, seed, self.options.stop, seeds)


class TaggedAgent(GenerateAgent):
    """Lets the model reason, then reads only its last tagged answer (``Move: e2e4``).

    The prompt (``prompts/<family>/tagged.txt``) asks for a final line ``TAG: answer``
    (the encoding's ``answer_tag``); :func:`textenvs.tagged.parse_tagged` reads it, so moves
    weighed while reasoning are never taken for the answer, and refusals say whether the tag
    was missing, the reply was cut off, or the final answer was illegal or ambiguous. The
    whole reply, reasoning included, is kept in the step record, and a reply that the
    backend says hit ``max_new_tokens`` before its tag is ``cut_off``. The reasoning's tokens
    (think blocks and text before the tag; a reply with no final answer is all reasoning),
    counted with the backend's tokenizer, are the step's ``usage.reasoning_tokens`` where
    the server reports none. Replies are not cut at a newline: ``stop`` is empty.
    """

    mode = "tagged"

    def _parse(self, d: Decision, reply: str, finish_reason: str | None) -> str:
        label = self.encoding.state_label(d.state)
        return parse_tagged(reply, self.encoding.answer_tag, lambda text: self.encoding.parse_action(d.state, text, d.legal),
                            label, finish_reason)[0]

    def _reasoning(self, reply: str) -> str:
        return reasoning_text(reply, self.encoding.answer_tag)


def build_choose(config: Any, backend: Backend, encoding: Encoding[Any]) -> ChooseAgent:
    """The ``choose`` agent of a run configuration."""
    return ChooseAgent(backend, encoding, config.temperature, config.score_norm, config.list_order)


def build_generate(config: Any, backend: Backend, encoding: Encoding[Any]) -> GenerateAgent:
    """The ``generate`` agent of a run configuration."""
    options = GenerateOptions(max_new_tokens=config.max_new_tokens, temperature=config.temperature)
    return GenerateAgent(backend, encoding, options, config.max_retries, config.fallback, seed=config.seed,
                         list_order=config.list_order)


def build_tagged(config: Any, backend: Backend, encoding: Encoding[Any]) -> TaggedAgent:
    """The ``tagged`` agent of a run configuration (reasoning replies; no stop strings)."""
    options = GenerateOptions(max_new_tokens=config.max_new_tokens, temperature=config.temperature, stop=())
    return TaggedAgent(backend, encoding, options, config.max_retries, config.fallback, seed=config.seed,
                       list_order=config.list_order)
