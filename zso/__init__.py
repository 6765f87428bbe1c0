"""zso: the top of the stack, where environments, models and objective inference meet.

:mod:`zso.study` runs a whole study (models and baselines over environments and
encodings), fits and scores every run, and :mod:`zso.report` writes the page people read.
Everything below it (``textenvs``, ``harness``, ``irl``) is usable on its own.
"""

from __future__ import annotations

from zso.study import Study, StudyResult, load_study, run_study

__all__ = ["Study", "StudyResult", "load_study", "run_study"]
