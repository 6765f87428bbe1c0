"""``zso run``, ``envs``, ``encodings``, ``models``, ``validate``, ``summary`` and ``serve``."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.table import Table

from harness.agents import MODES
from harness.backends import BACKENDS
from harness.cli.console import console, out, run_and_report


def _add_run_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE", help="TOML run configuration (flags override it)")
    p.add_argument("--env", help="environment id (zso envs)")
    p.add_argument("--variant", help="named preset of the environment (zso envs)")
    p.add_argument("--encoding", help="encoding id (zso encodings ENV)")
    p.add_argument("--model", help="embedded model name (zso models), model directory or .gguf file")
    p.add_argument("--backend", choices=BACKENDS.names(), help="default transformers")
    p.add_argument("--mode", choices=MODES.names(), help="choose: score the legal actions (default); generate: parse free text")
    p.add_argument("--episodes", type=int, help="episodes to play (with --episodes-target: the most to play)")
    p.add_argument("--episodes-target", type=float, metavar="HALF_WIDTH",
                   help="stop early, in rounds of --batch-size episodes, once GD's anytime-valid 95%% interval excludes 0 "
                        "or is at most this wide on either side (environments with an exact MDP)")
    p.add_argument("--max-steps", type=int, help="decisions per episode before truncation")
    p.add_argument("--batch-size", type=int, help="episodes played in lockstep")
    p.add_argument("--seed", type=int)
    p.add_argument("--temperature", type=float, help="0 = greedy")
    p.add_argument("--score-norm", choices=["sum", "mean"])
    p.add_argument("--list-order", choices=["shuffled", "fixed"], help="order of the legal actions in prompts (default shuffled)")
    p.add_argument("--max-new-tokens", type=int)
    p.add_argument("--max-retries", type=int, help="generate mode: re-prompts after a refused reply")
    p.add_argument("--fallback", choices=["random", "forfeit"], help="generate mode: when no reply is accepted")
    p.add_argument("-o", "--env-option", action="append", metavar="KEY=VALUE", help="environment option (repeatable), e.g. opponent=stockfish:depth=2")
    p.add_argument("-b", "--backend-option", action="append", metavar="KEY=VALUE", help="backend option (repeatable), e.g. dtype=bfloat16")
    p.add_argument("--out", metavar="DIR", help="run directory (default results/<time>-<env>-...)")
    p.add_argument("--shard", metavar="I/N", help="play only shard I of N of the episodes (1-based); zso merge joins the shards")
    p.add_argument("--resume", metavar="RUN_DIR", help="finish an interrupted or killed run: play the episodes it has not finished")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def add_parsers(sub: Any) -> None:
    """Add this module's subcommands to the ``zso`` parser."""
    run = sub.add_parser("run", help="evaluate a model in an environment")
    _add_run_arguments(run)
    sub.add_parser("envs", help="list environments and their variants")
    enc = sub.add_parser("encodings", help="list encodings")
    enc.add_argument("env", nargs="?", help="only this environment's")
    sub.add_parser("models", help="list the embedded models")
    val = sub.add_parser("validate", help="check run directories against the schemas")
    val.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    summ = sub.add_parser("summary", help="print the results table of run directories")
    summ.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    summ.add_argument("--price-in", type=_price, metavar="PRICE", help="price per million prompt tokens: adds cost rows")
    summ.add_argument("--price-out", type=_price, metavar="PRICE", help="price per million completion tokens (default: --price-in)")
    merge = sub.add_parser("merge", help="join the shards of a run (zso run --shard I/N) into one run directory")
    merge.add_argument("out", metavar="OUT_DIR")
    merge.add_argument("shard_dirs", nargs="+", metavar="SHARD_DIR")
    serve = sub.add_parser("serve", help="serve a model over an OpenAI-compatible completions and chat API")
    serve.add_argument("--model", default="smollm2-135m-instruct", help="embedded model name, model directory or .gguf file")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=_port, default=8000, help="0 to 65535 (0: a free port)")
    serve.add_argument("-b", "--backend-option", action="append", metavar="KEY=VALUE", help="transformers backend option, e.g. dtype=bfloat16")
    for name, handler in HANDLERS.items():
        sub.choices[name].set_defaults(handler=handler)


def cmd_run(args: argparse.Namespace) -> int:
    from harness.config import parse_key_values, resolve_config
    from harness.runner import Runner

    if args.resume:
        return _resume(args)
    config = resolve_config(
        args.config,
        env=args.env, variant=args.variant, encoding=args.encoding, model=args.model, backend=args.backend,
        mode=args.mode, episodes=args.episodes, episodes_target=args.episodes_target, max_steps=args.max_steps, batch_size=args.batch_size,
        seed=args.seed, temperature=args.temperature, score_norm=args.score_norm, list_order=args.list_order,
        max_new_tokens=args.max_new_tokens, max_retries=args.max_retries, fallback=args.fallback,
        env_options=parse_key_values(args.env_option, "--env-option") or None,
        backend_options=parse_key_values(args.backend_option, "--backend-option") or None,
        out=args.out, shard=args.shard,
    )
    config = prepare_new_run(config)
    with console.status(f"loading {escape(config.model)} ({config.backend})"):
        runner = Runner(config)
    with runner:
        return run_and_report(runner, len(config.episode_indices()), args.no_progress)


def prepare_new_run(config: Any) -> Any:
    """Every check that can be made before a model loads: environment, encoding, output directory.

    Returns ``config`` with its output directory decided.
    """
    from dataclasses import replace

    from harness.records import check_new_run_dir
    from harness.runner import default_run_dir
    from textenvs import get_encoding

    get_encoding(config.env, config.encoding)
    config.episode_indices()  # a malformed --shard fails here
    env = config.make_env()  # options played by a model are checked when it loads
    try:
        if config.episodes_target is not None:
            from harness.stopping import gd_references

            if config.shard is not None:
                raise ConfigError("--episodes-target decides on all the episodes: it cannot be combined with --shard")
            gd_references(env, config.max_steps, config.episode_seed)  # an environment without exact MDPs fails here
    finally:
        env.close()
    if config.out is None:
        config = replace(config, out=str(default_run_dir(config)))
    check_new_run_dir(Path(config.out))
    return config


def _resume(args: argparse.Namespace) -> int:
    """``zso run --resume DIR``: finish an interrupted or killed run where it stopped."""
    from harness.cli.baseline import build_agent
    from harness.config import ConfigError, RunConfig, config_from_manifest
    from harness.records import prepare_resume
    from harness.runner import Runner

    # Every flag but --no-progress would change the run; a resumed run keeps what it was made with.
    given = [f"--{name.replace('_', '-')}" for name, value in vars(args).items()
             if name not in ("resume", "no_progress", "handler", "command") and value is not None]
    if given:
        raise ConfigError(f"--resume takes the run's own configuration; drop {', '.join(given)}")
    state = prepare_resume(args.resume)
    for line in state.dropped:
        console.print(f"[yellow]dropped[/yellow] {escape(line)}")
    config: RunConfig = config_from_manifest(state.manifest, args.resume)
    total = len(config.episode_indices())
    console.print(f"resuming {escape(args.resume)}: {len(state.finished)} of {total} episodes kept, {total - len(state.finished)} to play")
    if config.is_baseline:
        # Planned or retrained from the run's seed: the agent the run started with.
        agent = build_agent(config, args.no_progress)
        try:
            with Runner(config, agent=agent) as runner:
                return run_and_report(runner, total, args.no_progress, resume=state)
        finally:
            agent.close()
    with console.status(f"loading {escape(config.model)} ({config.backend})"):
        runner = Runner(config)
    with runner:
        return run_and_report(runner, total, args.no_progress, resume=state)


def cmd_envs(args: argparse.Namespace) -> int:
    from textenvs import ENVS, encodings_for

    table = Table(title="environments")
    for col in ("id", "variants", "encodings", "description"):
        table.add_column(col, no_wrap=col == "id")
    for entry in ENVS:
        variants = entry.metadata.get("variants", {})
        default = entry.metadata.get("default_variant")
        names = ", ".join(f"[bold]{v}[/bold]" if v == default else v for v in variants) or "-"
        table.add_row(entry.name, names, ", ".join(encodings_for(entry.name)), entry.description)
    out.print(table)
    return 0


def cmd_encodings(args: argparse.Namespace) -> int:
    from textenvs import ENCODINGS, ENVS

    if args.env:
        ENVS.entry(args.env)
    table = Table(title="encodings")
    for col in ("environment", "encoding", "description"):
        table.add_column(col, no_wrap=col != "description")
    for entry in ENCODINGS:
        env, name = entry.name.split("/", 1)
        if args.env in (None, env):
            table.add_row(env, name, entry.description)
    out.print(table)
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from harness.models import model_rows

    table = Table(title="embedded models (offline)")
    rows = model_rows()
    for col in rows[0]:
        table.add_column(col, no_wrap=col == "name", overflow="fold")
    for row in rows:
        table.add_row(*(str(v) for v in row.values()))
    out.print(table)
    out.print("Any Hugging Face model directory or .gguf file works too: --model PATH")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from harness.validate import validate_run

    failed = 0
    for run_dir in args.run_dirs:
        problems = validate_run(run_dir)
        if problems:
            failed += 1
            out.print(f"[red]invalid[/red] {run_dir}: {len(problems)} problem(s)")
            for problem in problems:
                out.print(f"  {problem}", markup=False, highlight=False)
        else:
            out.print(f"[green]valid[/green] {run_dir}")
    return 1 if failed else 0


def cmd_summary(args: argparse.Namespace) -> int:
    from harness.summary import Prices, print_summaries, summarize

    prices = None
    if args.price_in is not None or args.price_out is not None:
        price_in = args.price_in if args.price_in is not None else args.price_out
        prices = Prices(price_in, args.price_out if args.price_out is not None else price_in)
    print_summaries([summarize(d) for d in args.run_dirs], out, prices)
    return 0


def _price(text: str) -> float:
    """A price per million tokens for ``--price-in``/``--price-out`` (argparse reports a bad one in one line)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"{text} is not a price (a number >= 0)")
    return value


def _port(text: str) -> int:
    """A TCP port number for ``--port`` (argparse reports a bad one in one line)."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port number (0 to 65535)")
    return port


def cmd_serve(args: argparse.Namespace) -> int:
    from harness.backends import load_backend
    from harness.config import parse_key_values
    from harness.serve import CompletionsServer

    with console.status(f"loading {args.model}"):
        backend = load_backend("transformers", args.model, parse_key_values(args.backend_option, "--backend-option"))
    server = CompletionsServer(backend, Path(args.model).name, args.host, args.port)
    console.print(f"serving {args.model} at [bold]{server.url}[/bold] (Ctrl-C stops)")
    try:
        server.serve_forever()
    finally:
        server.server_close()
        backend.close()
    return 0


def cmd_merge(args: argparse.Namespace) -> int:
    """``zso merge OUT SHARD...``: one run from its shards, validated."""
    from harness.merge import merge_shards
    from harness.records import ResultsError
    from harness.validate import validate_run

    run_dir = merge_shards(args.out, args.shard_dirs)
    problems = validate_run(run_dir)
    if problems:
        raise ResultsError(f"the merged run {run_dir} does not validate: {problems[0]}")
    console.print(f"merged {len(args.shard_dirs)} shard(s) into [bold]{escape(str(run_dir))}[/bold]")
    return 0


HANDLERS = {
    "run": cmd_run, "merge": cmd_merge, "envs": cmd_envs, "encodings": cmd_encodings, "models": cmd_models,
    "validate": cmd_validate, "summary": cmd_summary, "serve": cmd_serve,
}
