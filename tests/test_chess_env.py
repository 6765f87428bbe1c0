"""ChessEnv: the gymnasium contract, seeding, start positions, rewards, info records."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import chess
import pytest

from textenvs import OptionError, TextEnv, get_encoding, make_env
from textenvs.chess.env import ChessEnv
from textenvs.chess.opponents import OpponentError, RandomOpponent, parse_opponent_spec
from textenvs.errors import IllegalActionError

DATA = Path(__file__).parent / "data"
EPD = str(DATA / "starts.epd")
PGN = str(DATA / "games.pgn")
#: Qe6-f7 stalemates the black king on h8.
STALEMATE_IN_ONE = "7k/8/4Q1K1/8/8/8/8/8 w - - 0 1"


class Scripted:
    """An opponent that plays a fixed list of SAN moves (an Opponent, not a mock)."""

    def __init__(self, *sans: str):
        self.sans = list(sans)
        self.closed = False

    def choose(self, board: chess.Board) -> chess.Move:
        return board.parse_san(self.sans.pop(0))

    def close(self) -> None:
        self.closed = True


def env_of(**options: Any) -> ChessEnv:
    return ChessEnv(**{"analysis": "off", **options})


def play_random_game(env: ChessEnv, seed: int, episode_index: int | None = None, max_steps: int = 300):
    """Random agent moves (from a seeded ``random.Random``); every step's outputs."""
    rng = random.Random(seed)
    options = None if episode_index is None else {"episode_index": episode_index}
    obs, info = env.reset(seed=seed, options=options)
    steps = []
    for _ in range(max_steps):
        action = rng.choice(env.legal_actions())
        result = env.step(action)
        steps.append((action, *result))
        if result[2]:
            break
    return info, steps


# -- the contract ------------------------------------------------------------------------


def test_reset_and_step_follow_the_gymnasium_contract() -> None:
    env = env_of()
    assert isinstance(env, TextEnv) and env.family == "chess"
    obs, info = env.reset(seed=0)
    assert obs == chess.STARTING_FEN and env.observation_space.contains(obs)
    assert info == {"start_fen": chess.STARTING_FEN, "start_index": 0, "agent_color": "white", "opponent_move": None}
    legal = env.legal_actions()
    assert legal == sorted(m.uci() for m in chess.Board().legal_moves)
    assert all(env.action_space.contains(a) for a in legal)
    obs, reward, terminated, truncated, info = env.step("e2e4")
    assert env.observation_space.contains(obs)
    assert (reward, terminated, truncated) == (0.0, False, False)
    assert isinstance(reward, float) and info["san"] == "e4"
    board = chess.Board()
    board.push_uci("e2e4")
    board.push_uci(info["opponent_move"])
    assert obs == board.fen() == env.state_record()["fen"]
    assert env.text_state().move_stack == board.move_stack


def test_text_state_is_a_copy() -> None:
    env = env_of()
    env.reset(seed=0)
    state = env.text_state()
    state.push_uci("e2e4")
    assert env.text_state().move_stack == []


def test_use_before_reset_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="reset"):
        env_of().legal_actions()


@pytest.mark.parametrize("action", ["e2e5", "e1g1", "xyz", "", "0000", "E2E4", "e2e4 "])
def test_illegal_action_raises_and_changes_nothing(action: str) -> None:
    env = env_of()
    env.reset(seed=0)
    with pytest.raises(IllegalActionError) as info:
        env.step(action)
    assert chess.STARTING_FEN in str(info.value)
    assert env.text_state().move_stack == []


def test_make_env_and_its_option_errors() -> None:
    env = make_env("chess", opponent="random", analysis="off")
    assert isinstance(env, ChessEnv)
    with pytest.raises(OptionError, match="colour"):
        make_env("chess", colour="white")


# -- options -----------------------------------------------------------------------------

BAD_OPTIONS = [
    ({"color": "red"}, ValueError, "red"),
    ({"analysis": "maybe"}, ValueError, "maybe"),
    ({"opponent": "alpha"}, ValueError, "'alpha'"),
    ({"opponent": "random:fast"}, ValueError, "'random:fast'"),
    ({"opponent": "stockfish:"}, ValueError, "accepted|expected"),
    ({"opponent": "stockfish:elo=1500"}, ValueError, "elo"),
    ({"opponent": "stockfish:skill=abc"}, ValueError, "abc"),
    ({"opponent": "stockfish:skill=30"}, ValueError, "0..20"),
    ({"opponent": "stockfish:depth=0"}, ValueError, ">= 1"),
    ({"opponent": "stockfish:movetime=-1"}, ValueError, "movetime"),
    ({"opponent": object()}, TypeError, "choose"),
    ({"start": "not a fen"}, ValueError, "'not a fen'"),
    ({"start": "8/8/8/8/8/8/8/8 w - - 0 1"}, ValueError, "not a legal position"),
    ({"start": "7k/5Q2/6K1/8/8/8/8/8 b - - 0 1"}, ValueError, "already over"),
    ({"start": "missing.epd"}, FileNotFoundError, "missing.epd"),
    ({"start": "games/missing.pgn"}, FileNotFoundError, "missing.pgn"),
]


@pytest.mark.parametrize("options, error, words", BAD_OPTIONS)
def test_bad_options_are_named(options: dict[str, Any], error: type[Exception], words: str) -> None:
    with pytest.raises(error, match=words):
        env_of(**options)


SPEC_CASES = [
    ("random", ("random", {})),
    ("stockfish", ("stockfish", {})),
    ("stockfish:skill=5", ("stockfish", {"skill": 5})),
    ("stockfish:depth=3", ("stockfish", {"depth": 3})),
    ("stockfish:skill=3,movetime=0.05", ("stockfish", {"skill": 3, "movetime": 0.05})),
    (" stockfish:skill = 3 , depth=2 ", ("stockfish", {"skill": 3, "depth": 2})),
]


@pytest.mark.parametrize("spec, parsed", SPEC_CASES)
def test_opponent_specs(spec: str, parsed: tuple[str, dict[str, Any]]) -> None:
    assert parse_opponent_spec(spec) == parsed


def test_reset_options_are_checked() -> None:
    env = env_of()
    with pytest.raises(ValueError, match="episode"):
        env.reset(options={"episode": 1})
    with pytest.raises(ValueError, match="integer"):
        env.reset(options={"episode_index": "1"})


# -- seeding -----------------------------------------------------------------------------


def test_same_seed_same_game() -> None:
    first = play_random_game(env_of(), seed=11)
    random.seed(12345)  # the global generator must not matter
    second = play_random_game(env_of(), seed=11)
    assert first == second
    assert first != play_random_game(env_of(), seed=12)


def test_reseeding_one_env_replays_the_game() -> None:
    env = env_of()
    assert play_random_game(env, seed=5) == play_random_game(env, seed=5)


def test_the_global_random_generator_is_not_touched() -> None:
    state = random.getstate()
    env = env_of(color="black")
    for seed in range(3):
        env.reset(seed=seed)
        for _ in range(5):
            env.step(env.legal_actions()[0])
    assert random.getstate() == state


def test_random_opponent_draws_from_the_generator_it_is_given() -> None:
    import numpy as np

    def moves(seed: int) -> list[str]:
        rng = np.random.default_rng(seed)
        opponent = RandomOpponent(lambda: rng)
        return [opponent.choose(chess.Board()).uci() for _ in range(10)]

    assert moves(1) == moves(1) != moves(2)


# -- colours and opponents ---------------------------------------------------------------


def test_opponent_moves_first_when_the_agent_is_black() -> None:
    env = env_of(color="black")
    obs, info = env.reset(seed=3)
    assert info["agent_color"] == env.agent_color == "black"
    assert info["start_fen"] == chess.STARTING_FEN
    board = chess.Board()
    board.push_uci(info["opponent_move"])
    assert obs == board.fen() and chess.Board(obs).turn == chess.BLACK
    assert env.text_state().move_stack == board.move_stack


COLOR_CASES = [
    # (start, color, agent colour, opponent moves first)
    ("startpos", "side-to-move", "white", False),
    ("startpos", "white", "white", False),
    ("startpos", "black", "black", True),
    ("rnbqkbnr/pppppppp/8/8/4P3/8/PPPP1PPP/RNBQKBNR b KQkq - 0 1", "side-to-move", "black", False),
    ("rnbqkbnr/pppppppp/8/8/4P3/8/PPPP1PPP/RNBQKBNR b KQkq - 0 1", "white", "white", True),
]


@pytest.mark.parametrize("start, color, agent, opponent_first", COLOR_CASES)
def test_colors(start: str, color: str, agent: str, opponent_first: bool) -> None:
    env = env_of(start=start, color=color)
    obs, info = env.reset(seed=0)
    assert info["agent_color"] == agent
    assert (info["opponent_move"] is not None) == opponent_first
    assert chess.Board(obs).turn == (agent == "white")


def test_an_opponent_object_is_used_and_closed() -> None:
    opponent = Scripted("e5", "Nc6")
    env = env_of(opponent=opponent)
    env.reset(seed=0)
    assert env.step("e2e4")[4]["opponent_move"] == "e7e5"
    assert env.step("g1f3")[4]["opponent_move"] == "b8c6"
    env.close()
    assert opponent.closed


def test_an_illegal_opponent_move_is_an_error() -> None:
    class Cheater(Scripted):
        def choose(self, board: chess.Board) -> chess.Move:
            return chess.Move.from_uci("e7e4")

    env = env_of(opponent=Cheater())
    env.reset(seed=0)
    with pytest.raises(OpponentError, match="e7e4"):
        env.step("e2e4")


# -- start positions ---------------------------------------------------------------------


def test_start_from_fen() -> None:
    fen = "r1bqkbnr/pppp1ppp/2n5/4p3/4P3/5N2/PPPP1PPP/RNBQKB1R w KQkq - 2 3"
    env = env_of(start=fen)
    obs, info = env.reset(seed=0)
    assert obs == info["start_fen"] == fen


def test_start_from_epd_cycles_with_the_episode_index() -> None:
    env = env_of(start=EPD)
    assert len(env.starts) == 3
    fens = [env.reset(options={"episode_index": k})[1]["start_fen"] for k in range(6)]
    assert fens[:3] == [b.fen() for b in env.starts] and fens[3:] == fens[:3]
    assert fens[1] == "r1bqkbnr/pppp1ppp/2n5/4p3/4P3/5N2/PPPP1PPP/RNBQKB1R w KQkq - 2 3"


def test_start_from_pgn_keeps_the_history() -> None:
    env = env_of(start=PGN)
    # 5 positions of game 1, 4 of game 2, 4 of game 3 (its checkmate position is left out)
    assert len(env.starts) == 13
    assert not any(b.is_checkmate() for b in env.starts)
    obs, info = env.reset(seed=0, options={"episode_index": 4 + 13})
    assert info["start_index"] == 4
    state = env.text_state()
    assert [m.uci() for m in state.move_stack] == ["e2e4", "e7e5", "g1f3", "b8c6"]
    assert get_encoding("chess", "pgn").render_state(state) == "1. e4 e5 2. Nf3 Nc6"
    env.reset(options={"episode_index": 8})
    assert get_encoding("chess", "pgn").render_state(env.text_state()).endswith("1. e4 Kd7 2. Kd2")


def test_start_without_an_index_is_drawn_with_the_seed() -> None:
    env = env_of(start=PGN)
    drawn = [env.reset(seed=s)[1]["start_index"] for s in range(30)]
    assert len(set(drawn)) > 5
    assert drawn == [env.reset(seed=s)[1]["start_index"] for s in range(30)]


# -- the end of the game -----------------------------------------------------------------

END_CASES = [
    # (start, color, agent moves, opponent moves, reward, outcome, result, success)
    ("startpos", "white", ["f2f3", "g2g4"], ["e5", "Qh4#"], -1.0, "checkmate", "0-1", False),
    ("startpos", "black", ["e7e5", "d8h4"], ["f3", "g4"], 1.0, "checkmate", "0-1", True),
    (STALEMATE_IN_ONE, "white", ["e6f7"], [], 0.0, "stalemate", "1/2-1/2", False),
    ("4k3/8/8/8/8/8/3p4/4K1N1 w - - 0 1", "white", ["e1d2"], [], 0.0, "insufficient_material", "1/2-1/2", False),
    ("startpos", "white", ["g1f3", "f3g1", "g1f3", "f3g1"], ["Nf6", "Ng8", "Nf6"], 0.0, "threefold_repetition", "1/2-1/2", False),
]


@pytest.mark.parametrize("start, color, agent, replies, reward, outcome, result, success", END_CASES)
def test_game_end(start: str, color: str, agent: list[str], replies: list[str], reward: float,
                  outcome: str, result: str, success: bool) -> None:
    env = env_of(start=start, color=color, opponent=Scripted(*replies))
    env.reset(seed=0)
    for action in agent[:-1]:
        assert env.step(action)[1:3] == (0.0, False)
    obs, got_reward, terminated, truncated, info = env.step(agent[-1])
    assert (got_reward, terminated, truncated) == (reward, True, False)
    assert (info["outcome"], info["result"], info["success"]) == (outcome, result, success)
    assert env.legal_actions() == []
    with pytest.raises(IllegalActionError, match="over"):
        env.step(agent[-1])


def test_an_opponent_first_move_can_end_the_game_in_reset() -> None:
    mate_in_one = "r1bqkbnr/pppp1ppp/2n5/4p2Q/2B1P3/8/PPPP1PPP/RNB1K1NR w KQkq - 4 4"
    env = env_of(start=mate_in_one, color="black", opponent=Scripted("Qxf7#"))
    obs, info = env.reset(seed=0)
    assert (info["opponent_move"], info["outcome"], info["result"], info["success"]) == ("h5f7", "checkmate", "1-0", False)
    assert env.legal_actions() == []


# -- whole games -------------------------------------------------------------------------


@pytest.mark.parametrize("color", ["white", "black"])
@pytest.mark.parametrize("start", ["startpos", EPD, PGN])
def test_random_games_are_json_and_replay_legally(color: str, start: str) -> None:
    env = env_of(start=start, color=color)
    for seed in range(3):
        reset_info, steps = play_random_game(env, seed=seed)
        json.dumps(reset_info), json.dumps(env.state_record())
        board = chess.Board(reset_info["start_fen"])
        if reset_info["opponent_move"]:
            board.push_uci(reset_info["opponent_move"])
        for action, obs, reward, terminated, truncated, info in steps:
            json.dumps(info)
            assert info["san"] == board.san(chess.Move.from_uci(action))
            board.push_uci(action)
            if info["opponent_move"]:
                board.push_uci(info["opponent_move"])
            assert board.fen() == obs
            assert truncated is False
        if steps and steps[-1][3]:
            last = steps[-1][5]
            assert {"outcome", "result", "success"} <= set(last)
            expected = 0.0 if last["result"] == "1/2-1/2" else (1.0 if last["success"] else -1.0)
            assert steps[-1][2] == expected
