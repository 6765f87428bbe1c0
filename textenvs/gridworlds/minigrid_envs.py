"""MiniGrid environments (``Empty``, ``DoorKey``) as text environments.

The real MiniGrid env does every step; this class only names the actions, snapshots the
grid for encodings and exports the MDP. The agent has a heading: ``left`` and ``right``
turn in place, ``forward`` moves one cell ahead, ``pick up``/``drop``/``toggle`` act on
the cell in front. MiniGrid's ``done`` action (a no-op) is left out, and so are
``pick up``/``drop``/``toggle`` in layouts with nothing to pick up or open (``Empty``).

``RandomGoalRoom`` (``zso/RandomGoal-5x5-v0``, ``zso/RandomGoal-6x6-v0``) is MiniGrid's
empty room with the goal on a cell drawn at random, and the agent on another cell with a
random heading, so the goal lies in any direction; its fits use the features that mean the
same in every room (:data:`LAYOUT_FREE_FEATURES`).

The layout is fixed by ``layout_seed``: every ``reset`` resets MiniGrid with that seed, so
the episodes are deterministic and :meth:`MiniGridText.mdp` is exact for them.
``layout_seed=None`` passes each reset's own seed on (a new layout each time, and
:meth:`~MiniGridText.mdp` describes the current one).

Rewards: MiniGrid pays ``1 - 0.9 * step_count / max_steps`` on reaching the goal, which
depends on time and so is not a function of the state. ``step`` returns MiniGrid's reward
unchanged; the exported MDP uses the undiscounted success reward 1 on the transition
that reaches the goal and 0 elsewhere. MiniGrid also truncates at its ``max_steps``;
that truncation is passed on.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, ClassVar

import gymnasium
import minigrid  # noqa: F401  (registers the MiniGrid-* ids with gymnasium)
import numpy as np
from gymnasium import spaces
from minigrid.core.constants import OBJECT_TO_IDX
from minigrid.core.grid import Grid
from minigrid.core.world_object import Goal, WorldObj
from minigrid.envs.empty import EmptyEnv

from textenvs.gridworlds import mdp_export
from textenvs.gridworlds.core import GridObject, GridState, GridTextEnv, end_info, manhattan
from textenvs.mdp import TabularMDP

#: Our action names -> MiniGrid's action indices.
MINIGRID_ACTIONS = {"left": 0, "right": 1, "forward": 2, "pick up": 3, "drop": 4, "toggle": 5}
#: MiniGrid's ``agent_dir`` -> heading.
HEADINGS = ("right", "down", "left", "up")
_INTERACTIVE = {OBJECT_TO_IDX[k] for k in ("key", "ball", "box", "door")}
_WALL, _EMPTY, _GOAL, _KEY, _DOOR = (OBJECT_TO_IDX[k] for k in ("wall", "empty", "goal", "key", "door"))


@dataclass(frozen=True)
class MiniGridKey:
    """Everything that makes a MiniGrid state: agent, heading, what it carries, the grid."""

    #: MiniGrid's ``(x, y)`` of the agent.
    agent: tuple[int, int]
    #: MiniGrid's ``agent_dir`` (0 right, 1 down, 2 left, 3 up).
    direction: int
    #: MiniGrid's encoding ``(type, color, state)`` of the carried object, or ``None``.
    carrying: tuple[int, int, int] | None
    #: ``Grid.encode()`` as bytes (shape ``(width, height, 3)``).
    grid: bytes
    width: int
    height: int

    def grid_array(self) -> np.ndarray:
        return np.frombuffer(self.grid, dtype=np.uint8).reshape(self.width, self.height, 3)


def read_key(env: Any) -> MiniGridKey:
    """The state of a (unwrapped) MiniGrid env."""
    carrying = None if env.carrying is None else tuple(int(v) for v in env.carrying.encode())
    return MiniGridKey(
        (int(env.agent_pos[0]), int(env.agent_pos[1])), int(env.agent_dir), carrying,
        env.grid.encode().tobytes(), int(env.width), int(env.height),
    )


def restore_key(env: Any, key: MiniGridKey) -> None:
    """Put a MiniGrid env in state ``key`` with MiniGrid's own objects (step count 0)."""
    env.grid = Grid.decode(key.grid_array())[0]
    env.agent_pos = key.agent
    env.agent_dir = key.direction
    env.carrying = None if key.carrying is None else WorldObj.decode(*key.carrying)
    env.step_count = 0


class RandomGoalRoom(EmptyEnv):
    """MiniGrid's empty room (``EmptyEnv``) with the goal on a random free cell and the agent
    on another, facing a random way: MiniGrid's own ``place_obj`` and ``place_agent`` draw
    both from the reset's seed."""

    def __init__(self, size: int = 5, **kwargs: Any):
        super().__init__(size=size, agent_start_pos=None, **kwargs)

    def _gen_grid(self, width: int, height: int) -> None:
        self.grid = Grid(width, height)
        self.grid.wall_rect(0, 0, width, height)
        self.place_obj(Goal())
        self.place_agent()
        self.mission = self._gen_mission()


#: The rooms defined here, registered with gymnasium when first made: id -> keyword arguments.
OWN_ROOMS = {
    "zso/RandomGoal-5x5-v0": {"size": 5},
    "zso/RandomGoal-6x6-v0": {"size": 6},
}
#: The features that mean the same in every room: what fits of rooms drawn anew use by default
#: (not the raw row and column, nor the heading, whose meaning depends on where the goal is).
LAYOUT_FREE_FEATURES = ("at_goal", "front_empty", "front_wall", "front_goal", "dist_to_goal", "facing_goal")


def _make_inner(env_id: str) -> Any:
    if env_id in OWN_ROOMS and env_id not in gymnasium.registry:
        gymnasium.register(env_id, entry_point=f"{__name__}:RandomGoalRoom", kwargs=OWN_ROOMS[env_id])
    return gymnasium.make(env_id, disable_env_checker=True).unwrapped


FEATURES = (
    "at_goal", "has_key", "key_on_floor", "door_locked", "door_open",
    "front_empty", "front_wall", "front_goal", "front_key", "front_door",
    "dist_to_goal", "dist_to_key", "dist_to_door", "row", "col",
    "facing_right", "facing_down", "facing_left", "facing_up", "facing_goal",
)


def _features(key: MiniGridKey) -> list[float]:
    grid = key.grid_array()
    types = grid[:, :, 0]

    def where(t: int) -> list[tuple[int, int]]:
        return [(int(x), int(y)) for x, y in zip(*np.nonzero(types == t))]

    goals, keys, doors = where(_GOAL), where(_KEY), where(_DOOR)
    dx, dy = ((1, 0), (0, 1), (-1, 0), (0, -1))[key.direction]
    fx, fy = key.agent[0] + dx, key.agent[1] + dy
    front = int(types[fx, fy]) if 0 <= fx < key.width and 0 <= fy < key.height else _WALL
    door_states = [int(grid[x, y, 2]) for x, y in doors]  # 0 open, 1 closed, 2 locked
    carrying_key = key.carrying is not None and key.carrying[0] == _KEY
    return [
        key.agent in goals, carrying_key, bool(keys), 2 in door_states, 0 in door_states,
        front == _EMPTY, front == _WALL, front == _GOAL, front == _KEY, front == _DOOR,
        min((manhattan(key.agent, g) for g in goals), default=0),
        0 if carrying_key else min((manhattan(key.agent, k) for k in keys), default=0),
        min((manhattan(key.agent, d) for d in doors), default=0),
        key.agent[1], key.agent[0], *(key.direction == i for i in range(4)),
        any(manhattan((fx, fy), g) < manhattan(key.agent, g) for g in goals),
    ]


@dataclass(frozen=True)
class _Exported:
    mdp: TabularMDP
    states: tuple[MiniGridKey, ...]
    index: dict[MiniGridKey, int]


@lru_cache(maxsize=64)
def _export(env_id: str, start: MiniGridKey, actions: tuple[str, ...]) -> _Exported:
    """BFS over the real MiniGrid env from ``start``; shared by all envs with this layout."""
    env = _make_inner(env_id)
    env.reset(seed=0)  # sets every attribute; the grid is replaced state by state below

    def step(key: MiniGridKey, a: int) -> list[mdp_export.Outcome]:
        restore_key(env, key)
        _, reward, terminated, _, _ = env.step(MINIGRID_ACTIONS[actions[a]])
        return [(1.0, read_key(env), 1.0 if terminated and reward > 0 else 0.0, terminated)]

    found = mdp_export.enumerate_states([start], step, len(actions))
    initial = np.zeros(len(found.states))
    initial[0] = 1.0
    mdp = mdp_export.tabulate(
        len(found.states), actions, found.outcomes, initial, found.terminal,
        features=np.array([_features(k) for k in found.states], dtype=float), feature_names=FEATURES,
        state_labels=[_label(k) for k in found.states], grid_shape=(start.height, start.width),
        positions=np.array([(k.agent[1], k.agent[0]) for k in found.states]),
        default_features=LAYOUT_FREE_FEATURES if env_id in OWN_ROOMS else None,
    )
    return _Exported(mdp, found.states, dict(found.index))


def _label(key: MiniGridKey) -> str:
    grid = key.grid_array()
    doors = [("open", "closed", "locked")[int(grid[x, y, 2])] for x, y in zip(*np.nonzero(grid[:, :, 0] == _DOOR))]
    extra = "".join(f" door={d}" for d in doors)
    held = " key" if key.carrying is not None else ""
    return f"({key.agent[1]}, {key.agent[0]}) {HEADINGS[key.direction]}{held}{extra}"


class MiniGridText(GridTextEnv):
    """A MiniGrid environment (``env_id``) with a fixed layout (``layout_seed``).

    See the module docstring for the actions, the layout and how the MDP's reward differs
    from MiniGrid's. The observation is the MDP state index.
    """

    family = "minigrid"
    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}

    def __init__(self, env_id: str = "MiniGrid-Empty-5x5-v0", layout_seed: int | None = 0):
        self.env_id = env_id
        self.layout_seed = layout_seed
        self._inner = _make_inner(env_id)
        self._inner.reset(seed=0 if layout_seed is None else layout_seed)
        has_objects = bool(np.isin(self._inner.grid.encode()[:, :, 0], list(_INTERACTIVE)).any())
        self.action_names = tuple(MINIGRID_ACTIONS) if has_objects else ("left", "right", "forward")
        self.action_space = spaces.Discrete(len(self.action_names))
        self._start = read_key(self._inner)
        self._seed_of_layout = layout_seed
        self._ready = False
        if layout_seed is not None:
            self.observation_space = spaces.Discrete(self.mdp().n_states)
        else:  # indices of whichever layout the episode has: no useful bound
            self.observation_space = spaces.Discrete(np.iinfo(np.int32).max)

    def _exported(self) -> _Exported:
        return _export(self.env_id, self._start, self.action_names)

    def mdp(self) -> TabularMDP:
        """The exact MDP of the current layout (enumerated once per layout, cached)."""
        return self._exported().mdp

    @property
    def max_steps(self) -> int:
        """MiniGrid's own step limit (it truncates there)."""
        return int(self._inner.max_steps)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
        """Reset MiniGrid with ``layout_seed`` (or with ``seed`` when ``layout_seed=None``)."""
        super().reset(seed=seed)
        if self.layout_seed is None:
            self._seed_of_layout = seed if seed is not None else int(self.np_random.integers(2**31))
        self._inner.reset(seed=self._seed_of_layout)
        self._start = read_key(self._inner)
        self._ready = True
        return self.state_index, {}

    def _check_ready(self) -> None:
        if not self._ready:
            raise RuntimeError("call reset() first")

    @property
    def state_index(self) -> int:
        """The current state's index in :meth:`mdp`."""
        self._check_ready()
        return self._exported().index[read_key(self._inner)]

    def set_state(self, index: int) -> None:
        """Put the environment in MDP state ``index`` (for tests and analysis).

        MiniGrid's step count goes back to 0, so its reward is then that of a first step.
        """
        self._check_ready()
        restore_key(self._inner, self._exported().states[int(index)])

    def step(self, action: Any) -> tuple[int, float, bool, bool, dict[str, Any]]:
        """Step MiniGrid; the reward is MiniGrid's (time-discounted) one."""
        self._check_ready()
        a = self.action_index(action)
        _, reward, terminated, truncated, _ = self._inner.step(MINIGRID_ACTIONS[self.action_names[a]])
        info: dict[str, Any] = {"step_count": int(self._inner.step_count)}
        if terminated:
            info = end_info(reward > 0, "goal" if reward > 0 else "failed", **info)
        elif truncated:
            info = end_info(False, "timeout", **info)
        return self.state_index, float(reward), bool(terminated), bool(truncated), info

    def text_state(self) -> GridState:
        """A snapshot in ``(row, col)`` terms: walls, objects, heading, what is carried."""
        self._check_ready()
        env = self._inner
        walls, objects = set(), []
        for y in range(env.height):
            for x in range(env.width):
                obj = env.grid.get(x, y)
                if obj is None:
                    continue
                if obj.type == "wall":
                    walls.add((y, x))
                elif obj.type == "door":
                    status = "open" if obj.is_open else "locked" if obj.is_locked else "closed"
                    objects.append(GridObject("door", y, x, obj.color, status))
                elif obj.type in ("goal", "lava"):
                    objects.append(GridObject(obj.type, y, x))
                else:
                    objects.append(GridObject(obj.type, y, x, obj.color))
        carrying = () if env.carrying is None else (f"{env.carrying.color} {env.carrying.type}",)
        mission = (
            f"{env.mission[0].upper()}{env.mission[1:]}. Reaching the goal scores 1 (a little less the longer you take). "
            "'left' and 'right' turn you in place; 'forward' moves one cell in the direction you face"
        )
        if "toggle" in self.action_names:
            mission += "; 'pick up', 'drop' and 'toggle' (open, close or unlock a door) act on the cell in front of you"
        return GridState(
            self.family, env.height, env.width, (int(env.agent_pos[1]), int(env.agent_pos[0])),
            tuple(objects), walls=frozenset(walls), facing=HEADINGS[env.agent_dir],
            carrying=carrying, has_inventory="pick up" in self.action_names, mission=mission + ".", actions=self.action_names, index=self.state_index,
        )

    def state_record(self) -> dict[str, Any]:
        """``index`` in :meth:`mdp`, position, heading, what is carried, the layout's seed."""
        env = self._inner
        return {
            "index": self.state_index, "row": int(env.agent_pos[1]), "col": int(env.agent_pos[0]),
            "facing": HEADINGS[env.agent_dir],
            "carrying": None if env.carrying is None else f"{env.carrying.color} {env.carrying.type}",
            "layout_seed": self._seed_of_layout,
        }
