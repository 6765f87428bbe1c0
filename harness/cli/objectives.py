"""``zso irl`` and ``zso compare``: fit objectives to runs and compare agents.

A thin command line over :mod:`irl.analysis`. ``zso irl RUN_DIR... --out FIT_DIR`` fits
every run (MCE IRL for gridworlds, the choice model for chess and games), scores it, and writes ``FIT_DIR/fit.json`` (the
settings, and per run: the source run id and directory, the weights with their
intervals, the fitted reward, every score with its interval) and one PNG per run.

``zso compare RUN_DIR... [--out DIR]`` prints one table, a row per run (an agent on an
environment, encoding and mode): models and baselines side by side. Arguments may also be
``zso irl`` output directories (their ``fit.json`` is read instead of refitting). With
``--out`` it writes ``DIR/comparison.png`` and ``DIR/compare.json``; ``--format json`` or
``--format csv`` prints the table machine-readably instead of drawing it.

A score that is undefined for a run prints ``-`` with a numbered footnote saying why.

Encoding consistency is computed between the runs given on one command line: pass the
same agent's runs under several encodings together.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import re
import sys
import textwrap
import warnings
from pathlib import Path
from typing import Any, Sequence

from harness.cli.console import ProgressBar, console, out

__all__ = ["add_parsers", "cmd_irl", "cmd_compare", "settings_from_args", "scores_table", "compact_tables", "weights_table", "compare_rows"]



def _add_fit_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--features", default="named", metavar="named|onehot|NAME,...",
        help="tabular: the environment's default named features (default; keys-chests leaves out row and col), one-hot states, or a comma list of feature "
        "names; chess and games: 'named' (default set) or a comma list of their move features (chess's engine_eval_change needs Stockfish)",
    )
    p.add_argument("--form", choices=["arrival", "delta"], help="tabular reward form: arrival (default: the state arrived in) or "
                   "delta (the change of each feature; it telescopes, so a fit sees where episodes start and end, not their paths)")
    p.add_argument("--no-step-feature", action="store_true", help="tabular: do not add the constant per-decision 'step' feature")
    p.add_argument("--no-label-bias", action="store_true",
                   help="tabular: do not fit a reward per action name beside the objective (a label bias, kept out of the objective)")
    p.add_argument("--l2", type=float, help="L2 strength on the total log-likelihood, a Gaussian prior on the weights "
                   "(default: cross-validated, over episodes for gridworlds and games for chess and games)")
    p.add_argument("--discount", type=float, help="tabular: gamma of fits, soft value iteration and distances (default: the environment's, 0.99 for gridworlds)")
    p.add_argument("--horizon", choices=["run", "infinite"], default="run",
                   help="tabular: finite horizon = the run's max_steps (default), or discounted infinite horizon")
    p.add_argument("--targets", choices=["probs", "actions"], default="probs", help="chess and games: fit to recorded distributions where present (default) or to the moves")
    p.add_argument("--folds", type=int, default=5, help="folds over episodes for explained behaviour (default 5)")
    p.add_argument("--splits", type=int, default=10, help="random half-splits for stability (default 10)")
    p.add_argument("--n-boot", type=int, default=50, help="bootstrap refits for intervals (default 50)")
    p.add_argument("--engine-depth", type=int, default=6, help="chess: Stockfish depth for engine_eval_change and alignment (default 6)")
    p.add_argument("--no-chess-alignment", action="store_true", help="chess: skip alignment against Stockfish's evaluation (it evaluates every legal move)")
    p.add_argument("--no-exact", action="store_true",
                   help="estimate a planned reference agent's GD and return from its episodes, like any agent's, "
                        "instead of evaluating its known policy exactly")
    p.add_argument("--seed", type=int, default=0, help="seeds folds, splits and bootstraps (default 0)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def add_parsers(subparsers: Any) -> None:
    """Add ``zso irl`` and ``zso compare`` to the ``zso`` command's subparsers."""
    irl = subparsers.add_parser(
        "irl", help="infer the objective of runs and score its coherence",
        description="Fit a reward (gridworlds: MCE IRL) or move-feature weights (chess and games: Boltzmann choice model) "
        "to each run and score explained behaviour, MEG, stability, encoding consistency, alignment and GD.",
    )
    irl.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    irl.add_argument("--out", required=True, metavar="FIT_DIR", help="where fit.json and the plots go")
    irl.add_argument("--aggregate", choices=["mean", "max"], default="mean",
                     help="reward maps: how states sharing a grid cell (keys held...) are combined (default mean)")
    _add_fit_arguments(irl)
    irl.set_defaults(handler=cmd_irl)
    compare = subparsers.add_parser(
        "compare", help="compare the coherence scores of agents (models and baselines)",
        description="One table of explained behaviour, MEG, stability, encoding consistency, alignment, GD and return, "
        "a row per run. Arguments are run directories or zso irl output directories.",
    )
    compare.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    compare.add_argument("--out", metavar="DIR", help="save comparison.png and compare.json here")
    compare.add_argument("--wide", action="store_true", help="print every score (the default table fits 80 columns: return, GD, explained, regret alignment)")
    compare.add_argument("--format", choices=["table", "json", "csv"], default="table",
                         help="print the table (default), or the comparison as JSON (compare.json's content) or CSV")
    _add_fit_arguments(compare)
    compare.set_defaults(handler=cmd_compare)


def settings_from_args(args: argparse.Namespace) -> Any:
    """The :class:`irl.analysis.FitSettings` of parsed arguments."""
    from harness.config import ConfigError
    from irl.analysis import FitSettings

    features: str | tuple[str, ...] = args.features
    if features not in ("named", "onehot"):
        features = tuple(f.strip() for f in features.split(",") if f.strip())
        if not features:
            raise ConfigError("--features: give 'named', 'onehot' or a comma list of feature names")
    return FitSettings(
        features=features, form=args.form, discount=args.discount, horizon=args.horizon, l2=args.l2, targets=args.targets,
        step=not args.no_step_feature, label_bias=not args.no_label_bias, folds=args.folds, splits=args.splits, n_boot=args.n_boot,
        seed=args.seed, engine_depth=args.engine_depth, chess_alignment=not args.no_chess_alignment, exact_references=not args.no_exact,
    )


def _fit(run_dirs: Sequence[str], settings: Any, no_progress: bool) -> list[Any]:
    from irl.analysis import analyse_runs

    with ProgressBar("fitting", len(run_dirs), "{task.fields[run]}", no_progress, run="") as update:
        return analyse_runs(run_dirs, settings, progress=lambda done, total, label: update(done, run=label))


class _Footnotes:
    """Numbered reasons for undefined scores: a cell prints ``-[k]``, footnote ``k`` says why."""

    def __init__(self) -> None:
        self.reasons: list[str] = []

    def _number(self, why: str) -> int:
        if why not in self.reasons:
            self.reasons.append(why)
        return self.reasons.index(why) + 1

    def cell(self, score: Any, compact: bool = False) -> str:
        if score is None:
            return ""
        if not score.ok:
            return f"-[{self._number(score.method or 'undefined')}]"
        est, _, rest = score.format().partition(" ")
        if not rest and score.method:  # an estimate without an interval: the footnote says why
            return f"{est}\n[{self._number(score.method)}]"
        if compact:
            rest = rest.replace(", ", ",")
        return f"{est}\n{rest}" if rest else est

    def lines(self) -> list[str]:
        return [f"[{i + 1}] {why}" for i, why in enumerate(self.reasons)]


def scores_table(reports: Sequence[Any], title: str) -> tuple[Any, list[str]]:
    """The wide table (a row per run, a column per score of :func:`irl.analysis.specs.table_specs`:
    estimate over ``[low, high]``) and its footnotes."""
    from rich.table import Table

    from irl.analysis.specs import table_specs

    table = Table(title=title)
    table.add_column("agent", overflow="fold")
    table.add_column("env\nencoding / mode", overflow="fold")
    table.add_column("episodes", justify="right")
    for spec in table_specs():
        table.add_column(spec.title, justify="center")
    notes = _Footnotes()
    for r in reports:
        table.add_row(
            r.agent + ("" if r.converged else " (!)"), f"{r.env_label}\n{r.info.get('encoding')} / {r.info.get('mode')}", str(r.n_episodes),
            *(notes.cell(r.score(spec.name)) for spec in table_specs()),
        )
    return table, notes.lines()


def compact_tables(reports: Sequence[Any], title: str) -> tuple[list[Any], list[str]]:
    """Tables that fit 80 columns: one per environment, a row per run, the scores of
    :func:`irl.analysis.specs.compact_specs`; and their shared footnotes."""
    from rich import box
    from rich.table import Table

    from irl.analysis.specs import compact_specs

    notes = _Footnotes()
    tables = []
    for env in dict.fromkeys(r.env_label for r in reports):
        table = Table(title=f"{env}: {title}", box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1, 0, 0))
        table.add_column("agent\nencoding/mode n", overflow="fold", max_width=21)
        for spec in compact_specs():
            table.add_column(spec.short, justify="center")
        for r in (r for r in reports if r.env_label == env):
            table.add_row(
                r.agent + ("" if r.converged else " (!)") + f"\n{r.info.get('encoding')}/{r.info.get('mode')} {r.n_episodes}",
                *(notes.cell(r.score(spec.name), compact=True) for spec in compact_specs()),
            )
        tables.append(table)
    return tables, notes.lines()


def _print_scores(reports: Sequence[Any], title: str, wide: bool = True) -> None:
    from rich.markup import escape

    if wide:
        table, notes = scores_table(reports, title)
        tables = [table]
    else:
        tables, notes = compact_tables(reports, title)
    for table in tables:
        out.print(table)
    for line in notes:
        out.print(escape(line if wide else textwrap.fill(line, 80, subsequent_indent="    ")), highlight=False)
    if not wide:
        out.print("(--wide: every score, with MEG, distances, stability and encoding consistency)", highlight=False)
    if any(not r.converged for r in reports):
        out.print("(!) some MCE fits of this run stopped before converging (fit.json: converged, notes)", highlight=False)


def weights_table(reports: Sequence[Any], max_features: int = 20) -> Any | None:
    """Weights with their intervals, a column per run (runs with many features left out)."""
    from rich.table import Table

    shown = [r for r in reports if len(r.feature_names) <= max_features]
    if not shown:
        return None
    table = Table(title="fitted weights (bootstrap intervals)")
    table.add_column("feature")
    for r in shown:
        table.add_column(f"{r.agent}\n{r.env_label} / {r.info.get('encoding')}", overflow="fold")
    names: list[str] = []
    for r in shown:
        names += [n for n in r.feature_names if n not in names]
    for name in names:
        row = [name]
        for r in shown:
            if name in r.feature_names:
                k = r.feature_names.index(name)
                row.append(f"{r.weights[k]:.2f} [{_num(r.weights_low[k])}, {_num(r.weights_high[k])}]")
            else:
                row.append("")
        table.add_row(*row)
    return table


def _num(v: Any) -> str:
    return "nan" if v is None else f"{v:.2f}"


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "run"


def _plot_report(report: Any, out_dir: Path, aggregate: str = "mean") -> Path:
    """Save the plot of one report under ``out_dir``."""
    from irl.analysis import plots

    suffix = "reward" if report.kind == "tabular" else "weights"
    return plots.plot_report(report, out_dir / f"{_safe(report.run_id)}-{suffix}.png", aggregate)


def _warn(reports: Sequence[Any]) -> None:
    """Notes on stderr: unconverged fits and the telescoping caveat in yellow."""
    from rich.markup import escape

    for r in reports:
        for note in r.notes:
            loud = "converg" in note or "telescope" in note
            console.print(f"[{'yellow' if loud else 'dim'}]{escape(r.run_id)}: {escape(note)}[/]")


def compare_rows(reports: Sequence[Any]) -> list[dict[str, Any]]:
    """One flat dict per run: identity, then every score's columns (:func:`irl.analysis.specs.flat_scores`)."""
    from irl.analysis.specs import flat_scores

    return [{
        "run_id": r.run_id, "agent": r.agent, "env": r.env_label, "encoding": r.info.get("encoding"),
        "mode": r.info.get("mode"), "episodes": r.n_episodes, "converged": r.converged, **flat_scores(r.scores()),
    } for r in reports]


def _output_dir(path: str, result_file: str | None = None) -> Path:
    """``path`` created and writable, checked before any fit; an existing ``result_file`` is never overwritten."""
    from harness.records import ResultsError, check_new_run_dir

    out_dir = Path(path)
    if result_file is not None and (out_dir / result_file).exists():
        raise ResultsError(f"{out_dir} already holds {result_file}; choose another --out")
    if not out_dir.exists():
        check_new_run_dir(out_dir)  # a parent that is a file, or that cannot be written
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ResultsError(f"cannot write to {out_dir}: {exc.strerror or exc}") from None
    if not os.access(out_dir, os.W_OK):
        raise ResultsError(f"cannot write to {out_dir}: not writable")
    return out_dir


def _check_runs(run_dirs: Sequence[str]) -> None:
    """Check that every path is a run; warn about runs that did not finish (only their finished episodes are fitted)."""
    from harness.records import load_manifest, run_status, sound_episodes

    for run_dir in run_dirs:
        status = run_status(run_dir, load_manifest(run_dir))  # not a run directory: a clear error, before any fit
        if status != "complete":
            n = len(sound_episodes(run_dir))
            warnings.warn(f"{run_dir} is {status}: fitting its {n} finished episode(s) only", stacklevel=2)


def cmd_irl(args: argparse.Namespace) -> int:
    """``zso irl``: fit, score, write ``fit.json`` and the plots, print the tables."""
    from irl.analysis.fitfile import FIT_FILE, write_fit

    settings = settings_from_args(args)
    out_dir = _output_dir(args.out, FIT_FILE)
    _check_runs(args.run_dirs)
    reports = _fit(args.run_dirs, settings, args.no_progress)
    write_fit(reports, settings, out_dir / FIT_FILE)
    for report in reports:
        _plot_report(report, out_dir, args.aggregate)
    _print_scores(reports, "coherence (95% intervals)")
    weights = weights_table(reports)
    if weights is not None:
        out.print(weights)
    _warn(reports)
    console.print(f"fit written to [bold]{out_dir / FIT_FILE}[/bold]")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    """``zso compare``: one table of scores, models and baselines side by side."""
    from irl.analysis.fitfile import FIT_FILE, fit_document, read_fit, write_fit

    settings = settings_from_args(args)
    fitted: list[Any] = []
    to_fit: list[str] = []
    for d in args.run_dirs:
        if (Path(d) / FIT_FILE).is_file() and not (Path(d) / "manifest.json").is_file():
            fitted += read_fit(d)
        else:
            to_fit.append(d)
    if args.out:
        _output_dir(args.out)  # writable, checked before any fit
    _check_runs(to_fit)
    reports = fitted + (_fit(to_fit, settings, args.no_progress) if to_fit else [])
    reports.sort(key=lambda r: (r.env_label, r.is_baseline, r.agent, str(r.info.get("encoding")), str(r.info.get("mode"))))
    if args.format == "json":
        sys.stdout.write(json.dumps(fit_document(reports, settings), indent=1, allow_nan=False) + "\n")
    elif args.format == "csv":
        rows = compare_rows(reports)
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]) if rows else ["run_id"], lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        sys.stdout.write(buf.getvalue())
    else:
        _print_scores(reports, "comparison (95% intervals; distances: lower is better)", wide=args.wide)
        _warn(reports)
    if args.out:
        out_dir = Path(args.out)
        out_dir.mkdir(parents=True, exist_ok=True)  # compare.json is rewritten: it is derived from the runs
        from irl.analysis import plots

        plots.plot_comparison(reports, out_dir / "comparison.png")
        write_fit(reports, settings, out_dir / "compare.json")
        console.print(f"comparison saved in [bold]{out_dir}[/bold]")
    return 0
