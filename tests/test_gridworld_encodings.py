"""Gridworld encodings tell the same facts, and their replies parse as they should.

The ascii, coords and json renderings of a state are parsed back into facts (agent,
heading, objects, walls, thin walls, what is carried) and compared with each other and
with the snapshot; the relative ``text`` rendering is checked offset by offset against
positions computed here independently.
"""

from __future__ import annotations

import json
import re
from collections import Counter

import numpy as np
import pytest

from textenvs import ENVS, AmbiguousActionError, IllegalActionError, UnparseableActionError, get_encoding, make_env
from textenvs.gridworlds import GridObject, GridState
from textenvs.gridworlds.encodings import carrying_text

GRID_FAMILIES = [e.name for e in ENVS if isinstance(e.target, str) and e.target.startswith("textenvs.gridworlds")]
CASES = [(family, variant) for family in GRID_FAMILIES for variant in ENVS.entry(family).metadata["variants"]]
CELL = re.compile(r"\(row (\d+), col (\d+)\)")


def sample_states(family: str, variant: str, limit: int = 80):
    """Snapshots of up to ``limit`` reachable states of the env, seeded."""
    env = make_env(family, variant)
    env.reset(seed=0)
    mdp = env.mdp()
    states, frontier = {int(np.flatnonzero(mdp.initial)[0])}, [int(np.flatnonzero(mdp.initial)[0])]
    while frontier:
        s = frontier.pop()
        for s2 in np.flatnonzero(mdp.transitions[s].sum(axis=0)):
            if int(s2) not in states:
                states.add(int(s2))
                frontier.append(int(s2))
    rng = np.random.default_rng(0)
    chosen = sorted(states) if len(states) <= limit else sorted(rng.choice(sorted(states), limit, replace=False))
    for s in chosen:
        env.set_state(int(s))
        yield env.text_state()


# -- parsers (independent of the encoders' code) -----------------------------------------


def parse_carrying(text: str) -> Counter:
    out: Counter = Counter()
    if text == "nothing":
        return out
    for part in text.split(" and "):
        count, _, item = part.partition(" ")
        if count in ("a", "an"):
            out[item] += 1
        else:
            out[item[:-1]] += int(count)  # "2 keys"
    return out


def facts_from_json(text: str) -> dict:
    d = json.loads(text)
    objects = Counter(
        (" ".join(p for p in (o.get("state"), o.get("color"), o["type"]) if p), o["row"], o["col"]) for o in d["objects"]
    )
    return {
        "size": (d["rows"], d["cols"]),
        "agent": (d["agent"]["row"], d["agent"]["col"]),
        "facing": d["agent"].get("facing"),
        "objects": objects,
        "walls": frozenset(tuple(w) for w in d.get("walls", [])),
        "barriers": frozenset((tuple(a), tuple(b)) for a, b in d.get("walls_between", [])),
        "carrying": Counter(d.get("carrying", [])),
    }


def facts_from_coords(text: str) -> dict:
    lines = text.splitlines()
    size = tuple(int(x) for x in re.match(r"Grid of (\d+) rows and (\d+) columns", lines[0]).groups())
    entries = lines[1].split("; ")
    m = re.fullmatch(r"agent at \(row (\d+), col (\d+)\)(?: facing (\w+))?", entries[0])
    objects: Counter = Counter()
    for entry in entries[1:]:
        what, r, c = re.fullmatch(r"(.+) at \(row (\d+), col (\d+)\)", entry).groups()
        objects[(what, int(r), int(c))] += 1
    walls, barriers, carrying = frozenset(), frozenset(), Counter()
    for line in lines[2:]:
        cells = [(int(r), int(c)) for r, c in CELL.findall(line)]
        if line.startswith("walls at "):
            walls = frozenset(cells)
        elif line.startswith("wall between "):
            barriers = frozenset(zip(cells[::2], cells[1::2]))
        elif line.startswith("carrying: "):
            carrying = parse_carrying(line[len("carrying: "):])
    return {
        "size": size, "agent": (int(m[1]), int(m[2])), "facing": m[3], "objects": objects,
        "walls": walls, "barriers": barriers, "carrying": carrying,
    }


def facts_from_ascii(text: str) -> dict:
    lines = text.splitlines()
    assert lines[0].startswith("Map")
    end = next(i for i, line in enumerate(lines) if line.startswith("Legend: "))
    rows = lines[1:end]
    legend = dict(entry.split(" = ", 1) for entry in lines[end][len("Legend: "):].split("; "))
    agent_symbol, agent_meaning = next((s, m) for s, m in legend.items() if m.startswith("you"))
    facing = agent_meaning.split("facing ")[1] if "facing" in agent_meaning else None
    objects: Counter = Counter()
    walls, barriers, agent = set(), set(), None
    for r, row in enumerate(rows):
        assert len(row) == 2 * len(rows[0][::2]) - 1
        for c, ch in enumerate(row[::2]):
            if ch == agent_symbol:
                agent = (r, c)
            elif ch == "#":
                walls.add((r, c))
            elif ch != ".":
                objects[(legend[ch], r, c)] += 1
        for c, sep in enumerate(row[1::2]):
            if sep == "|":
                barriers.add(((r, c), (r, c + 1)))
            else:
                assert sep == " "
    carrying: Counter = Counter()
    for line in lines[end + 1:]:
        if line.startswith("Also: "):
            for entry in line[len("Also: "):].split("; "):
                what, r, c = re.fullmatch(r"(.+) at \(row (\d+), col (\d+)\)", entry).groups()
                objects[(what, int(r), int(c))] += 1
        elif line.startswith("You carry "):
            carrying = parse_carrying(line[len("You carry "):-1])
    return {
        "size": (len(rows), len(rows[0][::2])), "agent": agent, "facing": facing, "objects": objects,
        "walls": frozenset(walls), "barriers": frozenset(barriers), "carrying": carrying,
    }


def facts_of(state: GridState) -> dict:
    return {
        "size": (state.height, state.width), "agent": state.agent, "facing": state.facing,
        "objects": Counter((o.describe(), o.row, o.col) for o in state.objects),
        "walls": state.walls, "barriers": state.barriers, "carrying": Counter(state.carrying),
    }


# -- the relative text ----------------------------------------------------------------------

AHEAD = {"up": (-1, 0), "right": (0, 1), "down": (1, 0), "left": (0, -1)}
RIGHT_HAND = {"up": (0, 1), "right": (1, 0), "down": (0, -1), "left": (-1, 0)}


def offset(facts: dict, cell) -> tuple[int, int]:
    """(down, right) for games without a heading, (ahead, right) with one."""
    dr, dc = cell[0] - facts["agent"][0], cell[1] - facts["agent"][1]
    if facts["facing"] is None:
        return dr, dc
    a, r = AHEAD[facts["facing"]], RIGHT_HAND[facts["facing"]]
    return dr * a[0] + dc * a[1], dr * r[0] + dc * r[1]


def parse_phrase(phrase: str) -> tuple[int, int]:
    if phrase == "where you stand":
        return 0, 0
    first = side = 0
    for part in phrase.split(" and "):
        m = re.fullmatch(r"(\d+) steps? (up|down|ahead|behind|to the left|to the right)", part)
        assert m, part
        n = int(m[1])
        if m[2] in ("down", "ahead"):
            first = n
        elif m[2] in ("up", "behind"):
            first = -n
        else:
            side = n if m[2] == "to the right" else -n
    return first, side


def check_text(text: str, facts: dict) -> None:
    h, w = facts["size"]
    border = {(r, c) for r in range(h) for c in range(w) if r in (0, h - 1) or c in (0, w - 1)}
    walled = border <= facts["walls"]
    expected = Counter((what, offset(facts, (r, c))) for (what, r, c), n in facts["objects"].items() for _ in range(n))
    expected += Counter(("wall", offset(facts, cell)) for cell in facts["walls"] if not (walled and cell in border))
    expected_barriers = {frozenset((offset(facts, a), offset(facts, b))) for a, b in facts["barriers"]}
    seen, barriers = Counter(), set()
    for line in text.splitlines():
        if not line.startswith("- "):
            continue
        if m := re.fullmatch(r"- a wall between the cell (.+) and the cell (.+)", line):
            barriers.add(frozenset((parse_phrase(m[1]), parse_phrase(m[2]))))
            continue
        m = re.fullmatch(r"- an? (.+?) (where you stand|\d+ steps? .+)", line)
        assert m, line
        seen[(m[1], parse_phrase(m[2]))] += 1
    assert seen == expected
    assert barriers == expected_barriers
    # the limits of the grid, in the agent's frame
    r, c = facts["agent"]
    if facts["facing"] is None:
        m = re.search(r"The edge of the grid is (\d+) steps? above you, (\d+) steps? below you, (\d+) steps? to your left, (\d+) steps? to your right", text)
        assert tuple(map(int, m.groups())) == (r, h - 1 - r, c, w - 1 - c)
        blocked = []
        for name, (dr, dc) in AHEAD.items():
            n = (r + dr, c + dc)
            if not (0 <= n[0] < h and 0 <= n[1] < w):
                blocked.append(f"{name} (edge)")
            elif n in facts["walls"] or tuple(sorted(((r, c), n))) in facts["barriers"]:
                blocked.append(f"{name} (wall)")
        if blocked:
            assert f"Blocked moves from here: {', '.join(blocked)}." in text
        else:
            assert "Blocked" not in text
    else:
        m = re.search(r"is (\d+) steps? ahead, (\d+) steps? behind, (\d+) steps? to your left, (\d+) steps? to your right", text)
        ahead, behind, left, right = map(int, m.groups())
        cells_ahead = [(r + k * AHEAD[facts["facing"]][0], c + k * AHEAD[facts["facing"]][1]) for k in range(1, ahead + 1)]
        assert cells_ahead[-1] in border and all(cell not in border for cell in cells_ahead[:-1])
        assert ahead + behind == (h - 1 if facts["facing"] in ("up", "down") else w - 1)
        assert left + right == (w - 1 if facts["facing"] in ("up", "down") else h - 1)
        assert f"You are facing {facts['facing']}." in text
    if sum(facts["carrying"].values()) or "carrying" in text:
        assert parse_carrying(re.search(r"You are carrying (.+)\.", text)[1]) == facts["carrying"]


@pytest.mark.parametrize("family,variant", CASES)
def test_encodings_tell_the_same_facts(family, variant):
    encodings = {name: get_encoding(family, name) for name in ("ascii", "coords", "json", "text")}
    count = 0
    for state in sample_states(family, variant):
        truth = facts_of(state)
        for name, parse in (("json", facts_from_json), ("coords", facts_from_coords), ("ascii", facts_from_ascii)):
            facts = parse(encodings[name].render_state(state))
            if not state.has_inventory:
                facts["carrying"] = Counter()
            assert facts == truth, (name, encodings[name].render_state(state))
        check_text(encodings["text"].render_state(state), truth)
        count += 1
    assert count >= 10


def test_text_describes_objects_relative_to_the_heading():
    state = GridState(
        "minigrid", 5, 5, (3, 1), (GridObject("key", 1, 0, "yellow"), GridObject("goal", 3, 3)),
        walls=frozenset((r, c) for r in range(5) for c in range(5) if r in (0, 4) or c in (0, 4)),
        facing="up", actions=("left", "right", "forward"),
    )
    text = get_encoding("minigrid", "text").render_state(state)
    assert "- a yellow key 2 steps ahead and 1 step to the left" in text
    assert "- a goal 2 steps to the right" in text
    assert "The outer wall is 3 steps ahead, 1 step behind, 1 step to your left, 3 steps to your right." in text
    assert "In front of you: an empty cell." in text


def test_ascii_draws_what_it_can_and_lists_the_rest():
    state = GridState(
        "taxi", 2, 3, (0, 0),
        (GridObject("stop", 0, 0, "red"), GridObject("stop", 1, 2, "green"), GridObject("passenger", 1, 2)),
        barriers=frozenset({((0, 0), (0, 1))}), carrying=(), has_inventory=True, actions=("up",),
    )
    assert get_encoding("taxi", "ascii").render_state(state).splitlines() == [
        "Map (row 0 is the top, column 0 the left):",
        "A|. .",
        ". . G",
        "Legend: A = you; . = empty floor; G = green stop; | = wall between two cells",
        "Also: red stop at (row 0, col 0); passenger at (row 1, col 2)",
        "You carry nothing.",
    ]


def test_carrying_is_counted():
    assert carrying_text(()) == "nothing"
    assert carrying_text(("key", "key")) == "2 keys"
    assert carrying_text(("yellow key",)) == "a yellow key"
    assert carrying_text(("open door",)) == "an open door"


# -- replies -----------------------------------------------------------------------------

PARSE_CASES = [
    ("frozenlake", "4x4", "left", "left"),
    ("frozenlake", "4x4", "I will go LEFT.", "left"),
    ("frozenlake", "4x4", "Action: down", "down"),
    ("frozenlake", "4x4", "west", "left"),
    ("frozenlake", "4x4", "down, then right", AmbiguousActionError),
    ("frozenlake", "4x4", "down. Yes, down", "down"),
    ("frozenlake", "4x4", "not left: right", AmbiguousActionError),
    ("frozenlake", "4x4", "", UnparseableActionError),
    ("frozenlake", "4x4", "jump over the hole", UnparseableActionError),
    ("frozenlake", "4x4", "downward", UnparseableActionError),
    ("taxi", "5x5", "pick up", "pick up"),
    ("taxi", "5x5", "pickup", "pick up"),
    ("taxi", "5x5", "Pick up the passenger", "pick up"),
    ("taxi", "5x5", "drop-off", "drop off"),
    ("taxi", "5x5", "north", "up"),
    ("taxi", "5x5", "up", "up"),
    ("keys-chests", "train", "right", "right"),
    ("keys-chests", "train", "toggle", IllegalActionError),  # an action of other gridworlds, not of this one
    ("minigrid", "doorkey-5x5", "turn left", "left"),
    ("minigrid", "doorkey-5x5", "move forward", "forward"),
    ("minigrid", "doorkey-5x5", "pick up the key", "pick up"),
    ("keys-chests", "train", "pick up the key", IllegalActionError),
    ("minigrid", "doorkey-5x5", "toggle", "toggle"),
    ("minigrid", "doorkey-5x5", "drop", "drop"),
    ("minigrid", "empty-5x5", "toggle", IllegalActionError),  # a gridworld action, not one of this room
    ("minigrid", "empty-5x5", "up", IllegalActionError),
]


@pytest.mark.parametrize("family,variant,reply,expected", PARSE_CASES)
@pytest.mark.parametrize("encoding", ["ascii", "coords", "text", "json"])
def test_reply_parsing(family, variant, reply, expected, encoding):
    env = make_env(family, variant)
    env.reset(seed=0)
    enc, state, legal = get_encoding(family, encoding), env.text_state(), env.legal_actions()
    if isinstance(expected, str):
        assert enc.parse_action(state, reply, legal) == expected
    else:
        with pytest.raises(expected):
            enc.parse_action(state, reply, legal)


def test_a_named_action_outside_legal_is_illegal_not_unparseable():
    env = make_env("frozenlake", "4x4")
    env.reset(seed=0)
    enc = get_encoding("frozenlake", "coords")
    with pytest.raises(IllegalActionError) as err:
        enc.parse_action(env.text_state(), "up", ["left", "down"])
    assert "frozenlake state 0" in str(err.value)


def test_the_same_action_named_twice_at_one_place_is_not_ambiguous():
    env = make_env("minigrid", "doorkey-5x5")
    env.reset(seed=0)
    enc = get_encoding("minigrid", "text")
    # "turn left" and, inside it, "left" name one action: no AmbiguousActionError.
    assert enc.parse_action(env.text_state(), "I turn left now", env.legal_actions()) == "left"
    assert issubclass(AmbiguousActionError, ValueError)


@pytest.mark.parametrize("family,variant", CASES)
def test_prompt_fields_name_the_valid_answers(family, variant):
    env = make_env(family, variant)
    env.reset(seed=0)
    for name in ("ascii", "coords", "text", "json"):
        fields = get_encoding(family, name).prompt_fields(env.text_state())
        assert set(fields) == {"goal", "answer_format", "reward"}
        assert fields["reward"] == ""  # no reward side channel: the prompt is as before
        assert all(a in fields["answer_format"] for a in env.legal_actions())
        assert fields["goal"] == env.text_state().mission
