"""A run's identity is typed: nothing outside ``harness/records.py`` reads a manifest as a dict.

:func:`harness.records.load_manifest` returns the run's :class:`~harness.config.RunConfig`,
:class:`~harness.records.ModelIdentity` and :class:`~harness.records.EnvironmentIdentity`.
The walk below looks, in every module of the packages (as ``tests/test_layers.py`` walks
imports), for a subscript or ``.get`` with a string key on a manifest dict: the result of
``read_manifest(...)``, a name or attribute called ``*manifest*``, its ``config`` /
``model`` / ``environment``, and any name assigned from one of those.
"""

from __future__ import annotations

import ast
import json
from dataclasses import replace
from pathlib import Path

import pytest

from harness.config import AgentSpec, ConfigError, RunConfig
from harness.records import (
    FORMAT_VERSION, EnvironmentIdentity, ModelIdentity, load_manifest, merged_manifest, shard_config_differences,
)
from test_records import write_run

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("textenvs", "harness", "irl", "zso", "bench")
#: The one module that reads and writes manifest JSON.
RECORDS = ROOT / "harness" / "records.py"
#: The manifest's typed sections: ``manifest.config["env"]`` is the old way of reading them.
SECTIONS = {"config", "model", "environment"}


def _key(node: ast.AST) -> ast.AST | None:
    """The receiver of ``x["key"]`` or ``x.get("key", ...)``, else ``None``."""
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, str):
        return node.value
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get"
            and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
        return node.func.value
    return None


def _is_manifest(node: ast.AST, tainted: set[str]) -> bool:
    """Whether ``node`` evaluates to a manifest dict, one of its sections, or a list of manifests."""
    if isinstance(node, ast.Name):
        return node.id in tainted or "manifest" in node.id.lower()
    if isinstance(node, ast.Attribute):
        return "manifest" in node.attr.lower() or (node.attr in SECTIONS and _is_manifest(node.value, tainted))
    if isinstance(node, ast.Call):
        func = node.func
        name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
        if name in ("read_manifest", "load_manifest"):
            return True
    if isinstance(node, ast.BoolOp):
        return any(_is_manifest(v, tainted) for v in node.values)
    if isinstance(node, (ast.ListComp, ast.GeneratorExp, ast.SetComp)):
        return _is_manifest(node.elt, tainted)
    if isinstance(node, ast.Subscript):
        return _is_manifest(node.value, tainted)
    receiver = _key(node)
    return receiver is not None and _is_manifest(receiver, tainted)


def _flows(target: ast.AST, value: ast.AST, iterated: bool) -> list[tuple[str, ast.AST]]:
    """``(name, expression)`` pairs of an assignment (``iterated``: a loop over ``value``)."""
    if isinstance(target, ast.Name):
        return [(target.id, value)]
    if isinstance(target, ast.Tuple):
        if not iterated and isinstance(value, ast.Tuple) and len(value.elts) == len(target.elts):
            return [pair for t, v in zip(target.elts, value.elts) for pair in _flows(t, v, False)]
        if iterated and isinstance(value, ast.Call) and getattr(value.func, "id", "") == "zip" and len(value.args) == len(target.elts):
            return [pair for t, v in zip(target.elts, value.args) for pair in _flows(t, v, True)]
    return []


def _tainted(nodes: list[ast.AST]) -> set[str]:
    """Names assigned (or looped over) from a manifest dict among ``nodes``, to a fixed point."""
    tainted: set[str] = set()
    while True:
        before = len(tainted)
        for node in nodes:
            flows = []
            if isinstance(node, ast.Assign):
                flows = [f for t in node.targets for f in _flows(t, node.value, False)]
            elif isinstance(node, (ast.AnnAssign, ast.NamedExpr)) and node.value is not None:
                flows = _flows(node.target, node.value, False)
            elif isinstance(node, (ast.For, ast.comprehension)):
                flows = _flows(node.target, node.iter, True)
            tainted |= {name for name, value in flows if _is_manifest(value, tainted)}
        if len(tainted) == before:
            return tainted


def manifest_dict_reads(source: str) -> list[int]:
    """The line numbers at which ``source`` indexes a manifest dict by hand (names are followed within each function)."""
    tree = ast.parse(source)
    defs = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    scopes = [[n for stmt in tree.body if not isinstance(stmt, defs) for n in ast.walk(stmt)]]
    scopes += [list(ast.walk(n)) for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    found = set()
    for nodes in scopes:
        tainted = _tainted(nodes)
        found |= {n.lineno for n in nodes if (receiver := _key(n)) is not None and _is_manifest(receiver, tainted)}
    return sorted(found)


def test_the_walk_finds_hand_indexed_manifests():
    source = "\n".join([
        'cfg = read_manifest(d)["config"]',            # 1
        'x = cfg["env"]',                               # 2
        'manifests = [read_manifest(d) for d in ds]',
        'first = manifests[0]',
        'y = first.get("status")',                      # 5
        'z = state.manifest.environment.get("variant")',  # 6
        'for m in manifests:',
        '    m["model"]',                               # 8
        'row = {"model": 1}; row["model"]; study["config"]',
        'typed = load_manifest(d); typed.config.env; typed.environment.options.get("opponent")',
    ])
    assert manifest_dict_reads(source) == [1, 2, 5, 6, 8]


def test_no_module_outside_records_indexes_a_manifest_dict():
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if path == RECORDS:
                continue
            for line in manifest_dict_reads(path.read_text(encoding="utf-8")):
                found.append(f"{path.relative_to(ROOT)}:{line}")
    assert not found, "manifest dicts indexed outside harness/records.py (use load_manifest's typed values): " + ", ".join(found)


# -- the typed manifest ----------------------------------------------------------------------


def test_load_manifest_returns_typed_values_that_write_back_the_same_json(tmp_path):
    run = write_run(tmp_path / "run")
    manifest = load_manifest(run)
    assert isinstance(manifest.config, RunConfig) and isinstance(manifest.model, ModelIdentity)
    assert isinstance(manifest.environment, EnvironmentIdentity)
    assert manifest.config.env == "chess" and manifest.model.name == "m" and manifest.environment.encoding == "fen"
    assert manifest.model.details["weights_sha256"] == "0" * 64 and manifest.environment.details["class"] == "C"
    assert manifest.config.agent == AgentSpec("model") and not manifest.is_baseline
    raw = json.loads((run / "manifest.json").read_text())
    assert manifest.to_json() == raw and raw["format_version"] == FORMAT_VERSION


def test_a_baseline_manifest_written_before_agent_specs_is_read_as_a_baseline(tmp_path):
    run = write_run(tmp_path / "run")
    raw = json.loads((run / "manifest.json").read_text())
    del raw["config"]["agent"]
    raw["config"].update(model="soft-optimal", backend="baseline", temperature=0.25)
    raw["format_version"] = "1.0"
    (run / "manifest.json").write_text(json.dumps(raw))
    for strict in (False, True):
        manifest = load_manifest(run, strict=strict)
        assert manifest.is_baseline and manifest.config.agent == AgentSpec("baseline", "soft-optimal", {"temperature": 0.25})
        assert manifest.config.temperature == 0.0 and manifest.config.backend == "baseline"
    raw["config"].update(model="random", temperature=0.0)
    (run / "manifest.json").write_text(json.dumps(raw))
    assert load_manifest(run).config.agent == AgentSpec("baseline", "random", {})


def test_a_baseline_config_names_its_agent_and_nothing_else_decides():
    config = RunConfig(env="frozenlake", agent={"kind": "baseline", "name": "q-learning", "options": {"train_episodes": 9}})
    assert config.is_baseline and config.model == "q-learning" and config.backend == "baseline" and config.mode == "choose"
    assert RunConfig.from_json(config.to_json()) == config
    with pytest.raises(ConfigError, match="needs a name"):
        RunConfig(agent={"kind": "baseline"})
    with pytest.raises(ConfigError, match="kind must be one of"):
        RunConfig(agent={"kind": "robot"})


def test_merging_compares_and_joins_typed_manifests(tmp_path):
    a = load_manifest(write_run(tmp_path / "a"))
    a = replace(a, config=replace(a.config, shard="1/2", out="a"))
    b = replace(a, config=replace(a.config, shard="2/2", out="b"), host={"name": "other"}, run_id="b")
    assert shard_config_differences(a, b) == []
    c = replace(a, config=replace(a.config, seed=9, max_steps=3))
    assert shard_config_differences(a, c) == ["max_steps", "seed"]
    merged = merged_manifest([a, b], tmp_path / "out")
    assert merged.run_id == "out" and merged.config.shard is None and merged.config.out == str(tmp_path / "out")
    assert merged.host == {"shards": [a.host, {"name": "other"}]} and merged.status == "complete"
    assert merged.model == a.model and merged.environment == a.environment


def test_every_run_environment_is_rebuilt_in_one_place():
    """``textenvs.make_env`` is called by ``harness.config.make_run_env`` alone; the rest call ``RunConfig.make_env``."""
    callers = sorted(
        str(path.relative_to(ROOT)) for package in ("harness", "irl", "zso") for path in (ROOT / package).rglob("*.py")
        if any(isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "make_env"
               for n in ast.walk(ast.parse(path.read_text(encoding="utf-8"))))
    )
    assert callers == ["harness/config.py"]


def test_the_docs_baseline_run_example_runs_as_written(tmp_path):
    """A baseline named in a config file is an ordinary run: it equals ``zso baseline``'s, and resumes."""
    import re
    import subprocess
    import sys

    from doc_examples import example
    from harness.validate import validate_run

    script = re.search(r"```sh\n(.*?)```", example("baseline-run"), re.S).group(1)
    script = script.replace("Z=.venv/bin/zso", f"Z={Path(sys.executable).parent / 'zso'}")
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    runs = tmp_path / "runs"
    assert validate_run(runs / "soft") == [] and validate_run(runs / "soft-cli") == []
    a, b = load_manifest(runs / "soft"), load_manifest(runs / "soft-cli")
    assert a.config.agent == b.config.agent and a.config.agent.options["temperature"] == 0.5
    assert a.model == b.model and a.is_baseline and a.resumes  # resumed (nothing left to play)
    episodes = [(runs / name / "episodes.jsonl").read_text().splitlines() for name in ("soft", "soft-cli")]
    strip = [[{k: v for k, v in json.loads(line).items() if k != "wall_s"} for line in lines] for lines in episodes]
    assert len(strip[0]) == 12 and strip[0] == strip[1]
