"""Tokens per step for every backend, their totals in ``zso summary``, and the cost with prices."""

from __future__ import annotations

import io
import threading

import pytest
from rich.console import Console

from harness.backends.base import Usage
from harness.backends.chat import ChatBackend
from harness.config import RunConfig
from harness.records import iter_steps
from harness.runner import Runner
from harness.serve import CompletionsServer
from harness.summary import Prices, print_summaries, summarize
from harness.validate import validate_run

NAME = "smollm2-135m-instruct"


def test_a_batch_usage_is_shared_without_losing_a_token():
    usage = Usage(10, 7, 3)
    parts = usage.split(3)
    assert sum(parts, Usage()) == usage and [p.prompt_tokens for p in parts] == [4, 3, 3]
    assert Prices(0.5, 2.0).cost(Usage(2_000_000, 1_000_000, 500_000)) == pytest.approx(3.0)


def _table(run_dirs, prices=None) -> str:
    buffer = io.StringIO()
    print_summaries([summarize(d) for d in run_dirs], Console(file=buffer, width=200), prices)
    return buffer.getvalue()


@pytest.mark.model
def test_in_process_steps_count_their_tokens(smollm2_backend, tmp_path):
    runs = {}
    for mode in ("choose", "generate"):
        cfg = RunConfig(env="frozenlake", encoding="ascii", mode=mode, episodes=2, max_steps=2, max_new_tokens=6,
                        batch_size=1, model=NAME)
        before = smollm2_backend.token_usage.total()
        runs[mode] = Runner(cfg, smollm2_backend).run(tmp_path / mode)
        spent = smollm2_backend.token_usage.total() - before
        assert validate_run(runs[mode]) == []
        steps = list(iter_steps(runs[mode]))
        counted = sum((Usage(**s["usage"]) for s in steps), Usage())
        assert counted == spent and counted.prompt_tokens > 0  # one episode at a time: every token is a step's
        if mode == "generate":
            for s in steps:  # each attempt wrote at most max_new_tokens
                assert 0 < s["usage"]["completion_tokens"] <= 6 * (len(s["attempts"]) + (s["action_source"] == "model"))
        else:
            assert counted.completion_tokens == 0
    table = _table(list(runs.values()), Prices(0.15, 0.6))
    assert "prompt tokens" in table and "completion tokens" in table and "cost" in table


@pytest.mark.model
def test_a_chat_run_records_the_servers_usage(smollm2_backend, tmp_path):
    server = CompletionsServer(smollm2_backend, NAME, port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        chat = ChatBackend(NAME, base_url=server.url, timeout_s=120)
        cfg = RunConfig(env="frozenlake", encoding="ascii", mode="generate", episodes=1, max_steps=2, max_new_tokens=6,
                        model=NAME, backend="chat")
        run = Runner(cfg, chat).run(tmp_path / "chat")
    finally:
        server.shutdown()
        server.server_close()
    steps = list(iter_steps(run))
    total = sum((Usage(**s["usage"]) for s in steps), Usage())
    assert total == chat.token_usage.total() and total.prompt_tokens > 0
    assert summarize(run).usage == total
