"""The documentation's runnable examples: each is marked ``<!-- example: NAME -->`` in README.md
or a page of docs/, and the tests run it as written."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: Every page that may hold examples.
PAGES = (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")))


def example(name: str) -> str:
    """The text after ``<!-- example: NAME -->`` on the one page that marks it."""
    marker = f"<!-- example: {name} -->"
    found = [page for page in PAGES if marker in page.read_text(encoding="utf-8")]
    if len(found) != 1:
        raise LookupError(f"example {name!r} is marked on {len(found)} pages ({', '.join(p.name for p in found) or 'none'}), not one")
    return found[0].read_text(encoding="utf-8").split(marker, 1)[1]


def examples() -> list[str]:
    """The names of every marked example, on every page."""
    import re

    return [m for page in PAGES for m in re.findall(r"<!-- example: ([\w-]+) -->", page.read_text(encoding="utf-8"))]
