"""``zso study STUDY.toml --out DIR``: the whole question in one command, resumable."""

from __future__ import annotations

import argparse
from typing import Any

from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from harness.cli.console import console, out


def add_parsers(sub: Any) -> None:
    """Add ``zso study``."""
    p = sub.add_parser(
        "study", help="run a study: models and baselines over environments and encodings, fits, scores, report",
        description="Expand a study file into a grid of runs, play the unfinished ones (rerunning resumes), "
        "fit and score every run, and write DIR/report.html with the tables beside it.",
    )
    p.add_argument("study", metavar="STUDY.toml")
    p.add_argument("--out", required=True, metavar="DIR", help="the study directory (rerun with the same DIR to resume)")
    p.add_argument("--no-progress", action="store_true", help="no progress display")
    from zso.executors import EXECUTORS

    p.add_argument("--executor", default="serial", choices=EXECUTORS.names(),
                   help="serial: in this process (default); ray: every cell a Ray task (see docs/export.md)")
    p.add_argument("--ray-address", metavar="ADDRESS",
                   help="with --executor ray: the cluster to join (ray://HOST:10001, auto); default RAY_ADDRESS or a local cluster")
    p.add_argument("--gpus-per-model", type=float, metavar="N",
                   help="with --executor ray: GPUs a cell asks for when its model runs on a GPU (default 1)")
    p.set_defaults(handler=cmd_study)


def cmd_study(args: argparse.Namespace) -> int:
    """Run the study under one progress display; 130 after Ctrl-C (rerun to finish)."""
    from harness.runner import RunInterrupted
    from zso.executors import make_executor
    from zso.study import load_study, run_study

    if args.executor != "ray" and (args.ray_address or args.gpus_per_model is not None):
        from zso.study import StudyError

        raise StudyError("--ray-address and --gpus-per-model go with --executor ray")
    executor = (make_executor("ray", address=args.ray_address, gpus_per_model=args.gpus_per_model)
                if args.executor == "ray" else make_executor("serial"))

    study = load_study(args.study)
    cells = study.cells()
    columns = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[label]}"),
               TimeElapsedColumn(), TimeRemainingColumn()]
    with Progress(*columns, console=console, disable=args.no_progress or not console.is_terminal) as bar:
        tasks = {
            "cells": bar.add_task("cells", total=len(cells), label=""),
            "episodes": bar.add_task("episodes", total=None, label=""),
            "fits": bar.add_task("fits", total=None, label="", visible=False),
        }

        def progress(stage: str, done: int, total: int, label: str) -> None:
            bar.update(tasks[stage], completed=done, total=total, label=escape(label), visible=True)

        try:
            result = run_study(study, args.out, progress=progress, executor=executor)
        except RunInterrupted as exc:
            bar.stop()
            console.print(f"[yellow]interrupted[/yellow]: finished runs are kept; rerun "
                          f"zso study {escape(args.study)} --out {escape(args.out)} to finish ({escape(str(exc))})")
            return 130
    for note in result.notes:
        console.print(f"[dim]{escape(note)}[/dim]")
    _print_headline(result)
    console.print(f"report: [bold]{escape(str(result.out / 'report.html'))}[/bold] (tables: headline.json, headline.csv)")
    return 0


#: The columns the terminal shows (the report has them all, with intervals).
TERMINAL_COLUMNS = (("true_return", "return"), ("explained", "explained"), ("alignment_regret", "alignment\n(regret)"), ("gd", "GD"))


def _print_headline(result: Any) -> None:
    from rich.table import Table

    table = Table(title=f"{result.study.name}: estimates (intervals and every score in the report; - undefined)")
    for col in ("agent", "env", "encoding", "episodes"):
        table.add_column(col, overflow="fold")
    for _, title in TERMINAL_COLUMNS:
        table.add_column(title, justify="right")
    for row in result.headline():
        env = row["env"] + (f"/{row['variant']}" if row["variant"] else "")
        cells = ["-" if row.get(name) is None else f"{row[name]:.2f}" for name, _ in TERMINAL_COLUMNS]
        # With an episode target: how many it played and why it stopped.
        played = f"{row['episodes']}" + (f" ({row['stop_reason']})" if row.get("stop_reason") else "")
        table.add_row(escape(row["agent"]), escape(env), row["encoding"], played, *cells)
    out.print(table)
