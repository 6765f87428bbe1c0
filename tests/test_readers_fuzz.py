"""Fuzzing the run readers: whatever is in a run directory, a reader never raises a traceback.

Torn tails, garbage lines, wrong types, missing files: :func:`summarize`, the typed readers
and :func:`validate_run` either succeed or raise a :class:`ResultsError` whose message names
the file (and the line, for a bad line), and the CLI prints it as one line.
"""

from __future__ import annotations

import json
import re
import shutil
import warnings
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.records import EPISODES, MANIFEST, STEPS, DamagedRunWarning, ResultsError, TornLineWarning, load_episodes, load_steps
from harness.summary import summarize
from harness.validate import validate_run
from test_records import write_run

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


def _mutated_line(draw, original: dict) -> bytes:
    kind = draw(st.sampled_from(["garbage", "bytes", "drop_key", "wrong_type", "not_object", "empty"]))
    if kind == "garbage":
        return draw(st.text(max_size=30)).replace("\n", " ").encode() + b"\n"
    if kind == "bytes":
        return draw(st.binary(max_size=20)).replace(b"\n", b" ") + b"\n"
    if kind == "not_object":
        return json.dumps(draw(st.lists(json_values, max_size=3))).encode() + b"\n"
    if kind == "empty":
        return b"\n"
    obj = dict(original)
    key = draw(st.sampled_from(sorted(obj)))
    if kind == "drop_key":
        del obj[key]
    else:
        obj[key] = draw(json_values)
    return json.dumps(obj).encode() + b"\n"


@st.composite
def damage(draw):
    """A recipe: which file, how it is damaged."""
    target = draw(st.sampled_from([STEPS, EPISODES, MANIFEST]))
    how = draw(st.sampled_from(["torn_tail", "append_line", "replace_line", "delete_file", "truncate_anywhere"]))
    return target, how, draw(st.randoms(use_true_random=False))


FILE_LINE = re.compile(r"(steps\.jsonl|episodes\.jsonl|manifest\.json)(:\d+)?")


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    return write_run(tmp_path_factory.mktemp("fuzz") / "run", steps=(0, 1, 2))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(recipe=damage(), data=st.data())
def test_readers_never_raise_anything_but_a_located_results_error(pristine, tmp_path_factory, recipe, data):
    target, how, rnd = recipe
    run = Path(tmp_path_factory.mktemp("case")) / "run"
    shutil.copytree(pristine, run)
    path = run / target
    raw = path.read_bytes()
    lines = raw.splitlines(keepends=True)
    if how == "delete_file":
        path.unlink()
    elif how == "torn_tail":
        path.write_bytes(raw[: max(1, len(raw) - rnd.randint(2, 40))])
    elif how == "truncate_anywhere":
        path.write_bytes(raw[: rnd.randint(0, len(raw))])
    elif target != MANIFEST:
        original = json.loads(lines[0])
        line = _mutated_line(data.draw, original)
        if how == "append_line":
            path.write_bytes(raw + line)
        else:
            i = rnd.randrange(len(lines))
            path.write_bytes(b"".join(lines[:i] + [line] + lines[i + 1:]))
    else:
        path.write_bytes(data.draw(st.binary(max_size=60)))

    for read in (lambda: summarize(run), lambda: list(load_steps(run)), lambda: list(load_episodes(run))):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                read()
            except ResultsError as exc:
                assert FILE_LINE.search(str(exc)) or "run directory" in str(exc), str(exc)
        for w in caught:
            assert issubclass(w.category, (TornLineWarning, DamagedRunWarning)) and FILE_LINE.search(str(w.message))
    problems = validate_run(run)  # never raises
    assert all(isinstance(p, str) for p in problems)


def test_the_cli_prints_a_damaged_run_as_one_line(tmp_path, capsys):
    from harness.cli import main

    run = write_run(tmp_path / "run")
    with open(run / STEPS, "ab") as f:
        f.write(b"\xff\xfe not json\n")
    assert main(["summary", str(run)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "steps.jsonl:3" in err and "Traceback" not in err
