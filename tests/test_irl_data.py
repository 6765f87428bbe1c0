"""Reading run directories into IRL inputs (irl.data), chess move features (textenvs.chess.features),
and the tabular pieces of irl.coherence checked against known answers."""

from __future__ import annotations

from typing import Sequence

import chess
import numpy as np
import pytest

from harness.backends.base import ContinuationScore, GenerateOptions, ModelInfo, ScoreRequest
from harness.agents.planners import PlanningConfig, plan_soft_optimal
from harness.agents.uniform import RandomAgent
from harness.config import RunConfig
from harness.records import ResultsError, iter_episodes, iter_steps
from harness.runner import Runner
from irl.choice import Decision
from irl.analysis.tabular import tabular_features
from irl.distance import reward_distance
from irl.analysis.kinds import fit_kind_of
from irl.analysis.runs import load_chess, load_tabular, read_info
from textenvs.chess.features import FEATURES, feature_matrix, register_feature, resolve_features
from textenvs import UnknownIdError, make_env
from textenvs.chess.engine import stockfish_available


def grid_run(tmp_path, agent, *, env="frozenlake", variant="4x4", episodes=12, max_steps=20, encoding="ascii", name="run"):
    cfg = RunConfig(env=env, variant=variant, encoding=encoding, model=agent.name, backend="baseline", mode="choose",
                    episodes=episodes, max_steps=max_steps, batch_size=4)
    with Runner(cfg, agent=agent) as runner:
        return runner.run(tmp_path / name)


class PassBackend:
    """Replies something no parser accepts: with fallback=forfeit every episode forfeits."""

    def info(self) -> ModelInfo:
        return ModelInfo("passer", "test", "-")

    def format_prompt(self, text: str) -> str:
        return text

    def generate(self, prompts: Sequence[str], options: GenerateOptions) -> list[str]:
        return ["pass"] * len(prompts)

    def score(self, requests: Sequence[ScoreRequest]) -> list[list[ContinuationScore]]:
        return [[ContinuationScore(-float(i), 1) for i in range(len(r.continuations))] for r in requests]

    def close(self) -> None:
        pass


@pytest.fixture(scope="module")
def soft_run(tmp_path_factory):
    mdp = make_env("frozenlake", "4x4").mdp()
    agent = plan_soft_optimal(mdp, PlanningConfig(discount=0.9, temperature=0.2))
    return grid_run(tmp_path_factory.mktemp("soft"), agent)


# -- tabular runs ---------------------------------------------------------------------------


def test_tabular_episodes_match_the_recorded_steps(soft_run):
    run = load_tabular(soft_run)
    mdp = run.mdp
    assert run.info.env == "frozenlake" and run.info.is_baseline and run.horizon == 20
    steps = list(iter_steps(soft_run))
    records = {e["episode"]: e for e in iter_episodes(soft_run)}
    assert len(run.episodes) == len(records) == 12 and run.skipped == {}
    assert run.n_decisions == len(steps) and run.has_probs
    for ep in run.episodes:
        mine = [s for s in steps if s["episode"] == ep.episode]
        assert ep.states[: ep.n_decisions].tolist() == [s["state"]["index"] for s in mine]
        assert [mdp.action_names[a] for a in ep.actions] == [s["action"] for s in mine]
        np.testing.assert_allclose(ep.probs.sum(axis=1), 1.0)
        for row, s in zip(ep.probs, mine):
            for name, p in zip(s["legal_actions"], s["probs"]):
                assert row[mdp.action_names.index(name)] == pytest.approx(p)
        record = records[ep.episode]
        if record["terminated"]:  # the absorbing state it ended in is appended
            assert len(ep.states) == ep.n_decisions + 1 and mdp.terminal[ep.states[-1]]
            assert mdp.rewards[ep.states[-2], ep.actions[-1], ep.states[-1]] == record["total_reward"]
        else:
            assert len(ep.states) == ep.n_decisions == 20
        assert ep.total_reward == record["total_reward"]


def test_slippery_final_states_are_recovered_by_replay(tmp_path):
    # On slippery ice the last move may end in several holes: the seed is replayed.
    d = grid_run(tmp_path, RandomAgent(), variant="4x4-slippery", episodes=10, max_steps=30)
    run = load_tabular(d)
    env = make_env("frozenlake", "4x4-slippery")
    records = {e["episode"]: e for e in iter_episodes(d)}
    assert sum(r["terminated"] for r in records.values()) >= 3
    for ep in run.episodes:
        record = records[ep.episode]
        if not record["terminated"]:
            continue
        env.reset(seed=record["seed"])
        for a in ep.actions:
            env.step(run.mdp.action_names[a])
        assert ep.states[-1] == env.state_record()["index"]
        assert run.mdp.terminal[ep.states[-1]]


def test_forfeited_episodes_are_skipped_and_counted(tmp_path):
    cfg = RunConfig(env="frozenlake", encoding="ascii", mode="generate", max_retries=0, fallback="forfeit",
                    episodes=3, max_steps=5, batch_size=3)
    d = Runner(cfg, PassBackend()).run(tmp_path / "r")
    run = load_tabular(d)
    assert run.episodes == () and run.skipped == {"forfeit": 3} and run.returns == (0.0, 0.0, 0.0)


def test_a_run_that_does_not_fit_the_mdp_is_refused(soft_run):
    other = make_env("frozenlake", "8x8").mdp()  # 64 states: the 4x4 moves are impossible here
    with pytest.raises(ResultsError, match="impossible in the MDP|no MDP index"):
        load_tabular(soft_run, mdp=other)


def test_read_info_and_the_fit_kind_of_a_run(soft_run):
    info = read_info(soft_run)
    assert info.agent == "baseline:soft-optimal" and info.env_label == "frozenlake/4x4" and info.encoding == "ascii"
    assert info.group_key()[0] == "soft-optimal"
    assert fit_kind_of(info.env, info.variant, info.options).name == "tabular"


# -- tabular features and distances ---------------------------------------------------------


@pytest.mark.parametrize("env, variant, feature", [("frozenlake", "4x4", "at_goal"), ("keys-chests", "train", "chests_opened")])
def test_the_true_reward_is_expressed_by_one_named_feature(env, variant, feature):
    # Delta features are the true reward outright; arrival features (the default) up to
    # potential shaping and scale, which the distance ignores.
    mdp = make_env(env, variant).mdp()
    delta = tabular_features(mdp, [feature], "delta")
    assert delta.names == (feature, "step") and delta.form == "delta"
    np.testing.assert_allclose(delta.phi[:, :, 0], mdp.expected_rewards(), atol=1e-12)
    arrival = tabular_features(mdp, [feature])
    assert arrival.form == "arrival"
    assert reward_distance(arrival.phi[:, :, 0], mdp.rewards, mdp) == pytest.approx(0.0, abs=1e-6)
    assert reward_distance(delta.phi[:, :, 0], mdp.rewards, mdp) == pytest.approx(0.0, abs=1e-6)
    assert np.all(arrival.phi[np.asarray(mdp.terminal), :, 1] == 0)  # no step cost once absorbed


def test_onehot_arrival_features_and_reward_distance_facts():
    mdp = make_env("frozenlake", "4x4").mdp()
    f = tabular_features(mdp, "onehot")
    assert f.form == "arrival" and f.phi.shape == (16, 4, 16) and "step" not in f.names
    np.testing.assert_allclose(f.phi.sum(axis=-1), 1.0)  # a distribution over the next state
    r = mdp.expected_rewards()
    assert reward_distance(r, 3.0 * r, mdp) == pytest.approx(0.0, abs=1e-6)
    assert reward_distance(r, -r, mdp) == pytest.approx(1.0, abs=1e-6)
    assert reward_distance(np.ones_like(r), np.ones_like(r) * 2, mdp) is None  # a constant reward ranks nothing
    mask = mdp.decision_states
    assert mask.sum() == 16 - 5 and not mask[np.asarray(mdp.terminal)].any()


# -- chess ----------------------------------------------------------------------------------


def features_of(fen: str, uci: str) -> dict[str, float]:
    board = chess.Board(fen)
    row = feature_matrix(board, [chess.Move.from_uci(uci)])[0]
    return dict(zip(resolve_features(None), row))


@pytest.mark.parametrize("fen, uci, expected", [
    # Queen takes queen: 9 pawns of material, a capture.
    ("4k3/8/8/3q4/8/8/3Q4/4K3 w - - 0 1", "d2d5", {"material": 9.0, "capture": 1.0}),
    # Promotion to a queen: +8, a pawn advancing one rank.
    ("4k3/P7/8/8/8/8/8/4K3 w - - 0 1", "a7a8q", {"material": 8.0, "capture": 0.0, "pawn_advance": 1.0}),
    # En passant: a pawn captured although the target square is empty.
    ("4k3/8/8/3pP3/8/8/8/4K3 w - d6 0 1", "e5d6", {"material": 1.0, "capture": 1.0, "pawn_advance": 1.0}),
    # Double pawn push, no capture.
    ("4k3/8/8/8/8/8/4P3/4K3 w - - 0 1", "e2e4", {"material": 0.0, "pawn_advance": 2.0}),
    # A check by the rook.
    ("4k3/8/8/8/8/8/8/R3K3 w - - 0 1", "a1a8", {"check": 1.0, "capture": 0.0}),
    # A quiet knight move: no material, not a pawn.
    ("4k3/8/8/8/8/8/8/1N2K3 w - - 0 1", "b1c3", {"material": 0.0, "pawn_advance": 0.0, "check": 0.0}),
])
def test_chess_feature_cases(fen, uci, expected):
    got = features_of(fen, uci)
    for name, value in expected.items():
        assert got[name] == value, (name, got)


def test_chess_features_signs():
    # Black to move: the d-pawn steps out of the bishop's diagonal, which then reaches e8.
    got = features_of("4k3/3p4/8/1B6/8/8/8/4K3 b - - 0 1", "d7d6")
    assert got["king_danger"] == 1.0 and got["pawn_advance"] == 1.0
    # Knight to the centre: more attacks on d4/e4/d5/e5 and more moves.
    got = features_of("4k3/8/8/8/8/8/8/1N2K3 w - - 0 1", "b1c3")
    assert got["centre"] > 0 and got["mobility"] > 0


def test_feature_registry():
    assert "engine_eval_change" not in resolve_features(None) and "engine_eval_change" in FEATURES
    with pytest.raises(UnknownIdError, match="did you mean 'material'"):
        resolve_features(["materiel"])
    with pytest.raises(RuntimeError, match="Stockfish"):
        feature_matrix(chess.Board(), [chess.Move.from_uci("e2e4")], ["engine_eval_change"])
    register_feature("castles", lambda ctx: float(ctx.board.is_castling(ctx.move)), "1 for castling", default=False)
    try:
        board = chess.Board("4k3/8/8/8/8/8/8/4K2R w K - 0 1")
        x = feature_matrix(board, [chess.Move.from_uci("e1g1"), chess.Move.from_uci("e1f1")], ["castles", "material"])
        assert x.tolist() == [[1.0, 0.0], [0.0, 0.0]]
    finally:
        FEATURES.unregister("castles")


@pytest.mark.stockfish
@pytest.mark.skipif(not stockfish_available(), reason="needs Stockfish")
def test_engine_eval_change_prefers_winning_the_queen():
    from textenvs.chess.features import EngineEvaluator

    board = chess.Board("4k3/8/8/3q4/8/8/3Q4/4K3 w - - 0 1")
    moves = [chess.Move.from_uci("d2d5"), chess.Move.from_uci("d2d3")]
    engine = EngineEvaluator(depth=4)
    try:
        x = feature_matrix(board, moves, ["engine_eval_change"], engine=engine)
    finally:
        engine.close()
    assert x[0, 0] > x[1, 0] + 3  # taking the queen is worth much more than a quiet move


class FirstMoveBackend:
    """Scores continuations so that the first legal move is preferred."""

    def info(self) -> ModelInfo:
        return ModelInfo("first", "test", "-")

    def format_prompt(self, text: str) -> str:
        return text

    def generate(self, prompts, options):
        return ["e2e4"] * len(prompts)

    def score(self, requests):
        return [[ContinuationScore(-float(i), 1) for i in range(len(r.continuations))] for r in requests]

    def close(self) -> None:
        pass


def test_load_chess_decisions(tmp_path):
    cfg = RunConfig(env="chess", encoding="fen", mode="choose", temperature=1.0, episodes=2, max_steps=3, batch_size=2,
                    env_options={"opponent": "random", "analysis": "off"})
    d = Runner(cfg, FirstMoveBackend()).run(tmp_path / "c")
    steps = sorted(iter_steps(d), key=lambda s: (s["episode"], s["t"]))
    run = load_chess(d)
    assert run.targets == "probs" and run.n_decisions == len(steps) and len(run.games) == 2
    assert run.feature_names == resolve_features(None)
    flat = [(d_, c, m) for g in run.games for d_, c, m in zip(g.decisions, g.chosen, g.moves)]
    for (dec, chosen, move), s in zip(flat, steps):
        assert isinstance(dec, Decision) and dec.features.shape == (len(s["legal_actions"]), len(run.feature_names))
        np.testing.assert_allclose(dec.target, s["probs"])
        assert s["legal_actions"][chosen] == move == s["action"]
    by_action = load_chess(d, ["material", "capture"], targets="actions")
    assert by_action.targets == "actions" and by_action.feature_names == ("material", "capture")
    assert all(np.ndim(dec.target) == 0 for dec in by_action.decisions)
    with pytest.raises(ValueError, match="targets"):
        load_chess(d, targets="moves")
