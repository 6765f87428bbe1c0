"""Choose-mode decisions per second on the embedded models, against the physical floor.

For consecutive real decisions of two workloads, ``chess`` (FEN encoding, random play,
20-40 legal moves each) and ``take-away`` (variant ``seeded``, prose encoding: a new game
with its rules in every prompt, 2-6 legal moves), it times, per model, with one warm-up
decision and repeats interleaved between methods (the median is reported):

* ``floor``: the prompt alone, one forward pass with the LM head at the last position;
* ``packed``: ``score()`` with the prompt and a trie of the moves as one sequence, prefix cache off;
* ``packed+prefix``: the same with the prefix cache on (the default), emptied before each
  pass over the decisions, so only what consecutive decisions share is reused;
* ``cached``: ``score()`` with the prompt's cache repeated once per move (the old method);
* ``naive``: one full forward pass of prompt + move per move (what simple harnesses do);

and reports decisions per second and the ratio of each to the floor, next to the ratio of
their multiply-adds in the linear layers (decoder tokens times the decoder's weights, plus
LM-head rows times the head's): what exact scoring must compute, so a time ratio near it
is at the hardware's limit. ``--bf16`` adds
``floor`` and ``packed`` in bfloat16: speed against float32 and the largest log-prob
difference from float32 over the same decisions. ``--torch-layers`` adds the floor,
``packed+prefix`` and a 24-token greedy reply with torch's own linear layers
(``linear_layers="torch"``), interleaved with the same on oneDNN's. ``--prompt-batch N``
adds the decisions scored in one ``score()`` call, ``N`` prompts right-padded into each
packed pass (``prompt_batch``; for GPUs). ``--backend openai``
(or ``--vllm``) starts a real vLLM server (``.venv-vllm``, float32) for SmolLM2, or uses
the one at ``--url``, and times the OpenAI backend one decision per call (one episode at a
time, as game harnesses play, concurrency 1) and 16 decisions per call at concurrency 4 and
16; ``--backend openai`` alone skips the in-process rows.

    .venv/bin/python bench/decisions.py [--models smollm2-135m-instruct gemma3-270m] [--decisions 8]
        [--workloads chess take-away] [--repeats 3] [--no-naive] [--bf16] [--torch-layers] [--prompt-batch N]
        [--backend transformers openai] [--url URL --server-model NAME] [--server-repeats 1]
        [--out bench/out/decisions.json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from harness.backends.base import GenerateOptions, ScoreRequest
from harness.backends.prefix import PREFIX_ENTRIES, PrefixStore
from harness.backends.transformers import TransformersBackend
from textenvs import build_prompt, get_encoding, make_env

ROOT = Path(__file__).resolve().parent.parent

#: Workloads: environment, encoding, variant and options.
WORKLOADS: dict[str, tuple[str, str, str | None, dict[str, Any]]] = {
    "chess": ("chess", "fen", None, {"opponent": "random", "analysis": "off"}),
    "take-away": ("take-away", "prose", "seeded", {}),
}


def workload_requests(workload: str, format_prompt: Callable[[str], str], n: int, seed: int = 0) -> list[ScoreRequest]:
    """``n`` consecutive choose-mode requests of a randomly played game of ``workload``."""
    env_name, enc_name, variant, options = WORKLOADS[workload]
    env, enc, rng = make_env(env_name, variant, **options), get_encoding(env_name, enc_name), np.random.default_rng(seed)
    env.reset(seed=seed)
    requests = []
    while len(requests) < n:
        legal = env.legal_actions()
        state = env.text_state()
        prompt = format_prompt(build_prompt(enc, state, legal, "choose"))
        sep = "" if prompt[-1].isspace() else " "
        requests.append(ScoreRequest(prompt, tuple(sep + enc.render_action(state, a) for a in legal)))
        _, _, terminated, truncated, _ = env.step(str(rng.choice(legal)))
        if terminated or truncated or not env.legal_actions():
            env.reset(seed=int(rng.integers(1 << 30)))
    return requests


def floor(backend: TransformersBackend, request: ScoreRequest) -> None:
    """Read the prompt once: one forward pass, LM head at the last position only."""
    ids = backend.prompt_ids(request.prompt)
    with torch.inference_mode():
        backend.forward(input_ids=torch.tensor([ids]), logits_to_keep=1)


def naive(backend: TransformersBackend, request: ScoreRequest) -> None:
    """One full forward pass of prompt + continuation per continuation."""
    ids = backend.prompt_ids(request.prompt)
    with torch.inference_mode():
        for c in request.continuations:
            cont = backend.continuation_ids(request.prompt, c, ids)
            logits = backend.forward(input_ids=torch.tensor([ids + cont]), logits_to_keep=len(cont) + 1).logits[0, :-1]
            logits.float().log_softmax(-1)


def scorer(backend: TransformersBackend, method: str, prefix_cache: str = "off") -> Callable[[ScoreRequest], Any]:
    def run(request: ScoreRequest) -> Any:
        backend.scoring, backend.prefix_cache = method, prefix_cache
        return backend.score([request])

    return run


def empty_store(backend: TransformersBackend) -> None:
    """Forget every stored prefix (before a pass over the decisions)."""
    backend.prefix_store = PrefixStore(PREFIX_ENTRIES)


def interleaved(methods: dict[str, Callable[[ScoreRequest], Any]], requests: list[ScoreRequest], repeats: int,
                before: Callable[[], None] = lambda: None) -> dict[str, float]:
    """Median seconds per decision of each method; one warm-up, repeats rotate the order.

    ``before`` runs ahead of each method's pass over the requests (untimed).
    """
    for fn in methods.values():
        before()
        fn(requests[0])
    times: dict[str, list[float]] = {name: [] for name in methods}
    names = list(methods)
    for r in range(repeats):
        for name in names[r % len(names):] + names[: r % len(names)]:
            before()
            start = time.perf_counter()
            for request in requests:
                methods[name](request)
            times[name].append((time.perf_counter() - start) / len(requests))
    return {name: statistics.median(values) for name, values in times.items()}


def rows_of(seconds: dict[str, float], **common: Any) -> list[dict[str, Any]]:
    """One table row per method: seconds and decisions per second, and the ratio to the floor."""
    return [{**common, "method": m, "s_per_decision": round(s, 4), "decisions_per_s": round(1 / s, 3),
             "x_floor": round(s / seconds["floor"], 2)} for m, s in seconds.items()]


def multiply_adds(backend: TransformersBackend) -> tuple[int, int]:
    """Multiply-adds of the linear layers per token through the decoder, and per LM-head row."""
    head = backend.model.get_output_embeddings()
    per_token = sum(m.weight.numel() for m in backend.model.modules() if isinstance(m, torch.nn.Linear) and m is not head)
    return per_token, head.weight.numel()


def packed_work(backend: TransformersBackend, requests: list[ScoreRequest], prefix_cache: str,
                per_token: int, per_row: int) -> tuple[int, int]:
    """Linear-layer multiply-adds of packed scoring over ``requests``, and the prompt tokens it ran."""
    empty_store(backend)
    before = (backend.prefilled_tokens, backend.trie_tokens, backend.head_rows)
    for request in requests:
        scorer(backend, "packed", prefix_cache)(request)
    prefilled, trie, heads = (now - then for now, then in zip((backend.prefilled_tokens, backend.trie_tokens, backend.head_rows), before))
    return (prefilled + trie) * per_token + heads * per_row, prefilled


def once_per_pass(fn: Callable[[], Any], requests: list[ScoreRequest]) -> Callable[[ScoreRequest], Any]:
    """A method for :func:`interleaved` that runs ``fn`` once per pass over ``requests`` (at the first).

    Its time per decision is then ``fn``'s time over ``len(requests)``.
    """
    return lambda request: fn() if request is requests[0] else None


def batched(backend: TransformersBackend, requests: list[ScoreRequest], prompt_batch: int) -> None:
    """All ``requests`` in one ``score()`` call, ``prompt_batch`` prompts per packed pass."""
    backend.scoring, backend.prefix_cache, backend.prompt_batch = "packed", "off", prompt_batch
    try:
        backend.score(requests)
    finally:
        backend.prompt_batch = 1


def greedy_reply(backend: TransformersBackend, request: ScoreRequest, tokens: int = 24) -> None:
    """A greedy reply of exactly ``tokens`` tokens to the request's prompt (end-of-text ignored)."""
    eos, backend.eos_ids = backend.eos_ids, set()
    try:
        backend.generate([request.prompt], GenerateOptions(max_new_tokens=tokens))
    finally:
        backend.eos_ids = eos


def against_torch_layers(backend: TransformersBackend, name: str, requests: list[ScoreRequest], repeats: int,
                         common: dict[str, Any]) -> list[dict[str, Any]]:
    """The floor, packed+prefix scoring and a 24-token greedy reply with torch's own linear
    layers (``linear_layers="torch"``), interleaved with the same on ``backend`` (oneDNN)."""
    plain = TransformersBackend(name, linear_layers="torch")
    methods: dict[str, Callable[[ScoreRequest], Any]] = {}
    for label, b in (("onednn", backend), ("torch", plain)):
        methods[f"floor/{label}"] = lambda r, b=b: floor(b, r)
        methods[f"packed+prefix/{label}"] = scorer(b, "packed", "on")
        methods[f"greedy 24 tokens/{label}"] = once_per_pass(lambda b=b: greedy_reply(b, requests[0]), requests)
    seconds = interleaved(methods, requests, repeats, lambda: (empty_store(backend), empty_store(plain)))
    plain.close()
    rows = []
    for method in ("floor", "packed+prefix", "greedy 24 tokens"):
        per = len(requests) if method == "greedy 24 tokens" else 1  # once_per_pass: one reply per pass
        fast, slow = seconds[f"{method}/onednn"] * per, seconds[f"{method}/torch"] * per
        rows.append({**common, "method": f"{method}, torch layers", "s_per_decision": round(slow, 4),
                     "onednn_s": round(fast, 4), "onednn_speedup": round(slow / fast, 2)})
    return rows


def bench_model(name: str, workloads: list[str], n: int, repeats: int, bf16: bool, with_naive: bool = True,
                torch_layers: bool = False, prompt_batch: int = 1) -> list[dict[str, Any]]:
    backend = TransformersBackend(name)
    rows: list[dict[str, Any]] = []
    for workload in workloads:
        requests = workload_requests(workload, backend.format_prompt, n)
        tokens = [len(backend.prompt_ids(r.prompt)) for r in requests]
        moves = [len(r.continuations) for r in requests]
        methods = {"floor": lambda r: floor(backend, r), "packed": scorer(backend, "packed"),
                   "packed+prefix": scorer(backend, "packed", "on"), "cached": scorer(backend, "cached")}
        if with_naive:
            methods["naive"] = lambda r: naive(backend, r)
        if prompt_batch > 1:  # the whole pass in one score() call, prompt_batch prompts per forward pass
            methods[f"packed, {prompt_batch} per pass"] = once_per_pass(lambda: batched(backend, requests, prompt_batch), requests)
        seconds = interleaved(methods, requests, repeats, lambda: empty_store(backend))
        per_token, per_row = multiply_adds(backend)
        work = {"floor": sum(tokens) * per_token + n * per_row}
        for method, prefix in (("packed", "off"), ("packed+prefix", "on")):
            work[method], prefilled = packed_work(backend, requests, prefix, per_token, per_row)
        common = dict(model=name, workload=workload, dtype="float32", decisions=n, repeats=repeats,
                      prompt_tokens=f"{min(tokens)}-{max(tokens)}", moves=f"{min(moves)}-{max(moves)}")
        new = rows_of(seconds, **common)
        for row in new:
            if row["method"] in work:
                row["x_floor_multiply_adds"] = round(work[row["method"]] / work["floor"], 2)
        next(r for r in new if r["method"] == "packed+prefix")["prompt_tokens_prefilled"] = f"{prefilled}/{sum(tokens)}"
        rows += new
        if torch_layers:
            rows += against_torch_layers(backend, name, requests, repeats, common)
        if bf16:
            reference = [scorer(backend, "packed")(r)[0] for r in requests]
            half = TransformersBackend(name, dtype="bfloat16", prefix_cache="off")
            half_s = interleaved({"floor": lambda r: floor(half, r), "packed": scorer(half, "packed")}, requests, repeats)
            scores = half.score(requests)
            half.close()
            gap = max(abs(a.logprob - b.logprob) for x, y in zip(reference, scores) for a, b in zip(x, y))
            same = sum(int(np.argmax([s.logprob for s in x]) == np.argmax([s.logprob for s in y])) for x, y in zip(reference, scores))
            for row in rows_of(half_s, **{**common, "dtype": "bfloat16"}):
                rows.append({**row, "vs_float32": round(seconds[row["method"]] / row["s_per_decision"], 2),
                             "max_logprob_gap": round(gap, 3), "same_best_move": f"{same}/{n}"})
    backend.close()
    return rows


@contextlib.contextmanager
def served(name: str, url: str | None, console: Console) -> Iterator[str]:
    """``url`` itself, or a vLLM CPU server (``.venv-vllm``, float32) for ``name``, started and stopped here."""
    if url:
        yield url
        return
    from harness.backends.gguf import model_dir
    from harness.backends.vllm_server import VLLMServer

    python = ROOT / ".venv-vllm" / "bin" / "python"
    console.print(f"starting vLLM for {name} (a few minutes on 2 cores)...")
    start = time.perf_counter()
    with VLLMServer(python, model_dir(name), name, log_path=ROOT / "bench" / "out" / "vllm-server.log") as started:
        console.print(f"vLLM ready in {time.perf_counter() - start:.0f} s at {started}")
        yield started


def bench_server(n: int, repeats: int, console: Console, url: str | None = None,
                 name: str = "smollm2-135m-instruct") -> list[dict[str, Any]]:
    """Decisions per second of ``--backend openai`` at concurrency 1, 4 and 16 (module docstring)."""
    from harness.backends.openai import OpenAIBackend

    with served(name, url, console) as url:
        clients = {c: OpenAIBackend(name, base_url=url, concurrency=c) for c in (1, 4, 16)}
        requests = workload_requests("chess", clients[1].format_prompt, n)
        one = clients[1]

        def calls(client: OpenAIBackend, per_call: int) -> Callable[[None], None]:
            def run(_: Any) -> None:
                for i in range(0, len(requests), per_call):
                    client.score(requests[i: i + per_call])
            return run

        # One decision per call is concurrency 1: what one-episode-at-a-time play gets.
        methods = {"one decision per call (concurrency 1)": calls(one, 1),
                   **{f"16 per call, concurrency {c}": calls(clients[c], 16) for c in (4, 16)}}
        for client in clients.values():  # warm-up
            client.score(requests[:2])
        times: dict[str, list[float]] = {k: [] for k in methods}
        names = list(methods)
        for r in range(repeats):
            for k in names[r % len(names):] + names[: r % len(names)]:
                t = time.perf_counter()
                methods[k](None)
                times[k].append((time.perf_counter() - t) / len(requests))
        for client in clients.values():
            client.close()
    base = statistics.median(times[names[0]])
    return [{"model": name, "backend": f"openai -> {url}", "how": k, "decisions": len(requests),
             "decisions_per_s": round(1 / statistics.median(v), 3), "x_one_per_call": round(base / statistics.median(v), 2)}
            for k, v in times.items()]


def table(title: str, rows: list[dict[str, Any]]) -> Table:
    t = Table(title=title)
    columns = list(dict.fromkeys(k for row in rows for k in row))
    for col in columns:
        t.add_column(col)
    for row in rows:
        t.add_row(*(str(row.get(c, "")) for c in columns))
    return t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["smollm2-135m-instruct", "gemma3-270m"])
    parser.add_argument("--workloads", nargs="+", default=list(WORKLOADS), choices=list(WORKLOADS))
    parser.add_argument("--decisions", type=int, default=8, help="decisions per row (at least 8)")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repeats (the median is reported)")
    parser.add_argument("--no-naive", action="store_true", help="skip naive per-continuation scoring (slow: a forward pass per move)")
    parser.add_argument("--bf16", action="store_true", help="also time bfloat16 and compare its log-probs")
    parser.add_argument("--prompt-batch", type=int, default=1,
                        help="also time the decisions scored in one call, this many prompts per packed pass")
    parser.add_argument("--torch-layers", action="store_true",
                        help="also time the floor, packed+prefix and a greedy reply with torch's own linear layers")
    parser.add_argument("--backend", nargs="+", default=["transformers"], choices=["transformers", "openai"],
                        help="transformers: the in-process rows; openai: the server rows (a vLLM CPU server unless --url)")
    parser.add_argument("--vllm", action="store_true", help="the same as adding --backend openai")
    parser.add_argument("--url", help="an OpenAI-compatible server to time instead of starting vLLM (its model: --server-model)")
    parser.add_argument("--server-model", default="smollm2-135m-instruct", help="the model the server serves (its tokenizer renders prompts)")
    parser.add_argument("--server-repeats", type=int, default=1, help="interleaved repeats against the server")
    parser.add_argument("--out", default="bench/out/decisions.json")
    args = parser.parse_args()
    if args.decisions < 8:
        parser.error("--decisions must be at least 8")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    console = Console()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    machine = f"{platform.machine()}, {os.cpu_count()} cores, torch threads {torch.get_num_threads()}"
    load_at_start = os.getloadavg()
    rows = []
    backends = set(args.backend) | ({"openai"} if args.vllm or args.url else set())
    for name in args.models if "transformers" in backends else []:
        rows += bench_model(name, args.workloads, args.decisions, args.repeats, args.bf16, not args.no_naive,
                            args.torch_layers, args.prompt_batch)
        console.print(f"{name}: " + ", ".join(f"{r['workload']} {r['dtype']} {r['method']} {r['x_floor']}x floor"
                                              for r in rows if r["model"] == name and "x_floor" in r))
    if rows:
        console.print(table(f"choose-mode decision vs the floor (one prompt forward), {machine}", rows))
    server = (bench_server(max(args.decisions, 16), args.server_repeats, console, args.url, args.server_model)
              if "openai" in backends else [])
    if server:
        console.print(table("--backend openai against a vLLM server (CPU, float32)", server))
    load = os.getloadavg()
    out.write_text(json.dumps({"machine": machine, "torch": torch.__version__, "load_average_at_start": load_at_start,
                               "load_average_at_end": load,
                               "rows": rows, "server": server}, indent=2) + "\n")
    console.print(f"written {out}")


if __name__ == "__main__":
    main()
