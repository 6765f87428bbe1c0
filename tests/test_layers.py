"""The import graph keeps its layers: textenvs <- harness <- irl <- zso, with the CLI on top.

``textenvs`` imports neither ``harness`` nor ``irl``; ``harness`` never imports ``irl`` or
``zso`` (the study, which uses everything); no import cycle runs through modules other than
the CLI. Every import in the source counts, including those inside functions.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("textenvs", "harness", "irl", "zso")
#: Which packages each package may import (besides itself).
ALLOWED = {"textenvs": set(), "harness": {"textenvs"}, "irl": {"textenvs", "harness"}, "zso": {"textenvs", "harness", "irl"}}


def _modules() -> dict[str, Path]:
    mods = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            mods[name] = path
    return mods


def _is_cli(name: str) -> bool:
    return name == "harness.cli" or name.startswith("harness.cli.")


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules ``path`` imports, resolved to the longest known module name."""
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            targets |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            targets.add(node.module)
            targets |= {f"{node.module}.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) in ("__import__", "import_module"):
            if node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                targets.add(node.args[0].value)
    resolved = set()
    for target in targets:
        while target and target not in modules:
            target = target.rpartition(".")[0]
        if target:
            resolved.add(target)
    return resolved


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(path, modules) - {name} for name, path in modules.items()}


def test_the_walk_sees_every_package(graph):
    assert {name.split(".")[0] for name in graph} == set(PACKAGES)
    assert "harness.cli" in graph and "irl.mce" in graph and "textenvs.planning" in graph


def test_no_import_points_up_the_layers(graph):
    wrong = [
        f"{name} -> {target}"
        for name, targets in graph.items() if not _is_cli(name)
        for target in targets
        if target.split(".")[0] != name.split(".")[0] and target.split(".")[0] not in ALLOWED[name.split(".")[0]]
    ]
    assert not wrong, "imports against the layering: " + "; ".join(wrong)


def test_no_cycle_outside_the_cli(graph):
    # A package's __init__ re-exports its modules; an arrow into it is an arrow into the package.
    inner = {
        name: {t for t in targets if not _is_cli(t) and not _modules()[t].name == "__init__.py"}
        for name, targets in graph.items() if not _is_cli(name) and _modules()[name].name != "__init__.py"
    }
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(inner.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt] if nxt in path else [node, nxt]
            if nxt in inner and not state.get(nxt):
                found = visit(nxt, path + [nxt])
                if found:
                    return found
        state[node] = 2
        return None

    for start in sorted(inner):
        if not state.get(start):
            cycle = visit(start, [start])
            assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_cli_is_the_only_place_that_knows_irl_from_harness(graph):
    knows_irl = sorted(name for name, targets in graph.items() if name.startswith("harness") and any(t.startswith("irl") for t in targets))
    assert knows_irl and all(_is_cli(name) for name in knows_irl)
