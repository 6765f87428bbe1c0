"""The ``zso`` command line."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any, Sequence

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

console = Console(stderr=True)
out = Console()


def _add_run_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE", help="TOML run configuration (flags override it)")
    p.add_argument("--env", help="environment id (zso envs)")
    p.add_argument("--variant", help="named preset of the environment (zso envs)")
    p.add_argument("--encoding", help="encoding id (zso encodings ENV)")
    p.add_argument("--model", help="embedded model name (zso models), model directory or .gguf file")
    p.add_argument("--backend", choices=["transformers", "openai", "vllm"])
    p.add_argument("--mode", choices=["choose", "generate"], help="score legal actions, or parse free text")
    p.add_argument("--episodes", type=int)
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
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="zso", description="Run language models zero-shot in games and RL tasks, record every step, infer their objectives.")
    sub = parser.add_subparsers(dest="command", required=True)
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
    serve = sub.add_parser("serve", help="serve a model over an OpenAI-compatible completions API")
    serve.add_argument("--model", default="smollm2-135m-instruct", help="embedded model name, model directory or .gguf file")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("-b", "--backend-option", action="append", metavar="KEY=VALUE", help="transformers backend option, e.g. dtype=bfloat16")
    __import__("harness.baselines").baselines.add_parser(sub)  # zso baseline
    __import__("irl.cli").cli.add_parsers(sub)  # zso irl, zso compare
    return parser


def cmd_run(args: argparse.Namespace) -> int:
    from harness.config import parse_key_values, resolve_config
    from harness.runner import Runner

    config = resolve_config(
        args.config,
        env=args.env, variant=args.variant, encoding=args.encoding, model=args.model, backend=args.backend,
        mode=args.mode, episodes=args.episodes, max_steps=args.max_steps, batch_size=args.batch_size,
        seed=args.seed, temperature=args.temperature, score_norm=args.score_norm, list_order=args.list_order,
        max_new_tokens=args.max_new_tokens, max_retries=args.max_retries, fallback=args.fallback,
        env_options=parse_key_values(args.env_option, "--env-option") or None,
        backend_options=parse_key_values(args.backend_option, "--backend-option") or None,
        out=args.out,
    )
    with console.status(f"loading {config.model} ({config.backend})"):
        runner = Runner(config)
    with runner:
        return run_and_report(runner, config.episodes, args.no_progress)


def run_and_report(runner: Any, episodes: int, no_progress: bool) -> int:
    """Play ``runner``'s episodes under a progress bar and print the results table.

    Returns the exit code: 0, or 130 after Ctrl-C (finished episodes are kept and shown).
    """
    from harness.runner import RunInterrupted
    from harness.summary import print_summaries, summarize

    try:
        with ProgressBar("episodes", episodes, "{task.fields[steps]} steps", no_progress, steps=0) as update:
            run_dir = runner.run(progress=lambda done, steps: update(done, steps=steps))
    except RunInterrupted as exc:
        console.print(f"[yellow]{exc}[/yellow]")
        if exc.episodes_done:
            print_summaries([summarize(exc.run_dir)], out)
        return 130
    print_summaries([summarize(run_dir)], out)
    console.print(f"results in [bold]{run_dir}[/bold]")
    return 0


class ProgressBar:
    """A rich progress bar on stderr, used as ``with ProgressBar(...) as update: update(done, **fields)``.

    ``detail`` is an optional text column that may show the task's ``fields``
    (``"{task.fields[steps]} steps"``); their starting values are keyword arguments.
    """

    def __init__(self, label: str, total: int, detail: str = "", disable: bool = False, **fields: Any):
        columns = [TextColumn(f"[bold]{label}"), BarColumn(), MofNCompleteColumn()]
        if detail:
            columns.append(TextColumn(detail))
        self.bar = Progress(*columns, TimeElapsedColumn(), console=console, disable=disable)
        self.task = self.bar.add_task(label, total=total, **fields)

    def __enter__(self):
        self.bar.__enter__()
        return lambda completed, **fields: self.bar.update(self.task, completed=completed, **fields)

    def __exit__(self, *exc: Any) -> None:
        self.bar.__exit__(*exc)


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
    from harness.summary import print_summaries, summarize

    print_summaries([summarize(d) for d in args.run_dirs], out)
    return 0


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


COMMANDS = {
    "run": cmd_run, "envs": cmd_envs, "encodings": cmd_encodings, "models": cmd_models,
    "validate": cmd_validate, "summary": cmd_summary, "serve": cmd_serve,
    "baseline": lambda args: __import__("harness.baselines").baselines.cmd_baseline(args),
    "irl": lambda args: __import__("irl.cli").cli.cmd_irl(args),
    "compare": lambda args: __import__("irl.cli").cli.cmd_compare(args),
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``zso`` console script.

    Errors a user can fix print one line and exit 2; ``ZSO_DEBUG=1`` shows the traceback.
    """
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/yellow]")
        return 130
    except (ValueError, KeyError, FileNotFoundError, ImportError, RuntimeError) as exc:
        if os.environ.get("ZSO_DEBUG"):
            raise
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        console.print(f"[red]error:[/red] {message}", markup=True, highlight=False)
        return 2


if __name__ == "__main__":
    sys.exit(main())
