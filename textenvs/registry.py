"""An explicit registry with lazy ``"module:attr"`` entry points.

Nothing is imported until an entry is asked for, duplicate ids are rejected, and an
unknown id is answered with the closest registered ones.
"""

from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass, field
from typing import Any, Generic, Iterator, TypeVar

from textenvs.errors import UserError

T = TypeVar("T")


class UnknownIdError(UserError, KeyError):
    """An id that is not registered; the message suggests the closest ones."""

    def __init__(self, kind: str, name: str, known: list[str]):
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        listing = ", ".join(sorted(known)) or "none registered"
        self.name = name
        super().__init__(f"unknown {kind} {name!r}{hint} (known: {listing})")

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


class DuplicateIdError(UserError, ValueError):
    """Raised when an id is registered twice."""


@dataclass
class Entry(Generic[T]):
    """One registered object, loaded on first use from ``target`` (which stays as registered)."""

    name: str
    target: str | T
    description: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    _loaded: Any = field(default=None, repr=False, compare=False)

    def load(self) -> T:
        if self._loaded is None:
            if isinstance(self.target, str):
                module_name, _, attr = self.target.partition(":")
                if not attr:
                    raise ValueError(f"entry point {self.target!r} must look like 'module:attr'")
                obj: Any = importlib.import_module(module_name)
                for part in attr.split("."):
                    obj = getattr(obj, part)
                self._loaded = obj
            else:
                self._loaded = self.target
        return self._loaded  # type: ignore[return-value]


class Registry(Generic[T]):
    """A named collection of entries of one kind (environments, encodings, ...)."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Entry[T]] = {}

    def register(self, name: str, target: str | T, description: str = "", **metadata: Any) -> None:
        """Add ``name``; ``target`` is the object or a lazy ``"module:attr"`` string."""
        if name in self._entries:
            raise DuplicateIdError(f"{self.kind} {name!r} is already registered")
        self._entries[name] = Entry(name, target, description, dict(metadata))

    def unregister(self, name: str) -> None:
        """Remove ``name`` (for plugins and tests that register temporary entries)."""
        self.entry(name)
        del self._entries[name]

    def entry(self, name: str) -> Entry[T]:
        """The entry for ``name``, or :class:`UnknownIdError`."""
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownIdError(self.kind, name, list(self._entries)) from None

    def get(self, name: str) -> T:
        """The loaded object registered as ``name``."""
        return self.entry(name).load()

    def names(self) -> list[str]:
        return list(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[Entry[T]]:
        return iter(list(self._entries.values()))


def check_options(cls: type, options: dict[str, Any], what: str) -> None:
    """Raise ``UnknownIdError`` for a key of ``options`` that ``cls(...)`` does not accept."""
    import inspect

    params = inspect.signature(cls.__init__).parameters.values()
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return
    accepted = [p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name != "self"]
    for key in options:
        if key not in accepted:
            raise UnknownIdError(what, key, accepted)


#: The annotations :func:`check_option_types` checks (others, such as lists or policies, are left to the class).
_SIMPLE_TYPES = {"bool": bool, "int": int, "float": float, "str": str, "None": type(None)}


def _declared(cls: type, key: str) -> list[str] | None:
    """The scalar type names ``cls(...)`` declares for option ``key`` (``None``: not a plain scalar)."""
    import inspect

    param = inspect.signature(cls.__init__).parameters.get(key)
    if param is None or param.annotation is inspect.Parameter.empty:
        return None
    names = [part.strip() for part in str(param.annotation).replace("Optional[", "").rstrip("]").split("|")]
    return names if names and all(name in _SIMPLE_TYPES for name in names) else None


def none_options(cls: type, options: dict[str, Any]) -> dict[str, Any]:
    """``options`` with the text ``"none"`` read as ``None`` where ``cls(...)`` takes None and no text
    (a TOML file cannot write None: ``layout_seed = "none"`` means a new layout every episode)."""
    out = dict(options)
    for key, value in options.items():
        names = _declared(cls, key)
        if isinstance(value, str) and value.lower() == "none" and names and "None" in names and "str" not in names:
            out[key] = None
    return out


def check_option_types(cls: type, options: dict[str, Any], what: str) -> None:
    """Raise :class:`~textenvs.errors.OptionError` for a value whose type ``cls(...)`` does not declare.

    Only parameters annotated with plain scalars (``bool``, ``int``, ``float``, ``str``,
    ``None`` and their unions) are checked: ``is_slippery=maybe`` is refused because
    ``is_slippery: bool``. A whole number is accepted for a ``float``; a boolean is not an ``int``.
    """
    from textenvs.errors import OptionError

    for key, value in options.items():
        names = _declared(cls, key)
        if names is None:
            continue
        if value is None and "str" in names:
            continue  # ``-o key=none`` reads as None; a text option is left to say what "none" means
        allowed = tuple(_SIMPLE_TYPES[name] for name in names)
        ok = isinstance(value, allowed) and not (isinstance(value, bool) and bool not in allowed)
        ok = ok or (float in allowed and isinstance(value, int) and not isinstance(value, bool))
        if not ok:
            expected = " or ".join("none" if name == "None" else name for name in names)
            raise OptionError(f"{what} {key!r} takes {expected}, got {value!r}")
