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


#: The Python of the separate vLLM environment (``make install-vllm``).
VLLM_PYTHON = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), ".venv-vllm", "bin", "python")


@pytest.fixture(scope="session")
def vllm_server(tmp_path_factory):
    """A real vLLM (CPU) server for the embedded SmolLM2, float32, on a free loopback port.

    Started once per session (about 2-3 minutes on 2 cores) from ``.venv-vllm``, serving
    the model directory the project converts from the embedded GGUF under the embedded
    name; stopped at the end, also when a test fails. Yields the
    :class:`~harness.backends.vllm_server.VLLMServer` (``.url``, ``.name``).
    """
    from harness.backends.gguf import model_dir
    from harness.backends.vllm_server import VLLMServer
    from harness.models import EMBEDDED

    if not os.path.isfile(VLLM_PYTHON):
        pytest.skip(".venv-vllm is absent: `make install-vllm` builds it (make test does)")
    name = "smollm2-135m-instruct"
    if importlib.util.find_spec(EMBEDDED[name].module) is None:
        pytest.skip(f"{EMBEDDED[name].package} is not installed: {EMBEDDED[name].install}")
    server = VLLMServer(VLLM_PYTHON, model_dir(name), name, dtype="float32",
                        log_path=tmp_path_factory.mktemp("vllm") / "server.log")
    server.start()  # stops the server itself when it fails to start
    try:
        yield server
    finally:
        server.stop()
