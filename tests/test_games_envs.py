"""The game families as environments: the contract over every family x variant x encoding,
round trips of every legal move, the reply parser's three kinds of error, the per-step
judgement, and what is recorded."""

from __future__ import annotations

import json

import numpy as np
import pytest

from textenvs import ENVS, IllegalActionError, OptionError, build_prompt, encodings_for, get_encoding, make_env
from textenvs.errors import AmbiguousActionError, UnparseableActionError
from textenvs.games import GameEnv, GameError, GameView, solver_for
from textenvs.games.env import SeededGameEnv

FAMILIES = [e.name for e in ENVS if isinstance(e.load(), type) and issubclass(e.load(), GameEnv)]
VARIANTS = [(f, v) for f in FAMILIES for v in ENVS.entry(f).metadata["variants"]]
CASES = [(f, v, enc) for f, v in VARIANTS for enc in encodings_for(f)]


def positions(env, rng, games=4):
    """Decision states along a few random games."""
    for seed in range(games):
        env.reset(seed=seed, options={"episode_index": seed})
        while env.legal_actions():
            yield env.text_state()
            legal = env.legal_actions()
            env.step(legal[rng.integers(len(legal))])


def test_every_game_family_is_registered_with_three_encodings():
    assert {"take-away", "mnk", "movement", "game"} <= set(FAMILIES)
    for family in ("take-away", "mnk", "movement"):
        assert len(encodings_for(family)) >= 3, family


@pytest.mark.parametrize("family, variant, encoding", CASES)
def test_every_legal_move_renders_and_parses_back(family, variant, encoding):
    env, enc = make_env(family, variant), get_encoding(family, encoding)
    rng = np.random.default_rng(0)
    seen = 0
    for view in positions(env, rng):
        text = enc.render_state(view)
        assert text.strip()
        for mode in ("choose", "generate", "tagged"):
            prompt = build_prompt(enc, view, list(view.legal), mode)
            assert view.game.rules_text() in prompt and text in prompt
        for move in view.legal:
            written = enc.render_action(view, move)
            assert enc.parse_action(view, written, view.legal) == move
            assert enc.parse_action(view, f"I play {written}.", view.legal) == move
            seen += 1
    assert seen > 0


@pytest.mark.parametrize("family, variant", VARIANTS)
def test_the_environment_contract(family, variant):
    env = make_env(family, variant, opponent="random")
    obs, info = env.reset(seed=3, options={"episode_index": 0})
    assert env.observation_space.contains(obs)
    assert info["agent_player"] == 0 and json.dumps(info)
    first_record = env.state_record()
    json.dumps(first_record)
    steps = 0
    while env.legal_actions():
        legal = env.legal_actions()
        assert legal == list(env.text_state().legal) and len(set(legal)) == len(legal)
        obs, reward, terminated, truncated, info = env.step(legal[-1])
        steps += 1
        assert truncated is False
        assert len(info["move_values"]) == len(legal) and json.dumps(info)
        if terminated:
            assert info["outcome"] in ("win", "loss", "draw")
            assert reward == {"win": 1.0, "loss": -1.0, "draw": 0.0}[info["outcome"]]
            assert info["success"] == (info["outcome"] == "win")
        else:
            assert reward == 0.0 and "outcome" not in info
    assert steps > 0 and env.legal_actions() == []
    with pytest.raises(IllegalActionError, match="the game is over"):
        env.step(legal[0])
    # A reset starts afresh: same seed, same start, nothing carried over.
    env.reset(seed=3, options={"episode_index": 0})
    assert env.state_record() == first_record and env.legal_actions()


@pytest.mark.parametrize("family", ["take-away", "mnk", "movement"])
def test_metrics_are_exact_functions_of_the_move_values(family):
    env = make_env(family, opponent="optimal")
    rng = np.random.default_rng(1)
    for episode in range(3):
        env.reset(seed=episode, options={"episode_index": episode})
        while env.legal_actions():
            view, legal = env.text_state(), env.legal_actions()
            move = legal[rng.integers(len(legal))]
            _, _, _, _, info = env.step(move)
            values, m = info["move_values"], info["metrics"]
            solver = solver_for(view.game)
            assert values == [v.outcome for v in solver.move_values(view.position)]
            best = max(values)
            assert info["position_value"] == best == solver.value(view.position).outcome
            assert m["optimal_move"] == float(values[legal.index(move)] == best)
            assert m["random_optimal"] == pytest.approx(values.count(best) / len(values))
            if best == 1:
                assert m["blunder"] == float(values[legal.index(move)] != 1)
                assert m["random_blunder"] == pytest.approx(sum(v != 1 for v in values) / len(values))
            else:
                assert "blunder" not in m and "random_blunder" not in m


@pytest.mark.parametrize("family, variant", [("take-away", "nim"), ("mnk", "tic-tac-toe"), ("movement", "seeded")])
def test_the_optimal_opponent_never_gives_away_its_value(family, variant):
    """Against the optimal opponent the agent never does better than its start's value."""
    env = make_env(family, variant, opponent="optimal", side="second")
    rng = np.random.default_rng(4)
    for episode in range(6):
        _, info = env.reset(seed=episode, options={"episode_index": episode})
        start_value = -solver_for(env.game).value(env.game.initial()).outcome  # the agent moves second
        outcome = info.get("outcome")
        while env.legal_actions():
            legal = env.legal_actions()
            _, _, _, _, info = env.step(legal[rng.integers(len(legal))])
            outcome = info.get("outcome", outcome)
        assert {"win": 1, "draw": 0, "loss": -1}[outcome] <= start_value


def test_the_agent_plays_the_side_asked_for():
    env = make_env("mnk", "tic-tac-toe", side="alternate")
    _, info0 = env.reset(seed=0, options={"episode_index": 0})
    assert info0["agent_player"] == 0 and info0["opponent_move"] is None
    _, info1 = env.reset(seed=0, options={"episode_index": 1})
    assert info1["agent_player"] == 1 and info1["opponent_move"] in [f"{c}{r}" for c in "abc" for r in "123"]
    assert env.text_state().mover == 1


def test_seeds_give_new_names_and_rules_and_the_rules_are_recorded():
    titles = {make_env("take-away", rules_seed=s).game.title for s in range(6)}
    assert len(titles) == 6
    boards = {(make_env("mnk", rules_seed=s).game.cols, make_env("mnk", rules_seed=s).game.gravity) for s in range(12)}
    assert len(boards) > 2
    env = make_env("take-away", rules_seed=7)
    _, info = env.reset(seed=0)
    assert info["rules"] == env.game.parameters() and info["rules"]["seed"] == 7
    described = env.describe()
    assert described["rules_seed"] == 7 and described["game"]["rules"] == env.game.rules_text()
    json.dumps(described)
    # Known controls keep their real names.
    assert make_env("take-away", "nim").game.title == "Nim"
    assert make_env("mnk", "tic-tac-toe").game.title == "Tic-tac-toe"


def test_fresh_rules_every_episode_when_rules_seed_is_none():
    env = make_env("take-away", rules_seed=None)
    assert env.describe()["game"] is None
    rules = []
    for seed in range(4):
        _, info = env.reset(seed=seed)
        rules.append(json.dumps(info["rules"]))
        assert info["rules"] == env.game.parameters()
    assert len(set(rules)) > 1
    env.reset(seed=2)
    assert json.dumps(env.game.parameters()) == rules[2]  # the seed of the episode decides


def test_bad_options_and_moves_are_named():
    with pytest.raises(OptionError, match="did you mean 'rules_seed'"):
        make_env("mnk", rule_seed=1)
    with pytest.raises(ValueError, match="unknown opponent 'perfect'"):
        make_env("mnk", opponent="perfect")
    with pytest.raises(ValueError, match="unknown side 'white'"):
        make_env("mnk", side="white")
    with pytest.raises(GameError, match="line length k=5 does not fit a 3x3 board"):
        make_env("mnk", "tic-tac-toe", k=5)
    with pytest.raises(GameError, match="removals must be distinct positive counts"):
        make_env("take-away", removals=[0, 2])
    env = make_env("mnk", "tic-tac-toe")
    with pytest.raises(RuntimeError, match="call reset"):
        env.legal_actions()
    env.reset(seed=0)
    with pytest.raises(IllegalActionError, match=r"illegal move: 'z9' in \.\.\./\.\.\./\.\.\. x to move"):
        env.step("z9")


def view_of(family, variant, moves=()):
    env = make_env(family, variant)
    env.reset(seed=0)
    for move in moves:
        env.step(move)
    return env.text_state()


PARSE_CASES = [
    # family, variant, encoding, moves first, reply, expected (a move, or an error type)
    ("take-away", "nim", "heaps", (), "take 2 from A", "1:2"),
    ("take-away", "nim", "heaps", (), "I will TAKE two counters from heap B.", "2:2"),
    ("take-away", "nim", "counts", (), "3:5", "3:5"),
    ("take-away", "nim", "prose", (), "remove 4 counters from heap C", "3:4"),
    ("take-away", "nim", "heaps", (), "take 3", AmbiguousActionError),
    ("take-away", "nim", "heaps", (), "take 1 from A or take 1 from B", AmbiguousActionError),
    ("take-away", "nim", "heaps", (), "take 5 from A", IllegalActionError),
    ("take-away", "nim", "heaps", (), "take 6", IllegalActionError),
    ("take-away", "nim", "heaps", (), "I pass", UnparseableActionError),
    ("take-away", "nim", "heaps", (), "   ", UnparseableActionError),
    ("mnk", "tic-tac-toe", "board", (), "b2", "b2"),
    ("mnk", "tic-tac-toe", "coords", (), "My move is **B2**.", "b2"),
    ("mnk", "tic-tac-toe", "prose", (), "column c row 1", "c1"),
    ("mnk", "tic-tac-toe", "board", ("b2",), "b2", IllegalActionError),
    ("mnk", "tic-tac-toe", "board", (), "a1 or c3", AmbiguousActionError),
    ("mnk", "tic-tac-toe", "board", (), "d4", UnparseableActionError),
    ("mnk", "connect-four-4x4", "board", (), "column b", "b"),
    ("mnk", "connect-four-4x4", "board", (), "c", "c"),
    ("mnk", "connect-four-4x4", "board", (), "a1", "a"),
    ("mnk", "connect-four-4x4", "board", (), "I think a good move is here", UnparseableActionError),
    ("movement", "chess-pieces", "board", (), "a1-b3", "a1-b3"),
    ("movement", "chess-pieces", "prose", (), "the knight from a1 to b3", "a1-b3"),
    ("movement", "chess-pieces", "coords", (), "c1 to c3", "c1-c3"),
    ("movement", "chess-pieces", "board", (), "a1-a3", IllegalActionError),
    ("movement", "chess-pieces", "board", (), "to c3", "c1-c3"),
    ("movement", "chess-pieces", "board", (), "to c2", AmbiguousActionError),  # the knight or the rook
    ("movement", "chess-pieces", "board", (), "a1-b3 then c1-c3", AmbiguousActionError),
]


@pytest.mark.parametrize("family, variant, encoding, moves, reply, expected", PARSE_CASES)
def test_replies_are_read_or_refused_for_a_named_reason(family, variant, encoding, moves, reply, expected):
    view = view_of(family, variant, moves)
    enc = get_encoding(family, encoding)
    if isinstance(expected, str):
        assert enc.parse_action(view, reply, view.legal) == expected
        return
    with pytest.raises(expected) as caught:
        enc.parse_action(view, reply, view.legal)
    assert repr(reply[:20].strip()[:10]) [1:-1] in str(caught.value) and enc.state_label(view) in str(caught.value)


def test_a_user_game_loads_from_a_module_a_file_or_an_instance(tmp_path):
    from textenvs.games.examples import RaceToTen

    path = tmp_path / "race.py"
    path.write_text("from textenvs.games.examples import RaceToTen\nSHORT = RaceToTen(target=4)\n")
    for spec, target in (("textenvs.games.examples:RaceToTen", 10), (f"{path}:SHORT", 4), (RaceToTen(target=7), 7)):
        env = make_env("game", game=spec)
        env.reset(seed=0)
        assert env.game.target == target
    with pytest.raises(GameError, match="defines no 'Nope'"):
        make_env("game", game="textenvs.games.examples:Nope")
    with pytest.raises(GameError, match="no game file"):
        make_env("game", game="missing.py:Game")
    with pytest.raises(GameError, match="not a textenvs.games.Game"):
        make_env("game", game="textenvs.games.examples:Total")


def test_seeded_families_are_seeded_game_envs_and_views_are_immutable():
    for family in ("take-away", "mnk", "movement"):
        assert issubclass(ENVS.get(family), SeededGameEnv)
    view = view_of("mnk", "tic-tac-toe")
    assert isinstance(view, GameView)
    with pytest.raises(Exception):
        view.position = None  # type: ignore[misc]
