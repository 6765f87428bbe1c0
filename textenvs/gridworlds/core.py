"""What every gridworld shares: the state snapshot encodings render, and a small base env.

Coordinates are ``(row, col)`` everywhere, row 0 at the top and column 0 at the left,
whatever the wrapped library uses internally (MiniGrid counts ``(x, y)``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Sequence

import gymnasium

from textenvs.errors import IllegalActionError

Cell = tuple[int, int]

#: Unit moves of the four grid directions, as ``(d_row, d_col)``.
DIRECTIONS: dict[str, Cell] = {"up": (-1, 0), "right": (0, 1), "down": (1, 0), "left": (0, -1)}


@dataclass(frozen=True)
class GridObject:
    """One thing lying on a cell: a hole, a key, a locked yellow door..."""

    #: What it is (``"hole"``, ``"goal"``, ``"key"``, ``"chest"``, ``"door"``, ``"stop"``...).
    kind: str
    row: int
    col: int
    #: A colour, where the game has them (MiniGrid objects, Taxi stops).
    color: str = ""
    #: A state, where the object has one (doors: ``"locked"``, ``"closed"``, ``"open"``).
    status: str = ""

    @property
    def cell(self) -> Cell:
        return (self.row, self.col)

    def describe(self) -> str:
        """Its name in words: ``"locked yellow door"``, ``"red stop"``, ``"hole"``."""
        return " ".join(part for part in (self.status, self.color, self.kind) if part)


@dataclass(frozen=True)
class ShownReward:
    """What a reward side channel shows in this state (:mod:`textenvs.reward_channel`)."""

    #: ``"previous"`` (the last step's observed reward) or ``"next"`` (each action's).
    channel: str
    #: ``previous``: the observed reward of the last step; ``None`` before the first step.
    last: float | None = None
    #: ``next``: the expected observed reward of each action of :attr:`GridState.actions`.
    per_action: tuple[float, ...] = ()


@dataclass(frozen=True)
class GridState:
    """An immutable snapshot of a gridworld decision state, for encodings.

    Everything an encoding may show is here; encodings never look at the environment.
    """

    #: Environment family (``"frozenlake"``, ``"minigrid"``...).
    family: str
    height: int
    width: int
    #: The agent's cell.
    agent: Cell
    #: Objects on the grid, in a fixed order (an object may share a cell with another).
    objects: tuple[GridObject, ...] = ()
    #: Cells that are walls (blocked).
    walls: frozenset[Cell] = frozenset()
    #: Thin walls between two adjacent cells (Taxi), each pair in sorted order.
    barriers: frozenset[tuple[Cell, Cell]] = frozenset()
    #: The agent's heading (``"up"``, ``"right"``, ``"down"``, ``"left"``) in games where
    #: it turns and moves forward (MiniGrid); ``None`` where it moves in four directions.
    facing: str | None = None
    #: What the agent carries, one entry per item (``("key", "key")``, ``("passenger",)``).
    carrying: tuple[str, ...] = ()
    #: Whether the game has an inventory at all (so that "carrying nothing" is worth saying).
    has_inventory: bool = False
    #: The task in one or two sentences.
    mission: str = ""
    #: Every action name of the environment, in its fixed order.
    actions: tuple[str, ...] = ()
    #: The state's index in the environment's exported MDP.
    index: int = -1
    #: What a reward side channel shows, or ``None`` without one.
    shown_reward: ShownReward | None = None

    def objects_at(self, cell: Cell) -> tuple[GridObject, ...]:
        """The objects lying on ``cell``."""
        return tuple(o for o in self.objects if o.cell == cell)

    def blocked(self, cell: Cell, direction: str) -> str | None:
        """Why a step from ``cell`` towards ``direction`` cannot happen, or ``None``."""
        dr, dc = DIRECTIONS[direction]
        target = (cell[0] + dr, cell[1] + dc)
        if not (0 <= target[0] < self.height and 0 <= target[1] < self.width):
            return "edge"
        if target in self.walls:
            return "wall"
        if tuple(sorted((cell, target))) in self.barriers:
            return "wall"
        return None

    def __str__(self) -> str:
        held = f" carrying {'+'.join(self.carrying)}" if self.carrying else ""
        facing = f" facing {self.facing}" if self.facing else ""
        return f"{self.family} state {self.index}: agent at {self.agent}{facing}{held}"


class GridTextEnv(gymnasium.Env):
    """Base of the gridworld environments: named actions and the end-of-episode info.

    Subclasses set :attr:`family` and :attr:`action_names` and implement the rest of
    :class:`~textenvs.base.TextEnv` plus ``mdp()``. ``step`` takes an action name (or,
    for RL libraries, its index in :attr:`action_names`).
    """

    family: ClassVar[str]
    #: Action names in the order of the action space and of the MDP's actions.
    action_names: tuple[str, ...]

    def return_range(self, max_steps: int) -> tuple[float, float] | None:
        """The least and greatest return an episode of ``max_steps`` decisions can collect,
        from the exact MDP (:meth:`textenvs.mdp.TabularMDP.return_range`); ``None`` when
        every episode draws its own layout (``layout_seed=None``)."""
        if getattr(self, "layout_seed", 0) is None or not callable(getattr(self, "mdp", None)):
            return None
        return self.mdp().return_range(max_steps)

    def legal_actions(self) -> list[str]:
        """Every action is legal in a gridworld; this is :attr:`action_names`."""
        return list(self.action_names)

    def action_index(self, action: Any) -> int:
        """The index of ``action`` (a name, or an index); unknown names are illegal."""
        if isinstance(action, str):
            try:
                return self.action_names.index(action)
            except ValueError:
                raise IllegalActionError(
                    f"unknown action (this environment has {', '.join(self.action_names)})",
                    action, self._state_label(),
                ) from None
        try:
            index = int(action)
        except (TypeError, ValueError):
            raise IllegalActionError("an action is a name or an index", repr(action), self._state_label()) from None
        if not 0 <= index < len(self.action_names):
            raise IllegalActionError(f"action index out of range 0..{len(self.action_names) - 1}", repr(action), self._state_label())
        return index

    def _state_label(self) -> str:
        try:
            return str(self.text_state())  # type: ignore[attr-defined]
        except Exception:  # before the first reset there is no state to name
            return f"{self.family} (not reset)"


def end_info(success: bool, outcome: str, **extra: Any) -> dict[str, Any]:
    """The ``info`` of a final step: ``success`` and a one-word ``outcome``."""
    return {**extra, "success": bool(success), "outcome": outcome}


def manhattan(a: Cell, b: Cell) -> int:
    return abs(a[0] - b[0]) + abs(a[1] - b[1])


def layout_seed_option(value: Any) -> int | None:
    """A ``layout_seed`` option: an integer, or ``None`` (also written ``"none"``, since TOML
    has no null) for a new layout every episode."""
    if value is None or (isinstance(value, str) and value.strip().lower() == "none"):
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"layout_seed must be an integer or none, got {value!r}")
    return value
