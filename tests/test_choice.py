"""Boltzmann choice model: gradients, recovery of a known theta, explained-behaviour score."""

from __future__ import annotations

import numpy as np
import pytest

from irl.choice import (
    Decision,
    _hessian,
    choice_objective,
    choice_probabilities,
    cross_validate,
    cross_validate_l2,
    explained_behaviour,
    fit_choice,
    join_features,
    pack_decisions,
)

THETA = np.array([1.5, -1.0, 0.5])


def make_decisions(n: int, mode: str, seed: int = 0, theta: np.ndarray = THETA):
    """Decisions with 2-6 legal actions and Gaussian features.

    ``mode``: ``sample`` (choices drawn from the true Boltzmann policy), ``dist`` (the true
    distribution as the target), ``uniform`` (random choices), ``argmax`` (the best action).
    """
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        k = int(rng.integers(2, 7))
        x = rng.normal(size=(k, len(theta)))
        u = x @ theta
        p = np.exp(u - u.max())
        p /= p.sum()
        if mode == "sample":
            t = int(rng.choice(k, p=p))
        elif mode == "dist":
            t = p
        elif mode == "uniform":
            t = int(rng.integers(k))
        elif mode == "argmax":
            t = int(np.argmax(u))
        else:
            raise ValueError(mode)
        out.append((x, t))
    return out


def numeric_grad(f, w, eps=1e-6):
    g = np.zeros_like(w)
    for i in range(len(w)):
        e = np.zeros_like(w)
        e[i] = eps
        g[i] = (f(w + e) - f(w - e)) / (2 * eps)
    return g


@pytest.mark.parametrize("mode", ["sample", "dist"])
def test_gradient_and_hessian_match_finite_differences(mode):
    rng = np.random.default_rng(1)
    decisions = [Decision(x, t, weight=float(w)) for (x, t), w in
                 zip(make_decisions(40, mode, seed=2), rng.uniform(0.5, 2, 40))]
    data = pack_decisions(decisions)
    theta = rng.normal(size=3)
    _, grad = choice_objective(theta, data, l2=0.7)
    assert grad == pytest.approx(numeric_grad(lambda w: choice_objective(w, data, l2=0.7)[0], theta), abs=1e-6)
    hess = _hessian(data, theta, 0.7)
    num = np.stack([numeric_grad(lambda w: choice_objective(w, data, l2=0.7)[1][i], theta) for i in range(3)])
    assert hess == pytest.approx(num, abs=1e-5)


def test_probabilities_sum_to_one_and_match_softmax():
    decisions = make_decisions(10, "sample")
    probs = choice_probabilities(decisions, THETA)
    for (x, _), p in zip(decisions, probs):
        u = x @ THETA
        assert p == pytest.approx(np.exp(u) / np.exp(u).sum())


def test_recovers_known_theta_within_standard_errors():
    fit = fit_choice(make_decisions(3000, "sample", seed=3), l2=0.0)
    assert fit.converged
    z = (fit.weights - THETA) / fit.std_errors
    assert np.all(np.abs(z) < 4), z
    assert np.all(fit.std_errors < 0.1)


def test_distribution_targets_recover_theta_exactly():
    fit = fit_choice(make_decisions(300, "dist", seed=4), l2=0.0)
    assert fit.weights == pytest.approx(THETA, abs=1e-5)


def test_uniform_choices_score_near_zero():
    score = explained_behaviour(make_decisions(800, "uniform", seed=5), k=5, seed=0)
    assert abs(score.score) < 0.03
    assert score.uniform_log_likelihood < 0


def test_deterministic_explained_choices_score_near_one():
    score = explained_behaviour(make_decisions(400, "argmax", seed=6), k=5, seed=0)
    assert score.score > 0.9
    # Boltzmann-sampled choices are explained in part.
    partial = explained_behaviour(make_decisions(400, "sample", seed=7), k=5, seed=0)
    assert 0.2 < partial.score < score.score


def test_cross_validation_prefers_weak_penalty_for_informative_data():
    data = make_decisions(400, "argmax", seed=8)
    cv = cross_validate(data, l2_grid=(1e-2, 1.0, 100.0), k=4, seed=0)
    assert cv.best_l2 == 1e-2
    assert cv.heldout_log_likelihood[0] > cv.heldout_log_likelihood[-1]
    # Seeded: the same folds give the same numbers.
    again = cross_validate(data, l2_grid=(1e-2, 1.0, 100.0), k=4, seed=0)
    assert np.array_equal(cv.heldout_log_likelihood, again.heldout_log_likelihood)


def test_single_action_decisions_carry_no_information():
    data = make_decisions(50, "sample", seed=10) + [(np.ones((1, 3)), 0)] * 20
    a = fit_choice(data, l2=0.1)
    b = fit_choice(data[:50], l2=0.1)
    assert a.weights == pytest.approx(b.weights, abs=1e-6)


def test_input_validation():
    with pytest.raises(ValueError, match="not among"):
        pack_decisions([(np.ones((3, 2)), 3)])
    with pytest.raises(ValueError, match="distribution"):
        pack_decisions([(np.ones((3, 2)), np.array([0.5, 0.6, 0.0]))])
    with pytest.raises(ValueError, match="features"):
        pack_decisions([(np.ones((3, 2)), 0), (np.ones((3, 4)), 0)])
    with pytest.raises(ValueError, match="no decisions"):
        pack_decisions([])
    with pytest.raises(ValueError, match="k="):
        cross_validate(make_decisions(3, "sample"), k=5)


def _biased(n: int, theta: np.ndarray, bias: float, seed: int):
    """Decisions whose choices follow ``theta . x + bias * [first listed]``, and the prior's features."""
    rng = np.random.default_rng(seed)
    decisions, prior = [], []
    for _ in range(n):
        k = int(rng.integers(2, 7))
        x = rng.normal(size=(k, 3))
        first = np.zeros((k, 1))
        first[0] = 1.0
        u = x @ theta + bias * first[:, 0]
        p = np.exp(u - u.max())
        t = int(rng.choice(k, p=p / p.sum()))
        decisions.append((x, t))
        prior.append((first, t))
    return decisions, prior


def test_a_position_blind_bias_is_explained_by_the_prior_and_a_goal_beyond_it():
    blind, blind_prior = _biased(300, np.zeros(3), 2.0, seed=5)
    result = explained_behaviour(blind, l2=1e-2, prior=blind_prior)
    # Over uniform the bias looks like an explanation; beyond the prior it is none.
    assert result.score_uniform > 0.2
    assert result.score < 0.01 and result.prior_log_likelihood > result.uniform_log_likelihood
    goal, goal_prior = _biased(300, THETA, 2.0, seed=6)
    result = explained_behaviour(goal, l2=1e-2, prior=goal_prior)
    assert result.score > 0.2 and result.score_uniform > result.score
    # The joint model keeps the bias out of the objective's weights.
    fit = fit_choice(join_features(goal, goal_prior), l2=1e-2)
    assert fit.weights[:3] == pytest.approx(THETA, abs=4 * fit.std_errors[:3].max())
    assert fit.weights[3] == pytest.approx(2.0, abs=4 * fit.std_errors[3])
    with pytest.raises(ValueError, match="same decisions"):
        join_features(goal, goal_prior[1:] + goal_prior[:1])


def test_cross_validation_walks_the_grid_until_it_stops_improving():
    calls = []

    def heldout(l2, folds):
        calls.append(l2)
        return -(np.log10(l2) - 1.0) ** 2  # one peak, at l2 = 10

    grid = (1e3, 1e2, 10.0, 1.0, 0.1, 1e-2, 1e-3)
    cv = cross_validate_l2(heldout, 20, l2_grid=grid, k=4, seed=0, patience=2)
    assert cv.best_l2 == 10.0
    assert calls == [1e3, 1e2, 10.0, 1.0, 0.1] and cv.l2_grid == tuple(calls)  # two short of the best: stop
    calls.clear()
    whole = cross_validate_l2(heldout, 20, l2_grid=grid, k=4, seed=0)  # the default: the whole grid
    assert whole.best_l2 == cv.best_l2 and calls == list(grid)
    # A later, higher peak is found only by the whole walk: patience assumes one peak.
    twin = lambda l2, folds: {1e3: 0.0, 1e2: -1.0, 10.0: -2.0, 1.0: 5.0}.get(l2, -9.0)
    assert cross_validate_l2(twin, 20, l2_grid=grid, k=4, patience=2).best_l2 == 1e3
    assert cross_validate_l2(twin, 20, l2_grid=grid, k=4).best_l2 == 1.0
