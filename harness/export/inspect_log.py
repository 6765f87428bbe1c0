"""An Inspect AI eval log per run, built from ``inspect_ai``'s own log types.

``OUT/<run>.eval``: ``inspect view --log-dir OUT`` lists them, ``inspect_ai.log.read_eval_log``
reads them. One sample per episode (id = episode index):

messages
    per decision, the prompt (user) and the reply (assistant); a refused reply is followed
    by a user message naming why, and a decision no reply won ends with the fallback's
    action. In choose mode the assistant message is the scored list: each legal action
    with its log-probability and probability, then the action taken.
    Reference agents have no prompt: the user message is then the logged state.
scores
    ``return``, ``success`` (when the environment defines it) and each play metric; the
    log's results hold their means.
metadata
    the episode record; the log's ``eval.metadata`` holds the whole manifest and
    ``eval.task_args`` the resolved configuration.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.export import Run, require, run_name
from harness.records import StepRecord


def export(runs: list[Run], out: Path) -> list[Path]:
    """Write ``OUT/<run>.eval`` for each run; returns the files."""
    log_api = require("inspect_ai.log", "inspect-ai", ", or make install-inspect and run .venv-inspect/bin/python -m harness.export")
    out.mkdir(parents=True, exist_ok=True)
    written, taken = [], set()
    for run in runs:
        path = out / f"{run_name(run, taken)}.eval"
        log_api.write_eval_log(eval_log(run), str(path), format="eval")
        written.append(path)
    return written


def eval_log(run: Run) -> Any:
    """The ``inspect_ai.log.EvalLog`` of ``run``."""
    from inspect_ai.log import EvalConfig, EvalDataset, EvalLog, EvalMetric, EvalResults, EvalSample, EvalScore, EvalSpec, EvalStats
    from inspect_ai.scorer import Score

    m = run.manifest
    cfg = m.config
    env = cfg.env + (f"/{cfg.variant}" if cfg.variant else "")
    samples = []
    for ep in run.episodes:
        scores = {"return": Score(value=ep.total_reward, explanation=ep.end_reason)}
        if ep.success is not None:
            scores["success"] = Score(value=float(ep.success), answer=ep.outcome)
        scores.update({name: Score(value=value) for name, value in ep.metrics.items()})
        messages = [msg for s in run.steps[ep.episode] for msg in _messages(s, run.who)]
        samples.append(EvalSample(
            id=ep.episode, epoch=1, input=messages[0].text if messages else "", target="", messages=messages,
            scores=scores, metadata=ep.to_json(), total_time=ep.wall_s,
        ))
    names = list(dict.fromkeys(name for s in samples for name in s.scores))
    results = EvalResults(
        total_samples=len(samples), completed_samples=len(samples),
        scores=[EvalScore(name=name, scorer=name, metrics={"mean": EvalMetric(name="mean", value=_mean(samples, name))})
                for name in names],
    )
    spec = EvalSpec(
        run_id=m.run_id, created=m.created, task=f"zso/{env}", task_args=cfg.to_json(),
        dataset=EvalDataset(name=env, samples=len(samples), sample_ids=[s.id for s in samples]),
        model=f"{m.model.backend}/{run.who}", config=EvalConfig(), metadata=m.to_json(),
        packages={k: str(v) for k, v in m.packages.items()},
    )
    status = "success" if m.status == "complete" else "started" if m.status == "running" else "cancelled"
    return EvalLog(eval=spec, status=status, results=results, samples=samples,
                   stats=EvalStats(started_at=m.created, completed_at=m.finished or ""))


def _mean(samples: list[Any], name: str) -> float:
    values = [float(s.scores[name].value) for s in samples if name in s.scores]
    return sum(values) / len(values)


def _messages(step: StepRecord, who: str) -> list[Any]:
    from inspect_ai.model import ChatMessageAssistant, ChatMessageUser

    prompt = step.prompt or f"state: {json.dumps(step.state)}\nlegal actions: {', '.join(step.legal_actions)}"
    meta = {"episode": step.episode, "t": step.t, "reward": step.reward, "action": step.action}
    messages: list[Any] = []
    for attempt in step.attempts:
        messages += [ChatMessageUser(content=attempt.prompt or prompt),
                     ChatMessageAssistant(content=attempt.reply, model=who),
                     ChatMessageUser(content=f"refused ({attempt.error_kind}): {attempt.error}")]
    if step.logprobs is not None or step.probs is not None:
        lines = [f"{a}\tlogprob={_fmt(step.logprobs, i)}\tprob={_fmt(step.probs, i)}" for i, a in enumerate(step.legal_actions)]
        reply = "\n".join(lines) + f"\nchose: {step.action}"
    else:
        reply = step.reply if step.reply is not None else f"chose: {step.action}"
    if not step.attempts or step.reply is not None and step.attempts[-1].reply != step.reply:
        messages.append(ChatMessageUser(content=prompt))
        messages.append(ChatMessageAssistant(content=reply, model=who, metadata=meta))
    else:
        messages[-2] = ChatMessageAssistant(content=messages[-2].text, model=who, metadata=meta)
    if step.action_source == "fallback":
        messages.append(ChatMessageUser(content=f"no reply accepted: the fallback took {step.action or 'nothing (forfeit)'}"))
    return messages


def _fmt(values: list[float] | None, i: int) -> str:
    return "-" if values is None else f"{values[i]:.4g}"
