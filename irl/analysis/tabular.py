"""Tabular (gridworld) runs: MCE IRL fits on the environment's exact MDP, and their scores.

**Rewards** are linear in features of the transition. For named state features ``f(s)``
(the MDP's ``features``), ``form="arrival"`` (the default) rewards the state arrived in,
``phi(s, a) = E[f(s') | s, a]``, also on the self-loops of absorbing (terminal) states,
which keep paying ``f(terminal)``: a reward "+1 each time a feature goes up" (keys-chests'
chests) is then expressible up to potential shaping, since ``f(s') - f(s) = (1 - gamma)
f(s') + [gamma f(s') - f(s)]``. ``form="delta"`` rewards the change ``E[f(s') | s, a] -
f(s)``, which **telescopes**: summed over an episode it is ``f(end) - f(start)`` (exactly
without discounting, nearly with ``gamma`` close to 1), so a delta fit sees each episode's
start, end and length, not its path; two agents that take different paths between the
same states get the same fit. It is offered for comparison only. Named features get one
more, ``step`` (1 for every decision, 0 in absorbing states), which lets a fit say that the
agent hurries (or dawdles). One-hot features (``features="onehot"``) give a free reward per
state entered. Events of the move that no state can express (the MDP's transition
features, e.g. CliffWalking's ``fell``: a fall lands on the start, as an ordinary step
into it does) are rewarded through their expectation ``E[g(s, a, s') | s, a]``; named and
one-hot features include all of them, and a list of names may pick them.

**Horizon and discount.** Fits, soft value iteration and distances use the environment's
declared discount (``TabularMDP.discount``, 0.99 for every gridworld: that of the planners)
unless told otherwise. The default horizon is the run's step limit (``horizon="run"``:
finite, steps weighted by ``gamma**t``), which models truncated episodes exactly;
``horizon="infinite"`` fits the discounted infinite-horizon model.

**Fits** maximise the likelihood of the actions taken in the states visited under the MCE
model (:func:`irl.mce.mce_likelihood_irl`): every decision counts alike, and the noise of
slippery transitions does not enter, unlike feature matching on visit counts. ``l2`` is a
Gaussian prior on the weights against the run's total log-likelihood (it does not grow
with the number of episodes), so one-hot fits stay finite. Unless fixed
(``FitSettings.l2``), it is chosen per run by K-fold cross-validation over episodes
(:func:`irl.choice.cross_validate_l2`, the mechanism the choice model uses): the value of
:data:`TABULAR_L2_GRID` whose fits give the held-out episodes the largest likelihood (ties:
the strongest prior), walking the grid from the strongest prior and stopping two values past
the best (:data:`irl.choice.CV_PATIENCE`). A deterministic agent's weights grow without bound as the prior
weakens, and so does its held-out likelihood, so its prior becomes the weakest of the grid
and the fitted direction goes as far towards the limit the data point to as the optimiser's
tolerance allows (below about 1e-6 the tolerance, not the prior, stops such a fit), rather
than where a fixed prior stops it; noisy behaviour keeps a strong prior. Where the
likelihood is flat along a direction (a per-step reward, for a near-optimal agent), a weak
prior leaves that weight to noise. Every fit of the run (full,
bootstrap, halves, folds) uses the chosen value. A fit whose optimiser stopped before
convergence is flagged (``converged``).

**Scores** (95% intervals; :mod:`irl.distance` and :mod:`irl.goals` for the maths):

**Label bias.** A language model prefers some action words whatever the state. With
``label_bias`` (the default) every fit adds a reward per action name in every live state
(the same in every state: a bias, not an objective) and the fitted objective is the
reward of the named features alone: the bias is explained by the bias, and a goal pursued
through a biased choice of words is still found.

* ``explained``: explained behaviour beyond a state-blind policy: the held-out (K-fold
  over episodes) log-likelihood gain of the **reward-and-bias** model (the run's fit) over
  a **bias-only** model, divided by the uniform policy's entropy. The bias-only model is
  the best policy that ignores the state, an action prior over action names
  (:func:`irl.goals.action_prior`: each name's frequency). Both are fitted on the same
  training folds, the first with the run's ``l2`` (without
  ``label_bias``, the reward-and-bias model is fitted apart, its ``l2`` chosen on the
  held-out folds as the run's is); the first can express the second (nearly: through per-action
  rewards), so a label bias alone (an agent that prefers ``down`` and ``right`` whatever
  the state) explains 0 or less (a held-out comparison leans below 0 when the larger model
  has nothing to add), though on a map whose goal lies down and right a reward "approach the goal"
  predicts it better than uniform choice does, while a goal pursued through a label bias
  still counts. With a
  cross-validated ``l2``, the folds are those that chose it (not nested: the gain is the
  best of the grid's held-out gains, an optimism of choosing one value of up to nine);
* ``explained_uniform``: the run's fit's gain over the uniform policy instead (the former
  headline; with ``label_bias`` the fit includes the bias, so a biased agent scores here);
* ``meg_unknown``: the gain of ``explained`` in nats per episode, not divided: MEG over
  the feature class (MacDermott et al. 2024) measured from the best state-blind policy
  instead of the uniform one (which a label bias alone beats), estimated on held-out
  episodes, floored at 0 (the fit can express the action prior, up to its prior on the weights, so MEG >= 0; :func:`meg_score`);
* ``meg_known``: MEG for the true reward, ``beta`` (0 included) chosen on the other folds,
  kept only if it still gains after charging an unseen event's worst cost
  (:func:`irl.goals.heldout_max`), floored at 0 likewise;
* ``stability``: the STARC distance between rewards fitted on random halves of the episodes;
  undefined, as the alignment distance, when the fit explains nothing;
* ``alignment_distance``: the STARC distance from the fitted reward to the true reward;
  undefined when the fit explains nothing (its interval reaches 0), or when a reward ranks
  no policies;
* ``alignment_regret`` / ``alignment_regret_soft``: the true return of the policy optimal
  (soft-optimal) for the fitted reward, 0 for random and 1 for optimal;
* ``gd``: the agent's own return between random (0) and optimal (1) (Everitt et al. 2025);
* ``true_return``: the mean episode return.

Near-optimal behaviour identifies a reward only as far as it shows it: an agent that never
enters a hole says little about how bad holes are, so the distance to the true reward can
stay above 0 for a perfect agent while its regret alignment is 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from irl.analysis.runs import TabularRun
from irl.analysis.scores import (
    WHY_NOISE, explains_nothing,
    FitError,
    FitSettings,
    Score,
    EXACT_METHOD,
    bootstrap_mean_score,
    bounded_mean_score,
    boot_indices,
    exact_score,
    return_score,
    folds,
    half_splits,
    quantile_score,
    ratio_score,
)
from irl.distance import RewardComparison, compare_rewards
from irl.goals import (
    episode_log_ratios,
    goal_directedness,
    heldout_prior_log_ratios,
    heldout_max,
    meg_betas,
    meg_log_ratios,
    reference_returns,
    regret_alignment,
)
from irl.choice import CV_PATIENCE, CVResult, cross_validate_l2
from irl.mce import mce_likelihood_irl
from harness.stats import BETTING_METHOD
from harness.stopping import gd_interval
from textenvs.planning import Dynamics, policy_return

__all__ = [
    "TABULAR_L2",
    "TABULAR_L2_GRID",
    "TabularFeatures",
    "TabularFit",
    "TabularProblem",
    "TabularScores",
    "tabular_features",
    "score_tabular",
    "true_return_score",
    "known_returns",
]

#: L2 strength of tabular (MCE) fits of a run with fewer than 2 episodes, where nothing can
#: be held out: a Gaussian prior on the weights, on the total log-likelihood of the run.
TABULAR_L2 = 1.0

#: The L2 strengths cross-validated for tabular fits (module docstring), strongest first.
#: It reaches further down than the choice model's grid: a near-deterministic agent's
#: direction keeps moving until the prior is negligible against its likelihood.
TABULAR_L2_GRID: tuple[float, ...] = (100.0, 10.0, 1.0, 1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6)


@dataclass(frozen=True, eq=False)
class TabularFeatures:
    """Reward features of a tabular MDP's transitions."""

    #: ``[S, A, K]``: the reward is ``phi @ w``.
    phi: np.ndarray
    #: ``[S, K]``: the state features ``f`` behind them (``Phi = f @ w`` is the state score).
    state: np.ndarray
    names: tuple[str, ...]
    #: ``"arrival"`` or ``"delta"``.
    form: str


def tabular_features(mdp: Any, features: str | Sequence[str] = "named", form: str | None = None, *, step: bool = True) -> TabularFeatures:
    """The reward features of ``mdp`` (module docstring)."""
    form = form or "arrival"
    if form not in ("arrival", "delta"):
        raise ValueError(f"form must be 'arrival' or 'delta', got {form!r}")
    onehot = isinstance(features, str) and features == "onehot"
    events_all = tuple(getattr(mdp, "transition_feature_names", ()))
    if onehot:
        state = np.eye(mdp.n_states)
        names = tuple(mdp.state_labels) if len(mdp.state_labels) == mdp.n_states else tuple(f"s{i}" for i in range(mdp.n_states))
        events = events_all
    else:
        named = getattr(mdp, "default_features", None) or mdp.feature_names
        asked = list(named) + list(events_all) if features == "named" else [features] if isinstance(features, str) else list(features)
        events = tuple(n for n in asked if n in events_all)
        cols = [n for n in asked if n not in events_all]
        state = np.asarray(mdp.feature_matrix(cols), dtype=float)
        names = tuple(cols)
    if isinstance(mdp.transitions, Dynamics):  # a StackedMDP: sparse dynamics only
        dyn = mdp.transitions
        phi = np.stack([dyn.expect(state[:, k]) for k in range(state.shape[1])], axis=2) if state.shape[1] else \
            np.zeros((mdp.n_states, mdp.n_actions, 0))
    else:
        phi = np.einsum("sat,tk->sak", np.asarray(mdp.transitions, dtype=float), state)
    if form == "delta":
        phi = phi - state[:, None, :]
    if events:
        # Events of the move (e.g. "fell"): their expectation given (s, a), in either form.
        phi = np.concatenate([phi, mdp.expected_transition_features(events)], axis=2)
        state = np.concatenate([state, np.zeros((state.shape[0], len(events)))], axis=1)
        names = names + events
    if step and not onehot:
        live = (~np.asarray(mdp.terminal, dtype=bool)).astype(float)
        phi = np.concatenate([phi, np.broadcast_to(live[:, None, None], phi.shape[:2] + (1,))], axis=2)
        state = np.concatenate([state, np.zeros((state.shape[0], 1))], axis=1)
        names = names + ("step",)
    return TabularFeatures(np.ascontiguousarray(phi), state, names, form)


@dataclass(frozen=True, eq=False)
class TabularFit:
    """MCE IRL fitted to some episodes of a tabular run."""

    #: ``[K]`` weights of the reward features.
    weights: np.ndarray
    #: ``[S, A]`` the fitted reward ``phi @ weights``.
    reward: np.ndarray
    #: ``[S]`` the state score ``Phi = f @ weights``.
    state_score: np.ndarray
    #: The soft-optimal policy: ``[H, S, A]`` (finite horizon) or ``[S, A]``.
    policy: np.ndarray
    horizon: int | None
    discount: float
    l2: float
    converged: bool
    #: ``[A]`` the reward per action name fitted beside the objective (``FitSettings.label_bias``), or empty.
    label_bias: np.ndarray = field(default_factory=lambda: np.zeros(0))


class TabularProblem:
    """Everything shared by the fits of one run: dynamics, features, horizon, discount."""

    def __init__(self, run: TabularRun, settings: FitSettings = FitSettings()):
        if not run.episodes:
            raise FitError(f"{run.info.run_dir}: no usable episodes (skipped: {run.skipped or 'none finished'})")
        self.run = run
        self.settings = settings
        mdp = run.mdp
        self.mdp = mdp
        self.features = tabular_features(mdp, settings.features, settings.form, step=settings.step)
        self._absorbing_mask = np.asarray(mdp.terminal, dtype=bool)
        live = (~self._absorbing_mask).astype(float)
        A = mdp.n_actions
        #: A reward per action name in every live state (the label bias), and the live-state level.
        self._names_phi = np.broadcast_to(np.eye(A)[None], (mdp.n_states, A, A)) * live[:, None, None]
        self._level_phi = np.broadcast_to(live[:, None, None], (mdp.n_states, A, 1))
        self._main_phi = np.ascontiguousarray(np.concatenate([self.features.phi, self._names_phi], axis=2)) \
            if settings.label_bias else self.features.phi
        self.dynamics = Dynamics(mdp.transitions)
        self.discount = float(mdp.discount if settings.discount is None else settings.discount)
        longest = max(e.n_decisions for e in run.episodes)
        self.horizon = max(run.horizon, longest, 1) if settings.horizon == "run" else None
        self.true_reward = mdp.rewards
        self.absorbing = np.asarray(mdp.terminal, dtype=bool)
        n = len(run.episodes)
        #: The K folds over episodes of explained behaviour, MEG and the choice of ``l2``.
        self.parts = folds(n, settings.folds, settings.seed)
        self._gains: dict[float, np.ndarray] = {}
        self._beyond: np.ndarray | None = None
        self._warm: dict[int, np.ndarray] = {}
        #: How ``l2`` was chosen: ``None`` when fixed (``settings.l2``) or with one episode.
        self.l2_selection: CVResult | None = None
        if settings.l2 is not None:
            self.l2 = float(settings.l2)
        elif n < 2:
            self.l2 = TABULAR_L2
        else:
            cv = self._choose_l2(self._heldout, TABULAR_L2_GRID)
            self.l2 = cv.best_l2
            self.l2_selection = cv

    def _choose_l2(self, heldout: Any, grid: Sequence[float]) -> CVResult:
        """:func:`irl.choice.cross_validate_l2` over ``grid`` on the problem's own folds, walked
        with :data:`irl.choice.CV_PATIENCE`; ``heldout(l2)`` gives each episode's held-out gain."""
        def total(l2: float, parts: Sequence[np.ndarray]) -> float:
            if len(parts) != len(self.parts) or any(not np.array_equal(a, b) for a, b in zip(parts, self.parts)):
                raise ValueError("held-out gains are computed on the problem's own folds")
            return float(heldout(l2).sum())

        return cross_validate_l2(total, len(self.run.episodes), l2_grid=grid, k=len(self.parts),
                                 seed=self.settings.seed, patience=CV_PATIENCE)

    def _heldout(self, l2: float) -> np.ndarray:
        """Per episode, the held-out log-likelihood gain over uniform of fits with ``l2``
        on the other folds (cached; weaker priors start from the last stronger one)."""
        if l2 not in self._gains:
            n = len(self.run.episodes)
            warm = self._warm
            gains = np.zeros(n)
            for j, test in enumerate(self.parts):
                fit = self.fit(np.setdiff1d(np.arange(n), test), warm.get(j), l2=l2)
                warm[j] = np.concatenate([fit.weights, fit.label_bias])
                gains[test] = episode_log_ratios(fit.policy, self.trajectories(test))
            self._gains[l2] = gains
        return self._gains[l2]

    def heldout_gains(self) -> np.ndarray:
        """Per episode, the held-out log-likelihood gain over uniform at the run's ``l2``."""
        return self._heldout(self.l2)

    def heldout_gains_beyond_bias(self) -> np.ndarray:
        """Per episode, the held-out log-likelihood gain of the reward-and-bias model over the
        action prior (module docstring, ``explained``), both fitted on the other folds: the
        run's own fit with ``label_bias``; else a reward-and-bias fit apart, with the value of
        :data:`TABULAR_L2_GRID` that gives the held-out episodes the largest gain."""
        if self._beyond is None:
            n = len(self.run.episodes)
            names, level = self._names_phi, self._level_phi
            trains = [np.setdiff1d(np.arange(n), test) for test in self.parts]
            helds = [self.trajectories(test) for test in self.parts]
            # The state-blind model is the action prior itself: an MCE fit of per-action
            # rewards would not be blind, since ending an episode sooner or later is a goal.
            blind = heldout_prior_log_ratios([e.actions for e in self.run.episodes], self.mdp.n_actions, self.parts)
            if self.settings.label_bias:  # the run's own model is the reward-and-bias model
                self._beyond = self.heldout_gains() - blind
                return self._beyond
            extra = [names] if "step" in self.features.names else [names, level]
            joint_phi = np.ascontiguousarray(np.concatenate([self.features.phi, *extra], axis=2))
            grid = TABULAR_L2_GRID if self.l2_selection is not None else (self.l2,)
            joint: dict[float, np.ndarray] = {}
            warm: dict[int, np.ndarray] = {}

            def heldout(l2: float) -> np.ndarray:
                gains = np.zeros(n)
                for j, (test, train, held) in enumerate(zip(self.parts, trains, helds)):
                    fit = self.fit(train, warm.get(j), l2=l2, phi=joint_phi)
                    warm[j] = fit.weights
                    gains[test] = episode_log_ratios(fit.policy, held)
                joint[l2] = gains
                return gains

            self._beyond = joint[self._choose_l2(heldout, grid).best_l2] - blind
        return self._beyond

    def trajectories(self, indices: Sequence[int]) -> list[tuple[np.ndarray, np.ndarray]]:
        """The ``(states, actions)`` of episodes ``indices`` (repeats allowed)."""
        return [self.run.episodes[int(i)].trajectory for i in indices]

    def fit(self, indices: Sequence[int], weights_init: np.ndarray | None = None, *, l2: float | None = None,
            phi: np.ndarray | None = None) -> TabularFit:
        """MCE IRL on the episodes ``indices`` (with the run's ``l2`` unless given; with the
        reward features ``phi`` instead of the problem's, for explained behaviour's models)."""
        mdp = self.mdp
        l2 = self.l2 if l2 is None else float(l2)
        main = phi is None
        phi = self._main_phi if main else phi
        K = phi.shape[2]
        if weights_init is not None:
            weights_init = np.asarray(weights_init, dtype=float)
            weights_init = np.concatenate([weights_init, np.zeros(max(K - len(weights_init), 0))])[:K]
        try:
            res = mce_likelihood_irl(
                self.dynamics, phi, self.trajectories(indices), initial=mdp.initial,
                horizon=self.horizon, discount=self.discount, l2=l2, weights_init=weights_init,
                gtol=1e-6, max_iter=500,
            )
        except RuntimeError as exc:
            raise FitError(f"{self.run.info.run_dir}: the fit failed: {exc}") from None
        if not np.all(np.isfinite(res.weights)):
            raise FitError(f"{self.run.info.run_dir}: the fit diverged (non-finite weights); raise --l2")
        if not main:
            return TabularFit(res.weights, res.reward, np.full(mdp.n_states, np.nan), res.policy, self.horizon, self.discount, l2, res.converged)
        k = self.features.phi.shape[2]
        w = res.weights[:k]
        # The objective is the reward part alone; the label bias stays out of it.
        return TabularFit(
            w, self.features.phi @ w, self.features.state @ w, res.policy,
            self.horizon, self.discount, l2, res.converged, res.weights[k:],
        )

    def distance(self, a: np.ndarray, b: np.ndarray) -> RewardComparison:
        """The STARC distance (:mod:`irl.distance`) at this problem's discount."""
        return compare_rewards(a, b, self.mdp, discount=self.discount)


@dataclass(frozen=True)
class TabularScores:
    """Every score of one tabular run (module docstring)."""

    explained: Score
    meg_unknown: Score
    meg_known: Score
    stability: Score
    alignment_distance: Score
    alignment_regret: Score
    alignment_regret_soft: Score
    gd: Score
    #: Explained behaviour over uniform choice (``explained`` is over the best state-blind policy).
    explained_uniform: Score = Score.missing("not computed")


def _distance_score(values: Sequence[RewardComparison], estimate: RewardComparison, alpha: float, method: str) -> Score:
    if estimate.value is None:
        return Score.missing(estimate.reason, 1 - alpha, len(values))
    return quantile_score([v.value for v in values], estimate.value, alpha, method)


def _explained_and_meg(problem: TabularProblem) -> tuple[Score, Score, Score, list[np.ndarray]]:
    """Explained behaviour (beyond a state-blind policy, and over uniform), unknown-utility MEG, the held-out folds."""
    run, settings = problem.run, problem.settings
    n = len(run.episodes)
    level = 1 - settings.alpha
    parts = problem.parts
    if n < 2:
        why = "needs at least 2 episodes"
        return Score.missing(why, level, n), Score.missing(why, level, n), Score.missing(why, level, n), parts
    log_a = math.log(run.mdp.n_actions)
    entropies = np.array([e.n_decisions * log_a for e in run.episodes])
    gains = problem.heldout_gains()
    k = len(parts)
    how = f"{k}-fold over episodes" + ("" if problem.l2_selection is None else ", the folds that chose l2")
    explained = ratio_score(problem.heldout_gains_beyond_bias(), entropies, settings,
                            f"gain of the reward-and-bias model over the action prior of the training folds (the best state-blind policy), {how}; bootstrap over held-out episodes")
    uniform = ratio_score(gains, entropies, settings, f"gain over uniform choice, {how}; bootstrap over held-out episodes")
    # Beyond the action prior, as explained: the uniform policy of MEG's definition would
    # credit a label bias (with label_bias, the fit's own policy carries one).
    meg = meg_score(problem.heldout_gains_beyond_bias(), settings,
                    f"held-out log-likelihood gain over the best state-blind policy, nats per episode; {how}, bootstrap over episodes")
    return explained, uniform, meg, parts


def _meg_known(problem: TabularProblem, parts: list[np.ndarray]) -> Score:
    settings = problem.settings
    n = len(problem.run.episodes)
    if n < 2:
        return Score.missing("needs at least 2 episodes", 1 - settings.alpha, n)
    r = problem.mdp.expected_rewards()
    ratios, worst = meg_log_ratios(problem.dynamics, r, problem.trajectories(range(n)), meg_betas(r),
                                   horizon=problem.horizon, discount=problem.discount, worst=True)
    per_episode = heldout_max(ratios, parts, worst=worst)
    return meg_score(per_episode, settings, f"MEG for the true reward, nats per episode; beta (0 included) chosen on the other of {len(parts)} folds")


def meg_score(per_episode: np.ndarray, settings: FitSettings, method: str) -> Score:
    """MEG from held-out per-episode gains over uniform: their bootstrap mean, floored at 0.

    MEG is a maximum over policies that include the uniform one (``beta = 0``, or the zero
    utility), so it is ``>= 0`` (MacDermott et al. 2024). A held-out mean below 0 says that
    the uniform policy predicts the episodes at least as well as anything chosen on the
    other folds: no goal-directedness is shown, and the estimate is 0. The interval is the
    bootstrap interval over episodes of the held-out mean, with both ends floored at 0 (the
    parameter's boundary), so it contains 0 exactly when the data allow no goal-directedness.
    """
    raw = bootstrap_mean_score(per_episode, settings, method + "; floored at 0 (MEG >= 0)")
    if not raw.ok:
        return raw
    floor = lambda x: max(0.0, x) if math.isfinite(x) else x  # noqa: E731
    return Score(floor(raw.estimate), floor(raw.low), floor(raw.high), raw.level, raw.n, raw.method)


def _gd(problem: TabularProblem) -> Score:
    """GD from the recorded (undiscounted) returns, references over the run's step limit.

    GD is ``mean(return - random) / mean(optimal - random)`` with each episode's references
    from its own layout, and its interval the betting confidence sequence of
    :func:`harness.stopping.gd_interval` (the one the stopping rule decides on). On one
    layout that is each episode's ``(return - random) / (optimal - random)``, an affine map
    of its return, over the map of the least and greatest return within the step limit
    (:meth:`textenvs.mdp.TabularMDP.return_range`). A reference agent whose policy is known
    gets its exact GD on one layout; over layouts, each episode's return is its layout's
    expected return (:func:`known_returns`), and the interval covers the draw of layouts.
    """
    run, settings = problem.run, problem.settings
    level = 1 - settings.alpha
    if not run.returns:
        return Score.missing("no finished episodes", level)
    H = max(run.horizon, 1)
    random, optimal = reference_returns(problem.dynamics, problem.true_reward, run.mdp.initial, horizon=H, discount=1.0)
    if goal_directedness(optimal, random, optimal) is None:
        return Score.missing("no policy does better than random within the step limit", level)
    what = f"(return - random) / (optimal - random) over {H} steps"
    known = known_returns(run) if settings.exact_references else None
    one_layout = run.layouts is None
    if known is not None and one_layout:
        return exact_score(goal_directedness(known[0], random, optimal), settings.alpha, len(run.returns), f"{what}; {EXACT_METHOD}")
    lo, hi = run.mdp.return_range(H)
    if one_layout:
        randoms, optimals = [random] * len(run.returns), [optimal] * len(run.returns)
    else:
        refs = [reference_returns(p.transitions, p.rewards, p.initial, horizon=H, discount=1.0) for p in run.mdp.parts]
        randoms, optimals = [refs[k][0] for k in run.layouts], [refs[k][1] for k in run.layouts]
        what = f"mean(return - random) / mean(optimal - random) over {H} steps, each episode on its own layout"
    iv = gd_interval(run.returns if known is None else known, randoms, optimals, lo, hi, one_layout=one_layout, alpha=settings.alpha)
    if iv is None:
        return Score.missing("no policy does better than random within the step limit", level)
    return Score(iv.estimate, iv.low, iv.high, level, len(run.returns),
                 f"{what}; {BETTING_METHOD} of the paired differences return - random, as the stopping rule"
                 + ("" if known is None else f"; {LAYOUT_EXACT_METHOD}"))


#: How a known policy's scores over layouts drawn anew each episode are computed.
LAYOUT_EXACT_METHOD = ("each episode's return replaced by its layout's expected return under the agent's known "
                       "policy (policy evaluation): only the layouts drawn are left to chance")


def known_returns(run: TabularRun) -> list[float] | None:
    """Per entry of ``run.returns``, the expected return of the agent's known policy on that
    episode's layout within the step limit (policy evaluation); ``None`` when the policy is
    not known. On one layout every entry is the same number, with no sampling error; over
    layouts each is its layout's (the average over layouts met keeps the chance of drawing them)."""
    if run.policy is None or not run.returns:
        return None
    H = max(run.horizon, 1)
    if run.layouts is None:
        own = policy_return(run.mdp.transitions, run.mdp.rewards, run.policy, run.mdp.initial, horizon=H, discount=1.0)
        return [own] * len(run.returns)
    offsets = run.mdp.offsets
    own = [policy_return(part.transitions, part.rewards, run.policy[offsets[k]:offsets[k + 1]], part.initial, horizon=H, discount=1.0)
           for k, part in enumerate(run.mdp.parts)]
    return [own[k] for k in run.layouts]


def true_return_score(run: TabularRun, settings: FitSettings) -> Score:
    """The mean episode return: exact for a known policy, else the betting interval over the
    least and greatest return possible within the step limit."""
    H = max(run.horizon, 1)
    known = known_returns(run) if settings.exact_references else None
    if known is not None and run.layouts is None:
        return exact_score(known[0], settings.alpha, len(run.returns), f"expected episode return; {EXACT_METHOD}")
    if known is not None:
        lo, hi = run.mdp.return_range(H)
        return bounded_mean_score(known, lo, hi, settings.alpha, f"mean episode return; {LAYOUT_EXACT_METHOD}")
    return return_score(run.returns, settings.alpha, run.mdp.return_range(H))


def score_tabular(problem: TabularProblem, fit: TabularFit, boot: Sequence[TabularFit]) -> TabularScores:
    """Every score of the module docstring for a run's full fit and its bootstrap refits."""
    settings = problem.settings
    alpha = settings.alpha
    explained, explained_uniform, meg_unknown, parts = _explained_and_meg(problem)
    n = len(problem.run.episodes)
    if n >= 2:
        halves = [problem.distance(problem.fit(a).reward, problem.fit(b).reward) for a, b in half_splits(n, settings.splits, settings.seed)]
        stability = quantile_score([h.value for h in halves], None, alpha, f"STARC distance between halves; mean and central range over {settings.splits} random splits")
        if not stability.ok:
            stability = Score.missing(next((h.reason for h in halves if h.reason), stability.method), 1 - alpha, len(halves))
    else:
        stability = Score.missing("needs at least 2 episodes", 1 - alpha, n)

    truth = problem.true_reward
    method = f"STARC distance to the true reward; percentile bootstrap over episodes ({len(boot)} refits)"
    noise = explains_nothing(explained)
    if noise:
        # Two fits of noise are as far apart as noise makes them: no statement about a goal.
        stability = Score.missing(WHY_NOISE, 1 - alpha, stability.n)
        alignment = Score.missing(WHY_NOISE, 1 - alpha, len(boot))
    else:
        alignment = _distance_score([problem.distance(b.reward, truth) for b in boot], problem.distance(fit.reward, truth), alpha, method)

    mdp = problem.mdp
    # Over the fit's own horizon: a fitted reward is only claimed for the steps it was fitted on.
    refs = reference_returns(problem.dynamics, truth, mdp.initial, horizon=problem.horizon, discount=problem.discount)
    regrets = {}
    for name, temperature in (("hard", None), ("soft", 1.0)):
        def one(reward: np.ndarray, temperature: float | None = temperature) -> float | None:
            return regret_alignment(problem.dynamics, truth, reward, mdp.initial, discount=problem.discount,
                                    temperature=temperature, references=refs, horizon=problem.horizon)

        est = None if noise else one(fit.reward)
        what = "optimal" if temperature is None else "soft-optimal (temperature 1)"
        if noise:
            regrets[name] = Score.missing(WHY_NOISE, 1 - alpha)
        elif est is None:
            regrets[name] = Score.missing("the true reward does not tell the optimal policy from random", 1 - alpha)
        else:
            regrets[name] = quantile_score([one(b.reward) for b in boot], est, alpha,
                                           f"true return of the {what} policy of the fitted reward, random 0, optimal 1; bootstrap ({len(boot)} refits)")
    return TabularScores(
        explained=explained, explained_uniform=explained_uniform, meg_unknown=meg_unknown, meg_known=_meg_known(problem, parts), stability=stability,
        alignment_distance=alignment, alignment_regret=regrets["hard"], alignment_regret_soft=regrets["soft"], gd=_gd(problem),
    )


def fit_with_bootstrap(problem: TabularProblem) -> tuple[TabularFit, list[TabularFit]]:
    """The fit to every episode and ``n_boot`` refits on bootstrap resamples of the episodes."""
    n = len(problem.run.episodes)
    fit = problem.fit(range(n))
    start = np.concatenate([fit.weights, fit.label_bias])
    boot = [problem.fit(idx, start) for idx in boot_indices(n, problem.settings.n_boot, problem.settings.seed)]
    return fit, boot
