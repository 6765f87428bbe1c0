"""Model backends behind one small protocol (:mod:`harness.backends.base`).

Each backend module imports its SDK lazily; :func:`load_backend` picks one by name.
"""

from __future__ import annotations

import importlib
from typing import Any

from textenvs.registry import UnknownIdError, check_options

from harness.backends.base import (
    Backend,
    BackendError,
    ContinuationScore,
    GenerateOptions,
    MissingDependencyError,
    ModelInfo,
    ScoreRequest,
)

__all__ = [
    "Backend", "BackendError", "ContinuationScore", "GenerateOptions", "MissingDependencyError",
    "ModelInfo", "ScoreRequest", "BACKENDS", "load_backend",
]

#: Backend name -> ``"module:Class"``; each class takes ``(model, **options)``.
BACKENDS = {
    "transformers": "harness.backends.transformers:TransformersBackend",
    "openai": "harness.backends.openai:OpenAIBackend",
    "vllm": "harness.backends.vllm:VLLMBackend",
}


def load_backend(name: str, model: str, options: dict[str, Any] | None = None) -> Backend:
    """Construct backend ``name`` for ``model``; an unknown option raises :class:`BackendError`."""
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; expected one of {', '.join(BACKENDS)}")
    module_name, _, cls_name = BACKENDS[name].partition(":")
    cls = getattr(importlib.import_module(module_name), cls_name)
    try:
        check_options(cls, options or {}, f"backend option of {name!r}")
    except UnknownIdError as exc:
        raise BackendError(str(exc)) from None
    return cls(model, **(options or {}))
