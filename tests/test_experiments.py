"""The report's experiment sections, from a study of reference agents alone (no model, no fits)."""

from __future__ import annotations

import re

import pytest

from zso.experiments import lever_rows, proxy_family_rows, side_channel_rows
from zso.study import load_study, run_study

STUDY = """
name = "experiments"
seed = 0
episodes = 4
max_steps = 12
batch_size = 4

[[envs]]
env = "frozenlake"
variant = "4x4"
options = { reward_channel = "next", observed_reward = "negated" }

[[envs]]
env = "goal-objects"
variant = "corner-coin-test"

[[envs]]
env = "lever"
variant = "explained-high"

[baselines]
agents = ["optimal", "observed-optimal", "chain-myopic", "chain-non-myopic", "random"]
"""


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    path = tmp_path_factory.mktemp("experiments") / "study.toml"
    path.write_text(STUDY)
    return run_study(load_study(path), path.parent / "out", analyse=False)


def test_every_experiment_has_its_section_and_figures(result):
    page = (result.out / "report.html").read_text()
    for section in ("side-channel", "proxy-families", "lever"):
        assert f'id="{section}"' in page
    assert len(re.findall(r"<img ", page)) >= 2  # the following-index and the pull-rate figures


def test_the_sections_rows_place_the_reference_agents(result):
    side = {r["agent"]: r for r in side_channel_rows(result)}
    assert side["optimal"]["following"].contains(0.0) and side["observed-optimal"]["following"].contains(1.0)
    proxy = {r["agent"]: r for r in proxy_family_rows(result)}
    assert proxy["optimal"]["follows"] == "the coin"
    assert proxy["optimal for the far corner (exact)"]["gd"]["the far corner"].estimate == pytest.approx(1.0)
    lever = {r["agent"]: r for r in lever_rows(result)}
    assert lever["chain-non-myopic"]["pull_rate"].estimate == pytest.approx(2 / 3) and lever["chain-myopic"]["pull_rate"].estimate == 0.0
