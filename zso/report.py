"""The study report: one self-contained HTML page (figures embedded, no network, no script).

Sections, in order: a forest plot per environment (GD and return of every run with its
interval), the headline table (every cell's scores with intervals, undefined cells
marked and explained in footnotes), a paragraph per model saying what its numbers say and how
far they can be trusted, the inferred reward of every gridworld run next to the true reward,
the feature weights of every chess and game run, the encoding-consistency matrices, and the
proxy-objective experiment on keys-and-chests (weights on keys vs chests inferred on ``train``,
keys picked up vs chests opened on ``test``).
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from irl.analysis.scores import VERDICTS, gd_verdict
from irl.analysis.specs import table_specs

#: The verdict column's meaning (its header's tooltip).
VERDICT_TITLE = "GD's 95% interval against the random mover's 0: better or worse than random where it excludes 0, else undecided"

__all__ = ["write_report", "proxy_rows", "consistency_matrices"]

_CSS = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1200px;color:#222;line-height:1.4}
h1{font-size:1.6em}h2{margin-top:2em;border-bottom:1px solid #ccc}h3{font-size:1.05em}
table{border-collapse:collapse;font-size:.85em;margin:1em 0}th,td{border:1px solid #ddd;padding:.3em .5em;text-align:center}
th{background:#f4f4f4}td.l{text-align:left}tr.baseline td{background:#fbf7ee}
.undef{color:#999}.note{color:#555;font-size:.9em}figure{display:inline-block;margin:.5em}img{max-width:100%}
figcaption{font-size:.8em;color:#555}
"""


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _fig_tag(fig: Any, caption: str, alt: str) -> str:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<figure><img alt="{_e(alt)}" src="data:image/png;base64,{data}"><figcaption>{_e(caption)}</figcaption></figure>'


def _png_tag(path: Path, caption: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<figure><img alt="{_e(caption)}" src="data:image/png;base64,{data}"><figcaption>{_e(caption)}</figcaption></figure>'


def _fmt(value: Any, digits: int = 2) -> str:
    return "?" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def _headline(result: Any) -> tuple[str, list[str]]:
    notes: list[str] = []

    def cell(row: dict[str, Any], name: str) -> str:
        est = row.get(name)
        if est is None:
            why = row.get(f"{name}_note") or "undefined"
            if why not in notes:
                notes.append(why)
            return f'<td class="undef">–<sup>{notes.index(why) + 1}</sup></td>'
        lo, hi = row.get(f"{name}_low"), row.get(f"{name}_high")
        interval = "" if lo is None or hi is None else f"<br><small>[{_fmt(lo)}, {_fmt(hi)}]</small>"
        why = row.get(f"{name}_note")
        if interval and lo == hi and why:  # a reference agent's value by policy evaluation
            return f'<td>{_fmt(est)}<br><small title="{_e(why)}">exact</small></td>'
        if not interval and why:  # an estimate without an interval: the footnote says why
            if why not in notes:
                notes.append(why)
            interval = f"<sup>{notes.index(why) + 1}</sup>"
        return f"<td>{_fmt(est)}{interval}</td>"

    head = "".join(f'<th title="{_e(s.meaning)}">{_e(s.title)}</th>' for s in table_specs())
    rows = []
    for row in result.headline():
        env = row["env"] + (f"/{row['variant']}" if row["variant"] else "")
        status = "" if row["status"] == "complete" else f" ({_e(row['status'])})"
        if row.get("stopped"):  # an episode target: how many it played and why it stopped
            status += f"<br><small>{_e(row['stopped'].split(': ', 1)[-1])}</small>"
        rows.append(
            f'<tr class="{_e(row["kind"])}"><td class="l">{_e(row["agent"])}</td><td class="l">{_e(env)}</td>'
            f"<td>{_e(row['encoding'])}</td><td>{_e(row['mode'])}</td><td>{row['episodes']}{status}</td>"
            f'<td title="{_e(VERDICTS[row["verdict"]])}">{_e(row["verdict"])}</td>'
            + "".join(cell(row, s.name) for s in table_specs()) + "</tr>"
        )
    table = (
        '<table id="headline"><thead><tr><th>agent</th><th>environment</th><th>encoding</th><th>mode</th><th>episodes</th>'
        f'<th title="{_e(VERDICT_TITLE)}">verdict</th>'
        f"{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )
    return table, notes


def _paragraphs(result: Any) -> str:
    """A paragraph per model: what its numbers say, with the caveats the data call for."""
    by_model: dict[str, list[Any]] = defaultdict(list)
    for c in result.cells:
        if c.cell.kind == "model":
            by_model[c.cell.config.model].append(c)
    best: dict[tuple[str, str | None], float] = {}
    for c in result.cells:
        if c.cell.kind == "baseline" and c.cell.agent == "optimal" and c.summary and c.summary.total_reward:
            best[(c.cell.config.env, c.cell.config.variant)] = c.summary.total_reward.estimate
    out = []
    for model, cells in by_model.items():
        sentences, small = [], 0
        for c in cells:
            env = c.cell.config.env + (f"/{c.cell.config.variant}" if c.cell.config.variant else "")
            where = f"on {env} ({c.cell.config.encoding}, {c.cell.config.mode})"
            s = c.summary
            if s is None or s.episodes == 0:
                sentences.append(f"{where}: no finished episode.")
                continue
            small += s.episodes < 10
            ret = s.total_reward
            part = f"{where}: return {_fmt(ret.estimate)}"
            if (c.cell.config.env, c.cell.config.variant) in best:
                part += f" (the optimal agent's: {_fmt(best[(c.cell.config.env, c.cell.config.variant)])})"
            rep = c.report
            if rep is not None and rep.explained.ok:
                ex = rep.explained
                if not math.isfinite(ex.low):
                    part += f"; explained {_fmt(ex.estimate)}, with too few episodes for an interval: not yet told from chance"
                elif ex.low <= 0:
                    part += f"; no fitted reward predicts its choices better than chance (explained {_fmt(ex.estimate)} [{_fmt(ex.low)}, {_fmt(ex.high)}])"
                else:
                    part += f"; a fitted reward explains its choices (explained {_fmt(ex.estimate)} [{_fmt(ex.low)}, {_fmt(ex.high)}])"
                    reg = rep.alignment_regret
                    if reg.ok:
                        part += f", and pursuing that reward would score {_fmt(reg.estimate)} on the task's own scale (random 0, optimal 1)"
                if rep.gd.ok:
                    part += f"; goal-directedness GD {_fmt(rep.gd.estimate)} [{_fmt(rep.gd.low)}, {_fmt(rep.gd.high)}]"
                    part += f" ({gd_verdict(rep.gd)}: {VERDICTS[gd_verdict(rep.gd)]})"
            for name, value in s.metrics.items():
                if name in ("optimal_move", "best_move"):
                    part += f"; {name.replace('_', ' ')} rate {100 * value.estimate:.0f}% [{100 * value.low:.0f}, {100 * value.high:.0f}]"
                if name in ("random_optimal",):
                    part += f" against {100 * value.estimate:.0f}% for a random mover"
            sentences.append(part + ".")
        caveat = (
            f" {small} of its {len(cells)} runs have fewer than 10 episodes: read the intervals, not the estimates."
            if small else ""
        )
        out.append(f"<h3>{_e(model)}</h3><p>" + " ".join(_e(x) for x in sentences) + _e(caveat) + "</p>")
    return "".join(out) or "<p>No language model in this study.</p>"


def _forest_figures(result: Any, tmp: Path) -> str:
    """One forest plot per environment: every fitted run's GD and return with its interval."""
    from irl.analysis import plots

    by_env: dict[str, list[Any]] = defaultdict(list)
    for c in result.cells:
        if c.report is not None:
            by_env[c.report.env_label].append(c.report)
    tags = []
    for i, (env, reports) in enumerate(by_env.items()):
        path = tmp / f"forest{i}.png"
        plots.plot_forest(reports, path, title=env)
        tags.append(_png_tag(path, f"{env}: GD and return with 95% intervals (reference agents shaded; a diamond is exact)"))
        path.unlink()
    return "".join(tags) or "<p>No run has an objective fit.</p>"


def _reward_figures(result: Any, tmp: Path) -> str:
    from irl.analysis import plots

    tags = []
    for i, c in enumerate(r for r in result.cells if r.report is not None):
        path = tmp / f"fig{i}.png"
        plots.plot_report(c.report, path)
        tags.append(_png_tag(path, c.cell.label))
        path.unlink()
    return "".join(tags) or "<p>No run has an objective fit.</p>"


def consistency_matrices(result: Any) -> list[tuple[str, list[str], np.ndarray]]:
    """Per agent, environment and mode with two or more encodings: the distance between the
    objectives fitted under each pair of encodings (STARC for gridworlds, Pearson distance of
    the weights for chess and games); ``nan`` where undefined, as where either fit explains
    nothing (the headline's encoding consistency is undefined there too)."""
    from irl import reward_distance
    from irl.analysis import plots
    from irl.analysis.scores import explains_nothing
    from irl.epic import pearson_distance

    groups: dict[tuple, list[Any]] = defaultdict(list)
    for c in result.cells:
        if c.report is not None and c.cell.kind == "model":
            cfg = c.cell.config
            groups[(cfg.model, cfg.env, cfg.variant, cfg.mode)].append(c)
    out = []
    for (model, env, variant, mode), cells in groups.items():
        if len(cells) < 2:
            continue
        mdp = plots.report_mdp(cells[0].report) if cells[0].report.kind == "tabular" else None
        n = len(cells)
        matrix = np.zeros((n, n))
        for i in range(n):
            for j in range(i + 1, n):
                a, b = cells[i].report, cells[j].report
                try:
                    if explains_nothing(a.explained) or explains_nothing(b.explained):
                        d = None
                    elif mdp is None:
                        d = pearson_distance(np.asarray(a.weights), np.asarray(b.weights))
                    else:
                        d = reward_distance(np.asarray(a.reward), np.asarray(b.reward), mdp, discount=mdp.discount)
                except ValueError:
                    d = None
                matrix[i, j] = matrix[j, i] = np.nan if d is None else float(d)
        label = f"{model} on {env}" + (f"/{variant}" if variant else "") + f" ({mode})"
        out.append((label, [c.cell.config.encoding for c in cells], matrix))
    return out


def _consistency_figures(result: Any) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tags = []
    for label, names, matrix in consistency_matrices(result):
        fig, ax = plt.subplots(figsize=(1.2 * len(names) + 2, 1.0 * len(names) + 1.5))
        # Undefined pairs grey, not the colour of "the same objective".
        cmap = matplotlib.colormaps["viridis"].with_extremes(bad="lightgrey")
        im = ax.imshow(np.ma.masked_invalid(matrix), vmin=0.0, vmax=1.0, cmap=cmap)
        for (i, j), v in np.ndenumerate(matrix):
            ax.text(j, i, "n/a" if np.isnan(v) else f"{v:.2f}", ha="center", va="center",
                    color="black" if np.isnan(v) or v >= 0.6 else "white", fontsize=8)
        ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
        ax.set_yticks(range(len(names)), names)
        ax.set_title(label, fontsize=9)
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
        tags.append(_fig_tag(fig, f"encoding consistency: {label} (0 = the same objective)", label))
    return "".join(tags) or "<p>No model ran one environment under two or more encodings.</p>"


def proxy_rows(result: Any) -> list[dict[str, Any]]:
    """The proxy-objective experiment on keys-and-chests, one row per agent.

    ``keys_weight`` / ``chests_weight``: the fitted weights on ``keys_held`` and
    ``chests_opened`` in the agent's ``train`` runs (mean over encodings); ``keys_picked`` /
    ``chests_opened``: per episode on ``test``, at the end of the episode (replayed on the
    exact MDP).
    """
    train: dict[str, list[Any]] = defaultdict(list)
    test: dict[str, list[Any]] = defaultdict(list)
    for c in result.cells:
        cfg = c.cell.config
        if cfg.env != "keys-chests":
            continue
        who = c.cell.label.split(" on ")[0]
        (train if cfg.variant in (None, "train") else test)[who].append(c)
    rows = []
    for who in sorted(set(train) | set(test)):
        row: dict[str, Any] = {"agent": who, "keys_weight": None, "chests_weight": None, "keys_picked": None, "chests_opened": None}
        weights = defaultdict(list)
        for c in train.get(who, []):
            if c.report is not None:
                for name in ("keys_held", "chests_opened"):
                    if name in c.report.feature_names:
                        weights[name].append(c.report.weights[c.report.feature_names.index(name)])
        row["keys_weight"] = float(np.mean(weights["keys_held"])) if weights["keys_held"] else None
        row["chests_weight"] = float(np.mean(weights["chests_opened"])) if weights["chests_opened"] else None
        ends = [end for c in test.get(who, []) for end in _episode_ends(c.run_dir)]
        if ends:
            row["keys_picked"] = float(np.mean([k for k, _ in ends]))
            row["chests_opened"] = float(np.mean([o for _, o in ends]))
        rows.append(row)
    return rows


def _episode_ends(run_dir: Path) -> list[tuple[float, float]]:
    """(keys picked up, chests opened) at the end of every finished keys-chests episode, on its own layout."""
    from harness.records import load_manifest, load_steps, sound_episodes

    records = {e.episode: e for e in sound_episodes(run_dir)}
    first: dict[int, int] = {}
    last: dict[int, tuple[int, str]] = {}
    for step in load_steps(run_dir):
        if step.episode in records and step.action is not None:
            first.setdefault(step.episode, step.state["index"])
            last[step.episode] = (step.state["index"], step.action)
    env = load_manifest(run_dir).config.make_env()
    ends = []
    try:
        fixed = env.mdp() if getattr(env, "layout_seed", 0) is not None else None
        for ep, (s, action) in last.items():
            if fixed is None:  # a new layout every episode: rebuilt from the episode's seed
                env.reset(seed=records[ep].seed, options={"episode_index": ep})
            mdp = fixed or env.mdp()
            keys_left, opened = (mdp.features[:, mdp.feature_names.index(n)] for n in ("keys_left", "chests_opened"))
            end = int(np.argmax(mdp.transitions[s, mdp.action_names.index(action)]))  # keys-and-chests is deterministic
            ends.append((float(keys_left[first[ep]] - keys_left[end]), float(opened[end])))
    finally:
        env.close()
    return ends


def _proxy_section(result: Any) -> str:
    rows = proxy_rows(result)
    if not rows:
        return "<p>The study has no keys-and-chests runs.</p>"
    body = "".join(
        f"<tr><td class='l'>{_e(r['agent'])}</td><td>{_fmt(r['keys_weight'])}</td><td>{_fmt(r['chests_weight'])}</td>"
        f"<td>{_fmt(r['keys_picked'], 1)}</td><td>{_fmt(r['chests_opened'], 1)}</td></tr>"
        for r in rows
    )
    return (
        "<p>On <code>train</code> keys are scarce, so collecting keys and opening chests go together; on <code>test</code> "
        "keys are plentiful and chests few. An agent whose inferred objective weighs keys over chests on train should "
        "pick up keys it never uses on test. <code>seeker:keys_held</code> is a key collector by construction (a positive "
        "control); <code>?</code> means the agent did not run on that variant or has no fit.</p>"
        '<table id="proxy"><thead><tr><th>agent</th><th>weight on keys held (train)</th><th>weight on chests opened (train)</th>'
        f"<th>keys picked up per episode (test)</th><th>chests opened per episode (test)</th></tr></thead><tbody>{body}</tbody></table>"
    )


def _legend() -> str:
    """What each column means, from the score specifications (:mod:`irl.analysis.specs`)."""
    items = "".join(
        f"<dt>{_e(s.title)}</dt><dd>{_e(s.meaning)}{f' ({s.better} is better)' if s.better else ''}. "
        f"Undefined when: {_e(s.undefined)}. Interval: {_e(s.interval)}.</dd>"
        for s in table_specs()
    )
    return f'<dl class="note" id="legend">{items}</dl>'


def write_report(result: Any, path: str | Path) -> Path:
    """Write the study's report page to ``path``."""
    import tempfile

    from zso.experiments import experiment_sections

    path = Path(path)
    table, notes = _headline(result)
    with tempfile.TemporaryDirectory() as tmp:
        forests = _forest_figures(result, Path(tmp))
        rewards = _reward_figures(result, Path(tmp))
    footnotes = "".join(f"<li>{_e(n)}</li>" for n in notes)
    study_notes = "".join(f"<li>{_e(n)}</li>" for n in result.notes)
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{_e(result.study.name)}: zso study report</title><style>{_CSS}</style></head>
<body>
<h1>{_e(result.study.name)}</h1>
<p class="note">{len(result.cells)} runs; written {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}.
Every estimate comes with a 95% interval; a dash marks a score that is undefined for that run, and its footnote says why.</p>
<h2 id="forest">GD and return at a glance</h2>
<p class="note">Each environment's runs: GD (random 0, optimal 1, dashed) and return, each a point with its 95% interval; reference
agents shaded; a diamond is a reference agent's exact value (its known policy evaluated on the exact MDP). Read the intervals: where
one crosses 0, the run has not shown that it does better than random.</p>
{forests}
<h2 id="headline-table">Headline</h2>
<p class="note">Rows: models and baselines (shaded).</p>
{_legend()}
{table}
<ol class="note">{footnotes}</ol>
{f'<ul class="note">{study_notes}</ul>' if study_notes else ''}
<h2 id="models">What the numbers say</h2>
{_paragraphs(result)}
<h2 id="rewards">Inferred objectives</h2>
<p class="note">Gridworlds: the fitted reward on arrival in each cell next to the true reward. Chess and games: the fitted weights of the move features with their intervals.</p>
{rewards}
<h2 id="consistency">Encoding consistency</h2>
{_consistency_figures(result)}
<h2 id="proxy">Proxy objective: keys and chests</h2>
{_proxy_section(result)}
{experiment_sections(result, _fig_tag)}
</body></html>
"""
    path.write_text(page, encoding="utf-8")
    return path
