"""Tokens per step for every backend, their totals in ``zso summary``, and the cost with prices."""

from __future__ import annotations

import io
import json
import threading
from dataclasses import replace

import pytest
from rich.console import Console

from harness.backends.base import GenerateOptions, Usage
from harness.backends.chat import ChatBackend
from harness.backends.openai import OpenAIBackend
from harness.config import RunConfig
from harness.records import (
    EPISODES, MANIFEST, STEPS, Attempt, ResultsError, RunWriter, Timing, UsageTotals, iter_episodes, iter_steps, load_manifest, load_steps,
    prepare_resume, totals_of_steps,
)
from harness.runner import Runner
from harness.serve import CompletionsServer
from harness.summary import Prices, print_summaries, summarize
from harness.validate import validate_run

from fault_servers import FaultProxy
from test_records import episode, manifest, step

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


# -- finish reasons, reasoning tokens and the manifest's totals ------------------------------


def _usage_step(episode_index: int, t: int, usage: Usage | None, total_s: float = 0.5):
    return replace(step(t, done=t == 1), episode=episode_index, usage=usage, finish_reason="stop",
                   timing=Timing(total_s - 0.1, 0.1, total_s))


def _write_episodes(writer: RunWriter, indices, usage: Usage | None) -> None:
    for index in indices:
        for t in range(2):
            writer.step(_usage_step(index, t, usage))
        writer.episode(replace(episode(2), episode=index))


def test_the_manifest_totals_are_recomputed_from_the_steps_over_a_resume(tmp_path):
    run = tmp_path / "run"
    writer = RunWriter(run, manifest(3))
    _write_episodes(writer, [0], Usage(100, 20, 5))
    writer.step(_usage_step(1, 0, Usage(100, 20, 5)))  # an unfinished episode: never counted
    writer.close("interrupted", "2026-01-01T00:01:00+00:00")
    first = load_manifest(run).usage
    assert first == UsageTotals(200, 40, 10, decisions=2, counted_decisions=2, wall_s=1.0)
    state = prepare_resume(run)
    resumed = replace(state.manifest, usage=UsageTotals(10**6, 0, 0, 1, 1, 0.0))  # a stale total must not survive
    writer = RunWriter(run, resumed, resume=True)
    _write_episodes(writer, [1, 2], None)  # a backend that counts nothing
    writer.close("complete", "2026-01-01T00:02:00+00:00")
    totals = load_manifest(run).usage
    assert totals == UsageTotals(200, 40, 10, decisions=6, counted_decisions=2, wall_s=3.0)
    assert totals == totals_of_steps(iter_steps(run)) and totals.usage == Usage(200, 40, 10)
    assert validate_run(run) == []
    raw = json.loads((run / MANIFEST).read_text())
    raw["usage"]["prompt_tokens"] += 1
    (run / MANIFEST).write_text(json.dumps(raw))
    assert any("usage totals" in p for p in validate_run(run))
    raw["usage"]["prompt_tokens"] = "many"
    (run / MANIFEST).write_text(json.dumps(raw))
    with pytest.raises(ResultsError, match="usage.prompt_tokens: expected a whole number"):
        load_manifest(run)


def test_files_written_before_finish_reasons_and_totals_still_read(tmp_path):
    run = tmp_path / "run"
    writer = RunWriter(run, manifest())
    writer.step(replace(step(0), attempts=[Attempt("p", "r", "no_tag", "no tag")]))
    writer.step(step(1, done=True))
    writer.episode(episode(2))
    writer.close("complete", "2026-01-01T00:01:00+00:00")
    raw = json.loads((run / MANIFEST).read_text())
    raw.pop("usage")
    raw["format_version"] = "1.2"
    (run / MANIFEST).write_text(json.dumps(raw))
    lines = []
    for s in iter_steps(run):
        s.pop("finish_reason")
        for a in s["attempts"]:
            a.pop("finish_reason")
        lines.append(json.dumps(s) + "\n")
    (run / STEPS).write_text("".join(lines))
    assert load_manifest(run).usage is None
    steps = list(load_steps(run))
    assert [s.finish_reason for s in steps] == [None, None] and steps[0].attempts[0].finish_reason is None
    assert validate_run(run) == []


@pytest.mark.model
def test_in_process_replies_say_why_they_ended(smollm2_backend):
    story, hello = (smollm2_backend.format_prompt(t) for t in ("Tell me a long story about a dragon.", "Say hello."))
    short = smollm2_backend.generate([story], GenerateOptions(max_new_tokens=2, stop=()))
    assert short[0].finish_reason == "length" and len(smollm2_backend.renderer.plain_ids(short[0])) <= 2
    done = smollm2_backend.generate([hello], GenerateOptions(max_new_tokens=64, stop=("\n",)))
    assert done[0].finish_reason == "stop"  # end of turn or the newline, well before 64 tokens
    assert smollm2_backend.generate(["Hi"], GenerateOptions(max_new_tokens=0))[0].finish_reason == "length"


def _rewrite_finish(reason: str | None):
    def rewrite(answer: dict) -> None:
        if reason is None:
            answer["choices"][0].pop("finish_reason", None)
        else:
            answer["choices"][0]["finish_reason"] = reason
    return rewrite


@pytest.mark.model
def test_server_backends_take_the_servers_finish_reason(smollm2_backend):
    server = CompletionsServer(smollm2_backend, NAME, port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    proxy = FaultProxy(server.url, [None, None, _rewrite_finish("length"), _rewrite_finish(None)])
    try:
        chat = ChatBackend(NAME, base_url=proxy.url, timeout_s=120, concurrency=1)
        completions = OpenAIBackend(NAME, base_url=server.url, timeout_s=120)
        cut, ended = GenerateOptions(max_new_tokens=2, stop=()), GenerateOptions(max_new_tokens=64, stop=("\n",))
        # zso serve reports what the model did; the clients pass it on.
        assert [r.finish_reason for r in chat.generate(["Tell me a long story.", "Say hello."], cut)] == ["length"] * 2
        assert [r.finish_reason for r in completions.generate([completions.format_prompt("Say hello.")], ended)] == ["stop"]
        # The reason is the server's, not a guess from the reply: a server that says length, or nothing.
        assert chat.generate(["Say hello."], ended)[0].finish_reason == "length"
        assert chat.generate(["Say hello."], ended)[0].finish_reason is None
    finally:
        proxy.close()
        server.shutdown()
        server.server_close()


@pytest.mark.model
def test_a_tagged_run_records_finish_reasons_reasoning_and_totals(smollm2_backend, tmp_path):
    from textenvs.tagged import reasoning_text

    cfg = RunConfig(env="frozenlake", encoding="ascii", mode="tagged", episodes=2, max_steps=2, max_new_tokens=24,
                    batch_size=2, model=NAME)
    run = Runner(cfg, smollm2_backend).run(tmp_path / "tagged")
    assert validate_run(run) == []
    steps = list(load_steps(run))
    renderer = smollm2_backend.renderer
    for s in steps:
        assert s.finish_reason in ("stop", "length")
        for a in s.attempts:  # the kind follows the recorded finish reason
            assert a.finish_reason in ("stop", "length")
            assert a.error_kind != "cut_off" or a.finish_reason == "length"
            assert a.error_kind != "no_tag" or a.finish_reason == "stop"
        replies = [a.reply for a in s.attempts] + ([s.reply] if s.action_source == "model" else [])
        assert s.usage.reasoning_tokens == sum(renderer.count_tokens(reasoning_text(r, "Action")) for r in replies)
    totals = load_manifest(run).usage
    assert totals.usage == sum((s.usage for s in steps), Usage()) and totals.decisions == len(steps)
    assert totals.wall_s == pytest.approx(sum(s.timing.total_s for s in steps), abs=1e-5)
    summary = summarize(run)
    assert summary.usage_source == "manifest" and summary.usage == totals.usage
    table = _table([run])
    assert "manifest totals" in table and "reasoning tokens" in table
    # Killed after its first episode and resumed: the totals are the files', not carried over.
    first = min(s.episode for s in steps)
    kept = [json.dumps(s) + "\n" for s in iter_steps(run) if s["episode"] == first]
    (run / STEPS).write_text("".join(kept))
    (run / EPISODES).write_text("".join(json.dumps(e) + "\n" for e in iter_episodes(run) if e["episode"] == first))
    state = prepare_resume(run)
    Runner(state.manifest.config, smollm2_backend).run(run, resume=state)
    resumed = load_manifest(run).usage
    assert resumed == totals_of_steps(iter_steps(run)) and resumed.decisions == len(list(iter_steps(run)))
    raw = json.loads((run / MANIFEST).read_text())
    raw.pop("usage")
    (run / MANIFEST).write_text(json.dumps(raw))
    again = summarize(run)
    assert again.usage_source == "steps" and again.usage == totals_of_steps(iter_steps(run)).usage
