"""Model backends behind one small protocol (:mod:`harness.backends.base`).

Each backend module imports its SDK lazily; :func:`load_backend` picks one by name from
the :data:`BACKENDS` registry.
"""

from __future__ import annotations

from typing import Any

from textenvs.errors import UserError
from textenvs.registry import Registry, check_option_types, check_options

from harness.backends.base import (
    Backend,
    BackendError,
    ContinuationScore,
    GenerateOptions,
    MissingDependencyError,
    ModelInfo,
    ScoreRequest,
    TokenCounter,
    Usage,
)

__all__ = [
    "Backend", "BackendError", "ContinuationScore", "GenerateOptions", "MissingDependencyError",
    "ModelInfo", "ScoreRequest", "TokenCounter", "Usage", "BACKENDS", "load_backend", "register_backend",
]

#: Backends by name; each class takes ``(model, **options)``. Adding one is a module with
#: a class that implements :class:`Backend` and one :func:`register_backend` call below.
BACKENDS: Registry[type] = Registry("backend")


def register_backend(name: str, target: str | type, description: str = "", **metadata: Any) -> None:
    """Register a backend class (or a lazy ``"module:Class"``) under ``name``.

    Metadata: ``in_process`` (default true), whether the model is held in this process (a
    cluster task then reserves its CPU or GPU share); ``gpu_only``, whether it needs a GPU.
    """
    BACKENDS.register(name, target, description, **metadata)


def load_backend(name: str, model: str, options: dict[str, Any] | None = None) -> Backend:
    """Construct backend ``name`` for ``model``; an unknown option, or a value of the wrong type or refused, raises :class:`BackendError`."""
    cls = BACKENDS.get(name)
    if "model" in (options or {}):
        raise BackendError(f"'model' is not a backend option of {name!r}: give the model with --model")
    try:
        check_options(cls, options or {}, f"backend option of {name!r}")
        check_option_types(cls, options or {}, f"backend {name!r}: option")
    except UserError as exc:
        raise BackendError(str(exc)) from None
    try:
        return cls(model, **(options or {}))
    except UserError:
        raise
    except ValueError as exc:  # an option value the backend refuses (a bad dtype, a negative timeout...)
        raise BackendError(f"backend {name!r}: {exc}") from None


register_backend("transformers", "harness.backends.transformers:TransformersBackend", "in-process Hugging Face transformers")
register_backend("openai", "harness.backends.openai:OpenAIBackend", "any OpenAI-compatible completions server", in_process=False)
register_backend("chat", "harness.backends.chat:ChatBackend", "any OpenAI-compatible chat-completions server", in_process=False)
register_backend("vllm", "harness.backends.vllm:VLLMBackend", "vLLM in-process (GPU)", gpu_only=True)
