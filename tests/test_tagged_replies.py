"""Reasoning replies read by their last tagged answer: a table of replies, real SmolLM2 ones among them."""

from __future__ import annotations

import json
from pathlib import Path

import chess
import pytest

from textenvs.base import match_named_action
from textenvs.chess.notation import parse_move
from textenvs.errors import ActionError
from textenvs.tagged import parse_tagged, reasoning_text, split_tagged

START = chess.STARTING_FEN
ITALIAN = "r1bqkbnr/pppp1ppp/2n5/4p3/4P3/5N2/PPPP1PPP/RNBQKB1R w KQkq - 2 3"
LAKE = "frozenlake"
ACTIONS = {a: a for a in ("left", "down", "right", "up")}


def _parser(env: str):
    if env == LAKE:
        return "Action", lambda text: match_named_action(text, ACTIONS, "s0")
    board = chess.Board(env)
    return "Move", lambda text: parse_move(board, text)


def _outcome(env: str, reply: str, truncated: bool = False) -> str:
    tag, parse = _parser(env)
    try:
        return parse_tagged(reply, tag, parse, env, "length" if truncated else None)[0]
    except ActionError as error:
        return error.kind


#: (position, reply, reply cut at max_new_tokens, the action or invalid kind)
WRITTEN = [
    (START, "Move: e2e4", False, "e2e4"),
    (START, "e4 looks strong, but d4 is solid too. I prefer the centre.\nMove: e2e4", False, "e2e4"),
    (START, "Nf3 or c4? Both fine. d2d4 is classical.\n\n**Move:** d2d4", False, "d2d4"),
    (START, "<think>Maybe e2e4. Move: e2e4 is tempting.</think>\nMove: g1f3", False, "g1f3"),
    (START, "<think>Move: e2e4</think>I will keep it quiet.", False, "no_tag"),
    (START, "Let me think: e4, d4, Nf3, c4 are all good openings.", False, "no_tag"),
    (START, "Move: e2e4\nOn second thought, no.\nMove: d2d4", False, "d2d4"),
    (START, "Move: e2e4 or d2d4", False, "ambiguous"),
    (START, "Move: e2e5", False, "illegal"),
    (START, "Move: the king's pawn", False, "unparseable"),
    (START, "I considered e2e4 and d2d4 at length, and then Mo", True, "cut_off"),
    (START, "I considered e2e4 and d2d4 at length, and then Mo", False, "no_tag"),
    (START, "<think>e4 is the most popular first move, and d4", True, "cut_off"),
    (START, "<think>e4 is the most popular first move, and d4", False, "cut_off"),
    (START, "After all that, Move:", True, "cut_off"),
    (START, "After all that, Move:", False, "cut_off"),
    (START, "Move: e2e", True, "cut_off"),
    (START, "Move: e2e", False, "unparseable"),
    (START, "Move: e2e4", True, "e2e4"),
    (START, "reasoning...\nMove:\ng1f3", False, "g1f3"),
    (START, "I pick Nf3 since it develops.\nmove: Nf3.", False, "g1f3"),
    (START, "Remove: e2e4", False, "no_tag"),
    (START, "It took a long while.</think>\nMove: b1c3", False, "b1c3"),
    (ITALIAN, "Bc4 develops, Bb5 pins. Move: `f1b5`", False, "f1b5"),
    (ITALIAN, "Move: O-O", False, "illegal"),
    (LAKE, "Going left falls off the map; down is safe.\nAction: down", False, "down"),
    (LAKE, "Action: right\n(then I would go down next)", False, "right"),
    (LAKE, "<think>Action: up?</think>Action: left", False, "left"),
    (LAKE, "Action: left or right", False, "ambiguous"),
    (LAKE, "I would go down, then right.", False, "no_tag"),
    (LAKE, "ACTION: Down.", False, "down"),
]

#: Real replies of SmolLM2 under the tagged format (tests/data/tagged_smollm2.json, in order)
#: and what each one is, read by hand.
REAL = [
    "no_tag",  # 0: the system prompt echoed
    "no_tag",  # 1: the same
    "no_tag",  # 2: a remark, no tag
    "cut_off",  # 3: "S. Actions: left, down, right, up" repeated until max_new_tokens ("Actions:" is no tag)
    "no_tag",  # 4: questions, no tag
    "a2a4",  # 5: "Move: a2a4 b2d4": one legal move (b2d4 is no move); the prose after it is not read
    "ambiguous",  # 6: "Move: h2h3 g2g3 f2f3 h2h4 g2g4 f2f4"; "The legal move is h2h3." after it is not read
    "no_tag",  # 7: a story
    "cut_off",  # 8: "... Your legal move: King to" at max_new_tokens
    "no_tag",  # 9: the system prompt echoed
    "cut_off",  # 10: prose until max_new_tokens, no tag
    "ambiguous",  # 11: "Action: Up, down, left/right, ..."
]

REAL_DATA = json.loads((Path(__file__).parent / "data" / "tagged_smollm2.json").read_text())["replies"]


def test_the_table_is_large_and_covers_every_kind():
    kinds = {expected for *_, expected in WRITTEN} | set(REAL)
    assert len(WRITTEN) + len(REAL) >= 30 and len(REAL) == len(REAL_DATA)
    assert {"no_tag", "cut_off", "ambiguous", "illegal", "unparseable"} <= kinds


@pytest.mark.parametrize("env, reply, truncated, expected", WRITTEN, ids=range(len(WRITTEN)))
def test_written_replies(env, reply, truncated, expected):
    assert _outcome(env, reply, truncated) == expected


@pytest.mark.parametrize("index", range(len(REAL)))
def test_real_smollm2_replies(index):
    row = REAL_DATA[index]
    assert _outcome(row["env"], row["reply"], row["truncated"]) == REAL[index]


def _finished(reply: str, finish: str | None) -> str:
    tag, parse = _parser(START)
    try:
        return parse_tagged(reply, tag, parse, START, finish)[0]
    except ActionError as error:
        return error.kind


#: reply -> its outcome when the backend says it ended at a stop ("stop"), at max_new_tokens
#: ("length"), or does not say (None: guessed from the text).
FINISHED = {
    "<think>e4 is popular, and d4": ("no_tag", "cut_off", "cut_off"),
    "I weigh e2e4 against d2d4 and": ("no_tag", "cut_off", "no_tag"),
    "After all that, Move:": ("unparseable", "cut_off", "cut_off"),
    "Move: e2e": ("unparseable", "cut_off", "unparseable"),
    "e4 or d4? Move: e2e4": ("e2e4", "e2e4", "e2e4"),
}


@pytest.mark.parametrize("reply", FINISHED, ids=range(len(FINISHED)))
def test_the_finish_reason_decides_what_is_cut_off(reply):
    assert tuple(_finished(reply, f) for f in ("stop", "length", None)) == FINISHED[reply]


def test_reasoning_text_is_all_of_a_reply_without_an_answer():
    assert reasoning_text("<think>e4?</think>\nThe centre.\nMove: e2e4", "Move") == "e4?\n\nThe centre."
    assert reasoning_text("Move: e2e4", "Move") == ""
    assert reasoning_text("  I weigh e4 and d4 ", "Move") == "I weigh e4 and d4"


def test_reasoning_is_kept_apart_from_the_answer():
    split = split_tagged("<think>e4 or d4?</think>\nI like the centre: e4.\nMove: e2e4", "Move")
    assert split.answer == "e2e4"
    assert split.reasoning == "e4 or d4?\n\nI like the centre: e4."
    assert split_tagged("Move: e2e4", "Move").reasoning == ""


def test_the_retry_reason_names_the_kind():
    tag, parse = _parser(START)
    for reply, truncated, words in [("no tag here", False, "no final 'Move: ...' line"),
                                    ("thinking about e4 and", True, "cut off at max_new_tokens"),
                                    ("Move: e2e4 d2d4", False, "final answer 'e2e4 d2d4': reply names 2"),
                                    ("Move: e2e5", False, "final answer 'e2e5'")]:
        with pytest.raises(ActionError) as info:
            parse_tagged(reply, tag, parse, START, "length" if truncated else None)
        assert words in info.value.reason


def test_a_long_reply_is_read_by_its_last_tag():
    tag, parse = _parser(START)
    reply = "e2e4 d2d4 Move: c2c4 " * 50_000 + "\nMove: g1f3"  # about 1 MB, scanned once
    answer, split = parse_tagged(reply, tag, parse, START)
    assert answer == "g1f3" and split.reasoning.endswith("Move: c2c4")


@pytest.mark.model
@pytest.mark.parametrize("run", [
    dict(env="frozenlake", encoding="ascii", episodes=1, max_steps=2),
    dict(env="chess", encoding="fen", episodes=1, max_steps=1, env_options={"opponent": "random", "analysis": "off"}),
], ids=lambda r: r["env"])
def test_a_tagged_run_of_smollm2_validates_and_counts_its_invalid_replies(smollm2_backend, tmp_path, run):
    import io

    from rich.console import Console

    from harness.config import RunConfig
    from harness.records import iter_steps
    from harness.runner import Runner
    from harness.summary import print_summaries, summarize
    from harness.validate import validate_run

    cfg = RunConfig(**run, mode="tagged", max_new_tokens=32, max_retries=1, model="smollm2-135m-instruct")
    run_dir = Runner(cfg, smollm2_backend).run(tmp_path / "run")
    assert validate_run(run_dir) == []
    steps = list(iter_steps(run_dir))
    tag = "Move:" if run["env"] == "chess" else "Action:"
    assert all(f"one final line of the form\n{tag}" in s["prompt"] for s in steps)
    kinds = {a["error_kind"] for s in steps for a in s["attempts"]}
    assert kinds <= {"no_tag", "cut_off", "illegal", "ambiguous", "unparseable"}
    summary = summarize(run_dir)
    assert summary.invalid_reply_rate is not None and sum(summary.invalid_by_kind.values()) == sum(len(s["attempts"]) for s in steps)
    buffer = io.StringIO()
    print_summaries([summary], Console(file=buffer, width=120))
    assert "invalid replies" in buffer.getvalue()
