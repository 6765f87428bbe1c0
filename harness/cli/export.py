"""``zso export RUN_DIR... --to inspect|minari|parquet --out PATH``."""

from __future__ import annotations

import argparse
from typing import Any

from rich.markup import escape

from harness.cli.console import console, out


def add_parsers(sub: Any) -> None:
    """Add ``zso export``."""
    from harness.export import EXPORTERS

    formats = "; ".join(f"{e.name}: {e.description}" for e in EXPORTERS)
    p = sub.add_parser(
        "export", help="export runs to Inspect AI logs, Minari datasets or Parquet tables",
        description=f"Export run directories (a study directory stands for all its runs). Formats: {formats}.",
    )
    p.add_argument("paths", nargs="+", metavar="RUN_DIR", help="run directories or study directories")
    p.add_argument("--to", required=True, choices=EXPORTERS.names(), help="the format")
    p.add_argument("--out", required=True, metavar="PATH",
                   help="folder of the exports (minari: the datasets root, MINARI_DATASETS_PATH)")
    p.set_defaults(handler=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    from harness.export import export_runs

    written = export_runs(args.paths, args.to, args.out)
    for path in written:
        out.print(escape(str(path)), highlight=False)
    console.print(f"exported {len(written)} run(s) to {args.to} under [bold]{escape(args.out)}[/bold]")
    return 0
