"""What every ``zso`` command shares: the consoles, a progress bar, playing a run under it."""

from __future__ import annotations

import sys
from typing import Any, TextIO

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn



class RedactingStream:
    """A text stream that removes credentials (:func:`harness.records.redact_text`) from what is written to it.

    It writes to ``sys.stderr`` or ``sys.stdout`` as they are at each write (so tests that
    capture them see everything), and answers ``isatty`` and ``fileno`` for them.
    """

    def __init__(self, name: str):
        self.name = name

    @property
    def stream(self) -> TextIO:
        return getattr(sys, self.name)

    def write(self, text: str) -> int:
        from harness.records import redact_text

        return self.stream.write(redact_text(text))

    def flush(self) -> None:
        self.stream.flush()

    def isatty(self) -> bool:
        return self.stream.isatty()

    def fileno(self) -> int:
        return self.stream.fileno()

    @property
    def encoding(self) -> str:
        return getattr(self.stream, "encoding", "utf-8")


#: Messages and progress go to stderr; tables to stdout. Neither ever shows a credential.
console = Console(file=RedactingStream("stderr"), soft_wrap=True)
out = Console(file=RedactingStream("stdout"))


def run_and_report(runner: Any, episodes: int, no_progress: bool, resume: Any = None) -> int:
    """Play ``runner``'s episodes under a progress bar and print the results table.

    Returns the exit code: 0, or 130 after Ctrl-C or SIGTERM (finished episodes are kept
    and shown, and the command that finishes the run is printed).
    """
    from harness.runner import RunInterrupted
    from harness.summary import print_summaries, summarize

    done = len(resume.finished) if resume is not None else 0
    try:
        with ProgressBar("episodes", episodes, "{task.fields[steps]} steps", no_progress, steps=0, completed=done) as update:
            run_dir = runner.run(progress=lambda done, steps: update(done, steps=steps), resume=resume)
    except RunInterrupted as exc:
        console.print(f"[yellow]{escape(str(exc))}[/yellow]")
        console.print(f"finish it with: zso run --resume {escape(str(exc.run_dir))}", highlight=False)
        if exc.episodes_done:
            print_summaries([summarize(exc.run_dir)], out)
        return 130
    print_summaries([summarize(run_dir)], out)
    console.print(f"results in [bold]{escape(str(run_dir))}[/bold]")
    return 0


class ProgressBar:
    """A rich progress bar on stderr, used as ``with ProgressBar(...) as update: update(done, **fields)``.

    ``detail`` is an optional text column that may show the task's ``fields``
    (``"{task.fields[steps]} steps"``); their starting values are keyword arguments.
    """

    def __init__(self, label: str, total: int, detail: str = "", disable: bool = False, completed: int = 0, **fields: Any):
        columns = [TextColumn(f"[bold]{escape(label)}"), BarColumn(), MofNCompleteColumn()]
        if detail:
            columns.append(TextColumn(detail))
        self.bar = Progress(*columns, TimeElapsedColumn(), console=console, disable=disable or not console.is_terminal)
        self.task = self.bar.add_task(label, total=total, completed=completed, **fields)

    def __enter__(self):
        self.bar.__enter__()
        return lambda completed, **fields: self.bar.update(self.task, completed=completed, **fields)

    def __exit__(self, *exc: Any) -> None:
        self.bar.__exit__(*exc)
