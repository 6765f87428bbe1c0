"""``zso irl`` and ``zso compare`` as a user runs them, on baseline runs made by ``zso baseline``."""

from __future__ import annotations

import json

import pytest

from harness import cli
from harness.cli import main


@pytest.fixture(autouse=True)
def wide_tables(monkeypatch):
    """Tables printed 250 columns wide, so that no cell is wrapped in what the tests read."""
    monkeypatch.setattr(cli.out, "_width", 250)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Soft-optimal FrozenLake runs under two encodings, a random one, and a short chess game."""
    root = tmp_path_factory.mktemp("runs")
    common = ["--env", "frozenlake", "--episodes", "12", "--max-steps", "15", "--no-progress"]
    made = {}
    for name, extra in (
        ("soft-ascii", ["--agent", "soft-optimal", "--temperature", "0.05", "--encoding", "ascii"]),
        ("soft-coords", ["--agent", "soft-optimal", "--temperature", "0.05", "--encoding", "coords"]),
        ("random", ["--agent", "random"]),
    ):
        assert main(["baseline", *common, *extra, "--out", str(root / name)]) == 0
        made[name] = root / name
    chess = ["baseline", "--env", "chess", "--agent", "random", "--episodes", "3", "--max-steps", "4", "--no-progress",
             "-o", "opponent=random", "-o", "analysis=off", "--out", str(root / "chess")]
    assert main(chess) == 0
    made["chess"] = root / "chess"
    return made


FAST = ["--n-boot", "5", "--splits", "2", "--folds", "2", "--no-progress"]


def test_irl_writes_fit_json_and_plots(runs, tmp_path, capsys):
    capsys.readouterr()
    out = tmp_path / "fit"
    dirs = [str(runs[k]) for k in ("soft-ascii", "soft-coords", "random", "chess")]
    assert main(["irl", *dirs, "--out", str(out), *FAST]) == 0
    printed = capsys.readouterr().out
    assert "explained" in printed and "baseline:soft-optimal" in printed and "fitted weights" in printed
    doc = json.loads((out / "fit.json").read_text())
    assert doc["source_run_ids"] == ["soft-ascii", "soft-coords", "random", "chess"]
    assert doc["settings"]["features"] == "named" and doc["settings"]["n_boot"] == 5
    by_id = {r["run_id"]: r for r in doc["runs"]}
    soft = by_id["soft-ascii"]
    assert soft["kind"] == "tabular" and len(soft["reward"]) == 16 and len(soft["weights"]) == len(soft["feature_names"])
    for score in ("explained", "stability", "encoding_consistency", "alignment_distance", "alignment_regret", "gd", "meg_known", "meg_unknown", "true_return"):
        assert set(soft[score]) >= {"estimate", "low", "high", "level"}
    assert soft["encoding_consistency"]["estimate"] == pytest.approx(0.0, abs=1e-6)
    assert by_id["random"]["encoding_consistency"] is None
    assert by_id["chess"]["kind"] == "chess" and by_id["chess"]["alignment_distance"]["estimate"] is None
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert pngs == ["chess-weights.png", "random-reward.png", "soft-ascii-reward.png", "soft-coords-reward.png"]
    assert all((out / p).stat().st_size > 1000 for p in pngs)


def test_irl_options(runs, tmp_path, capsys):
    out = tmp_path / "fit"
    argv = ["irl", str(runs["random"]), "--out", str(out), "--features", "at_goal,in_hole", "--discount", "0.9",
            "--l2", "0.1", "--seed", "3", "--aggregate", "max", *FAST]
    assert main(argv) == 0
    run = json.loads((out / "fit.json").read_text())["runs"][0]
    assert run["feature_names"] == ["at_goal", "in_hole", "step"] and run["discount"] == 0.9 and run["horizon"] == 15
    assert run["settings"]["seed"] == 3 and run["l2"] == 0.1
    assert main(["irl", str(runs["random"]), "--out", str(tmp_path / "oh"), "--features", "onehot", *FAST]) == 0
    run = json.loads((tmp_path / "oh" / "fit.json").read_text())["runs"][0]
    assert run["form"] == "arrival" and len(run["feature_names"]) == 16


@pytest.mark.parametrize("argv, message", [
    (["--features", "at_gaol"], "unknown features"),
    (["--discount", "1.5"], "discount"),
])
def test_irl_bad_options_are_one_clear_line(runs, tmp_path, capsys, argv, message):
    assert main(["irl", str(runs["random"]), "--out", str(tmp_path / "f"), *argv, *FAST]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_irl_chess_features_by_name(runs, tmp_path, capsys):
    assert main(["irl", str(runs["chess"]), "--out", str(tmp_path / "f"), "--features", "material,check", *FAST]) == 0
    assert json.loads((tmp_path / "f" / "fit.json").read_text())["runs"][0]["feature_names"] == ["material", "check"]
    assert main(["irl", str(runs["chess"]), "--out", str(tmp_path / "g"), "--features", "onehot", *FAST]) == 2
    assert "chess" in capsys.readouterr().err


def test_compare_runs_and_fit_dirs(runs, tmp_path, capsys):
    fit = tmp_path / "fit"
    assert main(["irl", str(runs["soft-ascii"]), str(runs["soft-coords"]), "--out", str(fit), *FAST]) == 0
    capsys.readouterr()
    out = tmp_path / "cmp"
    assert main(["compare", str(fit), str(runs["random"]), "--out", str(out), *FAST]) == 0
    printed = capsys.readouterr().out
    for text in ("comparison", "baseline:random", "baseline:soft-optimal", "ascii/choose", "align regr", "return", "--wide"):
        assert text in printed
    assert max(len(line) for line in printed.splitlines()) <= 80, [line for line in printed.splitlines() if len(line) > 80]  # the compact default fits a terminal
    assert main(["compare", str(fit), str(runs["random"]), "--wide", *FAST]) == 0
    wide = capsys.readouterr().out
    for title in ("MEG", "stability", "encoding", "consistency", "distance"):
        assert title in wide
    assert (out / "comparison.png").stat().st_size > 1000
    doc = json.loads((out / "compare.json").read_text())
    assert sorted(doc["source_run_ids"]) == ["random", "soft-ascii", "soft-coords"]
    # Machine-readable: the same reports as JSON, one CSV row per run.
    assert main(["compare", str(fit), str(runs["random"]), "--format", "json", *FAST]) == 0
    assert len(json.loads(capsys.readouterr().out)["runs"]) == 3
    assert main(["compare", str(fit), str(runs["random"]), "--format", "csv", *FAST]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 4 and "alignment_distance_note" in lines[0] and "gd_low" in lines[0]
    # Without --out nothing is written, and the table still prints.
    assert main(["compare", str(runs["random"]), *FAST]) == 0
    assert "baseline:random" in capsys.readouterr().out


def test_keys_chests_discounted_fit_of_a_random_run_exits_0(tmp_path):
    # Once "soft value iteration did not converge" (exit 2), finite and infinite horizon alike.
    run = tmp_path / "kc-random"
    assert main(["baseline", "--env", "keys-chests", "--variant", "train", "--agent", "random", "--episodes", "10",
                 "--max-steps", "30", "--no-progress", "--out", str(run)]) == 0
    for horizon in ("run", "infinite"):
        assert main(["irl", str(run), "--features", "chests_opened", "--discount", "0.99", "--horizon", horizon,
                     "--out", str(tmp_path / horizon), *FAST]) == 0
