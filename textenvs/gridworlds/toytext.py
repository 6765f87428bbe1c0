"""Gymnasium's toy-text gridworlds (FrozenLake, CliffWalking, Taxi) as text environments.

Each class wraps the real gymnasium environment: ``reset`` and ``step`` go through it, the
observation is its discrete state, and :meth:`mdp` is its own table ``P`` converted, so
MDP state ``i`` is the environment's state ``i`` (unreachable ones included).
"""

from __future__ import annotations

from collections import deque
from typing import Any, ClassVar

import numpy as np
from gymnasium import spaces
from gymnasium.envs.toy_text.cliffwalking import CliffWalkingEnv
from gymnasium.envs.toy_text.frozen_lake import FrozenLakeEnv
from gymnasium.envs.toy_text.taxi import TaxiEnv

from textenvs.gridworlds import mdp_export
from textenvs.gridworlds.core import DIRECTIONS, GridObject, GridState, GridTextEnv, end_info, layout_seed_option, manhattan
from textenvs.mdp import TabularMDP


class _ToyTextEnv(GridTextEnv):
    """Shared plumbing: the wrapped env, its observation, its ``P`` table as the MDP."""

    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}

    def __init__(self, inner: Any):
        self._inner = inner
        self.observation_space = inner.observation_space
        self.action_space = spaces.Discrete(len(self.action_names))
        self._mdp: TabularMDP | None = None

    @property
    def n_states(self) -> int:
        return int(self._inner.observation_space.n)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
        """Reset the wrapped env with ``seed``; the observation is its state index."""
        super().reset(seed=seed)
        obs, info = self._inner.reset(seed=seed)
        return self._outer(int(obs)), {"prob": float(info["prob"])}

    def step(self, action: Any) -> tuple[int, float, bool, bool, dict[str, Any]]:
        """Step the wrapped env with the named action."""
        obs, reward, terminated, truncated, info = self._inner.step(self._inner_action(self.action_index(action)))
        s = self._outer(int(obs))
        out: dict[str, Any] = {"prob": float(info["prob"])}
        if terminated:
            out = end_info(*self._ending(s), **out)
        return s, float(reward), bool(terminated), bool(truncated), out

    @property
    def state_index(self) -> int:
        """The current state's index (the wrapped env's discrete state, seen through :meth:`_outer`)."""
        if not hasattr(self._inner, "s"):
            raise RuntimeError("call reset() first")
        return self._outer(int(self._inner.s))

    def set_state(self, index: int) -> None:
        """Put the environment in MDP state ``index`` (for tests and analysis)."""
        if not 0 <= int(index) < self.n_states:
            raise ValueError(f"state index {index} out of range 0..{self.n_states - 1}")
        self._inner.s = self._outer(int(index))

    def _outer(self, s: int) -> int:
        """Our state index of the wrapped env's state ``s`` and back (an involution; the
        identity unless the map is mirrored)."""
        return s

    def _inner_action(self, a: int) -> int:
        """The wrapped env's action for our action ``a`` (the identity unless mirrored)."""
        return a

    def _table(self) -> dict[int, dict[int, list[tuple[float, int, float, bool]]]]:
        """The wrapped env's ``P`` table in our state and action indices."""
        P = self._inner.P
        return {s: {a: [(p, self._outer(int(s2)), r, d) for p, s2, r, d in P[self._outer(s)][self._inner_action(a)]]
                    for a in range(len(self.action_names))} for s in range(self.n_states)}

    def mdp(self) -> TabularMDP:
        """The exact MDP, from the wrapped env's ``P`` table (computed once, cached)."""
        if self._mdp is None:
            n = self.n_states
            features = np.array([self._features(s) for s in range(n)], dtype=float)
            events = self._transition_features()
            inner_initial = np.asarray(self._inner.initial_state_distrib, dtype=float)
            initial = np.array([inner_initial[self._outer(s)] for s in range(n)])
            self._mdp = mdp_export.from_gym_table(
                self._table(), n, self.action_names, initial,
                features=features, feature_names=self.feature_names,
                transition_features=None if events is None else events[1],
                transition_feature_names=() if events is None else events[0],
                state_labels=[self._label(s) for s in range(n)],
                grid_shape=self._grid_shape(), positions=np.array([self._cell(s) for s in range(n)]),
                default_features=self._default_features(),
            )
        return self._mdp

    def text_state(self) -> GridState:
        """A snapshot of the current state."""
        return self._snapshot(self.state_index)

    # -- per game ---------------------------------------------------------------------
    feature_names: ClassVar[tuple[str, ...]]

    def _snapshot(self, s: int) -> GridState:
        """The agent on a grid of fixed objects (``self._objects``, ``self._mission``)."""
        h, w = self._grid_shape()
        return GridState(self.family, h, w, self._cell(s), self._objects, mission=self._mission, actions=self.action_names, index=int(s))

    def _cell(self, s: int) -> tuple[int, int]:
        """``(row, col)`` of state ``s``: states numbered row by row."""
        return divmod(int(s), self._grid_shape()[1])

    def _grid_shape(self) -> tuple[int, int]:
        raise NotImplementedError

    def _features(self, s: int) -> list[float]:
        raise NotImplementedError

    def _label(self, s: int) -> str:
        return str(self._cell(s))

    def _default_features(self) -> tuple[str, ...] | None:
        """The named features fits use by default (``None``: all of them)."""
        return None

    def _transition_features(self) -> tuple[tuple[str, ...], np.ndarray] | None:
        """Names and ``[S, A, S, k]`` values of events of the move, if the game has any."""
        return None

    def _ending(self, s: int) -> tuple[bool, str]:
        raise NotImplementedError


def _cells_of(desc: np.ndarray, letter: bytes) -> list[tuple[int, int]]:
    return [(int(r), int(c)) for r, c in zip(*np.nonzero(desc == letter))]


#: Gymnasium's probability that a tile of a random FrozenLake map is frozen (not a hole).
FROZEN_PROBABILITY = 0.8


def random_lake(seed: int, size: int = 4, frozen: float = FROZEN_PROBABILITY) -> tuple[str, ...]:
    """A random FrozenLake map (rows of ``S``/``F``/``H``/``G``) drawn from ``seed``.

    The holes are gymnasium's ``generate_random_map(size, frozen, seed)``: each tile frozen
    with probability ``frozen``, redrawn until its top-left start reaches its bottom-right
    goal. The start and the goal are then moved to two distinct cells drawn uniformly (with
    a generator seeded by ``seed``) from the frozen region connected to that path, so the
    goal lies in any direction from the start and a path between them is guaranteed.
    """
    from gymnasium.envs.toy_text.frozen_lake import generate_random_map

    if size < 2:
        raise ValueError(f"a random FrozenLake map needs size >= 2, got {size}")
    if not 0.0 < frozen <= 1.0:
        raise ValueError(f"the frozen probability must lie in (0, 1], got {frozen}")
    board = [list(row) for row in generate_random_map(size=size, p=frozen, seed=seed)]
    region, queue = {(0, 0)}, deque([(0, 0)])
    while queue:
        r, c = queue.popleft()
        for dr, dc in DIRECTIONS.values():
            n = (r + dr, c + dc)
            if 0 <= n[0] < size and 0 <= n[1] < size and n not in region and board[n[0]][n[1]] != "H":
                region.add(n)
                queue.append(n)
    cells = sorted(region)
    start, goal = (cells[i] for i in np.random.default_rng([seed, 1]).choice(len(cells), size=2, replace=False))
    board[0][0] = board[size - 1][size - 1] = "F"
    board[start[0]][start[1]], board[goal[0]][goal[1]] = "S", "G"
    return tuple("".join(row) for row in board)


class FrozenLakeText(_ToyTextEnv):
    """Gymnasium ``FrozenLake-v1``: walk over the ice from the start to the goal.

    Reward 1 on reaching the goal; stepping into a hole ends the episode with 0. Options:
    ``map_name`` (``"4x4"`` or ``"8x8"``, gymnasium's fixed maps, or ``"random"``) and
    ``is_slippery`` (each move goes the intended way with probability 1/3 and to either side
    otherwise). Note the default here is *not* slippery, unlike gymnasium's.

    ``map_name="random"`` draws the map with :func:`random_lake` (``size`` x ``size``, 4 by
    default) from ``layout_seed``: start, holes and goal anywhere, a path guaranteed. The
    map is fixed by ``layout_seed`` so that :meth:`mdp` is exact for every episode; with
    ``layout_seed=None`` (``"none"`` in TOML files) each ``reset(seed=...)`` draws a new map from that seed (as
    keys-and-chests does) and :meth:`mdp` describes the current episode's map. The fixed
    maps put the goal at the bottom right, so a bias for ``down`` and ``right`` passes for
    heading to it there; the random maps take that away.
    """

    family = "frozenlake"
    action_names = ("left", "down", "right", "up")  # gymnasium's action order
    feature_names = ("row", "col", "at_goal", "in_hole", "dist_to_goal", "holes_adjacent")
    #: What fits of random maps use by default: the features that mean the same on every map
    #: (not the raw coordinates, which do on one fixed map).
    LAYOUT_FREE_FEATURES = ("at_goal", "in_hole", "dist_to_goal", "holes_adjacent")

    def __init__(self, map_name: str = "4x4", is_slippery: bool = False, size: int | None = None, layout_seed: int | None = 0):
        self.map_name = map_name
        self.is_slippery = is_slippery
        layout_seed = layout_seed_option(layout_seed)
        if map_name == "random":
            #: The side of a random map, and the seed of its layout (``None``: a new one each reset).
            self.size, self.layout_seed = 4 if size is None else int(size), layout_seed
            self._seed_of_layout = 0 if layout_seed is None else layout_seed
            desc: Any = random_lake(self._seed_of_layout, self.size)
            super().__init__(FrozenLakeEnv(desc=list(desc), is_slippery=is_slippery))
        else:
            if size is not None or layout_seed not in (0, None):
                raise ValueError(f"size and layout_seed apply to map_name='random' only, not {map_name!r}")
            self.size, self.layout_seed, self._seed_of_layout = None, 0, None
            super().__init__(FrozenLakeEnv(map_name=map_name, is_slippery=is_slippery))
        self._set_map()

    def _set_map(self) -> None:
        """Read start, holes and goal from the wrapped env's map; forget the last map's MDP."""
        desc = self._inner.desc
        self._mdp = None
        self._holes = _cells_of(desc, b"H")
        self._goal = _cells_of(desc, b"G")[0]
        self._start = _cells_of(desc, b"S")[0]
        self._objects = (
            GridObject("start", *self._start),
            *(GridObject("hole", *h) for h in self._holes),
            GridObject("goal", *self._goal),
        )
        mission = "Walk from the start to the goal without falling into a hole. Reaching the goal scores 1; a hole ends the episode with nothing."
        if self.is_slippery:
            mission += " The ice is slippery: a move goes the way you chose only one time in three, otherwise to one of the two sides."
        self._mission = mission

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
        """Reset; a random map with ``layout_seed=None`` first draws a new map from ``seed``."""
        if self.map_name == "random" and self.layout_seed is None:
            GridTextEnv.reset(self, seed=seed)
            self._seed_of_layout = seed if seed is not None else int(self.np_random.integers(2**31))
            self._inner = FrozenLakeEnv(desc=list(random_lake(self._seed_of_layout, self.size)), is_slippery=self.is_slippery)
            self._set_map()
        return super().reset(seed=seed, options=options)

    def _default_features(self) -> tuple[str, ...] | None:
        return self.LAYOUT_FREE_FEATURES if self.map_name == "random" else None

    @property
    def desc(self) -> tuple[str, ...]:
        """The current map, one string per row."""
        return tuple(b"".join(row).decode() for row in self._inner.desc)

    def _grid_shape(self) -> tuple[int, int]:
        return (int(self._inner.nrow), int(self._inner.ncol))

    def state_record(self) -> dict[str, Any]:
        """``index`` (row * ncol + col), ``row``, ``col``, the map letter there (and a random map's ``layout_seed``)."""
        s = self.state_index
        r, c = self._cell(s)
        record = {"index": s, "row": r, "col": c, "tile": self._inner.desc[r, c].decode()}
        if self.map_name == "random":
            record["layout_seed"] = self._seed_of_layout
        return record

    def _features(self, s: int) -> list[float]:
        cell = self._cell(s)
        adjacent = sum((cell[0] + dr, cell[1] + dc) in self._holes for dr, dc in DIRECTIONS.values())
        return [cell[0], cell[1], cell == self._goal, cell in self._holes, manhattan(cell, self._goal), adjacent]

    def _ending(self, s: int) -> tuple[bool, str]:
        return (True, "goal") if self._cell(s) == self._goal else (False, "hole")


#: The four mirror images of a map, as ``(flip up-down, flip left-right)``.
MIRRORS = ((False, False), (False, True), (True, False), (True, True))


def mirror_of(seed: int) -> tuple[bool, bool]:
    """The mirror image ``(flip up-down, flip left-right)`` of layout ``seed``:
    ``MIRRORS[seed % 4]``, so that consecutive seeds (a run's episodes) visit the four
    corners in turn and seeds ``N`` and ``N + 4`` are the same map."""
    return MIRRORS[int(seed) % len(MIRRORS)]


class CliffWalkingText(_ToyTextEnv):
    """Gymnasium ``CliffWalking-v0``: walk along a cliff from the start to the goal.

    Each step costs 1; stepping onto the cliff costs 100 and sends the agent back to the
    start (the episode goes on). Reaching the goal ends it.

    ``mirrored=True`` shows gymnasium's map in one of its four mirror images (flipped
    up-down and/or left-right, :func:`mirror_of` of ``layout_seed``), so the goal lies in
    any corner and the cliff along the top or the bottom edge. The state record names the
    layout by its least seed (``layout_seed % 4``), so that episodes on the same map share it. The wrapped env still does
    every step: our states and actions are its own, mirrored, so :meth:`mdp` is exact. With
    ``layout_seed=None`` (``"none"`` in TOML files) each ``reset(seed=...)`` draws the mirror
    image from that seed and :meth:`mdp` describes the current episode's map. Fits of
    mirrored maps use the features that mean the same on every map (not the raw row and
    column).
    """

    family = "cliffwalking"
    action_names = ("up", "right", "down", "left")  # gymnasium's action order
    feature_names = ("row", "col", "at_goal", "dist_to_goal", "next_to_cliff")
    #: What fits of mirrored maps use by default (with the transition feature ``fell``).
    LAYOUT_FREE_FEATURES = ("at_goal", "dist_to_goal", "next_to_cliff")
    _SWAPS = ({"up": "down", "down": "up"}, {"left": "right", "right": "left"})

    def __init__(self, mirrored: bool = False, layout_seed: int | None = 0) -> None:
        self.mirrored = bool(mirrored)
        layout_seed = layout_seed_option(layout_seed)
        if not self.mirrored and layout_seed != 0:
            raise ValueError("layout_seed applies to the mirrored CliffWalking only (--variant mirrored)")
        #: The seed of the layout (``None``: a new mirror image each reset).
        self.layout_seed = layout_seed
        super().__init__(CliffWalkingEnv())
        self._seed_of_layout = 0 if layout_seed is None else layout_seed
        self._set_map()

    def _set_map(self) -> None:
        """Mirror the map as the layout's seed says; forget the last map's MDP."""
        self._mdp = None
        #: ``(flip up-down, flip left-right)`` of the current map.
        self.mirror = mirror_of(self._seed_of_layout) if self.mirrored else (False, False)
        flips = dict(self._SWAPS[0] if self.mirror[0] else {}, **(self._SWAPS[1] if self.mirror[1] else {}))
        self._actions_in = [self.action_names.index(flips.get(name, name)) for name in self.action_names]
        h, w = self._inner.shape
        self._cliff = [self._flip((int(r), int(c))) for r, c in zip(*np.nonzero(self._inner._cliff))]
        self._start = self._flip((h - 1, 0))
        self._goal = self._flip((h - 1, w - 1))
        self._objects = (
            GridObject("start", *self._start),
            *(GridObject("cliff", *c) for c in sorted(self._cliff)),
            GridObject("goal", *self._goal),
        )
        self._mission = "Walk from the start to the goal. Every step costs 1; stepping onto the cliff costs 100 and sends you back to the start."

    def _flip(self, cell: tuple[int, int]) -> tuple[int, int]:
        """A cell of the wrapped env's map on ours, and back."""
        h, w = self._grid_shape()
        return (h - 1 - cell[0] if self.mirror[0] else cell[0], w - 1 - cell[1] if self.mirror[1] else cell[1])

    def _outer(self, s: int) -> int:
        r, c = self._flip(self._cell(s))
        return r * self._grid_shape()[1] + c

    def _inner_action(self, a: int) -> int:
        return self._actions_in[a]

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
        """Reset; a mirrored map with ``layout_seed=None`` first draws its mirror image from ``seed``."""
        if self.mirrored and self.layout_seed is None:
            GridTextEnv.reset(self, seed=seed)
            self._seed_of_layout = seed if seed is not None else int(self.np_random.integers(2**31))
            self._set_map()
        return super().reset(seed=seed, options=options)

    def _default_features(self) -> tuple[str, ...] | None:
        return self.LAYOUT_FREE_FEATURES if self.mirrored else None

    def _grid_shape(self) -> tuple[int, int]:
        return (int(self._inner.shape[0]), int(self._inner.shape[1]))

    def state_record(self) -> dict[str, Any]:
        """``index`` (row * 12 + col), ``row`` and ``col`` (and a mirrored map's ``layout_seed``)."""
        s = self.state_index
        r, c = self._cell(s)
        record: dict[str, Any] = {"index": s, "row": r, "col": c}
        if self.mirrored:
            record["layout_seed"] = MIRRORS.index(self.mirror)
        return record

    def _features(self, s: int) -> list[float]:
        cell = self._cell(s)
        near = any((cell[0] + dr, cell[1] + dc) in self._cliff for dr, dc in DIRECTIONS.values())
        return [cell[0], cell[1], cell == self._goal, manhattan(cell, self._goal), near]

    def _transition_features(self) -> tuple[tuple[str, ...], np.ndarray]:
        """``fell``: 1 for a move onto the cliff. gymnasium sends it back to the start, so
        it arrives where an ordinary step into the start does; only the move tells them apart."""
        n, h, w = self.n_states, *self._grid_shape()
        table = self._table()
        fell = np.zeros((n, len(self.action_names), n, 1))
        for s in range(n):
            r, c = self._cell(s)
            for a, name in enumerate(self.action_names):
                dr, dc = DIRECTIONS[name]
                target = (min(max(r + dr, 0), h - 1), min(max(c + dc, 0), w - 1))
                if target in self._cliff:
                    for _, s2, _, _ in table[s][a]:
                        fell[s, a, int(s2), 0] = 1.0
        return ("fell",), fell

    def _ending(self, s: int) -> tuple[bool, str]:
        return True, "goal"


_TAXI_COLORS = ("red", "green", "yellow", "blue")  # gymnasium's passenger/destination order


class TaxiText(_ToyTextEnv):
    """Gymnasium ``Taxi-v3``: pick a passenger up and drop them at their destination.

    Each step costs 1, a delivery earns 20 and ends the episode, and a pick-up or drop-off
    where none is possible costs 10. Thin walls stand between some cells. The start
    (taxi cell, passenger stop, destination) is drawn at random by ``reset(seed=...)``.
    """

    family = "taxi"
    action_names = ("down", "up", "right", "left", "pick up", "drop off")  # gymnasium's order
    feature_names = (
        "row", "col", "passenger_in_taxi", "delivered", "at_passenger", "at_destination",
        "dist_to_passenger", "dist_to_destination",
    )

    def __init__(self) -> None:
        super().__init__(TaxiEnv())
        self._stops = [tuple(loc) for loc in self._inner.locs]
        desc = self._inner.desc
        barriers = set()
        for r in range(5):
            for c in range(4):
                if desc[1 + r, 2 * c + 2] == b"|":
                    barriers.add(((r, c), (r, c + 1)))
        self._barriers = frozenset(barriers)
        self._mission = (
            "Drive the taxi to the passenger, pick them up, drive to their destination and drop them off. "
            "Every step costs 1, the delivery earns 20, and a pick-up or drop-off where it is not possible costs 10."
        )

    def _grid_shape(self) -> tuple[int, int]:
        return (5, 5)

    def decode(self, s: int) -> tuple[int, int, int, int]:
        """``(taxi row, taxi col, passenger (0-3: a stop, 4: in the taxi), destination)``."""
        r, c, p, d = self._inner.decode(int(s))
        return int(r), int(c), int(p), int(d)

    def _cell(self, s: int) -> tuple[int, int]:
        r, c, _, _ = self.decode(s)
        return (r, c)

    def _snapshot(self, s: int) -> GridState:
        r, c, p, d = self.decode(s)
        objects = [GridObject("stop", *stop, color=color) for stop, color in zip(self._stops, _TAXI_COLORS)]
        if p < 4:
            objects.append(GridObject("passenger", *self._stops[p]))
        objects.append(GridObject("destination", *self._stops[d]))
        return GridState(
            self.family, 5, 5, (r, c), tuple(objects), barriers=self._barriers,
            carrying=("passenger",) if p == 4 else (), has_inventory=True, mission=self._mission,
            actions=self.action_names, index=int(s),
        )

    def state_record(self) -> dict[str, Any]:
        """``index`` (gymnasium's encoding), taxi ``row``/``col``, ``passenger``, ``destination``."""
        s = self.state_index
        r, c, p, d = self.decode(s)
        return {
            "index": s, "row": r, "col": c,
            "passenger": "in taxi" if p == 4 else _TAXI_COLORS[p], "destination": _TAXI_COLORS[d],
        }

    def _label(self, s: int) -> str:
        r, c, p, d = self.decode(s)
        where = "taxi" if p == 4 else _TAXI_COLORS[p][0].upper()
        return f"({r}, {c}) passenger={where} dest={_TAXI_COLORS[d][0].upper()}"

    def _features(self, s: int) -> list[float]:
        r, c, p, d = self.decode(s)
        cell, dest = (r, c), self._stops[d]
        passenger = cell if p == 4 else self._stops[p]
        return [
            r, c, p == 4, p == d, p < 4 and cell == passenger, cell == dest,
            manhattan(cell, passenger), manhattan(cell, dest),
        ]

    def _ending(self, s: int) -> tuple[bool, str]:
        return True, "delivered"
