"""RL baselines on the real environments: planners, Q-learning, sb3 PPO, Stockfish, the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from harness.agents import BaselineError, BaselineOptions, build_baseline
from harness.agents.learners import PPOConfig, QLearningConfig, train_ppo, train_q_learning
from harness.agents.planners import PlanningConfig, plan_optimal, plan_soft_optimal
from harness.agents.uniform import RandomAgent
from harness.cli import main
from harness.config import RunConfig
from harness.records import iter_episodes, iter_steps, read_manifest
from harness.runner import Runner
from harness.validate import validate_run
from textenvs.planning import hard_value_iteration, occupancy_measures
from textenvs import make_env
from textenvs.chess.engine import stockfish_available


def config(env: str, variant: str | None, model: str, episodes: int = 10, max_steps: int = 100, **kw) -> RunConfig:
    return RunConfig(
        env=env, variant=variant, encoding="ascii", model=model, backend="baseline", mode="choose",
        episodes=episodes, max_steps=max_steps, **kw,
    )


def run(cfg: RunConfig, agent, tmp_path) -> tuple[list[dict], list[dict]]:
    """Run ``agent``, check the run validates, return its episodes and steps."""
    with Runner(cfg, agent=agent) as runner:
        run_dir = runner.run(tmp_path / cfg.model)
    assert validate_run(run_dir) == []
    manifest = read_manifest(run_dir)
    assert manifest["model"]["backend"] == "baseline" and manifest["config"]["backend"] == "baseline"
    return list(iter_episodes(run_dir)), list(iter_steps(run_dir))


@pytest.mark.parametrize("variant", ["4x4", "8x8"])
def test_optimal_solves_frozenlake(variant, tmp_path):
    mdp = make_env("frozenlake", variant).mdp()
    agent = plan_optimal(mdp)
    episodes, steps = run(config("frozenlake", variant, "optimal"), agent, tmp_path)
    assert all(e["success"] for e in episodes)
    # Shortest path: 6 moves on 4x4, 14 on 8x8.
    assert {e["steps"] for e in episodes} == {6 if variant == "4x4" else 14}
    for s in steps:  # probs: uniform over the optimal actions, and the action is one of them
        probs = np.array(s["probs"])
        assert probs[s["legal_actions"].index(s["action"])] > 0
        assert set(np.round(probs[probs > 0], 6)) <= {1.0, 0.5, round(1 / 3, 6)}


def test_optimal_return_on_keys_chests_matches_the_mdp(tmp_path):
    env = make_env("keys-chests", "train")
    mdp = env.mdp()
    horizon = 100
    # The best undiscounted return within the horizon, from the start state.
    best = hard_value_iteration(mdp.transitions, mdp.rewards, horizon=horizon, discount=1.0).v[0] @ mdp.initial
    episodes, _ = run(config("keys-chests", "train", "optimal", episodes=3, max_steps=horizon), plan_optimal(mdp), tmp_path)
    assert best > 0
    for e in episodes:
        # The 0.99-discounted policy reaches the same undiscounted return (it only hurries).
        assert e["total_reward"] == pytest.approx(best, abs=1e-9)
        assert e["success"]


def test_soft_optimal_spans_uniform_to_optimal():
    mdp = make_env("frozenlake", "4x4").mdp()
    hot = plan_soft_optimal(mdp, PlanningConfig(temperature=1000.0))
    assert np.abs(hot.policy - 0.25).max() < 1e-3
    hard = plan_optimal(mdp)
    cold = plan_soft_optimal(mdp, PlanningConfig(temperature=1e-4))
    live = ~mdp.terminal
    # Almost all of the cold policy's mass is on optimal actions, and its mode is optimal.
    on_optimal = (cold.policy * (hard.policy > 0)).sum(axis=1)
    assert on_optimal[live].min() > 1 - 1e-6
    modes = cold.policy.argmax(axis=1)
    assert all(hard.policy[s, modes[s]] > 0 for s in np.flatnonzero(live))
    assert cold.info().details["temperature"] == 1e-4


def test_q_learning_learns_frozenlake(tmp_path):
    agent = train_q_learning(make_env("frozenlake", "4x4"), QLearningConfig(seed=0))
    assert agent.info().details["train_episodes"] == 2000
    episodes, steps = run(config("frozenlake", "4x4", "q-learning"), agent, tmp_path)
    assert [e["success"] for e in episodes] == [True] * 10
    assert all(max(s["probs"]) == 1.0 for s in steps)  # greedy, no ties on the learned path


def test_q_learning_is_reproducible():
    a = train_q_learning(make_env("frozenlake", "4x4"), QLearningConfig(train_episodes=200, seed=3))
    b = train_q_learning(make_env("frozenlake", "4x4"), QLearningConfig(train_episodes=200, seed=3))
    np.testing.assert_array_equal(a.q, b.q)


def test_ppo_learns_frozenlake_and_writes_a_valid_run(tmp_path):
    env = make_env("frozenlake", "4x4")
    mdp = env.mdp()
    seen = []
    # About 5 s on one core; PPO reliably solves the 4x4 lake by then (seeds 0-3 checked).
    agent = train_ppo(env, PPOConfig(train_steps=8192, max_steps=50, seed=0), seen.append)
    assert seen and seen[-1] == 8192
    details = agent.info().details
    assert details["train_steps"] == 8192 and details["stable_baselines3"]
    # The exact chance that the trained (sampling) policy reaches the goal within 50 steps.
    policy = agent.distributions(list(range(mdp.n_states)))
    reach = occupancy_measures(mdp.transitions, policy, mdp.initial, horizon=50).state_t[-1]
    assert reach[mdp.terminal & (mdp.features[:, mdp.feature_names.index("at_goal")] == 1)].sum() > 0.9
    _, steps = run(config("frozenlake", "4x4", "ppo", episodes=4, max_steps=50), agent, tmp_path)
    for s in steps:
        assert len(s["probs"]) == 4 and abs(sum(s["probs"]) - 1) < 1e-9
    # probs are the policy's distribution in the recorded state.
    first = steps[0]
    np.testing.assert_allclose(first["probs"], policy[first["state"]["index"]], atol=1e-6)


def test_random_is_uniform_and_rarely_succeeds(tmp_path):
    episodes, steps = run(config("frozenlake", "8x8", "random", episodes=20), RandomAgent(), tmp_path)
    assert sum(e["success"] for e in episodes) <= 2
    assert all(s["probs"] == [0.25] * 4 for s in steps)
    assert len({s["action"] for s in steps}) == 4


def test_tabular_agents_refuse_non_tabular_environments():
    cfg = RunConfig(env="chess", encoding="fen", model="optimal", backend="baseline", env_options={"analysis": "off"})
    for name in ("optimal", "q-learning", "ppo"):
        with pytest.raises(BaselineError, match="needs an environment with a tabular MDP"):
            build_baseline(name, cfg)
    with pytest.raises(BaselineError, match="chess only"):
        build_baseline("stockfish", config("frozenlake", "4x4", "stockfish"))
    lay = RunConfig(env="keys-chests", encoding="ascii", model="q-learning", backend="baseline", env_options={"layout_seed": None})
    with pytest.raises(BaselineError, match="fixed layout"):
        build_baseline("q-learning", lay)


@pytest.mark.parametrize("env, variant", [("keys-chests", "train"), ("frozenlake", "random"), ("cliffwalking", "mirrored"),
                                          ("minigrid", "random-goal-5x5")])
def test_planners_plan_each_episodes_own_layout(env, variant, tmp_path):
    cfg = config(env, variant, "optimal", episodes=4, max_steps=60, env_options={"layout_seed": "none"})
    agent = build_baseline("optimal", cfg)
    try:
        episodes, steps = run(cfg, agent, tmp_path)
    finally:
        agent.close()
    assert all(e["success"] for e in episodes)
    assert len({s["state"]["layout_seed"] for s in steps}) == 4


@pytest.mark.stockfish
@pytest.mark.skipif(not stockfish_available(), reason="Stockfish binary not found")
def test_stockfish_plays_legal_moves(tmp_path):
    import chess

    cfg = RunConfig(
        env="chess", encoding="fen", model="stockfish", backend="baseline", episodes=2, max_steps=6,
        env_options={"analysis": "off"},
    )
    agent = build_baseline("stockfish", cfg, BaselineOptions(depth=2))
    try:
        episodes, steps = run(cfg, agent, tmp_path)
    finally:
        agent.close()
    assert len(episodes) == 2 and len(steps) == 12
    for s in steps:
        board = chess.Board(s["state"]["fen"])
        assert chess.Move.from_uci(s["action"]) in board.legal_moves
        assert sorted(s["probs"]) == [0.0] * (len(s["probs"]) - 1) + [1.0]
        assert s["probs"][s["legal_actions"].index(s["action"])] == 1.0


def test_cli_baseline_writes_a_valid_run(tmp_path, capsys):
    out = tmp_path / "run"
    code = main([
        "baseline", "--env", "frozenlake", "--variant", "4x4", "--agent", "q-learning", "--train-episodes", "500",
        "--episodes", "3", "--max-steps", "20", "--seed", "1", "--out", str(out), "--no-progress",
    ])
    assert code == 0
    assert main(["validate", str(out)]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["model"] == "q-learning" and manifest["config"]["encoding"] == "ascii"
    assert manifest["model"]["details"]["train_episodes"] == 500
    assert manifest["model"]["details"]["max_steps"] == 20
    code = main([
        "baseline", "--env", "frozenlake", "-o", "map_name=8x8", "--agent", "soft-optimal", "--temperature", "0.5",
        "--episodes", "2", "--max-steps", "20", "--encoding", "coords", "--out", str(tmp_path / "soft"), "--no-progress",
    ])
    assert code == 0
    manifest = json.loads((tmp_path / "soft" / "manifest.json").read_text())
    assert manifest["config"]["agent"]["options"]["temperature"] == 0.5 and manifest["model"]["details"]["temperature"] == 0.5
    assert manifest["environment"]["options"] == {"map_name": "8x8"}


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--env", "frozenlake", "--agent", "q-learnin"], "did you mean 'q-learning'"),
        (["--env", "chess", "--agent", "optimal", "-o", "analysis=off"], "needs an environment with a tabular MDP"),
        (["--env", "frozenlake", "--agent", "stockfish"], "chess only"),
        (["--env", "frozenlake", "--agent", "random", "--episodes", "0"], "episodes"),
        (["--env", "frozenlak", "--agent", "random"], "did you mean 'frozenlake'"),
    ],
)
def test_cli_baseline_errors(argv, message, tmp_path, capsys):
    assert main(["baseline", *argv, "--out", str(tmp_path / "x"), "--no-progress"]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_ppo_without_stable_baselines3_says_what_to_install(monkeypatch):
    import sys

    from harness.backends.base import MissingDependencyError

    monkeypatch.setitem(sys.modules, "stable_baselines3", None)  # import fails as if not installed
    with pytest.raises(MissingDependencyError, match=r"pip install 'zso\[rl\]'"):
        train_ppo(make_env("frozenlake", "4x4"), PPOConfig(train_steps=10))
