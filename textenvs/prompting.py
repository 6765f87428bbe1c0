"""Prompt text from templates in ``prompts/<family>/<mode>.txt``.

Templates use ``$name`` fields (:class:`string.Template`). Every template can use
``$state`` (the encoding's rendering), ``$actions`` (the legal actions as the encoding
writes them, comma-separated), ``$feedback`` (why the previous reply was refused, or
empty) and ``$tag`` (the tag of a reasoning reply's final answer), plus whatever the encoding's ``prompt_fields`` adds.
"""

from __future__ import annotations

import string
from functools import lru_cache
from importlib.resources import files
from typing import Any, Sequence

from textenvs.base import Encoding

@lru_cache(maxsize=None)
def load_template(family: str, mode: str, fallback: str | None = None) -> string.Template:
    """The template for ``family`` in agent ``mode`` (else ``fallback``'s); a clear error when there is none."""
    folder = files("textenvs.prompts").joinpath(family)
    path = folder.joinpath(f"{mode}.txt")
    if not path.is_file() and fallback is not None:
        path = files("textenvs.prompts").joinpath(fallback, f"{mode}.txt")
    if not path.is_file():
        known = sorted(p.name.removesuffix(".txt") for p in folder.iterdir() if p.name.endswith(".txt")) if folder.is_dir() else []
        raise FileNotFoundError(
            f"no prompt template for environment {family!r} in mode {mode!r} "
            f"(looked for prompts/{family}/{mode}.txt; templates there: {', '.join(known) or 'none'})"
        )
    return string.Template(path.read_text(encoding="utf-8"))


def feedback_text(reply: str, error: Exception) -> str:
    """The sentence shown after a refused reply in generate mode."""
    shown = reply.strip().splitlines()[0][:60] if reply.strip() else ""
    return f"Your previous answer {shown!r} was not accepted ({getattr(error, 'reason', error)}). Answer again.\n"


def build_prompt(
    encoding: Encoding[Any], state: Any, legal: Sequence[str], mode: str, feedback: str = ""
) -> str:
    """The full prompt for one decision."""
    fields = {
        "state": encoding.render_state(state),
        "actions": ", ".join(encoding.render_action(state, a) for a in legal),
        "feedback": feedback,
        "tag": encoding.answer_tag,
        **encoding.prompt_fields(state),
    }
    template = load_template(encoding.env, mode, encoding.prompt_fallback)
    try:
        return template.substitute(fields)
    except KeyError as exc:
        raise KeyError(
            f"prompts/{encoding.env}/{mode}.txt uses ${exc.args[0]}, which encoding "
            f"{encoding.name!r} does not provide (it provides {', '.join(sorted(fields))})"
        ) from None
