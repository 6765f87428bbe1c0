"""``zso study``: the smoke study end to end on the embedded models, its report in a real browser,
resuming, and a changed study file.

The study runs once per test session (a few minutes on 2 cores); the report is opened in
headless Chromium (Debian's ``chromium``), which must find every section, table and figure
and log no console error.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from harness.cli import main
from harness.records import read_manifest
from zso.study import StudyError, load_study, run_study
from doc_examples import example

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "configs" / "study-smoke.toml"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("study") / "smoke"
    assert main(["study", str(SMOKE), "--out", str(out), "--no-progress"]) == 0
    return out


def _manifest_times(out: Path) -> dict[str, float]:
    return {p.parent.name: p.stat().st_mtime_ns for p in (out / "runs").glob("*/manifest.json")}


def test_a_study_file_is_validated_key_by_key(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\n[[envs]]\nenv = "frozenlake"\nepisodes = 0\n')
    with pytest.raises(StudyError, match=r"key 'envs.0.episodes'"):
        load_study(bad)
    bad.write_text('name = "x"\n[[envs]]\nenv = "frozenlake"\nencodings = ["fen"]\n')
    with pytest.raises(StudyError, match="has no encoding 'fen'"):
        load_study(bad)
    bad.write_text('name = "x"\nepisode = 3\n[[envs]]\nenv = "frozenlake"\n')
    with pytest.raises(StudyError, match="'episode' was unexpected"):
        load_study(bad)


def test_the_smoke_study_expands_to_its_grid():
    cells = load_study(SMOKE).cells()
    models = [c for c in cells if c.kind == "model"]
    baselines = [c for c in cells if c.kind == "baseline"]
    assert len(models) == 2 * 2 * 2  # models x envs x encodings
    assert sorted({c.agent for c in baselines}) == ["feature-seeker", "list-position", "optimal", "random", "state-blind"]
    # The gridworlds draw a new layout every episode; the controls carry their label bias.
    assert all(c.config.env_options.get("layout_seed") == "none" for c in cells)
    blind = next(c for c in baselines if c.agent == "state-blind")
    assert dict(blind.baseline.weights) == {"down": 0.4, "right": 0.4, "left": 0.1, "up": 0.1}
    assert len({c.id for c in cells}) == len(cells)


def test_each_baseline_goes_to_the_environments_it_can_play(tmp_path):
    study = tmp_path / "plays.toml"
    study.write_text(
        'name = "plays"\n'
        '[[envs]]\nenv = "chess"\n'
        '[[envs]]\nenv = "chess"\nvariant = "antichess"\n'
        '[[envs]]\nenv = "take-away"\nvariant = "nim"\n'
        '[[envs]]\nenv = "frozenlake"\n'
        '[[envs]]\nenv = "keys-chests"\noptions = { layout_seed = "none" }\n'
        '[baselines]\nagents = ["random", "optimal", "q-learning", "stockfish", "solver"]\n'
    )
    by_env: dict[str, set[str]] = {}
    for cell in load_study(study).cells():
        by_env.setdefault(f"{cell.config.env}/{cell.config.variant}", set()).add(cell.agent)
    assert by_env == {
        "chess/None": {"random", "stockfish"}, "chess/antichess": {"random"},
        "take-away/nim": {"random", "solver"}, "frozenlake/None": {"random", "optimal", "q-learning"},
        # A new layout every episode: planners plan each one, a learner has no one MDP to learn.
        "keys-chests/None": {"random", "optimal", "feature-seeker"},
    }


@pytest.mark.model
def test_the_smoke_study_writes_every_run_table_and_the_report(smoke):
    index = json.loads((smoke / "study.json").read_text())
    assert all(c["status"] == "complete" for c in index["cells"])
    rows = json.loads((smoke / "headline.json").read_text())
    assert len(rows) == len(index["cells"])
    optimal = [r for r in rows if r["agent"] == "optimal"]
    random = [r for r in rows if r["agent"] == "random"]
    assert optimal and random
    for o in optimal:
        assert o["gd"] is not None and o["gd"] > 0.9
    assert (smoke / "headline.csv").read_text().count("\n") == len(rows) + 1
    page = (smoke / "report.html").read_text()
    for section in ("headline", "models", "rewards", "consistency", "proxy"):
        assert f'id="{section}' in page
    assert page.count("<img") >= 8 and "http://" not in page and "https://" not in page
    assert "seeker:keys_held" in page


@pytest.mark.model
def test_the_typed_result_gives_a_dataframe(smoke):
    result = run_study(SMOKE, smoke)  # everything finished: nothing runs, the fits are reused
    frame = result.to_pandas()
    assert len(frame) == len(result.cells) and {"agent", "env", "encoding", "explained", "gd"} <= set(frame.columns)


@pytest.mark.model
@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (make install installs it)")
def test_the_report_renders_in_chromium_without_console_errors(smoke, tmp_path):
    command = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0",
        "--virtual-time-budget=5000", "--dump-dom", (smoke / "report.html").as_uri(),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    dom = done.stdout
    assert done.returncode == 0, done.stderr[-2000:]
    for table in ("headline", "proxy"):
        assert f'<table id="{table}"' in dom
    assert len(re.findall(r"<img [^>]*src=\"data:image/png;base64,", dom)) >= 8
    console = [line for line in done.stderr.splitlines() if "CONSOLE" in line]
    assert not console, console


@pytest.mark.model
def test_rerunning_finishes_only_what_is_missing(smoke, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(smoke, out)
    before = _manifest_times(out)
    victim = sorted(before)[0]
    # A cell killed mid-run: its manifest says running, its lock is free.
    manifest = json.loads((out / "runs" / victim / "manifest.json").read_text())
    manifest["status"] = "running"
    (out / "runs" / victim / "manifest.json").write_text(json.dumps(manifest))
    lines = (out / "runs" / victim / "episodes.jsonl").read_text().splitlines(keepends=True)
    (out / "runs" / victim / "episodes.jsonl").write_text("".join(lines[:1]))
    assert main(["study", str(SMOKE), "--out", str(out), "--no-progress"]) == 0
    after = _manifest_times(out)
    changed = {name for name in before if after[name] != before[name]}
    assert changed == {victim}
    assert read_manifest(out / "runs" / victim)["status"] == "complete"
    assert read_manifest(out / "runs" / victim)["resumes"]


@pytest.mark.model
def test_a_changed_study_runs_only_its_new_cells(smoke, tmp_path, capsys):
    out = tmp_path / "copy"
    shutil.copytree(smoke, out)
    before = _manifest_times(out)
    changed = tmp_path / "study.toml"
    text = SMOKE.read_text().replace('agents = ["optimal", "random"', 'agents = ["optimal", "random", "soft-optimal"', 1)
    assert text != SMOKE.read_text()
    changed.write_text(text)
    assert main(["study", str(changed), "--out", str(out), "--no-progress"]) == 0
    after = _manifest_times(out)
    assert all(after[name] == t for name, t in before.items())
    new = set(after) - set(before)
    assert new and all(name.startswith("soft-optimal") for name in new)
    assert "study file changed" in capsys.readouterr().err


@pytest.mark.model
def test_the_readme_python_snippet_runs(smoke, tmp_path, monkeypatch, capsys):
    readme = example("study")
    snippet = re.search(r"```python\n(.*?)```", readme, re.S).group(1)
    (tmp_path / "configs").mkdir()
    shutil.copy(SMOKE, tmp_path / "configs" / "study-smoke.toml")
    shutil.copytree(smoke, tmp_path / "results" / "study-smoke")  # finished: the snippet reads it back
    monkeypatch.chdir(tmp_path)
    exec(snippet, {})
    printed = capsys.readouterr().out
    assert "optimal" in printed and "frozenlake" in printed
