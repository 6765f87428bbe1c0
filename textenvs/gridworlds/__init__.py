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

from typing import Any

from textenvs.gridworlds.core import GridObject, GridState, GridTextEnv

__all__ = ["GridObject", "GridState", "GridTextEnv", "register_gridworld"]

#: The encodings every gridworld gets: name -> (class in :mod:`.encodings`, summary).
GRID_ENCODINGS = {
    "ascii": ("AsciiEncoding", "grid of characters with a legend"),
    "coords": ("CoordsEncoding", "agent and objects as (row, col)"),
    "text": ("TextEncoding", "natural language relative to the agent"),
    "json": ("JsonEncoding", "JSON object of the agent and objects"),
}


def register_gridworld(family: str, env: str | type, description: str = "", **metadata: Any) -> None:
    """Register a gridworld environment and the four grid encodings for it.

    ``env`` is a :class:`GridTextEnv` subclass (or a lazy ``"module:Class"``) whose
    ``text_state()`` is a :class:`GridState`; ``metadata`` as for ``ENVS.register``
    (``variants``, ``default_variant``). Prompts come from ``prompts/<family>/`` when that
    folder exists, else from the generic ``prompts/gridworld/``.
    """
    from textenvs import ENVS, register_encoding
    from textenvs.gridworlds import encodings

    ENVS.register(family, env, description, **metadata)
    for name, (base, summary) in GRID_ENCODINGS.items():
        cls = type(f"{family.title().replace('-', '')}{base}", (getattr(encodings, base),), {"env": family, "name": name, "summary": summary})
        register_encoding(family, name, cls, summary)
