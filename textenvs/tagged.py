"""Reasoning replies: think first, then end with a tagged final answer (``Move: e2e4``).

A model that reasons mentions moves it weighs and discards; reading the first move a reply
names picks those (Kaggle/kaggle-environments#1205). Answer tags are BALROG's remedy for
models that follow instructions poorly (balrog-ai/BALROG#13). Here the prompt asks the
model to end with one line ``TAG: answer``, and :func:`split_tagged` reads

* the **last** ``TAG:`` outside any ``<think>...</think>`` block: only its answer is parsed,
  so moves mentioned while reasoning are never taken for the answer;
* the reasoning: the think blocks' text and the free text before that tag (a lone
  ``</think>`` ends reasoning that began in the prompt, as reasoning models' templates do).

The invalid kinds stay apart (:mod:`textenvs.errors`): no tag (:class:`MissingTagError`),
a reply cut off before its tag or inside it (:class:`CutOffReplyError`), and a final answer
that is illegal, unparseable or ambiguous (the encoding's own errors, on the answer alone).
Whether a reply was cut off is read from the backend's finish reason, when it gives one:

* ``"length"`` (``max_new_tokens`` reached): a missing tag, an empty answer, or an answer
  at the very end that does not parse is ``cut_off``;
* ``"stop"`` (the model ended the reply itself): nothing is ``cut_off``; a missing tag,
  even inside an unclosed think block, is ``no_tag``, and an empty answer is unparseable;
* ``None`` (a record or backend without one): guessed from the text alone: an unclosed
  think block, or a tag with nothing after it at the very end, is ``cut_off``.
Every step is a regular expression scan, linear in the reply's length.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

from textenvs.errors import ActionError, CutOffReplyError, MissingTagError, UnparseableActionError

__all__ = ["TaggedReply", "parse_tagged", "reasoning_text", "split_tagged", "tag_pattern"]

_THINK = re.compile(r"<think>(.*?)</think>", re.S | re.I)
_OPEN = re.compile(r"<think>", re.I)
_CLOSE = re.compile(r"</think>", re.I)
#: Markdown and quotes that may wrap a tag or its answer.
_WRAP = "*_`'\" \t"


@dataclass(frozen=True)
class TaggedReply:
    """A reasoning reply split into its final answer and its reasoning."""

    #: The text after the last tag (its line), without Markdown or quotes around it.
    answer: str
    #: Think blocks and free text before the tag, in order ('' when there is none).
    reasoning: str
    #: Whether the answer runs to the very end of the reply (it may have been cut there).
    at_end: bool


def tag_pattern(tag: str) -> re.Pattern[str]:
    """``TAG:`` as a word of its own, optionally in Markdown (``**Move:**``), case-insensitive."""
    return re.compile(rf"(?<![A-Za-z0-9]){re.escape(tag)}[*_]*[ \t]*:[*_]*[ \t]*([^\n]*)", re.I)


def split_tagged(reply: str, tag: str, state: str = "", finish_reason: str | None = None) -> TaggedReply:
    """The final answer and the reasoning of ``reply`` (see the module docstring).

    ``finish_reason``: why the reply ended, as the backend says (``"stop"``, ``"length"``),
    or ``None`` where it does not. Raises :class:`MissingTagError`, :class:`CutOffReplyError`
    or (an empty answer after a reply that ended itself) :class:`UnparseableActionError`.
    """
    truncated, stopped = finish_reason == "length", finish_reason == "stop"
    thoughts: list[str] = []

    def keep(match: re.Match[str]) -> str:
        thoughts.append(match.group(1).strip())
        return "\n"

    visible = _THINK.sub(keep, reply)
    close = None
    for close in _CLOSE.finditer(visible):  # a lone </think>: everything before it was reasoning
        pass
    if close is not None:
        thoughts.insert(0, visible[: close.start()].strip())
        visible = visible[close.end():]
    opened = _OPEN.search(visible)
    cut_thinking = opened is not None
    if opened is not None:  # thinking never closed: the reply stopped inside it
        thoughts.append(visible[opened.end():].strip())
        visible = visible[: opened.start()]
    last = None
    for last in tag_pattern(tag).finditer(visible):
        pass
    if last is None:
        if truncated or (cut_thinking and not stopped):
            where = "while thinking" if cut_thinking else "at max_new_tokens"
            raise CutOffReplyError(f"cut off {where}, before the final '{tag}:' line", reply, state)
        raise MissingTagError(f"no final '{tag}: ...' line", reply, state)
    answer = last.group(1).strip(_WRAP).rstrip(".").strip(_WRAP)
    rest = visible[last.end():]
    if not answer:  # "Move:" then the answer on the next line
        following = rest.lstrip("\n").split("\n", 1)[0] if rest.strip() else ""
        answer = following.strip(_WRAP).rstrip(".").strip(_WRAP)
        rest = rest.lstrip("\n")[len(following):]
    if not answer:
        if stopped:
            raise UnparseableActionError(f"nothing after the final '{tag}:'", reply, state)
        raise CutOffReplyError(f"cut off right after '{tag}:', before the answer", reply, state)
    before = visible[: last.start()].strip()
    reasoning = "\n\n".join(t for t in [*thoughts, before] if t)
    return TaggedReply(answer, reasoning, at_end=not rest.strip() and not cut_thinking)


def parse_tagged(reply: str, tag: str, parse: Callable[[str], str], state: str = "",
                 finish_reason: str | None = None) -> tuple[str, TaggedReply]:
    """The action of ``reply``'s final tagged answer, read by ``parse`` (the encoding's parser), and the split.

    An answer that ``parse`` refuses raises the same kind of error, its reason naming the
    final answer; when the reply ended at ``max_new_tokens`` (``finish_reason="length"``)
    an answer at the very end that does not parse is :class:`CutOffReplyError` (the reply
    stopped inside it).
    """
    split = split_tagged(reply, tag, state, finish_reason)
    try:
        return parse(split.answer), split
    except ActionError as error:
        if finish_reason == "length" and split.at_end:
            raise CutOffReplyError(f"cut off inside the final answer {split.answer!r}", reply, state) from None
        raise type(error)(f"final answer {split.answer!r}: {error.reason}", reply, state) from None


def reasoning_text(reply: str, tag: str) -> str:
    """The reasoning of ``reply``: what :func:`split_tagged` keeps as reasoning, or, for a
    reply with no final answer (no tag, or cut off), the whole reply."""
    try:
        return split_tagged(reply, tag).reasoning
    except ActionError:
        return reply.strip()
