"""The lockstep runner: end-to-end games, replays, retries, fallbacks, Ctrl-C."""

from __future__ import annotations

import json
from itertools import cycle
from typing import Sequence

import chess
import numpy as np
import pytest

from harness.agents import Decision
from harness.agents.language import ChooseAgent, GenerateAgent, action_distribution
from harness.backends.base import ContinuationScore, GenerateOptions, ModelInfo, ScoreRequest
from harness.config import RunConfig
from harness.records import iter_episodes, iter_steps, read_manifest
from harness.runner import Runner, RunInterrupted
from harness.validate import validate_run
from textenvs import get_encoding


class ScriptedBackend:
    """A backend that replays fixed replies and scores continuations by a fixed rule."""

    def __init__(self, replies: Sequence[str] = ("e2e4",), prefer: str = "a"):
        self.replies = cycle(replies)
        self.prefer = prefer
        self.generated: list[str] = []

    def info(self) -> ModelInfo:
        return ModelInfo("scripted", "test", "-")

    def format_prompt(self, text: str) -> str:
        return text

    def generate(self, prompts: Sequence[str], options: GenerateOptions) -> list[str]:
        self.generated += list(prompts)
        return [next(self.replies) for _ in prompts]

    def score(self, requests: Sequence[ScoreRequest]) -> list[list[ContinuationScore]]:
        # Continuations containing `prefer` score highest; ties by order.
        return [[ContinuationScore(-float(i) + 100 * (self.prefer in c), 1) for i, c in enumerate(r.continuations)] for r in requests]

    def close(self) -> None:
        pass


def replay_chess(run_dir) -> int:
    """Replay every recorded game from its start position; returns the moves replayed."""
    steps: dict[int, list[dict]] = {}
    for s in iter_steps(run_dir):
        steps.setdefault(s["episode"], []).append(s)
    replayed = 0
    for ep in iter_episodes(run_dir):
        board = chess.Board(ep["reset_info"]["start_fen"])
        if ep["reset_info"].get("opponent_move"):
            board.push_uci(ep["reset_info"]["opponent_move"])
        for s in steps.get(ep["episode"], []):
            assert board.fen() == s["state"]["fen"]
            move = chess.Move.from_uci(s["action"])
            assert move in board.legal_moves, (s["action"], board.fen())
            board.push(move)
            replayed += 1
            if s["info"].get("opponent_move"):
                board.push_uci(s["info"]["opponent_move"])
    return replayed


def config(**kw) -> RunConfig:
    base = dict(env="chess", encoding="fen", episodes=3, max_steps=3, batch_size=2, seed=0,
                env_options={"opponent": "random", "analysis": "off"})
    return RunConfig(**{**base, **kw})


def test_choose_run_validates_and_replays(tmp_path):
    backend = ScriptedBackend(prefer="e2e4")
    run = Runner(config(), backend).run(tmp_path / "run")
    assert validate_run(run) == []
    assert read_manifest(run)["status"] == "complete"
    episodes = list(iter_episodes(run))
    assert sorted(e["episode"] for e in episodes) == [0, 1, 2]  # 3 episodes through 2 slots
    assert all(e["end_reason"] == "truncated" and e["success"] is False for e in episodes)
    assert replay_chess(run) == 9
    first = next(iter_steps(run))
    assert first["action"] == "e2e4" and first["probs"][first["legal_actions"].index("e2e4")] == 1.0


def test_generate_retries_with_the_reason_then_falls_back(tmp_path):
    backend = ScriptedBackend(replies=["no idea", "Qxh9!", "e2e4"])
    run = Runner(config(mode="generate", max_retries=1, episodes=1, max_steps=2, batch_size=1), backend).run(tmp_path / "r")
    assert validate_run(run) == []
    steps = list(iter_steps(run))
    # Step 0: "no idea" refused, then "Qxh9!" refused -> random fallback.
    assert [a["error_kind"] for a in steps[0]["attempts"]] == ["unparseable", "illegal"]
    assert steps[0]["action_source"] == "fallback" and steps[0]["action"] in steps[0]["legal_actions"]
    assert "not accepted" in steps[0]["attempts"][1]["prompt"]  # the re-prompt says why
    # Step 1: "e2e4" is not legal for White after a move... the parser decides; either way it is recorded.
    episode = next(iter_episodes(run))
    assert episode["invalid_replies"] == sum(len(s["attempts"]) for s in steps)
    assert episode["fallback_actions"] == sum(s["action_source"] == "fallback" for s in steps)
    assert episode["invalid_by_kind"]["unparseable"] >= 1 and episode["invalid_by_kind"]["illegal"] >= 1


def test_forfeit_ends_the_episode_without_an_action(tmp_path):
    backend = ScriptedBackend(replies=["pass"])
    run = Runner(config(mode="generate", max_retries=0, fallback="forfeit", episodes=2, batch_size=2), backend).run(tmp_path / "r")
    assert validate_run(run) == []
    for ep in iter_episodes(run):
        assert ep["end_reason"] == "forfeit" and ep["steps"] == 1 and ep["success"] is False
    assert all(s["action"] is None for s in iter_steps(run))


def test_ctrl_c_keeps_finished_episodes(tmp_path):
    def interrupt_after_first_episode(done, steps):
        if done >= 1:
            raise KeyboardInterrupt

    runner = Runner(config(episodes=4, batch_size=1, max_steps=2), ScriptedBackend())
    with pytest.raises(RunInterrupted) as info:
        runner.run(tmp_path / "r", progress=interrupt_after_first_episode)
    run = info.value.run_dir
    assert info.value.episodes_done == 1
    assert read_manifest(run)["status"] == "interrupted"
    assert [e["episode"] for e in iter_episodes(run)] == [0]
    assert validate_run(run) == []


def test_a_game_over_at_reset_is_recorded_without_steps(tmp_path):
    # Black to move mates at once (Qh4#); the agent plays White.
    fen = "rnbqkbnr/pppp1ppp/8/4p3/6P1/5P2/PPPPP2P/RNBQKBNR b KQkq - 0 2"
    cfg = config(episodes=1, env_options={"opponent": "stockfish:depth=2", "color": "white", "start": fen, "analysis": "off"})
    pytest.importorskip("chess.engine")
    from textenvs.chess.engine import stockfish_available

    if not stockfish_available():
        pytest.skip("needs Stockfish")
    with Runner(cfg, ScriptedBackend()) as runner:
        run = runner.run(tmp_path / "r")
    ep = next(iter_episodes(run))
    assert ep["steps"] == 0 and ep["outcome"] == "checkmate" and ep["success"] is False
    assert validate_run(run) == []


def test_bad_environment_options_fail_before_the_model_loads():
    from textenvs import OptionError

    with pytest.raises(OptionError, match="colour"):
        Runner(config(env_options={"colour": "white"}), backend=None)


def test_action_distribution():
    lp = np.array([-1.0, -2.0, -1.0])
    assert action_distribution(lp, 0).tolist() == [1.0, 0.0, 0.0]
    p = action_distribution(lp, 1.0)
    assert np.isclose(p.sum(), 1) and np.isclose(p[0], p[2]) and p[0] > p[1]
    assert np.allclose(action_distribution(lp, 1e6), 1 / 3, atol=1e-5)


def test_choose_agent_samples_from_its_distribution():
    enc = get_encoding("chess", "fen")
    board = chess.Board()
    legal = tuple(sorted(m.uci() for m in board.legal_moves))
    agent = ChooseAgent(ScriptedBackend(prefer="zzz"), enc, temperature=1.0)
    rng = np.random.default_rng(0)
    picks = [agent.act([Decision(board, legal, rng)])[0].action for _ in range(300)]
    # Scores fall by 1 per position: the first action is e times likelier than the second.
    counts = {a: picks.count(a) for a in legal[:2]}
    assert counts[legal[0]] > counts[legal[1]] > 0


def test_generate_agent_batches_all_pending_decisions():
    enc = get_encoding("chess", "fen")
    board = chess.Board()
    legal = tuple(sorted(m.uci() for m in board.legal_moves))
    backend = ScriptedBackend(replies=["e2e4"])
    agent = GenerateAgent(backend, enc, max_retries=0)
    choices = agent.act([Decision(board, legal, np.random.default_rng(i)) for i in range(5)])
    assert [c.action for c in choices] == ["e2e4"] * 5 and len(backend.generated) == 5


@pytest.mark.model
@pytest.mark.parametrize("mode", ["choose", "generate"])
def test_embedded_model_plays_legal_chess(tmp_path, smollm2_backend, mode):
    cfg = config(mode=mode, episodes=2, max_steps=2, model="smollm2-135m-instruct", max_new_tokens=8)
    run = Runner(cfg, smollm2_backend).run(tmp_path / "run")
    assert validate_run(run) == []
    assert replay_chess(run) == 4
    manifest = read_manifest(run)
    assert len(manifest["model"]["weights_sha256"]) == 64
    if mode == "choose":
        for s in iter_steps(run):
            assert s["action"] == s["legal_actions"][int(np.argmax(s["logprobs"]))]
            assert all(lp < 0 for lp in s["logprobs"])
    json.dumps(manifest)


@pytest.mark.model
def test_a_model_can_play_the_other_side(tmp_path, smollm2_backend):
    cfg = config(episodes=1, max_steps=3, model="smollm2-135m-instruct",
                 env_options={"opponent": "model:smollm2-135m-instruct", "analysis": "off"})
    with Runner(cfg, ScriptedBackend(prefer="e2e4")) as runner:
        run = runner.run(tmp_path / "run")
    assert validate_run(run) == []
    assert replay_chess(run) == 3
    steps = list(iter_steps(run))
    assert all(s["info"]["opponent_move"] for s in steps)
    opponent = read_manifest(run)["environment"]["option_models"]["smollm2-135m-instruct"]
    assert len(opponent["weights_sha256"]) == 64


def test_the_chess_env_takes_a_policy_as_opponent():
    from textenvs import make_env

    env = make_env("chess", opponent=lambda board, legal: legal[-1], analysis="off")
    env.reset(seed=0)
    _, _, _, _, info = env.step("e2e4")
    assert info["opponent_move"] == sorted(m.uci() for m in _after("e2e4").legal_moves)[-1]
    env.close()


def _after(uci: str) -> chess.Board:
    board = chess.Board()
    board.push_uci(uci)
    return board


def test_listed_actions_are_shuffled_per_decision_and_reproducibly():
    from harness.agents import listed_actions

    legal = tuple(sorted(m.uci() for m in chess.Board().legal_moves))
    first = [listed_actions(Decision(None, legal, np.random.default_rng(7)), "shuffled") for _ in range(2)]
    assert first[0] == first[1] and sorted(first[0]) == list(legal) and first[0] != legal
    assert listed_actions(Decision(None, legal, np.random.default_rng(7)), "fixed") == legal
    with pytest.raises(ValueError, match="list order"):
        listed_actions(Decision(None, legal, np.random.default_rng(7)), "backwards")


def test_the_prompt_lists_actions_in_the_shown_order(tmp_path):
    run = Runner(config(episodes=1, max_steps=1), ScriptedBackend(prefer="e2e4")).run(tmp_path / "r")
    step = next(iter_steps(run))
    listed = step["prompt"].split("Legal moves (UCI, like e2e4): ", 1)[1].splitlines()[0].split(", ")
    assert sorted(listed) == step["legal_actions"] and listed != step["legal_actions"]
    fixed = Runner(config(episodes=1, max_steps=1, list_order="fixed"), ScriptedBackend()).run(tmp_path / "f")
    step = next(iter_steps(fixed))
    assert step["prompt"].split("e2e4): ", 1)[1].splitlines()[0].split(", ") == step["legal_actions"]


def test_agent_stream_depends_on_the_encoding_for_models_only():
    """A model's listing order and sampling differ across encodings; a reference agent's do not."""
    from harness.runner import agent_stream

    def first_orders(config: RunConfig) -> list[list[int]]:
        rng = np.random.default_rng(agent_stream(7, config))
        return [list(rng.permutation(8)) for _ in range(5)]

    model = {"env": "frozenlake", "variant": "4x4", "model": "smollm2-135m-instruct", "backend": "transformers"}
    a = first_orders(RunConfig(**model, encoding="ascii"))
    assert a == first_orders(RunConfig(**model, encoding="ascii"))  # reproducible
    assert a != first_orders(RunConfig(**model, encoding="coords"))
    baseline = {**model, "model": "random", "backend": "baseline"}
    assert first_orders(RunConfig(**baseline, encoding="ascii")) == first_orders(RunConfig(**baseline, encoding="coords"))
