"""What an agent's reply can get wrong, told apart.

All are ``ValueError``s; each names the reply and the state it was given in, and has a
short ``kind`` that results files count.
"""

from __future__ import annotations


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
