"""``zso study --executor ray``: the cells as tasks on a local two-worker Ray cluster give the serial headline.

The study (tests/data/study-ray.toml) holds reference agents only, so a cell costs a second.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from harness.cli import main
from harness.config import RunConfig
from harness.records import iter_episodes, iter_steps
from zso.executors import EXECUTORS, RayExecutor, cell_resources
from zso.study import Cell, load_study, run_study

ROOT = Path(__file__).resolve().parents[1]
STUDY = ROOT / "tests" / "data" / "study-ray.toml"


@pytest.fixture(scope="module")
def serial(tmp_path_factory):
    out = tmp_path_factory.mktemp("serial") / "study"
    assert main(["study", str(STUDY), "--out", str(out), "--no-progress"]) == 0
    return out


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray")
    # Two workers on this machine; the workers import zso from the same tree as the test.
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}})
    yield ray
    ray.shutdown()


def _runs(out: Path) -> dict[str, list]:
    """Each cell's episodes and steps, less their timings."""
    played = {}
    for run in sorted((out / "runs").iterdir()):
        episodes = [{k: v for k, v in e.items() if k != "wall_s"} for e in iter_episodes(run)]
        steps = [{k: v for k, v in s.items() if k != "timing"} for s in iter_steps(run)]
        played[run.name] = [sorted(episodes, key=lambda e: e["episode"]), sorted(steps, key=lambda s: (s["episode"], s["t"]))]
    return played


def test_ray_gives_the_serial_headline_and_resumes_the_same_way(serial, ray_cluster, tmp_path):
    out = tmp_path / "ray"
    result = run_study(STUDY, out, executor="ray")
    assert (out / "headline.csv").read_text() == (serial / "headline.csv").read_text()
    assert all(c.status == "complete" for c in result.cells) and len(result.cells) == 4
    assert _runs(out) == _runs(serial)
    # The cells ran in Ray's worker processes, not in this one.
    played = [e for e in ray_cluster.timeline() if e.get("name") == "zso.executors._play_cell"]
    assert len(played) == 4
    # Resume: one cell's run removed, another cut back to two episodes and marked interrupted.
    cells = sorted((out / "runs").iterdir())
    shutil.rmtree(cells[0])
    cut = cells[1]
    lines = (cut / "episodes.jsonl").read_text().splitlines(keepends=True)
    (cut / "episodes.jsonl").write_text("".join(lines[:2]))
    manifest = json.loads((cut / "manifest.json").read_text())
    manifest["status"] = "interrupted"
    (cut / "manifest.json").write_text(json.dumps(manifest))
    untouched = {p.name: (p / "episodes.jsonl").read_bytes() for p in cells[2:]}
    run_study(STUDY, out, executor="ray")
    assert (out / "headline.csv").read_text() == (serial / "headline.csv").read_text()
    assert _runs(out) == _runs(serial)
    assert json.loads((cut / "manifest.json").read_text())["resumes"][-1]["status_before"] == "interrupted"
    assert all((out / "runs" / name / "episodes.jsonl").read_bytes() == v for name, v in untouched.items())
    # Only the two unfinished cells went to Ray again.
    assert len([e for e in ray_cluster.timeline() if e.get("name") == "zso.executors._play_cell"]) == 4 + 2


def test_the_cli_runs_a_study_on_ray(serial, ray_cluster, tmp_path):
    out = tmp_path / "cli"
    assert main(["study", str(STUDY), "--out", str(out), "--executor", "ray", "--no-progress"]) == 0
    assert (out / "headline.csv").read_text() == (serial / "headline.csv").read_text()


def test_a_cell_asks_ray_for_its_gpu_or_its_cpu_share():
    cells = {c.agent: c for c in load_study(STUDY).cells()}
    assert cell_resources(cells["random"]) == {"num_cpus": 1}
    base = RunConfig(env="frozenlake", variant="4x4", encoding="ascii", model="smollm2-135m-instruct", mode="choose")

    def model(backend: str, **options: object) -> Cell:
        return Cell("c", RunConfig(**{**base.to_json(), "backend": backend, "backend_options": options}))

    assert cell_resources(model("transformers", threads=4)) == {"num_cpus": 4.0}
    assert cell_resources(model("transformers", device="cuda:0"), gpus_per_model=0.5) == {"num_cpus": 1.0, "num_gpus": 0.5}
    assert cell_resources(model("vllm")) == {"num_cpus": 1.0, "num_gpus": 1.0}
    assert cell_resources(model("openai", base_url="http://127.0.0.1:1")) == {"num_cpus": 1}


def test_ray_options_without_the_ray_executor_are_refused(tmp_path, capsys):
    assert main(["study", str(STUDY), "--out", str(tmp_path / "s"), "--ray-address", "auto"]) == 2
    assert "--executor ray" in capsys.readouterr().err
    assert EXECUTORS.names() == ["serial", "ray"] and RayExecutor().address is None


def test_a_cell_that_fails_on_ray_is_named_in_one_line(serial, ray_cluster, tmp_path, capsys):
    out = tmp_path / "damaged"
    shutil.copytree(serial, out)
    cell = sorted((out / "runs").iterdir())[0]
    (cell / "manifest.json").write_text("{not json")
    assert main(["study", str(STUDY), "--out", str(out), "--executor", "ray", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert f"{cell} is damaged" in err.replace("\n", "") and "Traceback" not in err
