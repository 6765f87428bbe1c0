"""Games given only their rules (:mod:`textenvs.games`), read into choice-model decisions.

A game run is fitted like chess, by the Boltzmann choice model over the legal moves
(:mod:`irl.choice`), with the game's move features (:mod:`textenvs.games.features`: the
exact move ``value``, the game's real objective, beside surface features such as heap
parity or threats made). The reference utility of alignment and GD is each legal move's
exact game-theoretic value, recorded at every step (``info.move_values``): they measure
play against the game's own objective, with no engine.

Positions are rebuilt by replaying every episode in a fresh environment of the run's
configuration, with the episode's seed and index: the opponent draws from the
environment's own generator, so the replay meets the recorded positions, and every step's
state record is checked against it.

Each decision also carries the position-blind prior's features (:func:`irl.analysis.priors.label_prior`:
the move's label, its fields and its place in the list), which explained behaviour is measured beyond.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Sequence

import numpy as np

from harness.records import ResultsError
from irl.analysis.runs import TARGETS, ChessGame, ChessRun, _finished, choice_target, read_info, with_prior
from irl.choice import Decision

__all__ = ["load_game"]


def load_game(run_dir: str | Path, features: Sequence[str] | None = None, *, targets: str = "probs") -> ChessRun:
    """Read a game run into choice-model decisions (utilities: the exact move values)."""
    from textenvs.games.features import feature_matrix, resolve_features

    if targets not in TARGETS:
        raise ValueError(f"targets must be one of {TARGETS}, got {targets!r}")
    info = read_info(run_dir)
    if any(isinstance(v, str) and v.startswith("model:") for v in info.options.values()):
        raise ResultsError(f"{run_dir}: a game against a model opponent cannot be replayed for its positions")
    records, steps = _finished(run_dir)
    env = info.make_env()
    games: list[ChessGame] = []
    legals: list[list[list[str]]] = []  # per game, each decision's listed legal moves
    skipped: dict[str, int] = defaultdict(int)
    names: tuple[str, ...] | None = None
    all_probs = True
    try:
        for record in records:
            env.reset(seed=record.seed, options={"episode_index": record.episode})
            decisions, labels, moves, chosen, utilities, listed = [], [], [], [], [], []
            for s in steps.get(record.episode, []):
                if s.action is None:
                    break  # a forfeit ends the game: no choice was made
                if env.state_record() != s.state:
                    raise ResultsError(f"{run_dir}: episode {record.episode} t={s.t}: the replay does not meet the recorded position")
                view = env.text_state()
                legal = list(s.legal_actions)
                names = names or resolve_features(view.game, features)
                x = feature_matrix(view.game, view.position, legal, names)
                target = choice_target(s, legal, targets)
                all_probs &= not isinstance(target, int)
                decisions.append(Decision(x, target))
                listed.append(legal)
                labels.append(view.game.label(view.position))
                moves.append(s.action)
                chosen.append(legal.index(s.action))
                utilities.append(np.asarray(s.info["move_values"], dtype=float))
                env.step(s.action)
            if not decisions:
                skipped["no decisions"] += 1
                continue
            legals.append(listed)
            games.append(ChessGame(
                int(record.episode), int(record.seed), tuple(decisions), tuple(labels), tuple(moves), tuple(chosen),
                float(record.total_reward), tuple(utilities),
            ))
    finally:
        env.close()
    games, prior_names = with_prior(games, legals)
    returns = tuple(float(r.total_reward) for r in records)
    used = "probs" if targets == "probs" and all_probs and games else "actions"
    return ChessRun(info, tuple(games), tuple(names or ()), returns, used, dict(skipped), kind="game", prior_names=prior_names)
