"""Intervals for means of bounded outcomes: coverage by simulation at the sizes that run.

Every coverage check draws ``R = 2000`` independent samples from a seeded generator; the
Monte Carlo standard error of a coverage near 0.95 is ``sqrt(0.95 * 0.05 / 2000) = 0.0049``,
so a method whose true coverage is 0.95 falls below the 0.94 asserted here with
probability about 2%; the methods tested cover 0.97 or more where it matters. The betting
sequence runs on a grid of 500 candidate means (bounds widen outward to the grid, so a
coarser grid only widens them) to keep the simulations fast.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats

from harness.stats import betting_interval, betting_sequence, bounded_mean_interval, clopper_pearson

R = 2000
N = 64
PS = (0.01, 0.05, 0.2, 0.5)
GRID = 500
#: Monte Carlo standard error of a coverage of 0.95 over R samples.
MC_SE = float(np.sqrt(0.95 * 0.05 / R))


def _bernoulli(p: float, seed: int) -> np.ndarray:
    return (np.random.default_rng([seed, int(p * 1000)]).random((R, N)) < p).astype(float)


def _bounded(seed: int) -> tuple[np.ndarray, float, float, float]:
    """A skewed non-binary outcome on [-1, 3] (a Beta(0.5, 3) rescaled, half of it exactly -1)."""
    rng = np.random.default_rng(seed)
    x = -1 + 4 * rng.beta(0.5, 3.0, size=(R, N)) * (rng.random((R, N)) < 0.5)
    return x, -1.0, 3.0, -1 + 4 * 0.5 * (0.5 / 3.5)


def test_clopper_pearson_matches_scipy_exact():
    for k, n in [(0, 1), (0, 4), (1, 4), (4, 4), (3, 17), (50, 100)]:
        iv = clopper_pearson(k, n)
        ref = scipy.stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="exact")
        assert (iv.low, iv.high) == pytest.approx((ref.low, ref.high), abs=1e-9)
    # Four failures cannot say the rate is 0: the upper bound is 1 - 0.025 ** (1/4).
    assert clopper_pearson(0, 4).high == pytest.approx(1 - 0.025 ** 0.25)
    with pytest.raises(ValueError):
        clopper_pearson(5, 4)


def test_betting_interval_is_wide_when_little_is_known_and_never_a_point():
    one = betting_interval([0.0], 0.0, 1.0)
    assert (one.low, one.high) == (0.0, 1.0)
    zeros = betting_interval(np.zeros(4), 0.0, 1.0)
    assert zeros.low == 0.0 and zeros.high > 0.5  # four failures: a rare success is not ruled out
    assert betting_interval(np.zeros(64), 0.0, 1.0).high > 0  # never zero width when values could vary
    const = betting_interval(np.full(64, 0.3), 0.0, 1.0)
    assert const.low < 0.3 < const.high
    # Affine in the range: the same outcomes on [-2, 2] give the mapped interval (to the grid).
    x = np.random.default_rng(0).random(20)
    a, b = betting_interval(x, 0.0, 1.0), betting_interval(4 * x - 2, -2.0, 2.0)
    assert (b.low, b.high) == pytest.approx((4 * a.low - 2, 4 * a.high - 2), abs=1e-9)
    # A degenerate range has nothing to vary.
    point = betting_interval([2.0, 2.0], 2.0, 2.0)
    assert (point.low, point.high) == (2.0, 2.0)
    with pytest.raises(ValueError, match="outside the outcome's range"):
        betting_interval([0.5, 1.5], 0.0, 1.0)
    with pytest.raises(ValueError, match="binary outcomes"):
        bounded_mean_interval([0.0, 0.5], 0.0, 1.0, binary=True)
    # The sequence is the running intersection: bounds only ever narrow.
    low, high = betting_sequence(x, 0.0, 1.0)
    assert np.all(np.diff(low) >= 0) and np.all(np.diff(high) <= 0)


@pytest.mark.parametrize("p", PS)
def test_betting_covers_bernoulli_at_every_n_at_once(p):
    low, high = betting_sequence(_bernoulli(p, 1), 0.0, 1.0, grid=GRID)
    covered = (low <= p) & (p <= high)
    fixed = covered.mean(axis=0)  # coverage at each fixed n = 1..64
    assert fixed.min() >= 0.94, (p, fixed.min(), MC_SE)
    # Anytime: the true mean is never excluded at any n <= 64 (what optional stopping needs).
    assert covered.all(axis=1).mean() >= 0.94, (p, MC_SE)


def test_betting_covers_a_bounded_non_binary_outcome_at_fixed_n_and_stopped():
    x, lo, hi, mu = _bounded(2)
    low, high = betting_sequence(x, lo, hi, grid=GRID)
    covered = (low <= mu) & (mu <= high)
    assert covered.mean(axis=0).min() >= 0.94, MC_SE
    assert covered.all(axis=1).mean() >= 0.94, MC_SE
    stop = _stopping(low, high, zero=0.0, target=0.25, batch=4)
    assert covered[np.arange(R), stop].mean() >= 0.94, MC_SE


@pytest.mark.parametrize("p", PS)
def test_clopper_pearson_covers_bernoulli_at_fixed_n(p):
    x = _bernoulli(p, 3)
    k = np.cumsum(x, axis=1)
    n = np.arange(1, N + 1)
    low = np.where(k > 0, scipy.stats.beta.ppf(0.025, k, n - k + 1), 0.0)
    high = np.where(k < n, scipy.stats.beta.ppf(0.975, k + 1, n - k), 1.0)
    assert ((low <= p) & (p <= high)).mean(axis=0).min() >= 0.94, MC_SE
    # The function gives the same bounds as the vectorised formula.
    iv = clopper_pearson(int(k[0, 9]), 10)
    assert (iv.low, iv.high) == pytest.approx((low[0, 9], high[0, 9]))


def _stopping(low: np.ndarray, high: np.ndarray, zero: float, target: float, batch: int) -> np.ndarray:
    """Index of the episode count at which the study's rule stops: rounds of ``batch``
    episodes until the interval excludes ``zero`` or its half-width is at most ``target``."""
    n = np.arange(1, low.shape[1] + 1)
    at_round = (n % batch == 0) | (n == low.shape[1])
    decisive = ((low > zero) | (high < zero) | ((high - low) / 2 <= target)) & at_round
    return np.where(decisive.any(axis=1), np.argmax(decisive, axis=1), low.shape[1] - 1)


@pytest.mark.parametrize("p", PS)
def test_betting_covers_under_the_stopping_rule(p):
    # GD-like outcome: success 1, failure 0, a random mover's mean as the zero.
    low, high = betting_sequence(_bernoulli(p, 4), 0.0, 1.0, grid=GRID)
    stop = _stopping(low, high, zero=0.1, target=0.1, batch=4)
    rows = np.arange(R)
    covered = (low[rows, stop] <= p) & (p <= high[rows, stop])
    assert covered.mean() >= 0.94, (p, MC_SE)


def test_return_range_is_what_an_episode_can_return_within_the_step_limit():
    from harness.agents.planners import plan_optimal
    from textenvs import make_env
    from textenvs.planning import policy_return

    lake = make_env("frozenlake", "4x4").mdp()
    assert lake.return_range(5) == (0.0, 0.0)  # the goal is 6 steps away
    assert lake.return_range(6) == (0.0, 1.0)
    slippery = make_env("frozenlake", "4x4-slippery").mdp()
    # A lucky slide reaches the goal in 6 steps; the expected optimum is far below 1.
    assert slippery.return_range(6) == (0.0, 1.0)
    assert policy_return(slippery.transitions, slippery.rewards, plan_optimal(slippery).policy, slippery.initial, horizon=6) < 0.5
    cliff = make_env("cliffwalking").mdp()
    assert cliff.return_range(20) == (-2000.0, -13.0)  # a fall every step; the shortest path
    assert make_env("mnk", "tic-tac-toe").return_range(9) == (-1.0, 1.0)


def test_the_summary_gives_four_failures_an_interval_not_a_point(tmp_path, capsys):
    from harness.cli import main
    from harness.summary import summarize

    out = tmp_path / "run"
    assert main(["baseline", "--env", "frozenlake", "--agent", "random", "--episodes", "4", "--max-steps", "6",
                 "--seed", "3", "--out", str(out), "--no-progress"]) == 0
    assert "betting confidence sequence" in capsys.readouterr().out
    s = summarize(out)
    assert s.return_range == (0.0, 1.0)
    assert s.total_reward.estimate == 0.0 and s.total_reward.high > 0.5
    assert (s.success.low, s.success.high) == pytest.approx((0.0, clopper_pearson(0, 4).high))


def test_a_random_movers_gd_interval_contains_zero_through_the_command_line(tmp_path, capsys):
    """30 random movers of 5 episodes on FrozenLake 4x4 (20 steps): GD is 0 by definition."""
    import json

    from harness.cli import main

    runs = []
    for seed in range(30):
        out = tmp_path / f"r{seed}"
        assert main(["baseline", "--env", "frozenlake", "--variant", "4x4", "--agent", "random", "--episodes", "5",
                     "--max-steps", "20", "--seed", str(seed), "--out", str(out), "--no-progress"]) == 0
        runs.append(str(out))
    capsys.readouterr()
    assert main(["compare", *runs, "--format", "json", "--no-exact", "--l2", "1", "--folds", "2", "--splits", "1",
                 "--n-boot", "2", "--no-progress"]) == 0
    gds = [r["gd"] for r in json.loads(capsys.readouterr().out)["runs"]]
    assert len(gds) == 30 and all("betting" in g["method"] for g in gds)
    contains = sum(g["low"] <= 0.0 <= g["high"] for g in gds)
    assert contains >= 27, [(g["estimate"], g["low"], g["high"]) for g in gds]
    assert all(g["high"] > g["low"] for g in gds)  # never a point from a sample
    # Without --no-exact, the random mover's known policy gives GD 0 exactly.
    assert main(["compare", runs[0], "--format", "json", "--l2", "1", "--folds", "2", "--splits", "1",
                 "--n-boot", "2", "--no-progress"]) == 0
    exact = json.loads(capsys.readouterr().out)["runs"][0]["gd"]
    assert exact["method"].endswith("(no sampling error)") and exact["low"] == exact["high"] == pytest.approx(0.0, abs=1e-12)


def test_fit_scores_print_no_interval_below_their_simulated_minimum():
    from harness.agents.planners import PlanningConfig, plan_soft_optimal
    from irl.analysis import FitSettings, analyse_tabular
    from irl.analysis.specs import spec
    from ladder import sample_run
    from textenvs import make_env

    mdp = make_env("frozenlake", "4x4").mdp()
    policy = plan_soft_optimal(mdp, PlanningConfig(temperature=0.1)).policy
    run = sample_run(mdp, policy, episodes=8, max_steps=20, seed=1, name="soft", env="frozenlake")
    fast = dict(features=("at_goal", "in_hole"), n_boot=5, splits=2, folds=2)
    gated = analyse_tabular(run, FitSettings(**fast))
    raw = analyse_tabular(run, FitSettings(gate_intervals=False, **fast))
    assert spec("explained").min_episodes > 8 >= spec("alignment_regret").min_episodes
    assert raw.explained.low < raw.explained.high
    assert gated.explained.estimate == raw.explained.estimate and np.isnan(gated.explained.low)
    assert f"no interval below {spec('explained').min_episodes} episodes" in gated.explained.method
    # Where simulated coverage was adequate, the interval stays.
    assert np.array_equal([gated.alignment_regret.low, gated.alignment_regret.high],
                          [raw.alignment_regret.low, raw.alignment_regret.high], equal_nan=True)


def test_the_verdict_reads_gds_interval_against_the_random_movers_zero():
    from irl.analysis.scores import VERDICTS, Score, gd_verdict

    assert gd_verdict(Score(0.3, 0.1, 0.5, 0.95, 8, "betting")) == "better than random"
    assert gd_verdict(Score(-0.1, -0.3, -0.01, 0.95, 8, "betting")) == "worse than random"
    assert gd_verdict(Score(0.2, -0.2, 0.6, 0.95, 8, "betting")) == "undecided"
    assert gd_verdict(Score(1.0, 1.0, 1.0, 0.95, 8, "exact")) == "better than random"
    assert gd_verdict(Score(0.0, 0.0, 0.0, 0.95, 8, "exact")) == "as random"
    assert gd_verdict(Score.missing("no episodes")) == "-"
    assert set(VERDICTS) == {"better than random", "worse than random", "undecided", "as random", "-"}
