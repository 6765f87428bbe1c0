"""Stockfish: finding it, playing against it, and centipawn loss (real binary, no mocks)."""

from __future__ import annotations

import json
from typing import Callable

import chess
import pytest

from textenvs.chess.engine import (
    EVAL_CAP,
    Analyser,
    StockfishNotFoundError,
    find_stockfish,
    stockfish_available,
)
from textenvs.chess.env import ChessEnv
from textenvs.chess.opponents import StockfishOpponent

BOGUS = "/nonexistent/bin/stockfish"
#: After 1. e4 d5: White to move; Qd1-g4?? hangs the queen to Bc8xg4.
QUEEN_HANGS = "rnbqkbnr/ppp1pppp/8/3p4/4P3/8/PPPP1PPP/RNBQKBNR w KQkq d6 0 2"
#: After 2. Qg4??: Black to move; Bxg4 wins the queen and is clearly best.
TAKE_THE_QUEEN = "rnbqkbnr/ppp1pppp/8/3p4/4P1Q1/8/PPPP1PPP/RNB1KBNR b KQkq - 1 2"
#: White to move mates with Qh5-f7# (Scholar's mate set-up).
MATE_IN_ONE = "r1bqkbnr/pppp1ppp/2n5/4p2Q/2B1P3/8/PPPP1PPP/RNB1K1NR w KQkq - 4 4"


def needs_stockfish(test: Callable[..., None]) -> Callable[..., None]:
    """Mark ``test`` as needing Stockfish, and skip it when the binary is absent."""
    test = pytest.mark.skipif(not stockfish_available(), reason="Stockfish binary not found")(test)
    return pytest.mark.stockfish(test)


@pytest.fixture
def analyser():
    with Analyser(depth=8) as a:
        yield a


# -- finding the binary (no binary needed) -----------------------------------------------


def test_a_missing_binary_names_the_package() -> None:
    with pytest.raises(StockfishNotFoundError) as info:
        find_stockfish(BOGUS)
    message = str(info.value)
    assert BOGUS in message and "apt-get install stockfish" in message and "/usr/games" in message
    assert isinstance(info.value, FileNotFoundError)


def test_a_bad_environment_variable_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZSO_STOCKFISH", BOGUS)
    with pytest.raises(StockfishNotFoundError, match="ZSO_STOCKFISH"):
        find_stockfish()


@pytest.mark.parametrize("options", [
    {"analysis": "on", "stockfish_path": BOGUS},
    {"analysis": "auto", "stockfish_path": BOGUS},
    {"analysis": "off", "opponent": "stockfish", "stockfish_path": BOGUS},
])
def test_env_reports_a_missing_binary(options: dict[str, str]) -> None:
    with pytest.raises(StockfishNotFoundError, match="apt-get install stockfish"):
        ChessEnv(**options)


@needs_stockfish
def test_find_stockfish() -> None:
    path = find_stockfish()
    assert find_stockfish(path) == path


@needs_stockfish
def test_the_environment_variable_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    path = find_stockfish()
    monkeypatch.setenv("ZSO_STOCKFISH", path)
    monkeypatch.setenv("PATH", "")
    assert find_stockfish() == path


# -- the opponent ------------------------------------------------------------------------


@needs_stockfish
@pytest.mark.parametrize("spec", ["stockfish", "stockfish:depth=3", "stockfish:skill=3,movetime=0.05"])
def test_stockfish_opponent_plays_legal_moves(spec: str) -> None:
    env = ChessEnv(opponent=spec, color="black", analysis="off")
    try:
        obs, info = env.reset(seed=0)
        assert chess.Move.from_uci(info["opponent_move"]) in chess.Board().legal_moves
        for _ in range(4):
            obs, reward, terminated, truncated, info = env.step(env.legal_actions()[0])
            if terminated:
                break
            assert info["opponent_move"] is not None
    finally:
        env.close()


@needs_stockfish
def test_stockfish_opponent_takes_a_hanging_queen() -> None:
    opponent = StockfishOpponent(depth=6)
    try:
        assert opponent.choose(chess.Board(TAKE_THE_QUEEN)).uci() == "c8g4"
        assert opponent.spec == "stockfish:depth=6"
    finally:
        opponent.close()


@needs_stockfish
def test_stockfish_opponent_spec_round_trips() -> None:
    assert StockfishOpponent(skill=3, movetime=0.05).spec == "stockfish:skill=3,movetime=0.05"
    assert StockfishOpponent().spec == "stockfish:depth=10"


# -- centipawn loss ----------------------------------------------------------------------


@needs_stockfish
def test_the_engine_move_loses_nothing(analyser: Analyser) -> None:
    board = chess.Board(TAKE_THE_QUEEN)
    best, _ = analyser.evaluate(board)
    result = analyser.analyse_move(board, best)
    assert (result.cp_loss, result.best_move, result.engine_best) == (0.0, True, "c8g4")
    assert result.metrics() == {"cp_loss": 0.0, "best_move": 1}


@needs_stockfish
def test_hanging_the_queen_loses_a_lot(analyser: Analyser) -> None:
    result = analyser.analyse_move(chess.Board(QUEEN_HANGS), chess.Move.from_uci("d1g4"))
    assert result.best_move is False and result.engine_best != "d1g4"
    assert 500 <= result.cp_loss <= 2 * EVAL_CAP
    assert result.cp_loss == result.best_cp - result.played_cp


@needs_stockfish
def test_missing_a_mate_is_capped(analyser: Analyser) -> None:
    board = chess.Board(MATE_IN_ONE)
    mate = analyser.analyse_move(board, chess.Move.from_uci("h5f7"))
    assert (mate.cp_loss, mate.best_move, mate.best_cp) == (0.0, True, EVAL_CAP)
    miss = analyser.analyse_move(board, chess.Move.from_uci("h5h4"))
    assert miss.engine_best == "h5f7" and 0 < miss.cp_loss <= 2 * EVAL_CAP


@needs_stockfish
def test_env_reports_metrics() -> None:
    env = ChessEnv(start=TAKE_THE_QUEEN, opponent="random", analysis="on", analysis_depth=6)
    try:
        env.reset(seed=0)
        obs, reward, terminated, truncated, info = env.step("c8g4")
        assert info["metrics"] == {"cp_loss": 0.0, "best_move": 1}
        assert info["engine_best"] == "c8g4" and info["san"] == "Bxg4"
        json.dumps(info)
        env.reset(seed=0)
        info = env.step("a7a6")[4]
        assert info["metrics"]["best_move"] == 0 and info["metrics"]["cp_loss"] >= 500
    finally:
        env.close()


@needs_stockfish
def test_auto_analysis_uses_stockfish_when_present() -> None:
    env = ChessEnv(analysis="auto")
    try:
        assert env.analyser is not None
        env.reset(seed=0)
        assert "metrics" in env.step("e2e4")[4]
    finally:
        env.close()
    assert ChessEnv(analysis="off").analyser is None
