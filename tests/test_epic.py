"""EPIC (canonicalisation, then Pearson distance): invariances, extreme values and metric axioms."""

from __future__ import annotations

import numpy as np
import pytest

from irl.epic import (
    ConstantRewardError,
    as_transition_reward,
    canonicalize,
    pearson_distance,
)

S, A = 6, 3
GAMMA = 0.9


def rand_reward(rng):
    return rng.normal(size=(S, A, S))


def epic_distance(a, b, gamma, *, state_reward="current", on_constant="nan", **dists):
    """EPIC as its two steps: each reward canonicalised, then their Pearson distance."""
    n_actions = max((r.shape[1] for r in (np.asarray(a), np.asarray(b)) if r.ndim >= 2), default=1)
    Ra, Rb = (as_transition_reward(r, n_actions, state_reward=state_reward) for r in (a, b))
    return pearson_distance(canonicalize(Ra, gamma, **dists), canonicalize(Rb, gamma, **dists), on_constant=on_constant)


def shaped(R, phi, gamma=GAMMA):
    return R + gamma * phi[None, None, :] - phi[:, None, None]


def test_identity_negation_and_range():
    rng = np.random.default_rng(0)
    R = rand_reward(rng)
    assert epic_distance(R, R, GAMMA) == pytest.approx(0.0, abs=1e-7)
    assert epic_distance(R, -R, GAMMA) == pytest.approx(1.0)
    for _ in range(20):
        d = epic_distance(rand_reward(rng), rand_reward(rng), GAMMA)
        assert 0.0 <= d <= 1.0


@pytest.mark.parametrize("seed", range(5))
def test_invariant_to_potential_shaping_and_positive_scaling(seed):
    rng = np.random.default_rng(seed)
    R, other = rand_reward(rng), rand_reward(rng)
    phi = rng.normal(size=S) * 5
    ds = rng.dirichlet(np.ones(S))
    da = rng.dirichlet(np.ones(A))
    for kw in ({}, {"state_dist": ds, "action_dist": da}):
        transformed = 3.7 * shaped(R, phi) + 2.0
        assert epic_distance(R, transformed, GAMMA, **kw) == pytest.approx(0.0, abs=1e-7)
        assert epic_distance(R, other, GAMMA, **kw) == pytest.approx(
            epic_distance(transformed, other, GAMMA, **kw), abs=1e-9
        )
    # The canonical reward itself is unchanged by shaping (up to a constant).
    diff = canonicalize(shaped(R, phi), GAMMA) - canonicalize(R, GAMMA)
    assert np.ptp(diff) < 1e-9


def test_symmetric_and_triangle_inequality():
    rng = np.random.default_rng(1)
    for _ in range(50):
        a, b, c = (rand_reward(rng) for _ in range(3))
        ab, ba = epic_distance(a, b, GAMMA), epic_distance(b, a, GAMMA)
        assert ab == pytest.approx(ba)
        assert ab <= epic_distance(a, c, GAMMA) + epic_distance(c, b, GAMMA) + 1e-12


def test_state_only_rewards():
    rng = np.random.default_rng(2)
    r = rng.normal(size=S)
    phi = rng.normal(size=S)
    # r[s'] ("next") and r[s] + shaping are compared as full transition rewards.
    R_next = as_transition_reward(r, A, state_reward="next")
    assert R_next.shape == (S, A, S) and np.all(R_next[1, 2] == r)
    assert epic_distance(r, R_next, GAMMA, state_reward="next") == pytest.approx(0.0, abs=1e-7)
    assert epic_distance(r, 2 * r + 1, GAMMA) == pytest.approx(0.0, abs=1e-7)
    assert epic_distance(r, -r, GAMMA) == pytest.approx(1.0)
    # A state-only reward plus shaping is equivalent to the reward itself.
    R = as_transition_reward(r, A)
    assert epic_distance(r, shaped(R, phi), GAMMA) == pytest.approx(0.0, abs=1e-7)
    # State-action rewards broadcast over s'.
    r_sa = rng.normal(size=(S, A))
    assert epic_distance(r_sa, np.repeat(r_sa[:, :, None], S, axis=2), GAMMA) == pytest.approx(0.0, abs=1e-7)


def test_constant_reward_is_nan_or_raises():
    rng = np.random.default_rng(3)
    R = rand_reward(rng)
    const = np.full((S, A, S), 4.0)
    assert np.isnan(epic_distance(R, const, GAMMA))
    # Pure potential shaping ranks no policies either.
    assert np.isnan(epic_distance(shaped(np.zeros((S, A, S)), rng.normal(size=S)), R, GAMMA))
    with pytest.raises(ConstantRewardError, match="constant"):
        epic_distance(const, R, GAMMA, on_constant="raise")
    assert np.isnan(pearson_distance(np.ones(5), np.arange(5.0)))


def test_pearson_distance_values_and_weights():
    x = np.array([1.0, 2.0, 3.0, 4.0])
    assert pearson_distance(x, 2 * x) == pytest.approx(0.0, abs=1e-12)
    assert pearson_distance(x, -x) == pytest.approx(1.0)
    y = np.array([1.0, -1.0, -1.0, 1.0])  # uncorrelated with x
    assert pearson_distance(x, y) == pytest.approx(np.sqrt(0.5))
    # Weights: with all mass on two points the correlation is +-1.
    assert pearson_distance(x, np.array([0.0, 1.0, 5.0, 0.0]), np.array([0, 1, 1, 0])) == pytest.approx(0.0)


def test_validation():
    rng = np.random.default_rng(5)
    with pytest.raises(ValueError, match=r"\[S, A, S\]"):
        canonicalize(np.zeros((S, A, S + 1)), GAMMA)
    with pytest.raises(ValueError, match="probability vector"):
        canonicalize(rand_reward(rng), GAMMA, state_dist=np.ones(S))
