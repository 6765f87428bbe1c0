"""What every ``zso`` command shares: the consoles, a progress bar, playing a run under it."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

#: Messages and progress go to stderr; tables to stdout.
console = Console(stderr=True)
out = Console()


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
