"""Reading a move out of a reply, python-chess style: unparseable, illegal, or ambiguous.

An encoding lists every way it knows of writing every *possible* move of the position
(legal or not) as a table ``text -> moves the text could mean``: a full name (``"take 2
from A"``) means one move; a partial one (``"take 2"``, ``"to c3"``) may mean several.
:func:`read_move` looks for the names in the reply as whole words; a mention inside a
longer one (``"take 2"`` in ``"take 2 from A"``) does not count. As for every
environment, a reply is the move it names, once or more; otherwise the error says why,
naming the reply and the position: :class:`~textenvs.errors.AmbiguousActionError` if it
names two different moves (``"a1 or b2"``) or only a partial name that fits several legal
moves, :class:`~textenvs.errors.IllegalActionError` if the one move it names is not legal,
:class:`~textenvs.errors.UnparseableActionError` if nothing in it names a move.

Only the first :data:`MAX_SCAN` characters are read.
"""

from __future__ import annotations

from typing import Collection, Mapping

from textenvs.base import normalize
from textenvs.errors import AmbiguousActionError, IllegalActionError, UnparseableActionError

#: Characters of a reply that are read; anything after is ignored.
MAX_SCAN = 2000

#: Name (normalised, see :func:`add`) -> the canonical moves it may mean.
NameTable = Mapping[str, frozenset[str]]


def read_move(reply: str, names: NameTable, legal: Collection[str], label: str, exact: NameTable | None = None) -> str:
    """The one legal move ``reply`` names (see the module docstring).

    ``exact`` names count only when they are the whole reply (a bare column letter, say,
    which inside prose would be an ordinary word).
    """
    if not reply.strip():
        raise UnparseableActionError("empty reply", reply, label)
    legal = set(legal)
    body = normalize(reply[:MAX_SCAN])
    for table in (exact or {}, names):
        whole = set(table.get(body, ()))
        if len(whole) == 1 or len(whole & legal) == 1:
            return _checked((whole & legal or whole).pop(), reply, label, legal)
    text = f" {body} "
    spans = []  # (start, end, name, moves) of every whole-word mention
    for name, moves in names.items():
        needle = name
        start = text.find(f" {needle} ")
        while start >= 0:
            spans.append((start + 1, start + 1 + len(needle), name, moves))
            start = text.find(f" {needle} ", start + 1)
    mentions = [(name, moves) for s, e, name, moves in spans
                if not any(s2 <= s and e <= e2 and e2 - s2 > e - s for s2, e2, _, _ in spans)]
    named: dict[str, str] = {}  # move -> the name that said it
    vague: list[tuple[str, list[str]]] = []
    for name, moves in mentions:
        hits = sorted(moves & legal) if len(moves) > 1 else sorted(moves)
        if len(hits) == 1:
            named.setdefault(hits[0], name)
        elif hits:
            vague.append((name, hits))
        else:
            named.setdefault(sorted(moves)[0], name)  # a partial name with no legal move: illegal
    if len(named) > 1:
        listed = ", ".join(repr(n) for n in named.values())
        raise AmbiguousActionError(f"reply names {len(named)} different moves ({listed})", reply, label)
    if named:
        move = next(iter(named))
        if all(move in hits for _, hits in vague):
            return _checked(move, reply, label, legal, named[move])
    if vague:
        name, hits = vague[0]
        raise AmbiguousActionError(f"ambiguous move {name!r} (could be {', '.join(hits)})", reply, label)
    raise UnparseableActionError("no move in reply", reply, label)


def _checked(move: str, reply: str, label: str, legal: set[str], name: str | None = None) -> str:
    if move not in legal:
        raise IllegalActionError(f"illegal move {name or move!r}", reply, label)
    return move


def add(table: dict[str, frozenset[str]], name: str, move: str) -> None:
    """Add ``move`` to the moves ``name`` may mean (names are kept normalised)."""
    name = normalize(name)
    table[name] = table.get(name, frozenset()) | {move}
