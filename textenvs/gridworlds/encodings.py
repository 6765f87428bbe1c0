"""Text encodings of gridworld states (:class:`~textenvs.gridworlds.core.GridState`).

Four ways to show the same facts, each written once for every gridworld family:

``ascii``
    the grid drawn one character a cell, with a legend of the characters used;
``coords``
    every object with its ``(row r, col c)``;
``text``
    a description relative to the agent, BabyAI-style ("a key 2 steps ahead and 1 step
    to the left"; "a hole 1 step down" for games without a heading);
``json``
    one JSON object.

Actions are written by their names (``"left"``, ``"pick up"``...) in every encoding; the
parser also knows a few synonyms (``north``, ``pickup``, ``turn left``...) and, knowing
every action of the game, tells a named-but-illegal action from an unparseable reply.
The small per-family subclasses at the end are what the registry lists.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any, Sequence

from textenvs.base import Encoding, match_named_action
from textenvs.gridworlds.core import DIRECTIONS, Cell, GridObject, GridState

#: Other words for an action, accepted in replies when the game has that action.
SYNONYMS = {
    "north": "up", "south": "down", "east": "right", "west": "left",
    "pickup": "pick up", "pick-up": "pick up", "dropoff": "drop off", "drop-off": "drop off",
    "turn left": "left", "turn right": "right", "move forward": "forward", "go forward": "forward",
}
#: Action names of the gridworlds, read in every game's replies: "pick up the key" in a game
#: without a pick-up action names that action (refused as illegal), not "up".
GRID_ACTION_NAMES = ("up", "down", "left", "right", "pick up", "drop off", "drop", "toggle", "forward", "done")


def cell_text(cell: Cell) -> str:
    """``(row r, col c)``."""
    return f"(row {cell[0]}, col {cell[1]})"


def count_phrase(item: str, n: int) -> str:
    """``"a key"``, ``"2 keys"``, ``"an open door"``."""
    if n == 1:
        return f"{'an' if item[0] in 'aeiou' else 'a'} {item}"
    return f"{n} {item}s"


def carrying_text(items: Sequence[str]) -> str:
    """What the agent carries, in words: ``"2 keys"``, ``"a passenger"``, ``"nothing"``."""
    if not items:
        return "nothing"
    return " and ".join(count_phrase(item, n) for item, n in Counter(items).items())


def reward_text(value: float) -> str:
    """A shown reward as the prompt writes it: ``+1.00``, ``-0.50``, ``0.00``."""
    return "0.00" if abs(value) < 0.005 else f"{value:+.2f}"


def _steps(n: int) -> str:
    return f"{n} step" if n == 1 else f"{n} steps"


class GridEncoding(Encoding[GridState]):
    """Shared by the gridworld encodings: action names, prompt fields and parsing."""

    prompt_fallback = "gridworld"

    def render_action(self, state: GridState, action: str) -> str:
        return action

    def state_label(self, state: GridState) -> str:
        return str(state)

    def prompt_fields(self, state: GridState) -> dict[str, str]:
        """``$goal`` (the task), ``$answer_format`` (which action names are valid) and ``$reward``.

        ``$reward`` is what a reward side channel shows (a line, or empty without one):
        the last step's reward for ``previous``; for ``next`` the ``$actions`` list itself
        carries each action's reward, ``up (reward +1.00)``, and ``$reward`` says so.
        """
        names = ", ".join(self.render_action(state, a) for a in state.actions)
        fields = {"goal": state.mission, "answer_format": f"Answer with exactly one action name: {names}.", "reward": ""}
        shown = state.shown_reward
        if shown is not None and shown.channel == "previous":
            last = "none yet (this is the first step)" if shown.last is None else reward_text(shown.last)
            fields["reward"] = f"Reward of your last step: {last}\n"
        elif shown is not None and shown.channel == "next":
            fields["reward"] = "Each action is listed with the reward it gives.\n"
            rewards = dict(zip(state.actions, shown.per_action))
            fields["actions"] = ", ".join(
                f"{self.render_action(state, a)} (reward {reward_text(rewards[a])})" if a in rewards else self.render_action(state, a)
                for a in state.actions
            )
        return fields

    def parse_action(self, state: GridState, reply: str, legal: Sequence[str]) -> str:
        """The action the reply names, from the game's full vocabulary plus synonyms."""
        vocabulary = state.actions or tuple(legal)
        names = {self.render_action(state, a): a for a in vocabulary}
        names.update({word: a for word, a in SYNONYMS.items() if a in vocabulary})
        names.update({name: name for name in GRID_ACTION_NAMES if name not in names.values()})
        return match_named_action(reply, names, self.state_label(state), legal)


# -- ascii ----------------------------------------------------------------------------

SYMBOLS = {
    "start": "S", "hole": "H", "goal": "G", "cliff": "X", "key": "K", "chest": "C",
    "passenger": "P", "destination": "D", "ball": "O", "box": "B", "lava": "V", "coin": "*", "lever": "Y",
}
DOOR_SYMBOLS = {"locked": "L", "closed": "D", "open": "_"}
HEADING_SYMBOLS = {"up": "^", "right": ">", "down": "v", "left": "<"}
AGENT, WALL = "A", "#"


def symbol(obj: GridObject) -> str:
    """The character an object is drawn with."""
    if obj.kind == "door":
        return DOOR_SYMBOLS.get(obj.status, "D")
    if obj.kind == "stop":
        return obj.color[0].upper()
    return SYMBOLS.get(obj.kind, "?")


class AsciiEncoding(GridEncoding):
    """The grid drawn one character a cell, a legend, and what the drawing hides."""

    name = "ascii"
    summary = "grid of characters with a legend"
    #: What an empty cell is called in the legend.
    floor = "empty floor"

    def render_state(self, state: GridState) -> str:
        agent = HEADING_SYMBOLS[state.facing] if state.facing else AGENT
        cells = {c: WALL for c in state.walls}
        legend = {agent: f"you, facing {state.facing}" if state.facing else "you", ".": self.floor}
        if state.walls:
            legend[WALL] = "wall"
        hidden = []
        cells[state.agent] = agent
        for obj in state.objects:
            sym = symbol(obj)
            if obj.cell in cells or legend.get(sym, obj.describe()) != obj.describe():
                hidden.append(obj)
                continue
            cells[obj.cell] = sym
            legend[sym] = obj.describe()
        rows = []
        for r in range(state.height):
            line = cells.get((r, 0), ".")
            for c in range(1, state.width):
                sep = "|" if ((r, c - 1), (r, c)) in state.barriers else " "
                line += sep + cells.get((r, c), ".")
            rows.append(line)
        if state.barriers:
            legend["|"] = "wall between two cells"
        lines = ["Map (row 0 is the top, column 0 the left):", *rows]
        lines.append("Legend: " + "; ".join(f"{sym} = {what}" for sym, what in legend.items()))
        if hidden:
            lines.append("Also: " + "; ".join(f"{o.describe()} at {cell_text(o.cell)}" for o in hidden))
        if state.has_inventory or state.carrying:
            lines.append(f"You carry {carrying_text(state.carrying)}.")
        return "\n".join(lines)


# -- coords ---------------------------------------------------------------------------


class CoordsEncoding(GridEncoding):
    """Every object, wall and the agent listed with its (row, col)."""

    name = "coords"
    summary = "coordinate list of the agent and objects"

    def render_state(self, state: GridState) -> str:
        facing = f" facing {state.facing}" if state.facing else ""
        things = [f"agent at {cell_text(state.agent)}{facing}"]
        things += [f"{o.describe()} at {cell_text(o.cell)}" for o in state.objects]
        lines = [
            f"Grid of {state.height} rows and {state.width} columns; (row 0, col 0) is the top-left corner.",
            "; ".join(things),
        ]
        if state.walls:
            lines.append("walls at " + ", ".join(cell_text(c) for c in sorted(state.walls)))
        if state.barriers:
            lines.append("; ".join(f"wall between {cell_text(a)} and {cell_text(b)}" for a, b in sorted(state.barriers)))
        if state.has_inventory or state.carrying:
            lines.append(f"carrying: {carrying_text(state.carrying)}")
        return "\n".join(lines)


# -- text (relative to the agent) -------------------------------------------------------

_RIGHT_OF = {"up": "right", "right": "down", "down": "left", "left": "up"}
_OPPOSITE = {"up": "down", "down": "up", "left": "right", "right": "left"}


def relative(state: GridState, cell: Cell) -> tuple[int, int]:
    """``cell`` seen from the agent: ``(ahead, right)`` with a heading, else ``(down, right)``."""
    dr, dc = cell[0] - state.agent[0], cell[1] - state.agent[1]
    if state.facing is None:
        return dr, dc
    fr, fc = DIRECTIONS[state.facing]
    rr, rc = DIRECTIONS[_RIGHT_OF[state.facing]]
    return dr * fr + dc * fc, dr * rr + dc * rc


def relative_phrase(state: GridState, cell: Cell) -> str:
    """Where ``cell`` is from the agent: ``"2 steps ahead and 1 step to the left"``."""
    first, side = relative(state, cell)
    parts = []
    if first:
        if state.facing is None:
            parts.append(f"{_steps(abs(first))} {'down' if first > 0 else 'up'}")
        else:
            parts.append(f"{_steps(abs(first))} {'ahead' if first > 0 else 'behind'}")
    if side:
        parts.append(f"{_steps(abs(side))} to the {'right' if side > 0 else 'left'}")
    return " and ".join(parts) or "where you stand"


def _walled_border(state: GridState) -> bool:
    border = {(r, c) for r in range(state.height) for c in range(state.width)
              if r in (0, state.height - 1) or c in (0, state.width - 1)}
    return border <= state.walls


class TextEncoding(GridEncoding):
    """Natural language relative to the agent (BabyAI-style)."""

    name = "text"
    summary = "natural-language description relative to the agent"

    def render_state(self, state: GridState) -> str:
        walled = _walled_border(state)
        r, c = state.agent
        # Distances to the limits of the grid: the outer wall (MiniGrid) or the edge.
        limit = {"up": r, "down": state.height - 1 - r, "left": c, "right": state.width - 1 - c}
        if state.facing is None:
            where = f"You are in a grid of {state.height} rows and {state.width} columns."
            dirs = [("up", "above you"), ("down", "below you"), ("left", "to your left"), ("right", "to your right")]
            limits = ", ".join(f"{_steps(limit[d])} {words}" for d, words in dirs)
            lines = [where, f"The edge of the grid is {limits}."]
        else:
            ahead, right = state.facing, _RIGHT_OF[state.facing]
            order = [ahead, _OPPOSITE[ahead], _OPPOSITE[right], right]
            words = ["ahead", "behind", "to your left", "to your right"]
            limits = ", ".join(f"{_steps(limit[d])} {w}" for d, w in zip(order, words))
            edge = "The outer wall is" if walled else "The edge of the grid is"
            lines = [f"You are facing {state.facing}.", f"{edge} {limits}."]
            fr, fc = DIRECTIONS[state.facing]
            front = (r + fr, c + fc)
            lines.append(f"In front of you: {self._front(state, front, walled)}.")
        seen = [f"{count_phrase(o.describe(), 1)} {relative_phrase(state, o.cell)}" for o in state.objects]
        inner_walls = sorted(w for w in state.walls if not (walled and self._on_border(state, w)))
        seen += [f"a wall {relative_phrase(state, w)}" for w in inner_walls]
        seen += [
            f"a wall between the cell {relative_phrase(state, a)} and the cell {relative_phrase(state, b)}"
            for a, b in sorted(state.barriers)
        ]
        if seen:
            lines.append("You see:")
            lines += [f"- {s}" for s in seen]
        if state.facing is None:
            blocked = [f"{d} ({why})" for d in DIRECTIONS if (why := state.blocked(state.agent, d))]
            if blocked:
                lines.append(f"Blocked moves from here: {', '.join(blocked)}.")
        if state.has_inventory or state.carrying:
            lines.append(f"You are carrying {carrying_text(state.carrying)}.")
        return "\n".join(lines)

    @staticmethod
    def _on_border(state: GridState, cell: Cell) -> bool:
        return cell[0] in (0, state.height - 1) or cell[1] in (0, state.width - 1)

    def _front(self, state: GridState, cell: Cell, walled: bool) -> str:
        if cell in state.walls:
            return "the outer wall" if walled and self._on_border(state, cell) else "a wall"
        if not (0 <= cell[0] < state.height and 0 <= cell[1] < state.width):
            return "the edge of the grid"
        objs = state.objects_at(cell)
        return " and ".join(count_phrase(o.describe(), 1) for o in objs) if objs else "an empty cell"


# -- json -----------------------------------------------------------------------------


def state_dict(state: GridState) -> dict[str, Any]:
    """The JSON-able dict the ``json`` encoding prints."""
    agent: dict[str, Any] = {"row": state.agent[0], "col": state.agent[1]}
    if state.facing:
        agent["facing"] = state.facing
    objects = []
    for o in state.objects:
        entry: dict[str, Any] = {"type": o.kind}
        if o.color:
            entry["color"] = o.color
        if o.status:
            entry["state"] = o.status
        objects.append({**entry, "row": o.row, "col": o.col})
    out: dict[str, Any] = {"rows": state.height, "cols": state.width, "agent": agent, "objects": objects}
    if state.walls:
        out["walls"] = [list(c) for c in sorted(state.walls)]
    if state.barriers:
        out["walls_between"] = [[list(a), list(b)] for a, b in sorted(state.barriers)]
    if state.has_inventory or state.carrying:
        out["carrying"] = list(state.carrying)
    return out


class JsonEncoding(GridEncoding):
    """The state as one JSON object (cells as ``[row, col]``)."""

    name = "json"
    summary = "JSON object of the agent, objects and walls"

    def render_state(self, state: GridState) -> str:
        return json.dumps(state_dict(state))


# -- per family (what the registry lists) --------------------------------------------------


class FrozenLakeAscii(AsciiEncoding):
    """frozenlake: ASCII grid."""

    env = "frozenlake"
    floor = "frozen ice"


class FrozenLakeCoords(CoordsEncoding):
    """frozenlake: coordinate list."""

    env = "frozenlake"


class FrozenLakeText(TextEncoding):
    """frozenlake: relative text."""

    env = "frozenlake"


class FrozenLakeJson(JsonEncoding):
    """frozenlake: JSON."""

    env = "frozenlake"


class CliffWalkingAscii(AsciiEncoding):
    """cliffwalking: ASCII grid."""

    env = "cliffwalking"


class CliffWalkingCoords(CoordsEncoding):
    """cliffwalking: coordinate list."""

    env = "cliffwalking"


class CliffWalkingText(TextEncoding):
    """cliffwalking: relative text."""

    env = "cliffwalking"


class CliffWalkingJson(JsonEncoding):
    """cliffwalking: JSON."""

    env = "cliffwalking"


class TaxiAscii(AsciiEncoding):
    """taxi: ASCII grid."""

    env = "taxi"


class TaxiCoords(CoordsEncoding):
    """taxi: coordinate list."""

    env = "taxi"


class TaxiText(TextEncoding):
    """taxi: relative text."""

    env = "taxi"


class TaxiJson(JsonEncoding):
    """taxi: JSON."""

    env = "taxi"


class KeysChestsAscii(AsciiEncoding):
    """keys-chests: ASCII grid."""

    env = "keys-chests"


class KeysChestsCoords(CoordsEncoding):
    """keys-chests: coordinate list."""

    env = "keys-chests"


class KeysChestsText(TextEncoding):
    """keys-chests: relative text."""

    env = "keys-chests"


class KeysChestsJson(JsonEncoding):
    """keys-chests: JSON."""

    env = "keys-chests"


class MiniGridAscii(AsciiEncoding):
    """minigrid: ASCII grid."""

    env = "minigrid"


class MiniGridCoords(CoordsEncoding):
    """minigrid: coordinate list."""

    env = "minigrid"


class MiniGridText(TextEncoding):
    """minigrid: relative text."""

    env = "minigrid"


class MiniGridJson(JsonEncoding):
    """minigrid: JSON."""

    env = "minigrid"
