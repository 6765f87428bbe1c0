"""The ``zso`` command line: the top of the import graph, the one place that knows every package.

Each module of this package adds its subcommands (``add_parsers``) and their handlers;
:func:`main` dispatches to the handler the parsed arguments name.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from typing import Any, Sequence

from rich.markup import escape

from harness.cli import baseline, commands, export, objectives, study
from harness.cli.console import ProgressBar, console, out, run_and_report
from harness.records import redact_text
from textenvs.errors import UserError

__all__ = ["main", "build_parser", "console", "out", "ProgressBar", "run_and_report"]

#: The modules that add subcommands, in the order ``zso --help`` lists them.
SUBCOMMAND_MODULES = (commands, baseline, objectives, study, export)


def build_parser() -> argparse.ArgumentParser:
    """The ``zso`` argument parser with every subcommand."""
    parser = argparse.ArgumentParser(prog="zso", description="Run language models zero-shot in games and RL tasks, record every step, infer their objectives.")
    sub = parser.add_subparsers(dest="command", required=True)
    for module in SUBCOMMAND_MODULES:
        module.add_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``zso`` console script.

    Errors a user can fix (:class:`textenvs.errors.UserError`) print one line and exit 2;
    any other exception is a bug: it prints one line naming it and exits 1. ``ZSO_DEBUG=1``
    shows the traceback. Warnings (a torn line skipped, a fit that did not converge...)
    print one line each. Nothing printed shows a credential (:func:`harness.records.redact_text`).
    """
    args = build_parser().parse_args(argv)
    debug = bool(os.environ.get("ZSO_DEBUG"))
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        warnings.showwarning = _show_warning
        try:
            return args.handler(args)
        except KeyboardInterrupt:
            console.print("[yellow]interrupted[/yellow]")
            return 130
        except UserError as exc:
            if debug:
                raise
            console.print(f"[red]error:[/red] {escape(redact_text(str(exc)))}", highlight=False)
            return 2
        except Exception as exc:  # noqa: BLE001 - the last line of defence: one line, never a traceback
            if debug:
                raise
            console.print(f"[red]internal error:[/red] {escape(type(exc).__name__)}: {escape(redact_text(str(exc)))} "
                          "(ZSO_DEBUG=1 shows the traceback)", highlight=False)
            return 1


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int, file: Any = None, line: str | None = None) -> None:
    """Warnings as one line on the console, without the source line."""
    console.print(f"[yellow]warning:[/yellow] {escape(redact_text(str(message)))}", highlight=False)


if __name__ == "__main__":
    sys.exit(main())
