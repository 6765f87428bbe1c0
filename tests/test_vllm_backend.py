"""The vLLM backend: its install message here, real scoring on a CUDA machine."""

from __future__ import annotations

import importlib.util

import pytest

from harness.backends import MissingDependencyError, load_backend
from harness.backends.base import GenerateOptions, ScoreRequest

HAS_VLLM = importlib.util.find_spec("vllm") is not None


def _cuda() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


@pytest.mark.skipif(HAS_VLLM, reason="vLLM is installed")
def test_missing_vllm_says_how_to_install_it():
    with pytest.raises(MissingDependencyError, match="pip install vllm"):
        load_backend("vllm", "any-model")


@pytest.mark.gpu
@pytest.mark.skipif(not (HAS_VLLM and _cuda()), reason="needs vLLM and a CUDA GPU")
def test_vllm_scores_and_generates(tmp_path):
    import os

    model = os.environ.get("ZSO_VLLM_MODEL", "HuggingFaceTB/SmolLM2-135M-Instruct")
    backend = load_backend("vllm", model, {"gpu_memory_utilization": 0.3})
    prompt = backend.format_prompt("Name a chess opening move.")
    scores = backend.score([ScoreRequest(prompt, ("e2e4", "d2d4", "a2a3"))])[0]
    assert len(scores) == 3 and all(s.logprob < 0 and s.n_tokens >= 1 for s in scores)
    first = backend.generate([prompt], GenerateOptions(max_new_tokens=8))
    assert first == backend.generate([prompt], GenerateOptions(max_new_tokens=8))
