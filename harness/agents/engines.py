"""Engines: chess played by Stockfish at a fixed depth and skill level."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np

from harness.agents.base import BaselineError, Choice, Decision, reference_choice
from harness.backends.base import ModelInfo
from harness.records import BASELINE_BACKEND

@dataclass(frozen=True)
class StockfishConfig:
    """Stockfish's own move, searched to a fixed depth at a skill level."""

    #: Search depth in plies.
    depth: int = 8
    #: Skill level 0-20 (``None``: Stockfish's default, 20). Below 20 Stockfish picks
    #: weaker moves with its own generator, so games are not reproducible from the seed.
    skill: int | None = None
    #: The binary (default: see :func:`textenvs.chess.engine.find_stockfish`).
    path: str | None = None

    def __post_init__(self) -> None:
        if self.depth < 1:
            raise BaselineError(f"stockfish depth must be >= 1, got {self.depth}")
        if self.skill is not None and not 0 <= self.skill <= 20:
            raise BaselineError(f"stockfish skill must be 0..20, got {self.skill}")


class StockfishAgent:
    """Chess: Stockfish's move at a fixed depth and skill level; ``probs`` is one-hot."""

    mode = "choose"
    name = "stockfish"

    def __init__(self, config: StockfishConfig = StockfishConfig()):
        import chess.engine

        from textenvs.chess.engine import EngineProcess

        self.config = config
        options = {} if config.skill is None else {"Skill Level": config.skill}
        self._process = EngineProcess(config.path, options)
        self._limit = chess.engine.Limit(depth=config.depth)

    def act(self, decisions: Sequence[Decision]) -> list[Choice]:
        """Ask the engine for each position's move (one search per decision)."""
        import chess

        choices = []
        for d in decisions:
            start = time.perf_counter()
            board = d.state if isinstance(d.state, chess.Board) else chess.Board(d.record["fen"])
            result = self._process.engine.play(board, self._limit)
            move = None if result.move is None else result.move.uci()
            if move not in d.legal:
                raise BaselineError(f"Stockfish returned {move!r}, not a legal move in {board.fen()}")
            probs = np.array([float(a == move) for a in d.legal])
            choices.append(reference_choice(move, probs, time.perf_counter() - start))
        return choices

    def info(self) -> ModelInfo:
        """For the manifest: the binary, the engine's name, depth and skill."""
        engine = self._process.engine
        details = {**asdict(self.config), "path": self._process.path, "engine": engine.id.get("name")}
        return ModelInfo(self.name, BASELINE_BACKEND, f"Stockfish at {self._process.path}", details=details)

    def close(self) -> None:
        """Stop the engine process."""
        self._process.close()


def build_stockfish(config: Any, options: Any, progress: Any = None) -> StockfishAgent:
    """The ``stockfish`` baseline (standard chess: checked by :func:`harness.agents.build_baseline`)."""
    path = config.env_options.get("stockfish_path")
    return StockfishAgent(StockfishConfig(depth=options.depth, skill=options.skill, path=path))
