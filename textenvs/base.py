"""The two contracts of the text layer: what an environment offers, and what an encoding does.

An environment is a plain :class:`gymnasium.Env` that also implements :class:`TextEnv`:
it lists its legal actions in a canonical form, hands out an immutable snapshot of the
decision state for encodings to render, and a JSON-able record of that state for results.

An :class:`Encoding` is stateless: it renders a snapshot and its legal actions into text,
and parses a reply back into one legal canonical action, or raises an
:class:`~textenvs.errors.ActionError` that says what went wrong.

Conventions for ``info`` dicts returned by ``step`` (everything in them must be JSON-able):

``metrics``
    ``{name: number}`` measured for the decision just taken (chess: centipawn loss);
    summaries average them with confidence intervals.
``success``
    on the final step, whether the episode reached its goal.
``outcome``
    on the final step, a short word for how it ended (``"checkmate"``, ``"goal"``, ...).
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from typing import Any, ClassVar, Generic, Mapping, Protocol, Sequence, TypeVar, runtime_checkable

from textenvs.errors import AmbiguousActionError, IllegalActionError, UnparseableActionError

S = TypeVar("S")


@runtime_checkable
class TextEnv(Protocol[S]):
    """What the harness needs of a ``gymnasium.Env`` beyond reset and step."""

    #: Environment family: the encoding namespace and the ``prompts/`` folder.
    family: str

    def legal_actions(self) -> list[str]:
        """Canonical ids of the actions legal in the current state, in a fixed order."""
        ...

    def text_state(self) -> S:
        """An immutable snapshot of the current decision state, for encodings."""
        ...

    def state_record(self) -> dict[str, Any]:
        """A JSON-able description of the current state (a FEN, an MDP state index...)."""
        ...


class Encoding(ABC, Generic[S]):
    """Renders states and actions of one environment family as text, and parses replies."""

    #: Environment family the encoding belongs to.
    env: ClassVar[str]
    #: Short id, unique within the family (``fen``, ``ascii``...).
    name: ClassVar[str]
    #: One line for ``zso encodings``.
    summary: ClassVar[str] = ""
    #: Folder under ``prompts/`` whose templates serve a family that has none of its own
    #: (the gridworld encodings use ``gridworld``); ``None``: the family's own only.
    prompt_fallback: ClassVar[str | None] = None
    #: The tag of a reasoning reply's final answer (``Action: left``; see :mod:`textenvs.tagged`).
    answer_tag: ClassVar[str] = "Action"

    @abstractmethod
    def render_state(self, state: S) -> str:
        """The state as the model reads it."""

    @abstractmethod
    def render_action(self, state: S, action: str) -> str:
        """How the canonical ``action`` is written in this encoding."""

    def state_label(self, state: S) -> str:
        """A compact name of the state for error messages."""
        return str(state)

    def prompt_fields(self, state: S) -> dict[str, str]:
        """Extra ``$fields`` for the prompt template (side to move, answer format...)."""
        return {}

    def parse_action(self, state: S, reply: str, legal: Sequence[str]) -> str:
        """The one legal canonical action that ``reply`` names.

        The default reads the action names this encoding renders; encodings with a
        notation of their own (chess SAN/UCI) override it.
        """
        names = {self.render_action(state, a): a for a in legal}
        return match_named_action(reply, names, self.state_label(state))


_SEPARATORS = re.compile(r"[\s,;:.!?\"'`()\[\]{}<>*_|/\\]+")


def normalize(text: str) -> str:
    """Lower case, punctuation and runs of spaces folded into single spaces."""
    return _SEPARATORS.sub(" ", text.lower()).strip()


def match_named_action(
    reply: str, names: Mapping[str, str], state_label: str, legal: Sequence[str] | None = None
) -> str:
    """Find which of ``names`` (text -> canonical action) the reply names.

    ``names`` may cover every action of the environment; with ``legal`` given, a named
    action outside it is an :class:`~textenvs.errors.IllegalActionError`.

    A reply that is exactly one name wins outright. Otherwise every name is looked for as a
    whole word sequence; a mention inside a longer one ("up" in "pick up") does not count.
    A reply that mentions exactly one action (once or more) is that action; one that
    mentions two different actions ("not left, go right") is ambiguous, never silently the
    first.
    """
    if not reply.strip():
        raise UnparseableActionError("empty reply", reply, state_label)
    text = f" {normalize(reply)} "
    by_text = {normalize(name): action for name, action in names.items()}
    exact = by_text.get(text.strip())
    if exact is not None:
        return _check_legal(exact, reply, state_label, legal)
    spans = []  # (start, end, action) of every whole-word mention
    for name, action in by_text.items():
        start = text.find(f" {name} ")
        while start >= 0:
            spans.append((start + 1, start + 1 + len(name), action))
            start = text.find(f" {name} ", start + 1)
    # A mention inside a strictly longer one does not count. One sweep in order of start
    # (longest first at equal starts) finds them: a span is inside an earlier one exactly
    # when an earlier span ends after it, or ends with it but starts before it.
    spans.sort(key=lambda span: (span[0], -span[1]))
    mentions: set[str] = set()
    max_end, max_end_start = -1, -1
    for s, e, action in spans:
        if not (max_end > e or (max_end == e and max_end_start < s)):
            mentions.add(action)
        if e > max_end:
            max_end, max_end_start = e, s
    if not mentions:
        raise UnparseableActionError("no action named in reply", reply, state_label)
    if len(mentions) > 1:
        listed = ", ".join(sorted(mentions))
        raise AmbiguousActionError(f"reply names {len(mentions)} different actions ({listed})", reply, state_label)
    return _check_legal(mentions.pop(), reply, state_label, legal)


def _check_legal(action: str, reply: str, state_label: str, legal: Sequence[str] | None) -> str:
    if legal is not None and action not in legal:
        raise IllegalActionError(f"action {action!r} is not legal here", reply, state_label)
    return action
