"""Chess as a gymnasium environment: the agent plays one side, an opponent the other.

Observations are FEN strings and actions UCI strings (``"e2e4"``, ``"e7e8q"``); an action
that is not legal raises :class:`~textenvs.errors.IllegalActionError` (nothing is ever
substituted for it). The opponent replies inside ``step`` (and moves first inside
``reset`` when the agent plays the side not to move). Rewards are from the agent's side:
+1 for a win, -1 for a loss, 0 otherwise, given on the step that ends the game; the game
ends when ``board.outcome(claim_draw=True)`` says so (so a claimable repetition or
fifty-move draw ends it). ``truncated`` is always False: the runner enforces step limits.

With analysis on, each step's ``info`` also carries the agent move's centipawn loss
(see :mod:`textenvs.chess.engine` for its definition) and Stockfish's best move.

``rules`` picks a variant (:mod:`.variants`: antichess, king of the hill, three-check,
atomic, racing kings, horde), played by python-chess's board for it with the same
encodings, parser and opponents; its end and result are recorded as chess's, a win by
the variant's own rule with the variant's word for it as ``outcome`` (``king_exploded``,
``third_check``...; a draw by its own rule, racing kings' both kings home, is
``variant_draw``).
Stockfish plays standard chess only, so a variant runs without analysis and refuses a
Stockfish opponent.
"""

from __future__ import annotations

import string
from typing import Any

import chess
import gymnasium
import numpy as np
from gymnasium import spaces

from textenvs.chess.encodings import color_name
from textenvs.chess.engine import Analyser, StockfishNotFoundError
from textenvs.chess.opponents import Opponent, OpponentError, PolicyOpponent, make_opponent
from textenvs.chess.starts import load_starts
from textenvs.chess.variants import Variant, get_variant
from textenvs.errors import IllegalActionError

#: Accepted values of ``color``.
COLORS = ("white", "black", "side-to-move")
#: Accepted values of ``analysis``.
ANALYSIS_MODES = ("auto", "on", "off")
#: Accepted keys of ``reset(options=...)``.
RESET_OPTIONS = ("episode_index",)

_FEN_CHARS = "".join(sorted(set("pnbrqkPNBRQK/ -+w" + string.digits + "abcdefgh")))


class ChessEnv(gymnasium.Env):
    """Chess against a random mover, Stockfish, or any :class:`~.opponents.Opponent`.

    Args:
        opponent: ``"random"``, ``"stockfish[:skill=S,depth=D,movetime=T]"``, an object
            with ``choose(board) -> chess.Move`` and ``close()``, or a policy
            ``(board, legal_uci) -> uci``; the environment closes it in :meth:`close`.
            The random opponent draws from ``self.np_random``.
        color: the agent's side: ``"white"``, ``"black"``, or ``"side-to-move"`` (whoever
            is to move in the start position).
        start: ``"startpos"``, a FEN, or the path of an ``.epd`` or ``.pgn`` file whose
            every position is a start position (see :mod:`.starts`).
        analysis: ``"auto"`` (Stockfish analysis when the binary is found; a missing
            explicit ``stockfish_path`` is still an error), ``"on"`` (require it) or ``"off"``.
        analysis_depth: search depth of the analysis, in plies.
        stockfish_path: the Stockfish binary (default: see :func:`.engine.find_stockfish`).
        rules: ``"standard"`` or a variant of :data:`.variants.VARIANTS`; ``analysis`` is
            then off (``"on"`` is refused, as is a Stockfish opponent).
    """

    #: Environment family (encodings and prompts live under this name).
    family = "chess"
    metadata: dict[str, Any] = {"render_modes": []}

    def return_range(self, max_steps: int) -> tuple[float, float]:
        """Every episode returns -1 (lost), 0 (drawn or unfinished) or +1 (won)."""
        return (-1.0, 1.0)

    def __init__(
        self,
        *,
        opponent: str | Opponent = "random",
        color: str = "side-to-move",
        start: str = "startpos",
        analysis: str = "auto",
        analysis_depth: int = 8,
        stockfish_path: str | None = None,
        rules: str = "standard",
    ):
        #: The variant played (``VARIANTS["standard"]`` for chess).
        self.variant: Variant = get_variant(rules)
        if color not in COLORS:
            raise ValueError(f"unknown color {color!r}; expected one of {', '.join(COLORS)}")
        if analysis not in ANALYSIS_MODES:
            raise ValueError(f"unknown analysis mode {analysis!r}; expected one of {', '.join(ANALYSIS_MODES)}")
        #: The agent's side as given (``"white"``, ``"black"`` or ``"side-to-move"``).
        self.color = color
        #: The start positions; episode ``k`` starts from ``starts[k % len(starts)]``.
        self.starts = load_starts(start, self.variant.board)
        if not self.variant.standard:
            _check_standard_only(self.variant, opponent, analysis)
            analysis = "off"
        #: The opponent (built from the spec string when one was given).
        self.opponent: Opponent = _build_opponent(opponent, lambda: self.np_random, stockfish_path)
        #: The Stockfish analyser, or None when analysis is off (or "auto" found no binary).
        self.analyser = _build_analyser(analysis, analysis_depth, stockfish_path)
        self.observation_space = spaces.Text(min_length=1, max_length=128, charset=_FEN_CHARS)
        self.action_space = spaces.Text(min_length=4, max_length=5, charset="abcdefgh12345678nbrqk")
        self._board: chess.Board | None = None
        self._agent_color: chess.Color = chess.WHITE
        self._over = False

    # -- gymnasium ---------------------------------------------------------------------

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict[str, Any]]:
        """Start a game; ``options={"episode_index": k}`` picks start position ``k mod n``.

        Without an index the start is drawn with ``np_random``. The info holds
        ``start_fen``, ``start_index``, ``agent_color`` and ``opponent_move`` (the UCI of
        the opponent's first move, or None). If that first move already ends the game,
        the info also holds ``outcome``/``result``/``success`` and no action is legal.
        """
        super().reset(seed=seed)
        index = self._start_index(options or {})
        board = self.starts[index].copy()
        self._board, self._over = board, False
        self._agent_color = board.turn if self.color == "side-to-move" else self.color == "white"
        info: dict[str, Any] = {
            "start_fen": board.fen(), "start_index": index,
            "agent_color": self.agent_color, "opponent_move": None,
        }
        if board.turn != self._agent_color:
            info["opponent_move"] = self._play_opponent()
            info.update(self._end_info())
        return board.fen(), info

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        """Play the agent's UCI ``action``, then the opponent's reply if the game goes on."""
        board = self._current()
        move = self._legal_move(action)
        info: dict[str, Any] = {"san": board.san(move)}
        if self.analyser is not None:
            analysis = self.analyser.analyse_move(board, move)
            info["metrics"] = analysis.metrics()
            info["engine_best"] = analysis.engine_best
        board.push(move)
        info["opponent_move"] = None
        if board.outcome(claim_draw=True) is None:
            info["opponent_move"] = self._play_opponent()
        end = self._end_info()
        info.update(end)
        reward = 0.0 if not end or end["result"] == "1/2-1/2" else (1.0 if end["success"] else -1.0)
        return board.fen(), reward, bool(end), False, info

    def close(self) -> None:
        """Close the opponent and the analyser (their engine processes)."""
        self.opponent.close()
        if self.analyser is not None:
            self.analyser.close()

    # -- TextEnv -----------------------------------------------------------------------

    def legal_actions(self) -> list[str]:
        """The legal moves in UCI, sorted; empty once the game is over."""
        board = self._current()
        return [] if self._over else sorted(m.uci() for m in board.legal_moves)

    def text_state(self) -> chess.Board:
        """A copy of the board, move stack included (for the PGN encoding)."""
        return self._current().copy()

    def state_record(self) -> dict[str, Any]:
        """``{"fen": ...}`` of the current position."""
        return {"fen": self._current().fen()}

    def describe(self) -> dict[str, Any]:
        """What a manifest records: the variant, its name and rules text (empty for chess)."""
        return {"rules": self.variant.name, "title": self.variant.title, "rules_text": self.variant.rules}

    @property
    def agent_color(self) -> str:
        """``"white"`` or ``"black"``: the side the agent plays this episode."""
        return color_name(self._agent_color).lower()

    # -- internals ---------------------------------------------------------------------

    def _current(self) -> chess.Board:
        if self._board is None:
            raise RuntimeError("ChessEnv: call reset() before using the environment")
        return self._board

    def _start_index(self, options: dict[str, Any]) -> int:
        unknown = sorted(set(options) - set(RESET_OPTIONS))
        if unknown:
            raise ValueError(f"unknown reset options {unknown}; accepted: {', '.join(RESET_OPTIONS)}")
        n = len(self.starts)
        index = options.get("episode_index")
        if index is None:
            return int(self.np_random.integers(n)) if n > 1 else 0
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise ValueError(f"episode_index must be an integer, got {index!r}")
        return int(index) % n

    def _legal_move(self, action: str) -> chess.Move:
        board = self._current()
        if not isinstance(action, str):
            raise TypeError(f"a chess action is a UCI string, got {type(action).__name__}")
        if self._over:
            raise IllegalActionError("the game is over; call reset()", action, board.fen())
        for move in board.legal_moves:
            if move.uci() == action:
                return move
        raise IllegalActionError("illegal uci", action, board.fen())

    def _play_opponent(self) -> str:
        board = self._current()
        move = self.opponent.choose(board.copy())
        if not isinstance(move, chess.Move) or move not in list(board.legal_moves):
            raise OpponentError(f"opponent {self.opponent!r} chose {move!r}, not a legal move in {board.fen()}")
        board.push(move)
        return move.uci()

    def _end_info(self) -> dict[str, Any]:
        """``outcome``, ``result`` and ``success`` when the game is over, else ``{}``."""
        outcome = self._current().outcome(claim_draw=True)
        if outcome is None:
            return {}
        self._over = True
        variant_win = outcome.termination in (chess.Termination.VARIANT_WIN, chess.Termination.VARIANT_LOSS)
        return {
            "outcome": self.variant.ending if variant_win else outcome.termination.name.lower(),
            "result": outcome.result(),
            "success": outcome.winner == self._agent_color,
        }


def _build_opponent(opponent: str | Opponent, rng: Any, stockfish_path: str | None) -> Opponent:
    if isinstance(opponent, str):
        return make_opponent(opponent, rng, stockfish_path)
    if callable(getattr(opponent, "choose", None)) and callable(getattr(opponent, "close", None)):
        return opponent
    if callable(opponent):
        return PolicyOpponent(opponent)
    raise TypeError(f"opponent {opponent!r} must be a spec string, a policy (board, legal) -> uci, or have choose(board) and close()")


def _check_standard_only(variant: Variant, opponent: str | Opponent, analysis: str) -> None:
    """Refuse what needs Stockfish in a variant, in one line each."""
    if isinstance(opponent, str) and opponent.strip().startswith("stockfish"):
        raise ValueError(f"Stockfish plays standard chess only; {variant.title} takes opponent 'random' or 'model:NAME'")
    if analysis == "on":
        raise ValueError(f"Stockfish analysis (centipawn loss, best move) covers standard chess only; "
                         f"{variant.title} is played with analysis off")


def _build_analyser(mode: str, depth: int, path: str | None) -> Analyser | None:
    if mode == "off":
        return None
    try:
        return Analyser(path, depth)
    except StockfishNotFoundError:
        if mode == "on" or path is not None:  # an explicit binary that is missing is an error
            raise
        return None
