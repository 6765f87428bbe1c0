"""Text environments: gymnasium environments, their text encodings and action parsers.

Environments and encodings are found through the explicit lists below; entries are
``"module:attr"`` strings imported on first use. Adding an encoding is one class and one
``ENCODINGS.register`` call (see :func:`register_encoding`).
"""

from __future__ import annotations

from typing import Any

from textenvs.base import Encoding, TextEnv, match_named_action
from textenvs.errors import (
    ActionError,
    AmbiguousActionError,
    IllegalActionError,
    UnparseableActionError,
)
from textenvs.prompting import build_prompt
from textenvs.registry import DuplicateIdError, Registry, UnknownIdError, check_options

__all__ = [
    "ENVS", "ENCODINGS", "Encoding", "TextEnv", "ActionError", "AmbiguousActionError",
    "IllegalActionError", "UnparseableActionError", "DuplicateIdError", "UnknownIdError",
    "OptionError", "make_env", "get_encoding", "encodings_for", "register_encoding",
    "build_prompt", "match_named_action",
]

#: Environment families: id -> ``gymnasium.Env`` class. Metadata: ``variants`` maps a
#: variant name to constructor options, ``default_variant`` names the one used by default.
ENVS: Registry[type] = Registry("environment")
#: Encodings, keyed ``"<family>/<name>"``: the value is an :class:`Encoding` subclass.
ENCODINGS: Registry[type[Encoding[Any]]] = Registry("encoding")


class OptionError(ValueError):
    """An environment option or variant that the environment does not take."""


def register_encoding(env: str, name: str, target: str | type[Encoding[Any]], summary: str = "") -> None:
    """Register an encoding class (or a lazy ``"module:Class"``) under ``env``/``name``."""
    ENCODINGS.register(f"{env}/{name}", target, summary)


def get_encoding(env: str, name: str) -> Encoding[Any]:
    """An instance of encoding ``name`` of environment family ``env``."""
    ENVS.entry(env)  # an unknown environment is reported as such
    try:
        cls = ENCODINGS.get(f"{env}/{name}")
    except UnknownIdError:
        raise UnknownIdError(f"encoding of {env!r}", name, encodings_for(env)) from None
    return cls()


def encodings_for(env: str) -> list[str]:
    """Names of the encodings registered for ``env``."""
    return [key.split("/", 1)[1] for key in ENCODINGS.names() if key.split("/", 1)[0] == env]


def make_env(env: str, variant: str | None = None, **options: Any) -> Any:
    """Build environment ``env`` (a ``gymnasium.Env`` implementing :class:`TextEnv`).

    ``variant`` picks a named preset of options; explicit ``options`` override it.
    Unknown variants and options raise :class:`OptionError` naming what is accepted.
    """
    entry = ENVS.entry(env)
    variants: dict[str, dict[str, Any]] = entry.metadata.get("variants", {})
    variant = variant or entry.metadata.get("default_variant")
    if variant is not None:
        if variant not in variants:
            raise OptionError(str(UnknownIdError(f"variant of {env!r}", variant, list(variants))))
        options = {**variants[variant], **options}
    cls = entry.load()
    try:
        check_options(cls, options, f"option of environment {env!r}")
    except UnknownIdError as exc:
        raise OptionError(str(exc)) from None
    return cls(**options)


# -- The explicit lists -------------------------------------------------------------------

ENVS.register(
    "chess", "textenvs.chess.env:ChessEnv",
    "Chess (python-chess) against a random mover, Stockfish or another model",
)
register_encoding("chess", "fen", "textenvs.chess.encodings:FenEncoding", "FEN string of the position")
register_encoding("chess", "ascii", "textenvs.chess.encodings:AsciiEncoding", "8x8 ASCII board with ranks and files")
register_encoding("chess", "pgn", "textenvs.chess.encodings:PgnEncoding", "the game so far as PGN movetext")
register_encoding("chess", "pieces", "textenvs.chess.encodings:PiecesEncoding", "natural-language list of pieces and squares")
