"""One definition per score and per fit kind: the tables, files and docs are made from them."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest

from irl.analysis import CoherenceReport
from irl.analysis.kinds import FIT_KINDS, fit_kind_of
from irl.analysis.scores import Score
from irl.analysis.specs import ScoreSpec, compact_specs, flat_scores, markdown_table, register_score, score_specs, spec, table_specs
from textenvs import ENVS
from textenvs.capabilities import CAPABILITIES, capabilities, capabilities_of
from textenvs.registry import UnknownIdError

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_every_built_in_score_is_a_report_field_with_a_short_title():
    names = {f.name for f in fields(CoherenceReport)}
    assert {s.name for s in score_specs() if s.compute is None} <= names
    for s in score_specs():
        assert len(s.short) <= 10 and s.better in ("higher", "lower", "") and s.meaning and s.undefined and s.interval and s.summary
    assert set(compact_specs()) <= set(table_specs()) <= set(score_specs())
    assert [s.name for s in compact_specs()] == ["true_return", "gd", "explained", "alignment_regret"]
    with pytest.raises(UnknownIdError, match="did you mean 'gd'"):
        spec("gdd")
    with pytest.raises(ValueError, match="no field of CoherenceReport"):
        register_score(ScoreSpec("no_such", "t", "t", "higher", "m", "u", "i"))


def test_flat_columns_say_why_a_score_is_undefined():
    row = flat_scores({"gd": Score(0.5, 0.2, 0.8, 0.95, 10, "bootstrap"), "explained": Score.missing("too few episodes")})
    assert row["gd"] == 0.5 and row["gd_low"] == 0.2 and row["gd_note"] == ""
    assert row["explained"] is None and row["explained_note"] == "too few episodes"
    assert row["stability"] is None and row["stability_note"] == ""  # not computed: empty, not a reason
    assert len(row) == 4 * len(score_specs())


def test_the_docs_hold_the_generated_score_table():
    assert markdown_table() in (DOCS / "scores.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("env", ENVS.names())
def test_every_environment_has_the_capabilities_of_its_instance_and_at_most_one_fit_kind(env):
    from textenvs import make_env

    declared = capabilities_of(env)
    assert declared <= set(CAPABILITIES)
    instance = make_env(env, analysis="off") if env == "chess" else make_env(env)
    try:
        assert capabilities(instance) == declared  # read from the class and options, without building
    finally:
        instance.close()
    kind = fit_kind_of(env)
    if kind is not None:
        assert kind.metadata["needs"] in declared and kind.name in FIT_KINDS


def test_the_readme_is_short_holds_the_score_summary_and_links_every_page():
    from irl.analysis.specs import summary_table

    readme = (DOCS.parent / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) < 350
    assert summary_table() in readme
    for page in DOCS.glob("*.md"):
        assert f"(docs/{page.name})" in readme, f"README links no docs/{page.name}"


def test_every_marked_example_is_run_by_a_test():
    import re

    from doc_examples import examples

    tests = "".join(p.read_text(encoding="utf-8") for p in (DOCS.parent / "tests").glob("test_*.py"))
    used = set(re.findall(r'example\("([\w-]+)"\)', tests))
    assert set(examples()) <= used, f"examples no test runs: {sorted(set(examples()) - used)}"
