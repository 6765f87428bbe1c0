"""The game solver against known answers: Nim by XOR, subtraction games by Grundy
values computed here, tic-tac-toe a draw, 4x4 k=3 a first-player win, and OpenSpiel."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import reduce

import numpy as np
import pytest

from textenvs.games import DRAW, LOSS, WIN, Game, GameError, Solver
from textenvs.games.examples import RaceToTen
from textenvs.games.mnk import Mnk
from textenvs.games.movement import MovementEnv
from textenvs.games.takeaway import Heaps, TakeAway


def nim_outcome(heaps: tuple[int, ...], misere: bool) -> int:
    """Bouton's rule, from the mover's view."""
    xor = reduce(lambda a, b: a ^ b, heaps, 0)
    if misere and all(h <= 1 for h in heaps):
        return WIN if sum(heaps) % 2 == 0 else LOSS
    return WIN if xor else LOSS


@pytest.mark.parametrize("misere", [False, True])
def test_nim_positions_follow_the_xor_rule(misere):
    game = TakeAway((3, 4, 5), None, misere)
    solver = Solver(game)
    for heaps in itertools.product(range(4), range(5), range(6)):
        assert solver.value(Heaps(heaps, 0)).outcome == nim_outcome(heaps, misere), heaps


def grundy_table(removals: tuple[int, ...], top: int) -> list[int]:
    """Sprague-Grundy values of one subtraction-game heap, by the mex rule."""
    g: list[int] = []
    for n in range(top + 1):
        reachable = {g[n - r] for r in removals if r <= n}
        g.append(next(v for v in itertools.count() if v not in reachable))
    return g


@pytest.mark.parametrize("removals", [(1, 2), (1, 3, 4), (2, 5), (1, 2, 4)])
def test_subtraction_games_follow_the_grundy_values(removals):
    g = grundy_table(removals, 9)
    game = TakeAway((9, 7, 5), removals, False)
    solver = Solver(game)
    for heaps in itertools.product(range(10), range(8), range(6)):
        expected = WIN if g[heaps[0]] ^ g[heaps[1]] ^ g[heaps[2]] else LOSS
        assert solver.value(Heaps(heaps, 1)).outcome == expected, (removals, heaps)


def test_move_values_are_the_negated_values_after_the_move():
    game = TakeAway((3, 4, 5), None, False)
    solver = Solver(game)
    start = game.initial()
    values = solver.move_values(start)
    for move, value in zip(game.legal_moves(start), values):
        after = game.play(start, move)
        assert value.outcome == -nim_outcome(after.heaps, False)
    assert solver.best_moves(start) == ("1:2",)  # 3^4^5 = 2: only taking 2 from the 3-heap zeroes it


def test_tic_tac_toe_is_a_draw_and_4x4_k3_a_first_player_win():
    assert Solver(Mnk(3, 3, 3)).value(Mnk(3, 3, 3).initial()) .outcome == DRAW
    assert Solver(Mnk(3, 3, 3)).value(Mnk(3, 3, 3).initial()).plies == 9
    big = Mnk(4, 4, 3)
    assert Solver(big, distances=False).value(big.initial()).outcome == WIN


def test_distances_take_the_fastest_win_and_the_slowest_loss():
    game = RaceToTen()
    solver = Solver(game)
    # From 0, the first player wins by reaching 1, 4, 7, 10: four of their moves, seven plies at most.
    start = solver.value(game.initial())
    assert start.outcome == WIN
    values = solver.move_values(game.initial())
    assert [v.outcome for v in values] == [WIN, LOSS]
    assert values[0].plies == start.plies
    # With 8 on the board, +2 wins at once; +1 leaves 9 and the opponent wins next.
    from textenvs.games.examples import Total

    assert solver.move_values(Total(8, 0)) == (type(start)(LOSS, 2), type(start)(WIN, 1))


@pytest.mark.parametrize("game", [Mnk(3, 3, 3), Mnk(4, 3, 3, gravity=True), Mnk(3, 3, 3, misere=True), TakeAway((2, 3, 4), (1, 3), True)])
def test_outcome_only_search_agrees_with_the_full_search(game):
    full, quick = Solver(game), Solver(game, distances=False)
    rng = np.random.default_rng(0)
    for _ in range(20):
        position = game.initial()
        while game.result(position) is None:
            assert full.value(position).outcome == quick.value(position).outcome
            assert [v.outcome for v in full.move_values(position)] == [v.outcome for v in quick.move_values(position)]
            assert quick.value(position).plies is None
            moves = game.legal_moves(position)
            position = game.play(position, moves[rng.integers(len(moves))])


@dataclass(frozen=True)
class Loop(Game[int]):
    """Two positions that lead to each other: not solvable without a move counter."""

    def initial(self) -> int:
        return 0

    def legal_moves(self, position: int) -> tuple[str, ...]:
        return ("flip",)

    def play(self, position: int, move: str) -> int:
        return 1 - position

    def result(self, position: int) -> int | None:
        return None

    def to_move(self, position: int) -> int:
        return position

    def rules_text(self) -> str:
        return "Flip forever."


def test_cycles_and_oversized_games_are_refused_by_name():
    with pytest.raises(GameError, match="recurs; the solver needs positions that never repeat"):
        Solver(Loop()).value(0)
    with pytest.raises(GameError, match="more than 100 positions: too large to solve exactly"):
        Solver(Mnk(3, 3, 3), max_positions=100).value(Mnk(3, 3, 3).initial())


def test_movement_games_end_in_a_draw_at_the_move_limit():
    env = MovementEnv(rules_seed=5)
    game = env.game
    solver = Solver(game)
    value = solver.value(game.initial())
    assert value.outcome in (WIN, DRAW, LOSS)
    # Every position at the limit is a draw unless someone already won.
    position = game.initial()
    rng = np.random.default_rng(1)
    while game.result(position) is None:
        moves = game.legal_moves(position)
        position = game.play(position, moves[rng.integers(len(moves))])
    assert position.ply <= game.max_plies
    if game.result(position) == DRAW:
        assert position.ply == game.max_plies


# -- OpenSpiel as an independent reference -------------------------------------------------------

pyspiel = pytest.importorskip("pyspiel", reason="open_spiel is not installed: pip install 'zso[games]'")
from open_spiel.python.algorithms import minimax  # noqa: E402


def test_tic_tac_toe_agrees_with_openspiel_alpha_beta_on_random_positions():
    game, ours = pyspiel.load_game("tic_tac_toe"), Mnk(3, 3, 3)
    solver = Solver(ours)
    rng = np.random.default_rng(2)
    assert minimax.alpha_beta_search(game)[0] == solver.value(ours.initial()).outcome == 0
    for _ in range(12):
        state, position = game.new_initial_state(), ours.initial()
        for _ in range(int(rng.integers(1, 7))):
            if state.is_terminal():
                break
            moves = ours.legal_moves(position)
            move = moves[rng.integers(len(moves))]
            r, c = int(move[1]) - 1, "abc".index(move[0])
            state.apply_action(r * 3 + c)  # rows mirrored top to bottom: a symmetry of the board
            position = ours.play(position, move)
        if state.is_terminal():
            continue
        mover = state.current_player()
        expected, _ = minimax.alpha_beta_search(game, state, maximizing_player_id=mover)
        assert solver.value(position).outcome == expected


def test_nim_agrees_with_openspiel_normal_and_misere():
    for misere in (False, True):
        for heaps in itertools.product(range(1, 4), range(0, 3), range(1, 3)):
            game = pyspiel.load_game("nim", {"pile_sizes": ";".join(map(str, heaps)), "is_misere": misere})
            expected, _ = minimax.alpha_beta_search(game, maximizing_player_id=0)
            ours = TakeAway(heaps, None, misere)
            assert Solver(ours).value(ours.initial()).outcome == expected, (heaps, misere)


def test_4x4_k3_openings_agree_with_openspiel_mnk():
    game, ours = pyspiel.load_game("mnk", {"m": 4, "n": 4, "k": 3}), Mnk(4, 4, 3)
    solver = Solver(ours, distances=False)
    rng = np.random.default_rng(3)
    for _ in range(4):
        state, position = game.new_initial_state(), ours.initial()
        for _ in range(7):
            if state.is_terminal():
                break
            moves = ours.legal_moves(position)
            move = moves[rng.integers(len(moves))]
            r, c = int(move[1]) - 1, "abcd".index(move[0])
            state.apply_action(r * 4 + c)
            position = ours.play(position, move)
        if state.is_terminal():
            continue
        expected, _ = minimax.alpha_beta_search(game, state, maximizing_player_id=state.current_player())
        assert solver.value(position).outcome == expected
