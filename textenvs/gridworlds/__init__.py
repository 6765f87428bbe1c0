"""Gridworlds and small RL tasks as text environments, with exact tabular MDPs.

Families: ``frozenlake``, ``cliffwalking``, ``taxi`` (gymnasium's toy-text games),
``keys-chests`` (a seeded maze of keys and chests) and ``minigrid`` (MiniGrid's Empty and
DoorKey). Every environment is a ``gymnasium.Env`` implementing
:class:`~textenvs.base.TextEnv`; its ``text_state()`` is a :class:`GridState`, rendered by
the encodings in :mod:`textenvs.gridworlds.encodings`, and its ``mdp()`` is the exact
:class:`~textenvs.mdp.TabularMDP` whose state indices ``state_record()["index"]`` gives.

Submodules are imported on use (the registry entries name them), so importing this
package does not import MiniGrid.
"""

from __future__ import annotations

from textenvs.gridworlds.core import GridObject, GridState, GridTextEnv

__all__ = ["GridObject", "GridState", "GridTextEnv"]
