"""The reward side channel: options, prompts under every encoding, records, the following index."""

from __future__ import annotations

import numpy as np
import pytest

from bench.side_channel_coverage import sample  # the bench's episode sampler on an exact MDP

from harness.agents import BaselineOptions, build_baseline
from harness.config import RunConfig
from harness.records import iter_episodes, iter_steps
from harness.runner import Runner
from harness.validate import validate_run
from irl.analysis import analyse_runs
from irl.analysis.scores import WHY_NOISE, FitSettings, bounded_mean_score
from irl.analysis.side_channel import analyse_side_channel
from irl.side_channel import episode_profiles, following_references, index_range
from textenvs.planning import policy_return, soft_value_iteration
from textenvs import ENCODINGS, ENVS, OptionError, build_prompt, get_encoding, make_env
from textenvs.gridworlds.core import GridTextEnv
from textenvs.gridworlds.encodings import reward_text
from textenvs.reward_channel import ObservedReward, observed_table


@pytest.mark.parametrize(
    "spec, expected",
    [
        ("true", ObservedReward("true")), (True, ObservedReward("true")), ("negated", ObservedReward("negated")),
        ("noise:0.5", ObservedReward("noise", sigma=0.5)), ("random", ObservedReward("random")),
        ("random:3", ObservedReward("random", seed=3)), ("feature:keys_held", ObservedReward("feature", feature="keys_held")),
    ],
)
def test_observed_reward_specs(spec, expected):
    assert ObservedReward.parse(spec) == expected


@pytest.mark.parametrize(
    "options, message",
    [
        ({"reward_channel": "later"}, "reward_channel 'later' is not one of none, previous, next"),
        ({"observed_reward": "inverted"}, "observed_reward 'inverted' is not understood"),
        ({"observed_reward": "noise:loud"}, "noise needs a standard deviation"),
        ({"observed_reward": "feature:gold"}, "has no feature 'gold'"),
    ],
)
def test_bad_channel_options_are_named(options, message):
    with pytest.raises(OptionError, match=message) as err:
        make_env("frozenlake", **options)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("options", [{"reward_channel": "previous"}, {"reward_channel": None}, {"observed_reward": True}])
def test_games_refuse_the_channel(options):
    with pytest.raises(OptionError, match="need a gridworld with an exact MDP"):
        make_env("take-away", **options)


def test_no_channel_leaves_the_environment_unwrapped():
    assert isinstance(make_env("frozenlake", reward_channel=None, observed_reward=True), GridTextEnv)


def _grid_encodings() -> list[tuple[str, str]]:
    out = []
    for key in ENCODINGS.names():
        family, name = key.split("/", 1)
        if issubclass(ENVS.get(family), GridTextEnv):
            out.append((family, name))
    return out


@pytest.mark.parametrize("family, name", _grid_encodings())
def test_every_grid_encoding_prompt_carries_the_shown_reward(family, name):
    encoding = get_encoding(family, name)
    for channel in ("previous", "next"):
        env = make_env(family, reward_channel=channel, observed_reward="random:1")
        table = observed_table(env.mdp(), ObservedReward("random", seed=1))
        expected = np.einsum("sat,sat->sa", env.mdp().transitions, table)
        env.reset(seed=0)
        for t in range(2):
            legal = env.legal_actions()
            state = env.text_state()
            for mode in ("choose", "generate"):
                prompt = build_prompt(encoding, state, legal, mode)
                if channel == "previous":
                    shown = "none yet" if t == 0 else reward_text(info["observed_reward"])
                    assert f"Reward of your last step: {shown}" in prompt
                else:
                    for a in legal:
                        r = expected[state.index, env.mdp().action_names.index(a)]
                        assert f"{encoding.render_action(state, a)} (reward {reward_text(r)})" in prompt
            _, _, terminated, _, info = env.step(legal[-1])
            if terminated:
                break
        env.close()


def _run(tmp_path, agent: str, options: dict, env: str = "frozenlake", variant: str = "4x4", episodes: int = 8, max_steps: int = 12):
    cfg = RunConfig(env=env, variant=variant, env_options=options, encoding="ascii", model=agent, backend="baseline",
                    mode="choose", episodes=episodes, max_steps=max_steps, seed=3)
    with Runner(cfg, agent=build_baseline(agent, cfg, BaselineOptions())) as runner:
        run_dir = runner.run(tmp_path / f"{agent}-{abs(hash(str(options)))}")
    assert validate_run(run_dir) == []
    return run_dir


def test_recorded_return_is_the_true_reward(tmp_path):
    run_dir = _run(tmp_path, "optimal", {"reward_channel": "previous", "observed_reward": "negated"}, episodes=3)
    episodes, steps = list(iter_episodes(run_dir)), list(iter_steps(run_dir))
    assert [e["total_reward"] for e in episodes] == [1.0, 1.0, 1.0]  # the goal pays the true +1
    assert all(s["info"]["observed_reward"] == -s["reward"] for s in steps)
    assert any(s["info"]["observed_reward"] == -1.0 for s in steps)


@pytest.mark.parametrize(
    "env, variant, observed",
    [("frozenlake", "4x4", "negated"), ("frozenlake", "4x4", "feature:in_hole"), ("keys-chests", "train", "feature:keys_held")],
)
def test_following_index_places_the_two_optimal_agents(tmp_path, env, variant, observed):
    options = {"reward_channel": "next", "observed_reward": observed}
    steps = 12 if env == "frozenlake" else 30
    scores = {a: analyse_side_channel(_run(tmp_path, a, options, env, variant, max_steps=steps)) for a in ("optimal", "observed-optimal", "random")}
    assert scores["optimal"].following.contains(0.0), scores["optimal"].following
    assert scores["observed-optimal"].following.contains(1.0), scores["observed-optimal"].following
    # Known policies get their exact index: a point, no sampling error.
    assert (scores["optimal"].following.low, scores["optimal"].following.high) == (0.0, 0.0)
    assert scores["observed-optimal"].following.low == scores["observed-optimal"].following.high == pytest.approx(1.0)
    # GD: the optimal agent is fully goal-directed for the true reward, observed-optimal for the shown one.
    assert scores["optimal"].gd_true.estimate == pytest.approx(1.0)
    assert scores["observed-optimal"].gd_observed.estimate == pytest.approx(1.0)
    # The random mover's exact index is reported beside every run.
    assert all(s.random_following is not None for s in scores.values())


def test_references_of_a_channel_that_shows_the_truth_are_undefined():
    mdp = make_env("frozenlake").mdp()
    refs = following_references(mdp.transitions, mdp.rewards, mdp.rewards, mdp.initial, horizon=10)
    assert not refs.defined and refs.index((1.0, 1.0)) is None
    negated = following_references(mdp.transitions, mdp.rewards, -mdp.rewards, mdp.initial, horizon=10)
    assert negated.index(negated.true_optimal) == 0.0 and negated.index(negated.observed_optimal) == 1.0


class _FirstListed:
    """A state-blind control: always the first listed action."""

    mode = "choose"
    name = "first-listed"

    def act(self, decisions):
        from harness.agents.base import reference_choice

        return [reference_choice(d.legal[0], np.eye(len(d.legal))[0], 0.0) for d in decisions]

    def info(self):
        from harness.backends.base import ModelInfo

        return ModelInfo(self.name, "baseline", "always the first listed action")

    def close(self):
        pass


def test_a_state_blind_agent_follows_neither_reward(tmp_path):
    cfg = RunConfig(env="keys-chests", variant="train", env_options={"reward_channel": "next", "observed_reward": "feature:keys_held"},
                    encoding="ascii", model="first-listed", backend="baseline", mode="choose", episodes=16, max_steps=30, seed=3)
    with Runner(cfg, agent=_FirstListed()) as runner:
        report = analyse_side_channel(runner.run(tmp_path / "blind"))
    # It earns neither reward, so it sits between the references, not at either.
    assert not report.following.contains(0.0) and not report.following.contains(1.0)
    assert report.gd_true.high < 0.5 and report.gd_observed.high < 0.5


def test_following_interval_covers_the_truth_at_four_episodes():
    """The interval the report prints for an agent whose policy is unknown (the betting interval
    over the index's range) covers the exact index at n = 4 (bench/side_channel_coverage.py
    checks n = 4 to 64 on two environments and three policies)."""
    env = make_env("frozenlake", observed_reward="negated")
    mdp, observed = env.mdp(), env.observed_mdp()
    env.close()
    H, reps = 12, 300
    refs = following_references(mdp.transitions, mdp.rewards, observed.rewards, mdp.initial, horizon=H)
    lo, hi = index_range(mdp.transitions, mdp.rewards, observed.rewards, mdp.initial, refs)
    policy = soft_value_iteration(mdp.transitions, mdp.rewards, discount=0.99, temperature=0.3).policy
    truth = refs.index([policy_return(mdp.transitions, r, policy, mdp.initial, horizon=H, discount=1.0) for r in (mdp.rewards, observed.rewards)])
    rng = np.random.default_rng(0)
    hits = 0
    for _ in range(reps):
        index = [refs.index(p) for p in episode_profiles(mdp.transitions, mdp.rewards, observed.rewards, sample(mdp, policy, 4, H, rng))]
        assert all(lo - 1e-9 <= x <= hi + 1e-9 for x in index)  # the range bounds every episode
        hits += bounded_mean_score(index, lo, hi, 0.05, "").contains(truth)
    # Monte Carlo error: at a true coverage of 0.95, 300 samples give a standard error of 0.013;
    # 0.92 lies 2.4 of them below it. (The betting interval covers 0.997 here; a bootstrap over 4 episodes, 0.45.)
    assert hits / reps >= 0.92


def test_fitted_reward_is_nearer_the_reward_the_agent_follows(tmp_path):
    """The IRL fit's STARC distance to each reward ranks the two reference agents."""
    settings = FitSettings(n_boot=10, l2=1.0, splits=2)

    def fitted(agent, env, variant, observed, steps):
        run_dir = _run(tmp_path, agent, {"reward_channel": "next", "observed_reward": observed}, env, variant, episodes=8, max_steps=steps)
        [coherence] = analyse_runs([run_dir], settings)
        return analyse_side_channel(run_dir, settings, coherence)

    # Under negated, the true reward's optimum is near the true reward and far from its negation.
    negated = fitted("optimal", "frozenlake", "4x4", "negated", 12)
    assert negated.distance_true.estimate < negated.distance_observed.estimate
    assert negated.distance_true.estimate + negated.distance_observed.estimate > 1.0  # d(R, -R) = 1: d^2 + d'^2 = 1
    # The negated reward's optimum here is to avoid the goal, which a state-blind habit does as well:
    # the fit explains nothing, so no distance is claimed.
    avoider = fitted("observed-optimal", "frozenlake", "4x4", "negated", 12)
    assert not avoider.distance_observed.ok and avoider.distance_observed.method == WHY_NOISE
    # Keys against chests: each agent's fit is nearer the reward it follows.
    optimal = fitted("optimal", "keys-chests", "train", "feature:keys_held", 30)
    keys = fitted("observed-optimal", "keys-chests", "train", "feature:keys_held", 30)
    assert optimal.distance_true.estimate < optimal.distance_observed.estimate
    assert keys.distance_observed.estimate < keys.distance_true.estimate
