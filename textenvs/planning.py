"""Soft (maximum causal entropy) and hard value iteration, and occupancy measures.

Pure numpy functions over a tabular MDP given as arrays:

* ``transitions[s, a, s']``: the dynamics ``P(s' | s, a)``;
* a reward as ``r[s]`` (state only, earned in the state where the action is taken),
  ``r[s, a]``, or ``R[s, a, s']`` (averaged over ``s'`` with :func:`expected_reward`);
* ``initial[s]``: the initial-state distribution.

Two settings share every function:

* **finite horizon** ``H`` (``horizon=H``): ``H`` decisions at ``t = 0 .. H-1``; values,
  Q-values and policies are time-indexed (``v[t, s]``, ``q[t, s, a]``, ``policy[t, s, a]``)
  and ``V_H = 0``. This is the convention of ``imitation.algorithms.mce_irl``
  (``mce_partition_fh``): ``Q_{H-1}(s, a) = r(s, a)``.
* **discounted infinite horizon** (``horizon=None``, ``discount < 1``): stationary arrays
  ``v[s]``, ``q[s, a]``, ``policy[s, a]``, solved to a tolerance by value iteration or
  (by default, for sparse or moderate-size dynamics) policy iteration.

Soft value iteration at temperature ``tau``::

    Q_t(s, a) = r(s, a) + discount * sum_s' P(s' | s, a) V_{t+1}(s')
    V_t(s)    = tau * log sum_a exp(Q_t(s, a) / tau)
    pi_t(a|s) = exp((Q_t(s, a) - V_t(s)) / tau)

and hard (optimal) value iteration replaces the log-sum-exp by a max. As ``tau -> 0`` soft
values tend to hard ones. A reward of ``-inf`` marks an action as unavailable; every state
needs at least one available action.

Occupancy measures are computed exactly (a forward recursion for finite horizons, one
linear solve for discounted ones). The finite-horizon *state* occupancy sums the state
distribution over ``t = 0 .. H`` (so it sums to ``H + 1`` undiscounted, as imitation's
``Dcum``); the *state-action* occupancy sums over the decision steps ``t = 0 .. H-1`` (so it
sums to ``H``). Discounted occupancies weight step ``t`` by ``discount**t`` and sum to
``1 / (1 - discount)`` in the infinite-horizon case.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np
import scipy.sparse
import scipy.sparse.linalg

__all__ = [
    "Dynamics",
    "Values",
    "Occupancy",
    "transition_reward",
    "expected_reward",
    "policy_return",
    "soft_value_iteration",
    "hard_value_iteration",
    "occupancy_measures",
    "policy_transitions",
    "return_range",
    "reference_returns",
]

_THREADPOOLS = None


@contextlib.contextmanager
def blas_single_thread() -> Iterator[None]:
    """Limit BLAS to one thread (via threadpoolctl, when it is installed).

    scipy's L-BFGS-B makes many tiny BLAS calls; with a threaded OpenBLAS on a busy
    machine each can wait milliseconds on spinning threads (a 100x slowdown measured on
    a shared 2-core box). The fits in :mod:`irl` run inside this context.
    """
    global _THREADPOOLS
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # pragma: no cover
        yield
        return
    if _THREADPOOLS is None:
        _THREADPOOLS = ThreadpoolController()
    with _THREADPOOLS.limit(limits=1, user_api="blas"):
        yield


# Dense [S*A, S] products are used below this many entries or above this density.
_SPARSE_MIN_ENTRIES = 200_000
_SPARSE_MAX_DENSITY = 0.05
# Discounted solves use policy iteration (dense linear solves) up to this many states.
_PI_MAX_DENSE_STATES = 2000


class Dynamics:
    """The transition tensor ``P[s, a, s']`` as a linear operator, built once and reused.

    Stored as a ``[S * A, S]`` matrix, sparse (CSR) when the tensor is large and mostly
    zeros (gridworlds), dense otherwise. Every function in :mod:`irl` accepts either the
    raw array or a :class:`Dynamics`; pass one built in advance when calling them in a loop.
    """

    def __init__(self, transitions: np.ndarray | Dynamics) -> None:
        if isinstance(transitions, Dynamics):
            self.__dict__.update(transitions.__dict__)
            return
        P = np.asarray(transitions, dtype=float)
        if P.ndim != 3 or P.shape[0] != P.shape[2]:
            raise ValueError(f"transitions must be [S, A, S], got shape {P.shape}")
        #: Number of states and actions.
        self.n_states, self.n_actions = P.shape[0], P.shape[1]
        flat = P.reshape(self.n_states * self.n_actions, self.n_states)
        self.sparse = bool(
            flat.size >= _SPARSE_MIN_ENTRIES and np.count_nonzero(flat) <= _SPARSE_MAX_DENSITY * flat.size
        )
        if self.sparse:
            self._flat = scipy.sparse.csr_matrix(flat)
            self._flat_t = self._flat.T.tocsr()
        else:
            self._flat = flat
            self._flat_t = flat.T
        self._dense = P

    @classmethod
    def block_diagonal(cls, parts: Sequence[np.ndarray | Dynamics]) -> Dynamics:
        """The dynamics of several MDPs side by side (same actions), stored sparse.

        State ``offset_i + s`` of the result is state ``s`` of part ``i`` (offsets: the
        running sum of the parts' sizes); no transition crosses from one part to another.
        It has no dense :attr:`tensor` (it can be far too large): rewards given to the
        functions here must then be ``[S]`` or ``[S, A]``.
        """
        dyns = [cls(p) for p in parts]
        if not dyns:
            raise ValueError("block_diagonal needs at least one part")
        if len({d.n_actions for d in dyns}) != 1:
            raise ValueError(f"the parts must share their actions, got {sorted({d.n_actions for d in dyns})}")
        out = cls.__new__(cls)
        out.n_states, out.n_actions = sum(d.n_states for d in dyns), dyns[0].n_actions
        out.sparse = True
        out._flat = scipy.sparse.block_diag([scipy.sparse.csr_matrix(d._flat) for d in dyns], format="csr")
        out._flat_t = out._flat.T.tocsr()
        out._dense = None
        return out

    @property
    def tensor(self) -> np.ndarray:
        """The dense ``P[s, a, s']`` array (not kept by :meth:`block_diagonal`)."""
        if self._dense is None:
            raise ValueError(f"these {self.n_states}-state dynamics are kept sparse only; give rewards as [S] or [S, A]")
        return self._dense

    def expect(self, v: np.ndarray) -> np.ndarray:
        """``E[v(s') | s, a]`` as an ``[S, A]`` array."""
        return np.asarray(self._flat @ v).reshape(self.n_states, self.n_actions)

    def push(self, x: np.ndarray) -> np.ndarray:
        """``sum_{s, a} x[s, a] P[s, a, s']``: the next-state mass of a state-action mass."""
        return np.asarray(self._flat_t @ x.reshape(-1))


@dataclass(frozen=True, eq=False)
class Values:
    """The result of (soft or hard) value iteration.

    Finite horizon: ``v[t, s]``, ``q[t, s, a]``, ``policy[t, s, a]`` for ``t = 0 .. H-1``.
    Discounted: ``v[s]``, ``q[s, a]``, ``policy[s, a]``.
    """

    #: State values.
    v: np.ndarray
    #: State-action values.
    q: np.ndarray
    #: The policy: Boltzmann in ``q`` (soft), or uniform over the maximising actions (hard).
    policy: np.ndarray
    #: ``H``, or ``None`` for the discounted infinite-horizon case.
    horizon: int | None
    discount: float
    #: Softmax temperature; ``0.0`` for hard value iteration.
    temperature: float
    #: Backups performed (``H`` for finite horizons).
    iterations: int
    #: Whether the discounted iteration met its tolerance (always ``True`` for finite ``H``).
    converged: bool


@dataclass(frozen=True, eq=False)
class Occupancy:
    """Expected (discounted) visit counts of a policy from an initial distribution."""

    #: ``[S]``: sum over ``t = 0 .. H`` of ``discount**t P(s_t = s)`` (finite; sums to
    #: ``H + 1`` undiscounted) or over all ``t >= 0`` (discounted; sums to ``1/(1-discount)``).
    state: np.ndarray
    #: ``[S, A]``: the same over decision steps only (``t = 0 .. H-1`` when finite, so it
    #: sums to ``H`` undiscounted).
    state_action: np.ndarray
    #: ``[H + 1, S]``: ``P(s_t = s)`` per time step, undiscounted (finite horizon only).
    state_t: np.ndarray | None
    horizon: int | None
    discount: float


def transition_reward(reward: np.ndarray, n_states: int, n_actions: int, *, state_reward: str = "current") -> np.ndarray:
    """Any reward as a read-only ``[S, A, S]`` array ``R[s, a, s']``: the one reshaping in zso.

    ``r[s]`` is the reward for being in ``s`` where the action is taken
    (``state_reward="current"``, ``R[s, a, s'] = r[s]``) or for arriving in it
    (``state_reward="next"``, ``R[s, a, s'] = r[s']``); ``r[s, a]`` becomes
    ``R[s, a, s'] = r[s, a]``; ``R[s, a, s']`` is returned as it is. Broadcast views, no
    copies.
    """
    S, A = int(n_states), int(n_actions)
    r = np.asarray(reward, dtype=float)
    if r.shape == (S, A, S):
        return r
    if r.shape == (S, A):
        return np.broadcast_to(r[:, :, None], (S, A, S))
    if r.shape == (S,):
        if state_reward == "current":
            return np.broadcast_to(r[:, None, None], (S, A, S))
        if state_reward == "next":
            return np.broadcast_to(r[None, None, :], (S, A, S))
        raise ValueError(f"state_reward must be 'current' or 'next', got {state_reward!r}")
    raise ValueError(f"reward must be [S], [S, A] or [S, A, S] with S={S}, A={A}; got shape {r.shape}")


def expected_reward(transitions: np.ndarray | Dynamics, reward: np.ndarray, *, state_reward: str = "current") -> np.ndarray:
    """The reward as an ``[S, A]`` array ``r[s, a] = sum_s' P[s, a, s'] R[s, a, s']``.

    ``reward`` is read as :func:`transition_reward` says: ``r[s]`` (earned where the
    action is taken by default, or on arrival with ``state_reward="next"``), ``r[s, a]``,
    or ``R[s, a, s']``. Impossible transitions contribute nothing, even at ``-inf``.
    """
    dyn = transitions if isinstance(transitions, Dynamics) else None
    S, A = (dyn.n_states, dyn.n_actions) if dyn else np.shape(transitions)[:2]
    r = np.asarray(reward, dtype=float)
    if r.shape == (S,) and state_reward == "current":
        return np.repeat(r[:, None], A, axis=1)
    if r.shape == (S, A):
        return r
    P = dyn.tensor if dyn else np.asarray(transitions, dtype=float)
    R = transition_reward(r, S, A, state_reward=state_reward)
    # 0 * -inf would give nan: an impossible transition contributes nothing.
    return np.where(P > 0, P * R, 0.0).sum(axis=2)


def policy_return(
    transitions: np.ndarray | Dynamics,
    reward: np.ndarray,
    policy: np.ndarray,
    initial: np.ndarray,
    *,
    horizon: int | None = None,
    discount: float = 1.0,
) -> float:
    """The expected (discounted) return of ``policy`` from ``initial``: ``sum D[s, a] r[s, a]``.

    ``policy`` and the horizon are as :func:`occupancy_measures` reads them; ``reward`` as
    :func:`expected_reward`.
    """
    dyn = Dynamics(transitions)
    occ = occupancy_measures(dyn, policy, initial, horizon=horizon, discount=discount)
    r = expected_reward(dyn, reward)
    live = occ.state_action > 0
    return float(np.where(live, occ.state_action * np.where(live, r, 0.0), 0.0).sum())


def _check_common(horizon: int | None, discount: float) -> None:
    if horizon is None:
        if not 0.0 <= discount < 1.0:
            raise ValueError(f"an infinite horizon needs 0 <= discount < 1, got {discount}")
    else:
        if int(horizon) != horizon or horizon < 1:
            raise ValueError(f"horizon must be a positive integer, got {horizon!r}")
        if not 0.0 <= discount <= 1.0:
            raise ValueError(f"discount must lie in [0, 1], got {discount}")


def _over_actions(ufunc: np.ufunc, q: np.ndarray) -> np.ndarray:
    """``ufunc.reduce(q, axis=-1)`` for a short last axis (the actions), column by column:
    numpy reduces a short innermost axis an order of magnitude slower than it combines
    whole columns, and the backups below are the inner loop of every fit."""
    out = q[..., 0].copy()
    for a in range(1, q.shape[-1]):
        ufunc(out, q[..., a], out=out)
    return out


def _soft_backup(q: np.ndarray, temperature: float) -> tuple[np.ndarray, np.ndarray]:
    """``V = tau logsumexp(Q / tau)`` over actions and the Boltzmann policy."""
    m = _over_actions(np.maximum, q)
    if not np.all(np.isfinite(m)):
        raise ValueError("every state needs at least one action with a finite value")
    z = q - m[..., None]
    if temperature != 1.0:
        z /= temperature
    np.exp(z, out=z)
    total = _over_actions(np.add, z)
    z /= total[..., None]
    return m + temperature * np.log(total), z


def _hard_backup(q: np.ndarray, tie_tol: float) -> tuple[np.ndarray, np.ndarray]:
    """``V = max_a Q`` and the policy uniform over the (near-)maximising actions."""
    v = _over_actions(np.maximum, q)
    if not np.all(np.isfinite(v)):
        raise ValueError("every state needs at least one action with a finite value")
    best = (q >= (v - tie_tol * np.maximum(1.0, np.abs(v)))[..., None]).astype(float)
    return v, best / _over_actions(np.add, best)[..., None]


def _value_iteration(
    transitions: np.ndarray | Dynamics,
    reward: np.ndarray,
    backup,
    *,
    horizon: int | None,
    discount: float,
    temperature: float,
    tol: float,
    max_iter: int,
    v_init: np.ndarray | None,
    method: str,
) -> Values:
    _check_common(horizon, discount)
    dyn = Dynamics(transitions)
    r = expected_reward(dyn, reward)
    S, A = r.shape
    if horizon is not None:
        H = int(horizon)
        v = np.empty((H, S))
        q = np.empty((H, S, A))
        pi = np.empty((H, S, A))
        v_next = np.zeros(S)
        for t in range(H - 1, -1, -1):
            q[t] = r + discount * dyn.expect(v_next) if discount else r
            v[t], pi[t] = backup(q[t])
            v_next = v[t]
        return Values(v, q, pi, H, float(discount), temperature, H, True)
    v = np.zeros(S) if v_init is None else np.array(v_init, dtype=float)
    if v.shape != (S,):
        raise ValueError(f"v_init must be [S] = [{S}], got {v.shape}")
    # ||T v - v|| <= eps guarantees ||v - V*|| <= eps / (1 - gamma) and
    # ||T v - V*|| <= gamma eps / (1 - gamma); ask for the latter <= tol.
    stop = tol * (1.0 - discount) / max(discount, 1e-300)
    # Never below what floating point can resolve on values of this size (up to
    # max|r| / (1 - gamma)): large rewards would otherwise chase rounding noise forever.
    largest = float(np.max(np.abs(r[np.isfinite(r)]), initial=0.0)) / max(1.0 - discount, 1e-12)
    stop = max(stop, 64 * np.finfo(float).eps * largest)
    if method not in ("auto", "pi", "vi"):
        raise ValueError(f"method must be 'auto', 'pi' or 'vi', got {method!r}")
    use_pi = method == "pi" or (method == "auto" and (dyn.sparse or S <= _PI_MAX_DENSE_STATES))
    converged = False
    it = 0
    if use_pi:
        # Policy iteration (Newton's method on the Bellman equation): back up, then
        # evaluate the new policy exactly. Monotone, and quadratic near the fixed point.
        prev = np.inf
        while it < max_iter:
            it += 1
            v_new, pi = backup(r + discount * dyn.expect(v))
            residual = float(np.max(np.abs(v_new - v)))
            if residual <= stop:
                converged = True
                break
            # At the limit of floating-point precision the residual stops shrinking:
            # finish with plain value iteration below (a contraction, so always safe).
            if residual >= prev:
                v = v_new
                break
            prev = residual
            v = _evaluate_policy(dyn, pi, r, temperature, discount)
    if not converged:
        while it < max_iter:
            it += 1
            v_new, pi = backup(r + discount * dyn.expect(v))
            delta = np.max(np.abs(v_new - v))
            v = v_new
            if delta <= stop:
                converged = True
                break
    q = r + discount * dyn.expect(v)
    v, pi = backup(q)
    return Values(v, q, pi, None, float(discount), temperature, it, converged)


def _evaluate_policy(dyn: Dynamics, pi: np.ndarray, r: np.ndarray, temperature: float, discount: float) -> np.ndarray:
    """Exact value of a stationary policy, with the entropy bonus at ``temperature``.

    ``v = r_pi + tau H(pi) + gamma P_pi v``; actions with zero probability contribute
    nothing (their reward may be ``-inf``).
    """
    live = pi > 0
    b = np.where(live, pi * np.where(live, r, 0.0), 0.0).sum(axis=1)
    if temperature > 0:
        b -= temperature * np.where(live, pi * np.log(np.where(live, pi, 1.0)), 0.0).sum(axis=1)
    p_pi = policy_transitions(dyn, pi)
    S = dyn.n_states
    if scipy.sparse.issparse(p_pi):
        lhs = (scipy.sparse.identity(S, format="csc") - discount * p_pi).tocsc()
        return scipy.sparse.linalg.spsolve(lhs, b)
    return np.linalg.solve(np.eye(S) - discount * p_pi, b)


def soft_value_iteration(
    transitions: np.ndarray | Dynamics,
    reward: np.ndarray,
    *,
    horizon: int | None = None,
    discount: float = 1.0,
    temperature: float = 1.0,
    tol: float = 1e-10,
    max_iter: int = 100_000,
    v_init: np.ndarray | None = None,
    method: str = "auto",
) -> Values:
    """Soft (maximum causal entropy) value iteration.

    Args:
        transitions: ``P[s, a, s']`` (or a :class:`Dynamics`).
        reward: ``r[s]``, ``r[s, a]`` or ``R[s, a, s']``; ``-inf`` marks unavailable actions.
        horizon: number of decisions ``H``; ``None`` for the discounted infinite horizon.
        discount: ``gamma``; must be ``< 1`` when ``horizon`` is ``None``.
        temperature: ``tau > 0``; the policy is ``softmax(Q / tau)``.
        tol: discounted case: stop once ``||V - V*||_inf <= tol`` is guaranteed, or once the
            Bellman residual is within 64 rounding errors of the largest value the reward
            can give (``max|r| / (1 - discount)``), whichever is looser: large rewards
            converge instead of chasing floating-point noise.
        max_iter: discounted case: the most Bellman backups (``converged`` is ``False``
            if reached).
        v_init: discounted case: a starting value (a warm start speeds repeated solves).
        method: discounted case: ``"vi"`` (value iteration), ``"pi"`` (policy iteration:
            each step evaluates the current policy with one linear solve; a handful of
            steps instead of hundreds), or ``"auto"`` (``"pi"`` when the dynamics are
            stored sparse or ``S <= 2000``). Both stop on the same Bellman-residual test.

    Returns:
        :class:`Values`; with ``horizon=H`` identical to imitation's
        ``mce_partition_fh(env, reward=r, discount=gamma)`` at ``temperature=1``.
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0 (use hard_value_iteration for 0), got {temperature}")
    return _value_iteration(
        transitions, reward, lambda q: _soft_backup(q, temperature),
        horizon=horizon, discount=discount, temperature=float(temperature),
        tol=tol, max_iter=max_iter, v_init=v_init, method=method,
    )


def hard_value_iteration(
    transitions: np.ndarray | Dynamics,
    reward: np.ndarray,
    *,
    horizon: int | None = None,
    discount: float = 1.0,
    tol: float = 1e-10,
    max_iter: int = 100_000,
    v_init: np.ndarray | None = None,
    tie_tol: float = 1e-9,
    method: str = "auto",
) -> Values:
    """Optimal (hard) value iteration: ``V_t(s) = max_a Q_t(s, a)``.

    Arguments as :func:`soft_value_iteration`. The returned policy is uniform over the
    actions whose Q-value is within ``tie_tol`` (relative to ``max(1, |V|)``) of the best,
    so ties are split evenly rather than broken by index.
    """
    return _value_iteration(
        transitions, reward, lambda q: _hard_backup(q, tie_tol),
        horizon=horizon, discount=discount, temperature=0.0,
        tol=tol, max_iter=max_iter, v_init=v_init, method=method,
    )


def policy_transitions(transitions: np.ndarray | Dynamics, policy: np.ndarray) -> np.ndarray | scipy.sparse.csr_matrix:
    """``P_pi[s, s'] = sum_a pi[s, a] P[s, a, s']`` for a stationary policy ``pi[s, a]``.

    Sparse (CSR) when the dynamics are stored sparse, dense otherwise.
    """
    dyn = Dynamics(transitions)
    S, A = dyn.n_states, dyn.n_actions
    pi = np.asarray(policy, dtype=float)
    if pi.shape != (S, A):
        raise ValueError(f"policy must be [S, A] = [{S}, {A}], got {pi.shape}")
    if dyn.sparse:
        rows = np.repeat(np.arange(S), A)
        mix = scipy.sparse.csr_matrix((pi.reshape(-1), (rows, np.arange(S * A))), shape=(S, S * A))
        return (mix @ dyn._flat).tocsr()
    return np.einsum("sa,sat->st", pi, dyn.tensor)


def occupancy_measures(
    transitions: np.ndarray | Dynamics,
    policy: np.ndarray,
    initial: np.ndarray,
    *,
    horizon: int | None = None,
    discount: float = 1.0,
) -> Occupancy:
    """Exact occupancy measures of ``policy`` started from ``initial``.

    Args:
        transitions: ``P[s, a, s']`` (or a :class:`Dynamics`).
        policy: time-indexed ``pi[t, s, a]`` (finite horizon ``H = pi.shape[0]``), or a
            stationary ``pi[s, a]``: finite if ``horizon`` is given, else discounted.
        initial: the initial-state distribution ``[S]``.
        horizon: for a stationary policy, the number of decisions ``H``.
        discount: weight ``discount**t`` on step ``t``; must be ``< 1`` without a horizon.

    Returns:
        :class:`Occupancy`. In the finite case ``state_t`` and ``state`` equal imitation's
        ``mce_occupancy_measures(env, pi=pi, discount=gamma)`` ``(D, Dcum)``.
    """
    dyn = Dynamics(transitions)
    S, A = dyn.n_states, dyn.n_actions
    pi = np.asarray(policy, dtype=float)
    rho = np.asarray(initial, dtype=float)
    if rho.shape != (S,):
        raise ValueError(f"initial must be [S] = [{S}], got {rho.shape}")
    if pi.ndim == 3:
        if horizon is not None and horizon != pi.shape[0]:
            raise ValueError(f"horizon={horizon} but the policy has {pi.shape[0]} time steps")
        horizon = pi.shape[0]
    elif pi.ndim == 2 and horizon is not None:
        pi = np.broadcast_to(pi, (int(horizon), *pi.shape))
    _check_common(horizon, discount)
    if pi.shape[-2:] != (S, A):
        raise ValueError(f"policy must end in [S, A] = [{S}, {A}], got {pi.shape}")

    if horizon is not None:
        H = int(horizon)
        d = np.empty((H + 1, S))
        d[0] = rho
        sa = np.zeros((S, A))
        w = 1.0
        for t in range(H):
            x = d[t][:, None] * pi[t]
            sa += w * x
            d[t + 1] = dyn.push(x)
            w *= discount
        weights = discount ** np.arange(H + 1)
        state = weights @ d
        return Occupancy(state, sa, d, H, float(discount))

    # Discounted: d = rho + gamma P_pi^T d.
    p_pi = policy_transitions(dyn, pi)
    if scipy.sparse.issparse(p_pi):
        lhs = (scipy.sparse.identity(S, format="csc") - discount * p_pi.T).tocsc()
        state = scipy.sparse.linalg.spsolve(lhs, rho)
    else:
        state = np.linalg.solve(np.eye(S) - discount * p_pi.T, rho)
    return Occupancy(state, state[:, None] * pi, None, None, float(discount))


def return_range(transitions: np.ndarray, reward: np.ndarray, initial: np.ndarray, horizon: int) -> tuple[float, float]:
    """The least and greatest total reward an episode of at most ``horizon`` decisions can
    collect from a state of ``initial``, undiscounted.

    Value iteration over what can happen, not over what is expected: a backup takes the
    best (worst) action *and* the best (worst) successor of positive probability,
    ``V_t(s) = max_a max_{s': P > 0} R[s, a, s'] + V_{t+1}(s')`` with ``V_H = 0``. On
    deterministic dynamics this is value iteration with the reward and its negation; on
    slippery ones it is wider (a lucky slide can reach the goal the expected optimum
    misses). Terminal states are absorbing with zero reward (:class:`textenvs.mdp.TabularMDP`),
    so episodes that end early are covered. Every per-episode return lies in the range:
    it is the range of a bounded-mean interval (:func:`harness.stats.betting_interval`).
    """
    P = np.asarray(transitions.tensor if isinstance(transitions, Dynamics) else transitions, dtype=float)
    R = np.asarray(reward, dtype=float)
    if R.shape != P.shape:
        raise ValueError(f"return_range needs R[s, a, s'] shaped like the transitions {P.shape}, got {R.shape}")
    if horizon < 0:
        raise ValueError(f"horizon must be >= 0, got {horizon}")
    possible = P > 0
    hi = np.zeros(P.shape[0])
    lo = np.zeros(P.shape[0])
    for _ in range(int(horizon)):
        hi = np.where(possible, R + hi[None, None, :], -np.inf).max(axis=2).max(axis=1)
        lo = np.where(possible, R + lo[None, None, :], np.inf).min(axis=2).min(axis=1)
    start = np.asarray(initial) > 0
    return float(lo[start].min()), float(hi[start].max())


def reference_returns(
    transitions: np.ndarray | Dynamics,
    reward: np.ndarray,
    initial: np.ndarray,
    *,
    horizon: int | None = None,
    discount: float = 1.0,
) -> tuple[float, float]:
    """``(J(uniform), J(optimal))``: the expected return of the uniform and of an optimal policy.

    Finite ``horizon`` (``H`` decisions, step ``t`` weighted ``discount**t``) or discounted
    infinite horizon (``horizon=None``).
    """
    dyn = Dynamics(transitions)
    S, A = dyn.n_states, dyn.n_actions
    uniform = np.full((S, A), 1.0 / A)
    best = hard_value_iteration(dyn, reward, horizon=horizon, discount=discount)
    random = policy_return(dyn, reward, uniform, initial, horizon=horizon, discount=discount)
    optimal = policy_return(dyn, reward, best.policy, initial, horizon=horizon, discount=discount)
    return random, optimal
