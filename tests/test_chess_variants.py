"""Chess variants as known-game controls: each variant's rules as python-chess enforces them
and as the environment records them, full random games replayed legally from their files,
Stockfish refused by name, and SmolLM2 playing them with the rules in every prompt."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import chess
import pytest

from harness.agents import build_baseline
from harness.config import RunConfig
from harness.records import iter_episodes, iter_steps, read_manifest
from harness.runner import Runner
from harness.summary import summarize
from harness.validate import validate_run
from textenvs import ENVS, AmbiguousActionError, IllegalActionError, OptionError, UnparseableActionError, make_env
from textenvs.chess import parse_move
from textenvs.chess.encodings import AsciiEncoding, PgnEncoding, PiecesEncoding
from textenvs.chess.variants import VARIANTS, get_variant
from doc_examples import example

NAMES = [name for name in VARIANTS if name != "standard"]
SMOLLM2 = "smollm2-135m-instruct"


def env_at(name: str, fen: str, color: str = "side-to-move", opponent="random"):
    """A variant's environment reset at ``fen``."""
    env = make_env("chess", name, start=fen, color=color, opponent=opponent)
    env.reset(seed=0)
    return env


# -- the registry, and what needs Stockfish ----------------------------------------------


def test_every_variant_is_a_registered_preset_listed_by_zso_envs():
    assert ENVS.entry("chess").metadata["variants"] == {name: {"rules": name} for name in NAMES}
    for name in NAMES:
        assert get_variant(name).rules and make_env("chess", name).variant.name == name
    assert make_env("chess").variant.standard and not make_env("chess").variant.rules
    zso = Path(sys.executable).parent / "zso"
    listing = subprocess.run([str(zso), "envs"], capture_output=True, text=True, env={**os.environ, "COLUMNS": "300"},
                             timeout=120).stdout
    assert all(name in listing for name in NAMES), listing


def test_unknown_variants_and_stockfish_are_refused_in_one_line():
    with pytest.raises(OptionError, match="did you mean 'atomic'"):
        make_env("chess", "atomix")
    with pytest.raises(ValueError, match="unknown chess rules 'crazyhouse'"):
        make_env("chess", rules="crazyhouse")
    with pytest.raises(ValueError, match="^Stockfish plays standard chess only; horde chess takes"):
        make_env("chess", "horde", opponent="stockfish:depth=1")
    with pytest.raises(ValueError, match="^Stockfish analysis .* covers standard chess only; atomic chess is played"):
        make_env("chess", "atomic", analysis="on")
    assert make_env("chess", "atomic", analysis="auto").analyser is None


# -- each variant's rules, as python-chess plays them --------------------------------------


@pytest.mark.parametrize("start, centre", [("c3", "d4"), ("f3", "e4"), ("c6", "d5"), ("f6", "e5")])
def test_king_of_the_hill_is_won_on_any_centre_square(start, centre):
    board = chess.Board(None)
    board.set_piece_at(chess.parse_square(start), chess.Piece(chess.KING, chess.WHITE))
    board.set_piece_at(chess.A8, chess.Piece(chess.KING, chess.BLACK))
    env = env_at("king-of-the-hill", board.fen())
    assert chess.Board(board.fen()).outcome() is not None  # bare kings: a draw in standard chess
    _, reward, done, _, info = env.step(start + centre)
    assert (reward, done, info["outcome"], info["result"]) == (1.0, True, "king_in_centre", "1-0")


def test_racing_kings_first_home_wins_and_a_black_reply_in_time_draws():
    env = env_at("racing-kings", "8/6K1/8/8/8/8/1k6/8 w - - 0 1")
    assert not any(env.text_state().gives_check(m) for m in env.text_state().legal_moves)
    _, reward, done, _, info = env.step("g7g8")
    assert (reward, done, info["outcome"], info["opponent_move"]) == (1.0, True, "king_reached_rank_8", None)
    # Black's king one step from home: the game goes on, Black gets there, a draw.
    env = env_at("racing-kings", "8/1k4K1/8/8/8/8/8/8 w - - 0 1", opponent=lambda board, legal: "b7b8")
    _, reward, done, _, info = env.step("g7g8")
    assert (reward, done, info["outcome"], info["result"], info["opponent_move"]) == (0.0, True, "variant_draw", "1/2-1/2", "b7b8")


def test_racing_kings_never_allows_check():
    env = env_at("racing-kings", "8/8/8/8/8/8/krbnNBRK/qrbnNBRQ w - - 0 1")
    board = env.text_state()
    checking = [m for m in chess.Board(board.fen()).legal_moves if chess.Board(board.fen()).gives_check(m)]
    assert checking  # standard chess would allow these
    assert not set(checking) & set(board.legal_moves)
    san = chess.Board(board.fen()).san(checking[0])
    with pytest.raises(IllegalActionError):
        parse_move(board, f"I play {san}", env.legal_actions())


def test_antichess_forces_captures_crowns_kings_and_is_won_by_losing_everything():
    env = env_at("antichess", "4k3/8/8/8/8/1p6/P7/4K3 w - - 0 1")
    assert env.legal_actions() == ["a2b3"]  # the capture is compulsory
    with pytest.raises(IllegalActionError):
        parse_move(env.text_state(), "e1e2", env.legal_actions())
    board = env_at("antichess", "8/4P3/8/8/8/8/8/k7 w - - 0 1").text_state()
    assert parse_move(board, "I promote: e8=K") == "e7e8k" and PgnEncoding().render_action(board, "e7e8k") == "e8=K"
    env = env_at("antichess", "8/8/8/8/8/1p6/P7/8 w - - 0 1")  # no kings: they are ordinary pieces
    _, reward, done, _, info = env.step("a2b3")  # Black has nothing left: Black wins
    assert (reward, done, info["outcome"], info["result"], info["success"]) == (-1.0, True, "no_pieces_or_moves", "0-1", False)


def test_atomic_captures_explode_and_exploding_the_king_wins_even_in_check():
    env = env_at("atomic", "4k3/2pp4/4n3/8/8/8/4r3/3QK3 w - - 0 1")
    assert env.text_state().is_check()
    _, reward, done, _, info = env.step("d1d7")
    board = env.text_state()
    assert board.piece_at(chess.C7) == chess.Piece(chess.PAWN, chess.BLACK)  # pawns beside it survive
    assert not any(board.piece_at(s) for s in (chess.D1, chess.D7, chess.E8, chess.E6))
    assert (reward, done, info["outcome"], info["result"]) == (1.0, True, "king_exploded", "1-0")
    env = env_at("atomic", "4k3/8/8/8/8/8/3p4/3QK3 w - - 0 1")  # Qxd2 would explode White's own king
    assert "d1d2" not in env.legal_actions() and "e1d2" not in env.legal_actions()


def test_three_check_counts_checks_and_the_third_wins():
    env = env_at("three-check", "rnbqkbnr/ppp1pppp/8/3p4/4P3/8/PPPP1PPP/RNBQKBNR w KQkq - 3+3 0 2")
    env.step("f1b5")  # check
    assert env.text_state().fen().split()[4].startswith("2+") and env.text_state().remaining_checks[chess.WHITE] == 2
    env = env_at("three-check", "4k3/8/8/8/8/8/8/R3K3 w - - 1+3 0 1")
    assert "Checks still to give to win: White 1, Black 3." in AsciiEncoding().render_state(env.text_state())
    _, reward, done, _, info = env.step("a1a8")
    assert not chess.Board(env.text_state().board_fen() + " b - - 0 1").is_checkmate()  # only a check
    assert (reward, done, info["outcome"], info["result"]) == (1.0, True, "third_check", "1-0")


def test_horde_pawns_double_step_from_the_first_rank_and_black_wins_by_capturing_them_all():
    board = make_env("chess", "horde").starts[0]
    assert len(board.pieces(chess.PAWN, chess.WHITE)) == 36 and not board.pieces(chess.KING, chess.WHITE)
    assert PiecesEncoding().render_state(board).startswith("White: pawns on ")
    assert env_at("horde", "4k3/8/8/8/8/8/8/P7 w - - 0 1").legal_actions() == ["a1a2", "a1a3"]
    env = env_at("horde", "1r2k3/8/8/8/8/8/1P6/8 b - - 0 1", color="black")
    _, reward, done, _, info = env.step("b8b2")
    assert (reward, done, info["outcome"], info["result"]) == (1.0, True, "horde_captured", "0-1")
    assert PiecesEncoding().render_state(env.text_state()).startswith("White: no pieces.")


def test_the_parser_tells_illegal_ambiguous_and_unparseable_apart_in_a_variant():
    env = env_at("antichess", "4k3/8/8/8/8/8/3p4/1N3N2 w - - 0 1")
    board, legal = env.text_state(), env.legal_actions()
    assert legal == ["b1d2", "f1d2"]  # captures only
    with pytest.raises(AmbiguousActionError, match="could be"):
        parse_move(board, "Nxd2", legal)  # a SAN that both knights fit
    with pytest.raises(AmbiguousActionError):
        parse_move(board, "b1d2, or else f1d2", legal)
    with pytest.raises(IllegalActionError):
        parse_move(board, "Nc3", legal)  # legal in chess, not when a capture is possible
    with pytest.raises(UnparseableActionError):
        parse_move(board, "I resign.", legal)
    assert parse_move(board, "Nfxd2", legal) == "f1d2"


# -- full games, replayed from their files ------------------------------------------------


def replay(run: Path, name: str) -> list[chess.Board]:
    """Replay every episode of ``run`` under the variant's rules; the final boards.

    Every move must be legal, every recorded position the replayed one, and a finished
    game's recorded outcome and reward python-chess's.
    """
    variant = get_variant(name)
    steps: dict[int, list[dict]] = {}
    for step in iter_steps(run):
        steps.setdefault(step["episode"], []).append(step)
    finals = []
    for episode in iter_episodes(run):
        board = variant.board(episode["reset_info"]["start_fen"])
        _push(board, episode["reset_info"]["opponent_move"])
        assert board.fen() == episode["start_state"]["fen"]
        agent = episode["reset_info"]["agent_color"] == "white"
        moves: list[str | None] = []
        for step in sorted(steps.get(episode["episode"], []), key=lambda s: s["t"]):
            while moves:
                _push(board, moves.pop())
            assert board.fen() == step["state"]["fen"] and board.turn == agent
            assert step["legal_actions"] == sorted(m.uci() for m in board.legal_moves)
            moves = [step["info"]["opponent_move"], step["action"]]
        while moves:
            _push(board, moves.pop())
        outcome = board.outcome(claim_draw=True)
        if episode["end_reason"] == "terminated":
            assert outcome is not None
            variant_end = outcome.termination in (chess.Termination.VARIANT_WIN, chess.Termination.VARIANT_LOSS)
            assert episode["outcome"] == (variant.ending if variant_end else outcome.termination.name.lower())
            assert episode["total_reward"] == (0.0 if outcome.winner is None else 1.0 if outcome.winner == agent else -1.0)
        else:
            assert outcome is None
        finals.append(board)
    return finals


def _push(board: chess.Board, uci: str | None) -> None:
    if uci is not None:
        move = chess.Move.from_uci(uci)
        assert move in board.legal_moves, (uci, board.fen())
        board.push(move)
        if isinstance(board, chess.variant.RacingKingsBoard):
            assert not board.is_check()


@pytest.mark.parametrize("name", NAMES)
def test_random_games_play_to_the_end_and_replay_legally(tmp_path, name):
    outcomes = []
    for color in ("white", "black"):
        cfg = RunConfig(env="chess", variant=name, encoding="fen", model="random", backend="baseline", mode="choose",
                        episodes=3, max_steps=1000, seed=0, env_options={"color": color})
        with Runner(cfg, agent=build_baseline("random", cfg)) as runner:
            run = runner.run(tmp_path / color)
        assert validate_run(run) == []
        episodes = list(iter_episodes(run))
        assert all(e["end_reason"] == "terminated" and e["reset_info"]["agent_color"] == color for e in episodes)
        assert len(replay(run, name)) == 3
        assert read_manifest(run)["environment"]["description"]["rules_text"] == VARIANTS[name].rules
        summary = summarize(run)
        assert set(summary.outcomes) == {e["outcome"] for e in episodes}
        assert "centipawn_loss" not in summary.metrics
        outcomes += [e["outcome"] for e in episodes]
    endings = {VARIANTS[name].ending, "variant_draw", "checkmate", "stalemate", "insufficient_material",
               "threefold_repetition", "fifty_moves"}
    assert set(outcomes) <= endings
    if name != "horde":  # random play seldom takes all 36 pawns; that ending is checked above
        assert VARIANTS[name].ending in outcomes  # the variant's own win is reached and recorded


# -- SmolLM2 with the rules in its prompts ------------------------------------------------


def check_model_run(run: Path, name: str) -> list[dict]:
    """Valid files, legal replay, and the variant's name and rules text in every prompt."""
    variant = VARIANTS[name]
    assert validate_run(run) == []
    replay(run, name)
    steps = list(iter_steps(run))
    assert steps
    for step in steps:
        for prompt in [step["prompt"]] + [a["prompt"] for a in step["attempts"]]:
            assert prompt.startswith(f"You are playing {variant.title} as ")
            assert f"Rules of {variant.title}: {variant.rules}\n\nPosition:\n" in prompt
    summarize(run)
    return steps


@pytest.mark.model
@pytest.mark.parametrize("name, encoding, opponent", [
    ("atomic", "ascii", "random"), ("racing-kings", "pieces", f"model:{SMOLLM2}"),
])
def test_smollm2_chooses_moves_in_two_variants(smollm2_backend, tmp_path, name, encoding, opponent):
    cfg = RunConfig(env="chess", variant=name, encoding=encoding, mode="choose", episodes=1, max_steps=2, seed=0,
                    model=SMOLLM2, env_options={"opponent": opponent})
    run = Runner(cfg, smollm2_backend).run(tmp_path / "run")
    steps = check_model_run(run, name)
    assert all(abs(sum(s["probs"]) - 1) < 1e-6 and len(s["probs"]) == len(s["legal_actions"]) for s in steps)
    if opponent != "random":
        assert SMOLLM2 in read_manifest(run)["environment"]["option_models"]


@pytest.mark.model
def test_smollm2_generates_three_check_moves_and_refusals_are_told_apart(smollm2_backend, tmp_path):
    cfg = RunConfig(env="chess", variant="three-check", encoding="pgn", mode="generate", episodes=1, max_steps=2,
                    seed=0, max_new_tokens=8, max_retries=1, model=SMOLLM2)
    run = Runner(cfg, smollm2_backend).run(tmp_path / "run")
    steps = check_model_run(run, "three-check")
    errors = {"unparseable": UnparseableActionError, "illegal": IllegalActionError, "ambiguous": AmbiguousActionError}
    for step in steps:
        board = chess.variant.ThreeCheckBoard(step["state"]["fen"])
        for attempt in step["attempts"]:
            with pytest.raises(errors[attempt["error_kind"]]):
                parse_move(board, attempt["reply"], step["legal_actions"])
        if step["action_source"] == "model":
            assert parse_move(board, step["reply"], step["legal_actions"]) == step["action"]


@pytest.mark.model
def test_the_readme_variant_command_runs_verbatim(tmp_path):
    script = example("chess-variants").split("```sh\n", 1)[1].split("```", 1)[0]
    script = script.replace(".venv/bin/zso", str(Path(sys.executable).parent / "zso"))
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, capture_output=True, text=True,
                          timeout=600, env={**os.environ, "COLUMNS": "200"})
    assert done.returncode == 0, done.stderr[-3000:]
    run = next(p.parent for p in (tmp_path / "runs").glob("*/manifest.json"))
    name = read_manifest(run)["environment"]["variant"]
    check_model_run(run, name)


def test_irl_refuses_a_variant_run_in_one_line(tmp_path, capsys):
    from harness.cli import main

    run = tmp_path / "atomic"
    assert main(["baseline", "--env", "chess", "--variant", "atomic", "--agent", "random", "--episodes", "2",
                 "--max-steps", "4", "--out", str(run), "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["irl", str(run), "--out", str(tmp_path / "fit"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "no objective fit for chess/atomic" in err and "chess variants are not fitted" in err and "Traceback" not in err
