"""Fit kinds: which fit a run gets, looked up from the capabilities of its environment.

Each kind names the capability of :mod:`textenvs.capabilities` it needs, the function that
loads, fits and scores a run directory (``(run_dir, settings) -> analysis``), the figure of
its report, the distance its stability and encoding consistency use, and the check of a
study's feature names made before anything is played. The first kind
whose capability the environment has decides, kinds of higher ``priority`` tried first
(ties: in the order registered); an environment with none gets no fit.
``zso irl``, ``zso compare``, the study and its report all ask :func:`fit_kind_of`.

Adding a kind is one function that returns an analysis (see :mod:`irl.analysis.report`) and
one :func:`register_fit_kind` call.
"""

from __future__ import annotations

from typing import Any

from textenvs.capabilities import LAYOUT_MDPS, SOLVED_GAME, STANDARD_CHESS, capabilities_of
from textenvs.registry import Entry, Registry

__all__ = ["FIT_KINDS", "register_fit_kind", "fit_kind_of", "fit_kind_for", "features_check_of"]

#: name -> ``(run_dir, settings) -> _Analysis``. Metadata: ``needs`` (a capability),
#: ``plot`` (``(report, path, aggregate) -> path``, or a lazy ``"module:function"``),
#: ``distance`` (``"starc"`` or ``"pearson"``), ``what`` (how footnotes name its runs), ``priority``,
#: ``features`` (``(open_env, settings) -> None``: raises on feature names the kind lacks; ``None``:
#: only the default ``"named"`` set).
FIT_KINDS: Registry[Any] = Registry("fit kind")


def register_fit_kind(name: str, analyse: Any, *, needs: str, plot: Any, distance: str, what: str, description: str = "",
                      priority: int = 0, features: Any = None) -> None:
    """Register a fit kind (see the module docstring); targets may be lazy ``"module:function"`` strings.

    A kind of higher ``priority`` is tried before the others, so that it can take over the
    environments it needs from a broader kind (the built-in kinds have 0). ``features``
    checks a study's ``[irl] features`` for it: ``features(open_env, settings)``, where
    ``open_env()`` is a context manager giving the environment, reset as a run resets it.
    """
    FIT_KINDS.register(name, analyse, description, needs=needs, plot=plot, distance=distance, what=what,
                       priority=priority, features=features)


def fit_kind_for(capabilities: frozenset[str] | set[str]) -> Entry[Any] | None:
    """The first kind whose capability is among ``capabilities`` (highest ``priority`` first), or ``None``."""
    ordered = sorted(FIT_KINDS, key=lambda kind: -kind.metadata.get("priority", 0))  # stable: registration order within a priority
    return next((kind for kind in ordered if kind.metadata["needs"] in capabilities), None)


def fit_kind_of(env: str, variant: str | None = None, options: dict[str, Any] | None = None) -> Entry[Any] | None:
    """The fit kind of runs on ``env`` (with ``variant`` and ``options``), or ``None`` when there is no fit."""
    return fit_kind_for(capabilities_of(env, variant, options))


def features_check_of(kind: str) -> Any:
    """The feature-name check of fit kind ``kind`` (the module docstring); a kind without one
    accepts only the default set."""
    target = FIT_KINDS.entry(kind).metadata.get("features")
    if target is None:
        return lambda open_env, settings: _named_only(kind, settings)
    return Entry(f"features check of {kind}", target).load()


def _named_only(kind: str, settings: Any) -> None:
    from irl.analysis.scores import FitError

    if settings.features != "named":
        raise FitError(f"the {kind} fit takes no feature names (features = {settings.features!r})")


def plot_of(kind: str) -> Any:
    """The figure function of fit kind ``kind``."""
    return Entry(f"plot of {kind}", FIT_KINDS.entry(kind).metadata["plot"]).load()


register_fit_kind(
    "game", "irl.analysis.report:analyse_game_dir", needs=SOLVED_GAME, plot="irl.analysis.plots:plot_weights_report",
    distance="pearson", what="games", description="choice model over legal moves; exact move values as the reference",
    features="irl.analysis.report:check_game_features",
)
register_fit_kind(
    "chess", "irl.analysis.report:analyse_chess_dir", needs=STANDARD_CHESS, plot="irl.analysis.plots:plot_weights_report",
    distance="pearson", what="chess", description="choice model over legal moves; Stockfish's evaluation as the reference",
    features="irl.analysis.report:check_chess_features",
)
register_fit_kind(
    "tabular", "irl.analysis.report:analyse_tabular_dir", needs=LAYOUT_MDPS, plot="irl.analysis.plots:plot_reward_report",
    distance="starc", what="gridworlds", description="MCE IRL on the exact MDP",
    features="irl.analysis.report:check_tabular_features",
)
