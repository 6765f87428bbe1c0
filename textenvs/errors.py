"""Errors: what a user can fix (:class:`UserError`), and what an agent's reply can get wrong.

:class:`UserError` is the base of every error whose message tells the user what to change:
a bad option, flag, file or configuration, a missing tool. The ``zso`` command prints
those in one line (exit 2); any other exception is a bug, reported as an internal error.
It lives here, in the lowest layer, so that environments, the harness, the IRL analyses
and the study all raise under it (as httpx's documented exception tree does).

The reply errors are ``ValueError``s, not user errors: each names the reply and the state
it was given in, and has a short ``kind`` that results files count.
"""

from __future__ import annotations


class UserError(Exception):
    """Something the user can fix; the message names what is wrong and where (a flag, a file and line...)."""


class OptionError(UserError, ValueError):
    """An environment option, variant or feature name that is not accepted, or an option value of the wrong type."""


class UnknownFeatureError(OptionError, KeyError):
    """A feature name that the MDP does not define (a ``KeyError`` too, for lookups)."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


def _clip(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


class ActionError(ValueError):
    """A reply that is not exactly one legal action."""

    kind = "invalid"

    def __init__(self, reason: str, reply: str, state: str):
        self.reason = reason
        self.reply = reply
        self.state = state
        super().__init__(f"{reason}: {_clip(reply)!r} in {state}")


class UnparseableActionError(ActionError):
    """Nothing in the reply reads as an action of this environment."""

    kind = "unparseable"


class IllegalActionError(ActionError):
    """The reply names an action, but it is not legal in this state."""

    kind = "illegal"


class AmbiguousActionError(ActionError):
    """The reply could mean more than one legal action."""

    kind = "ambiguous"


class MissingTagError(UnparseableActionError):
    """A reasoning reply with no tagged final answer (``Move: ...``) after its reasoning."""

    kind = "no_tag"


class CutOffReplyError(UnparseableActionError):
    """A reasoning reply cut off (at ``max_new_tokens``) before its tagged final answer was complete."""

    kind = "cut_off"
