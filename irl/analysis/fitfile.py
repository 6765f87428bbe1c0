"""The fit file: every run's coherence report and the settings that made it, as one JSON document.

``zso irl`` writes it as ``fit.json``, ``zso compare --out`` as ``compare.json``, and the study
as ``analysis.json`` (with the key that says when its fits must be redone). One writer, one
reader: :func:`write_fit` and :func:`read_fit`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from harness.records import ResultsError
from irl.analysis.report import CoherenceReport

__all__ = ["FIT_FILE", "FIT_FORMAT", "fit_document", "write_fit", "read_fit", "read_fit_document"]

#: The name of ``zso irl``'s fit file.
FIT_FILE = "fit.json"
#: The format tag every fit file carries.
FIT_FORMAT = "zso-irl-fit/2"


def fit_document(reports: Sequence[CoherenceReport], settings: Any, **extra: Any) -> dict[str, Any]:
    """The JSON document of ``reports`` fitted with ``settings`` (a :class:`FitSettings`), plus ``extra`` keys."""
    return {
        "format": FIT_FORMAT,
        "settings": settings.to_json(),
        "source_run_ids": [r.run_id for r in reports],
        "runs": [r.to_json() for r in reports],
        **extra,
    }


def write_fit(reports: Sequence[CoherenceReport], settings: Any, path: str | Path, **extra: Any) -> None:
    """Write the fit file atomically (a temporary file, then a rename)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(json.dumps(fit_document(reports, settings, **extra), indent=1, allow_nan=False) + "\n", encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ResultsError(f"cannot write {path}: {exc.strerror or exc}") from None


def read_fit_document(path: str | Path) -> dict[str, Any]:
    """The checked document of a fit file (or of the ``zso irl`` directory holding ``fit.json``)."""
    path = Path(path)
    if path.is_dir():
        path = path / FIT_FILE
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ResultsError(f"{path}: cannot read the fit file: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ResultsError(f"{path}: not a zso irl fit file (not UTF-8 text)") from None
    except ValueError as exc:
        raise ResultsError(f"{path}: not a zso irl fit file (invalid JSON: {exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != FIT_FORMAT:
        found = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
        raise ResultsError(f"{path}: not a zso irl fit file (format {found!r}, expected {FIT_FORMAT!r})")
    if not isinstance(doc.get("runs"), list) or not all(isinstance(r, dict) for r in doc["runs"]):
        raise ResultsError(f"{path}: a fit file whose 'runs' is not a list of reports")
    return doc


def read_fit(path: str | Path) -> list[CoherenceReport]:
    """The reports of a fit file (or of the ``zso irl`` directory holding ``fit.json``)."""
    doc = read_fit_document(path)
    reports = []
    for i, run in enumerate(doc["runs"]):
        try:
            reports.append(CoherenceReport.from_json(run))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ResultsError(f"{path}: runs[{i}] is not a run report ({type(exc).__name__}: {exc})") from None
    return reports
