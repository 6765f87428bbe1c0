"""The ``zso`` command line: the top of the import graph, the one place that knows every package.

Each module of this package adds its subcommands (``add_parsers``) and their handlers;
:func:`main` dispatches to the handler the parsed arguments name.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

from harness.cli import baseline, commands, objectives
from harness.cli.console import ProgressBar, console, out, run_and_report

__all__ = ["main", "build_parser", "console", "out", "ProgressBar", "run_and_report"]

#: The modules that add subcommands, in the order ``zso --help`` lists them.
SUBCOMMAND_MODULES = (commands, baseline, objectives)


def build_parser() -> argparse.ArgumentParser:
    """The ``zso`` argument parser with every subcommand."""
    parser = argparse.ArgumentParser(prog="zso", description="Run language models zero-shot in games and RL tasks, record every step, infer their objectives.")
    sub = parser.add_subparsers(dest="command", required=True)
    for module in SUBCOMMAND_MODULES:
        module.add_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``zso`` console script.

    Errors a user can fix print one line and exit 2; ``ZSO_DEBUG=1`` shows the traceback.
    """
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
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
