"""Where a study's cells are played: in this process, or as tasks on a Ray cluster.

An executor takes the groups of unfinished cells (the cells one loaded model serves) and
the function that plays a group (:func:`zso.study.play_group`), and yields each cell once
its run directory is finished. Both play into the same study directory with the same
function, so a study started by one resumes under the other.

``serial``
    one group after another in this process; one loaded model serves all of its cells.
``ray``
    every cell a Ray task (Moritz et al., 2018, "Ray: a distributed framework for emerging
    AI applications", OSDI). A cell that holds a model in process asks Ray for a GPU when
    its backend runs on one (``device = "cuda..."``, or a GPU-only backend such as vLLM),
    otherwise for its CPU share (the backend's ``threads``, default 1); a reference agent
    or a remote model (the ``openai`` backend) asks for one CPU. Each task loads its own
    model, so cells of one model run side by side on as many workers as are free.
    ``address`` is the cluster's (``ray://host:10001`` or ``auto``); unset, ``RAY_ADDRESS``
    is used, or a local cluster is started for the study and stopped after it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from textenvs.registry import Registry

from harness.backends import BACKENDS

__all__ = ["EXECUTORS", "Executor", "SerialExecutor", "RayExecutor", "make_executor", "cell_resources"]

#: Executors by name; each class takes keyword options (``zso study --executor NAME``).
EXECUTORS: Registry[type] = Registry("executor")

Progress = Callable[[str, int, int, str], None]
#: ``play(group, out, report)`` plays a group of cells into ``out``, yielding each cell when finished.
Play = Callable[[Sequence[Any], Path, Progress], Iterator[Any]]


class Executor:
    """Plays groups of cells; :meth:`run` yields each cell when its run is finished."""

    def run(self, groups: Sequence[Sequence[Any]], play: Play, out: Path, report: Progress) -> Iterator[Any]:
        raise NotImplementedError


@dataclass(frozen=True)
class SerialExecutor(Executor):
    """Every group in this process, one after another."""

    def run(self, groups: Sequence[Sequence[Any]], play: Play, out: Path, report: Progress) -> Iterator[Any]:
        for group in groups:
            yield from play(group, out, report)


def cell_resources(cell: Any, gpus_per_model: float = 1.0) -> dict[str, float]:
    """What a cell asks Ray for: a GPU share for a model held on a GPU, else its CPU share."""
    if cell.kind != "model":
        return {"num_cpus": 1}
    entry = BACKENDS.entry(cell.config.backend)
    if not entry.metadata.get("in_process", True):
        return {"num_cpus": 1}
    options = cell.config.backend_options or {}
    on_gpu = entry.metadata.get("gpu_only", False) or str(options.get("device", "cpu")).startswith("cuda")
    cpus = float(options.get("threads") or 1)
    return {"num_cpus": cpus, "num_gpus": gpus_per_model} if on_gpu else {"num_cpus": cpus}


def _play_cell(play: Play, cell: Any, out: str) -> str:
    """A Ray task: play one cell into the study directory ``out``; returns its id."""
    for _ in play([cell], Path(out), lambda *a: None):
        pass
    return cell.id


@dataclass(frozen=True)
class RayExecutor(Executor):
    """Every cell a Ray task (see the module docstring)."""

    #: The cluster to join (``ray://host:10001``, ``auto``); ``None``: ``RAY_ADDRESS`` or a local one.
    address: str | None = None
    #: GPUs a cell asks for when its model runs on a GPU (a fraction packs several per GPU).
    gpus_per_model: float = 1.0

    def run(self, groups: Sequence[Sequence[Any]], play: Play, out: Path, report: Progress) -> Iterator[Any]:
        try:
            import ray
        except ImportError:
            raise ImportError("--executor ray needs Ray: pip install 'zso[cluster]' (or pip install ray)") from None
        cells = [cell for group in groups for cell in group]
        if not cells:
            return
        started = not ray.is_initialized()
        if started:
            ray.init(address=self.address, include_dashboard=False, log_to_driver=False)
        try:
            task = ray.remote(_play_cell)
            pending = {task.options(**cell_resources(c, self.gpus_per_model), max_retries=0).remote(play, c, str(out.resolve())): c
                       for c in cells}
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                cell = pending.pop(ready[0])
                try:
                    ray.get(ready[0])
                except ray.exceptions.RayTaskError as exc:
                    for ref in pending:
                        ray.cancel(ref)
                    cause = getattr(exc, "cause", None)
                    raise (cause if isinstance(cause, Exception) else exc) from None
                yield cell
        finally:
            if started:
                ray.shutdown()


EXECUTORS.register("serial", SerialExecutor, "in this process, one loaded model serving all of its cells")
EXECUTORS.register("ray", RayExecutor, "every cell a Ray task on a local or existing cluster")


def make_executor(name: str, **options: Any) -> Executor:
    """Executor ``name`` with ``options`` (``None`` values left at their defaults)."""
    return EXECUTORS.get(name)(**{k: v for k, v in options.items() if v is not None})
