"""``python -m harness.export RUN_DIR... --to FORMAT --out PATH``: ``zso export`` without the rest of zso.

For an environment that holds only what one format needs (an Inspect AI environment, say):
it imports :mod:`harness.records` and the format's library, nothing else of zso.
"""

from __future__ import annotations

import argparse
import sys

from harness.export import EXPORTERS, export_runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.export", description="Export zso runs to other tools' formats.")
    parser.add_argument("paths", nargs="+", metavar="RUN_DIR", help="run directories or study directories")
    parser.add_argument("--to", required=True, choices=EXPORTERS.names())
    parser.add_argument("--out", required=True, metavar="PATH")
    args = parser.parse_args(argv)
    try:
        for path in export_runs(args.paths, args.to, args.out):
            print(path)
    except (ValueError, ImportError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
