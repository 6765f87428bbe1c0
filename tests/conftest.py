"""Shared fixtures: one load per embedded model for the whole test session."""

from __future__ import annotations

import importlib.util
import os

import pytest

# No test may reach a model hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _embedded_backend(name: str):
    """Load embedded model ``name``, or skip saying how to install its package."""
    from harness.backends.transformers import TransformersBackend
    from harness.models import EMBEDDED

    model = EMBEDDED[name]
    if importlib.util.find_spec(model.module) is None:
        pytest.skip(f"{model.package} is not installed: {model.install}")
    backend = TransformersBackend(name)
    print(f"\n{name} loaded in {backend.load_seconds:.2f} s")
    return backend


@pytest.fixture(scope="session")
def smollm2_backend():
    """The embedded SmolLM2 135M Instruct, loaded once (converted on first use)."""
    backend = _embedded_backend("smollm2-135m-instruct")
    yield backend
    backend.close()


@pytest.fixture(scope="session")
def gemma_backend():
    """The embedded Gemma 3 270M base model, loaded once (converted on first use)."""
    backend = _embedded_backend("gemma3-270m")
    yield backend
    backend.close()
