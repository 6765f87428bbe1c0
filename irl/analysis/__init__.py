"""The analysis layer: typed run records in, fits, scores and plots out.

* :mod:`irl.analysis.runs`: run directories read through :mod:`harness.records`' typed
  readers into tabular episodes (MDP indices) or chess decisions;
* :mod:`irl.analysis.tabular`: MCE IRL fits on a gridworld's exact MDP and their scores;
* :mod:`irl.analysis.chess`: choice-model fits for chess and games and their scores;
* :mod:`irl.analysis.priors`: the position-blind move features their explained behaviour is
  measured beyond;
* :mod:`irl.analysis.scores`: :class:`Score` (an estimate with its interval, or why there
  is none), :class:`FitSettings`, resampling helpers;
* :mod:`irl.analysis.report`: one :class:`CoherenceReport` per run, encoding consistency
  across runs, :func:`analyse_runs`;
* :mod:`irl.analysis.plots`: figures of fitted rewards and scores.
"""

from __future__ import annotations

from irl.analysis.report import (
    SCORES, CoherenceReport, add_encoding_consistency, analyse_chess, analyse_runs, analyse_tabular, check_features,
)
from irl.analysis.runs import ChessRun, RunInfo, TabularEpisode, TabularRun, load_chess, load_tabular, read_info
from irl.analysis.scores import FitError, FitSettings, Score
from irl.analysis.tabular import TabularFeatures, TabularFit, TabularProblem, tabular_features

__all__ = [
    "SCORES", "CoherenceReport", "FitError", "FitSettings", "Score", "analyse_runs", "check_features", "analyse_tabular", "analyse_chess",
    "add_encoding_consistency", "RunInfo", "TabularEpisode", "TabularRun", "ChessRun", "load_tabular", "load_chess",
    "read_info", "TabularFeatures", "TabularFit", "TabularProblem", "tabular_features",
]
