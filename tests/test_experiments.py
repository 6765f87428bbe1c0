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


FITTED = """
name = "side-channel-fitted"
seed = 0
episodes = 8
max_steps = 12
batch_size = 8

[[envs]]
env = "frozenlake"
variant = "4x4"
options = { reward_channel = "next", observed_reward = "negated" }

[baselines]
agents = ["optimal"]

[irl]
n_boot = 10
folds = 2
splits = 2
"""


def test_a_fitted_study_shows_the_fits_distance_to_each_reward(tmp_path):
    path = tmp_path / "study.toml"
    path.write_text(FITTED)
    result = run_study(load_study(path), tmp_path / "out")
    [row] = side_channel_rows(result)
    # The true reward's optimum is fitted nearer the true reward than the negated one it was shown.
    assert row["distance_true"].ok and row["distance_true"].estimate < row["distance_observed"].estimate
    page = (result.out / "report.html").read_text()
    assert "<th>distance (observed reward)</th>" in page
    assert "following index and the fitted reward&#x27;s distances on frozenlake/4x4" in page  # the figure's second panel
