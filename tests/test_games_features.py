"""Move features of the game families: the value column is the solver's, surface features
are what their definitions say on positions worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from textenvs import make_env
from textenvs.games import solver_for
from textenvs.games.examples import RaceToTen
from textenvs.games.features import FEATURES, default_features, feature_matrix, resolve_features
from textenvs.games.mnk import Mnk
from textenvs.games.takeaway import Heaps, TakeAway
from textenvs.registry import UnknownIdError


def test_the_value_column_is_the_solvers_move_values_in_every_family():
    for family, variant in (("take-away", "seeded"), ("mnk", "tic-tac-toe"), ("movement", "seeded")):
        env = make_env(family, variant)
        env.reset(seed=0)
        view = env.text_state()
        phi = feature_matrix(view.game, view.position, view.legal, ["value"])
        expected = [v.outcome for v in solver_for(view.game).move_values(view.position)]
        assert phi[:, 0].tolist() == expected


def test_take_away_surface_features():
    game = TakeAway((3, 4, 5), None, False)
    position = Heaps((3, 4, 5), 0)
    moves = ["1:2", "1:3", "3:1"]
    phi = feature_matrix(game, position, moves, ["nim_sum_zero", "heap_parity", "take_size", "empties_heap", "value", "wins_now"])
    # 1:2 leaves (1, 4, 5): XOR 0, 10 items; 1:3 leaves (0, 4, 5); 3:1 leaves (3, 4, 4).
    assert phi.tolist() == [[1, 1, 2, 0, 1, 0], [0, 0, 3, 1, -1, 0], [0, 0, 1, 0, -1, 0]]
    last = feature_matrix(game, Heaps((0, 0, 2), 1), ["3:2"], ["wins_now"])
    assert last[0, 0] == 1.0


def test_mnk_threats_and_centre():
    game = Mnk(3, 3, 3)
    # x on a1 and b1, o on a3 and c3, x to move; x's one open threat is the bottom row (c1).
    position = game.initial()
    for move in ("a1", "a3", "b1", "c3"):
        position = game.play(position, move)
    phi = feature_matrix(game, position, ["c1", "b3", "b2", "a2"], ["wins_now", "threats_made", "threats_blocked", "centre"])
    assert phi[:, 0].tolist() == [1, 0, 0, 0]          # c1 completes the bottom row
    assert phi[:, 2].tolist() == [0, 1, 0, 0]          # b3 fills o's a3-b3-c3 threat
    # b3 and b2 each open the b column with b1 (both diagonals through b2 hold an o); a2
    # adds nothing (the a column holds o's a3); c1 wins, using the bottom-row threat up.
    assert phi[:, 1].tolist() == [-1, 1, 1, 0]
    assert phi[2, 3] == pytest.approx(np.hypot(1, 1)) and phi[3, 3] == pytest.approx(np.hypot(1, 1) - 1)


def test_movement_captures_and_advance():
    env = make_env("movement", "chess-pieces")
    env.reset(seed=0)
    view = env.text_state()
    phi = feature_matrix(view.game, view.position, ["c1-c4", "c1-c2", "a1-b3"], ["captures", "advance"])
    assert phi.tolist() == [[1, 3], [0, 1], [0, 2]]


def test_default_sets_and_bad_names():
    assert default_features(TakeAway((3, 4, 5))) == ("value", "wins_now", "nim_sum_zero", "heap_parity", "take_size", "empties_heap")
    assert "captures" in default_features(make_env("movement").game)
    assert default_features(RaceToTen()) == ("value", "wins_now")
    with pytest.raises(ValueError, match="'captures' does not apply to 'take-away' games"):
        resolve_features(TakeAway((3,)), ["captures"])
    with pytest.raises(UnknownIdError, match="did you mean 'value'"):
        resolve_features(TakeAway((3,)), ["valeu"])
    assert "value" in FEATURES
