"""Disjoint LinUCB (Li et al., 2010) for the request path of a selection service.

Each arm keeps a ridge regression of reward on context: A = A₀ + Σxxᵀ (A₀ = λI unless a
prior says otherwise), b = b₀ + Σrx, θ = A⁻¹b; the arm's score for context x is
θᵀx + α·√(xᵀA⁻¹x). A⁻¹ is kept up to date with Sherman–Morrison rank-1 updates and
recomputed exactly every ``refresh_every`` updates of an arm, in float64.

Speed: the exploration term of all arms is one matrix-vector product of the packed upper
triangles of the A⁻¹ (off-diagonal entries doubled, α² folded in) with the packed upper
triangle of xxᵀ — half the memory traffic of a full (K, d, d) product. That scoring copy
is kept in float32 (half again; relative error about 1e-7, far below any score gap that
matters, and scores within 1e-6 count as ties); the model itself — A, A⁻¹, b, θ and the
expected rewards — is float64. Arms live in preallocated stacked arrays, so adding and
removing arms in a live model is cheap.

Every decision draws exactly one uniform number from the model's seeded generator and
picks from the policy's action distribution, which it reports: the propensity of the
chosen arm is logged for offline evaluation. ``policy="ucb"`` is deterministic up to
ties (broken uniformly); ``"epsilon"`` mixes in uniform exploration; ``"softmax"``
samples in proportion to exp(score / temperature). ``"thompson"`` is linear Thompson
sampling (Agrawal & Goyal, 2013): each arm's score is a draw from its posterior predictive
N(θᵀx, α²·xᵀA⁻¹x) (α is the posterior scale here); it draws ``thompson_draws`` score
vectors, plays the argmax of the first, and reports the share of draws each arm wins
as its propensity (an estimate, floored at 1/``thompson_draws``).

Why this module is long: ``LinUCB`` is one model whose stacked arm arrays, packed float32
scoring copy, Sherman–Morrison updates, priors, policies and persistence must change
together (adding or removing an arm, an update and a refresh each touch all of them);
split across modules, every change would reach into the others' private arrays.
"""

from __future__ import annotations

import threading
from numbers import Integral, Real
from typing import Hashable, Iterable, Sequence

import numpy as np
from scipy.linalg.blas import dger

from .errors import BanditError
from .records import BatchDecision, CTRPrior, Decision, ParameterPrior

POLICIES = ("ucb", "epsilon", "softmax", "thompson")
#: Scores this close (relative) count as a tie: arms in the same state must tie even when
#: a matrix product rounds their (float32) bonuses differently in the last bits.
TIE_TOLERANCE = 1e-6


class LinUCB:
    """Disjoint LinUCB with live arm management, warm starts and logged propensities.

    Parameters
    ----------
    n_features : length of the context vectors passed in (0 with ``fit_intercept``: a
        context-free bandit whose arms learn their mean reward alone).
    alpha : width of the confidence bound (exploration), >= 0.
    l2 : ridge strength λ > 0 (A starts as λI).
    fit_intercept : append a constant 1 to every context (needed for CTR priors
        without a context).
    policy : ``ucb`` (argmax, ties uniform), ``epsilon``, ``softmax`` or ``thompson``.
    epsilon : uniform-exploration share for ``policy="epsilon"``.
    temperature : softmax temperature for ``policy="softmax"``.
    thompson_draws : posterior draws per decision for ``policy="thompson"`` (the first
        decides, all of them estimate the propensities).
    refresh_every : exact re-inversion of an arm's A after this many rank-1 updates.
    seed : seed of the generator used for tie-breaking and randomised policies.

    Examples
    --------
    >>> model = LinUCB(n_features=3, alpha=0.5)
    >>> model.add_arm("beach"); model.add_arm("marble")
    >>> decision = model.select([1.0, 0.0, 0.2])
    >>> model.update(decision.arm, [1.0, 0.0, 0.2], reward=1.0)
    """

    def __init__(self, n_features: int, *, alpha: float = 1.0, l2: float = 1.0,
                 fit_intercept: bool = True, policy: str = "ucb", epsilon: float = 0.05,
                 temperature: float = 0.1, thompson_draws: int = 256,
                 refresh_every: int = 1000, seed: int = 0):
        _check(isinstance(n_features, Integral) and not isinstance(n_features, bool)
               and n_features >= (0 if fit_intercept else 1),
               f"n_features must be an integer >= 1 (>= 0 with fit_intercept), got {n_features!r}")
        _check(_finite_real(alpha) and alpha >= 0, f"alpha must be a finite number >= 0, got {alpha!r}")
        _check(_finite_real(l2) and l2 > 0, f"l2 must be a finite number > 0, got {l2!r}")
        _check(policy in POLICIES, f"policy must be one of {', '.join(POLICIES)}, got {policy!r}")
        _check(_finite_real(epsilon) and 0 <= epsilon <= 1,
               f"epsilon must be in [0, 1], got {epsilon!r}")
        _check(_finite_real(temperature) and temperature > 0,
               f"temperature must be > 0, got {temperature!r}")
        _check(isinstance(thompson_draws, Integral) and not isinstance(thompson_draws, bool)
               and thompson_draws >= 1,
               f"thompson_draws must be an integer >= 1, got {thompson_draws!r}")
        _check(isinstance(refresh_every, Integral) and refresh_every >= 1,
               f"refresh_every must be an integer >= 1, got {refresh_every!r}")
        _check(isinstance(seed, Integral), f"seed must be an integer, got {seed!r}")
        self.n_features = int(n_features)
        self.alpha = float(alpha)
        self.l2 = float(l2)
        self.fit_intercept = bool(fit_intercept)
        self.policy = policy
        self.epsilon = float(epsilon)
        self.temperature = float(temperature)
        self.thompson_draws = int(thompson_draws)
        self.refresh_every = int(refresh_every)
        self.seed = int(seed)
        self._rng = np.random.default_rng(self.seed)
        self._lock = threading.RLock()
        d = self.dim
        self._upper0, self._upper1 = np.triu_indices(d)
        self._upper_flat = self._upper0 * d + self._upper1
        # Off-diagonal entries count twice in xᵀA⁻¹x; α² is folded in, so that the
        # exploration bonus is sqrt(packed · packed(xxᵀ)).
        self._pack_weights = np.where(self._upper0 == self._upper1, 1.0, 2.0) * self.alpha ** 2
        self._ids: list = []
        self._ids_tuple: tuple | None = None  # cache of tuple(self._ids)
        self._slots: dict = {}
        self._allocate(8)

    # ----------------------------------------------------------------- properties
    @property
    def dim(self) -> int:
        """Internal dimension: n_features, plus one with an intercept."""
        return self.n_features + int(self.fit_intercept)

    @property
    def arms(self) -> list:
        """Arm ids in insertion order (a removed arm's slot is taken by the last arm)."""
        with self._lock:
            return list(self._ids)

    def counts(self) -> dict:
        """Number of updates per arm."""
        with self._lock:
            return {arm: int(self._counts[k]) for k, arm in enumerate(self._ids)}

    def arm_parameters(self, arm: Hashable) -> dict:
        """Copies of an arm's A, A⁻¹, b and θ (for inspection and tests)."""
        with self._lock:
            k = self._slot(arm)
            return {"A": self._A[k].copy(), "A_inv": self._A_inv[k].copy(),
                    "b": self._b[k].copy(), "theta": self._theta[k].copy(),
                    "count": int(self._counts[k])}

    # ------------------------------------------------------------- arm management
    def add_arm(self, arm: Hashable, prior: ParameterPrior | CTRPrior | Sequence[float] | None = None) -> None:
        """Add an arm to the live model, optionally warm-started from a prior."""
        arm = _arm_id(arm)
        A0, b0 = self._prior_state(prior)
        with self._lock:
            if arm in self._slots:
                raise BanditError(f"arm {arm!r} already exists")
            k = len(self._ids)
            if k == len(self._counts):
                self._grow()
            self._ids.append(arm)
            self._ids_tuple = None
            self._slots[arm] = k
            self._A[k] = A0
            self._b[k] = b0
            self._set_inverse(k, _inverse(A0))
            self._counts[k] = 0
            self._since_refresh[k] = 0

    def remove_arm(self, arm: Hashable) -> None:
        """Remove an arm; its statistics are dropped, the other arms are untouched."""
        with self._lock:
            k = self._slot(arm)
            last = len(self._ids) - 1
            if k != last:  # move the last arm into the freed slot
                for array in self._arrays():
                    array[k] = array[last]
                moved = self._ids[last]
                self._ids[k] = moved
                self._slots[moved] = k
            self._ids.pop()
            self._ids_tuple = None
            del self._slots[arm]

    # ------------------------------------------------------------------ decisions
    def select(self, context: Sequence[float], arms: Iterable[Hashable] | None = None) -> Decision:
        """Choose an arm for one context among ``arms`` (default: all arms)."""
        x = self._context(context)
        x32 = x.astype(np.float32)
        outer = x32[self._upper0] * x32[self._upper1]
        with self._lock:  # a consistent snapshot: no update runs while we read
            ids, rows = self._candidates(arms)
            expected = self._theta[rows] @ x
            variance = self._packed[rows] @ outer
            u = self._rng.random()
        bonus = np.sqrt(np.maximum(variance, 0.0, out=variance), out=variance)
        if self.policy == "thompson":
            with self._lock:
                z = self._rng.standard_normal((1, self.thompson_draws, len(ids)))
            score, probs, chosen = _thompson(expected[None, :], bonus[None, :], z)
            return Decision(ids[chosen[0]], int(chosen[0]), ids, expected, bonus, score[0], probs[0])
        score = expected + bonus
        if self.policy == "softmax":
            probs = self._distribution(score[None, :])[0]
            return Decision(ids[(i := _draw(probs, u))], i, ids, expected, bonus, score, probs)
        index = int(score.argmax())
        top = score[index]
        best = score >= top - TIE_TOLERANCE * max(1.0, abs(top))
        ties = np.count_nonzero(best)
        probs = best / ties
        if self.policy == "epsilon":
            probs = (1.0 - self.epsilon) * probs + self.epsilon / len(score)
            index = _draw(probs, u)
        elif ties > 1:
            index = _draw(probs, u)
        return Decision(ids[index], index, ids, expected, bonus, score, probs)

    def estimate(self, context: Sequence[float], arms: Iterable[Hashable] | None = None
                 ) -> tuple[tuple, np.ndarray, np.ndarray]:
        """(arms, expected rewards, exploration bonuses) for a context, without making a
        decision (the random generator is not touched)."""
        x = self._context(context)
        x32 = x.astype(np.float32)
        outer = x32[self._upper0] * x32[self._upper1]
        with self._lock:
            ids, rows = self._candidates(arms)
            expected = self._theta[rows] @ x
            variance = self._packed[rows] @ outer
        return ids, expected, np.sqrt(np.maximum(variance, 0.0)).astype(np.float64)

    def select_batch(self, contexts, arms: Iterable[Hashable] | None = None) -> BatchDecision:
        """Choose an arm for each row of ``contexts`` (no learning in between); the
        same as calling ``select`` for each row in order."""
        X = self._contexts(contexts)
        Xt = np.ascontiguousarray(X.T, dtype=np.float32)
        outer = Xt[self._upper0] * Xt[self._upper1]  # (packed, n): rows gather contiguously
        with self._lock:
            ids, rows = self._candidates(arms)
            expected = X @ self._theta[rows].T
            variance = (self._packed[rows] @ outer).T
            u = self._rng.random(len(X))
            if self.policy == "thompson":
                z = self._rng.standard_normal((len(X), self.thompson_draws, len(ids)))
        bonus = np.sqrt(np.maximum(variance, 0.0))
        if self.policy == "thompson":
            score, probs, chosen = _thompson(expected, bonus, z)
            return BatchDecision(ids, chosen, expected, bonus, score, probs)
        score = expected + bonus
        probs = self._distribution(score)
        cumulative = np.cumsum(probs, axis=1)
        chosen = (cumulative < (u * cumulative[:, -1])[:, None]).sum(axis=1)
        chosen = np.minimum(chosen, len(ids) - 1)
        return BatchDecision(ids, chosen, expected, bonus, score, probs)

    # ------------------------------------------------------------------- learning
    def update(self, arm: Hashable, context: Sequence[float], reward: float) -> None:
        """Learn one observed reward (Sherman–Morrison rank-1 update of A⁻¹)."""
        x = self._context(context)
        reward = _reward(reward)
        with self._lock:
            k = self._slot(arm)
            self._rank_one(k, x, reward)

    def update_batch(self, arms: Sequence[Hashable], contexts, rewards) -> None:
        """Learn many observations at once. Everything is validated before anything is
        applied: a bad row leaves the model unchanged."""
        X = self._contexts(contexts)
        arms = list(arms)
        r = np.asarray(rewards, dtype=np.float64).reshape(-1)
        if not (len(arms) == len(X) == len(r)):
            raise BanditError(f"arms, contexts and rewards differ in length: "
                              f"{len(arms)}, {len(X)}, {len(r)}")
        if not np.isfinite(r).all():
            raise BanditError("rewards contain NaN or inf")
        with self._lock:
            slots = np.array([self._slot(a) for a in arms], dtype=np.int64)
            for k in np.unique(slots):
                mine = np.flatnonzero(slots == k)
                if len(mine) <= 4:
                    for i in mine:
                        self._rank_one(k, X[i], r[i])
                else:  # many rows: add them at once and invert exactly
                    Xk = X[mine]
                    self._A[k] += Xk.T @ Xk
                    self._b[k] += Xk.T @ r[mine]
                    self._counts[k] += len(mine)
                    self._since_refresh[k] = 0
                    self._set_inverse(k, _inverse(self._A[k]))

    # ---------------------------------------------------------------- persistence
    def save(self, path) -> None:
        """Write the model to ``path`` (a versioned npz file, no pickle)."""
        from .persistence import save_model

        save_model(self, path)

    @classmethod
    def load(cls, path) -> "LinUCB":
        """Read a model written by ``save``; it makes bit-identical decisions."""
        from .persistence import load_model

        return load_model(cls, path)

    # ------------------------------------------------------------------ internals
    def _rank_one(self, k: int, x: np.ndarray, reward: float) -> None:
        A_inv = self._A_inv[k]
        Ax = A_inv @ x
        # In-place BLAS rank-1 updates (dger); the matrices are symmetric, so their
        # transposed (Fortran-ordered) views are updated without a copy.
        dger(-1.0 / (1.0 + x @ Ax), Ax, Ax, a=A_inv.T, overwrite_a=1)
        dger(1.0, x, x, a=self._A[k].T, overwrite_a=1)
        self._b[k] += reward * x
        self._counts[k] += 1
        self._since_refresh[k] += 1
        if self._since_refresh[k] >= self.refresh_every:
            self._since_refresh[k] = 0
            self._A_inv[k] = _inverse(self._A[k])
        self._derive(k)

    def _set_inverse(self, k: int, A_inv: np.ndarray) -> None:
        self._A_inv[k] = A_inv
        self._derive(k)

    def _derive(self, k: int) -> None:
        """θ and the packed scoring row of arm ``k`` from its A⁻¹ and b."""
        A_inv = self._A_inv[k]
        np.dot(A_inv, self._b[k], out=self._theta[k])
        self._packed[k] = A_inv.ravel().take(self._upper_flat) * self._pack_weights

    def _distribution(self, score: np.ndarray) -> np.ndarray:
        """The policy's action distribution per row of scores (n, K)."""
        if self.policy == "softmax":
            z = np.exp((score - score.max(axis=1, keepdims=True)) / self.temperature)
            return z / z.sum(axis=1, keepdims=True)
        top = score.max(axis=1, keepdims=True)
        best = score >= top - TIE_TOLERANCE * np.maximum(1.0, np.abs(top))
        probs = best / best.sum(axis=1, keepdims=True)
        if self.policy == "epsilon":
            probs = (1.0 - self.epsilon) * probs + self.epsilon / score.shape[1]
        return probs

    def _candidates(self, arms) -> tuple[tuple, np.ndarray | slice]:
        if arms is None:
            if not self._ids:
                raise BanditError("the model has no arms; add_arm first")
            if self._ids_tuple is None:
                self._ids_tuple = tuple(self._ids)
            return self._ids_tuple, slice(0, len(self._ids))
        ids = tuple(arms)
        if not ids:
            raise BanditError("the set of candidate arms is empty")
        return ids, np.array([self._slot(a) for a in ids], dtype=np.int64)

    def _slot(self, arm: Hashable) -> int:
        try:
            return self._slots[arm]
        except (KeyError, TypeError):
            raise BanditError(f"unknown arm {arm!r}") from None

    def _context(self, context) -> np.ndarray:
        given = np.asarray(context, dtype=np.float64)
        if given.shape != (self.n_features,):
            raise BanditError(f"context must have {self.n_features} features, got shape {given.shape}")
        x = np.empty(self.dim)
        x[: self.n_features] = given
        if self.fit_intercept:
            x[-1] = 1.0
        if not np.isfinite(x).all():
            raise BanditError("context contains NaN or inf")
        return x

    def _contexts(self, contexts) -> np.ndarray:
        X = np.asarray(contexts, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise BanditError(f"contexts must be (n, {self.n_features}), got shape {X.shape}")
        if not np.isfinite(X).all():
            raise BanditError("contexts contain NaN or inf")
        if self.fit_intercept:
            X = np.hstack([X, np.ones((len(X), 1))])
        return X

    def _prior_state(self, prior) -> tuple[np.ndarray, np.ndarray]:
        d = self.dim
        eye = np.eye(d)
        if prior is None:
            return self.l2 * eye, np.zeros(d)
        if not isinstance(prior, (ParameterPrior, CTRPrior)):
            prior = ParameterPrior(prior)
        _check(_finite_real(prior.pseudo_count) and prior.pseudo_count > 0,
               f"pseudo_count must be > 0, got {prior.pseudo_count!r}")
        if isinstance(prior, ParameterPrior):
            theta = self._prior_vector(prior.theta, "prior theta")
            strength = self.l2 + prior.pseudo_count
            return strength * eye, strength * theta
        _check(_finite_real(prior.ctr), f"prior ctr must be a finite number, got {prior.ctr!r}")
        if prior.context is None:
            _check(self.fit_intercept, "a CTR prior without a context needs fit_intercept=True")
            e = np.zeros(d)
            e[-1] = 1.0
        else:
            e = self._context(prior.context)
        n = float(prior.pseudo_count)
        return self.l2 * eye + n * np.outer(e, e), n * float(prior.ctr) * e

    def _prior_vector(self, values, what: str) -> np.ndarray:
        v = np.asarray(values, dtype=np.float64).reshape(-1)
        if v.shape == (self.n_features,) and self.fit_intercept:
            v = np.append(v, 0.0)
        if v.shape != (self.dim,):
            raise BanditError(f"{what} must have {self.n_features} (or {self.dim} with the "
                              f"intercept) values, got {v.shape[0]}")
        if not np.isfinite(v).all():
            raise BanditError(f"{what} contains NaN or inf")
        return v

    def _allocate(self, capacity: int) -> None:
        d, packed = self.dim, len(self._pack_weights)
        self._A = np.zeros((capacity, d, d))
        self._A_inv = np.zeros((capacity, d, d))
        self._b = np.zeros((capacity, d))
        self._theta = np.zeros((capacity, d))
        self._packed = np.zeros((capacity, packed), dtype=np.float32)
        self._counts = np.zeros(capacity, dtype=np.int64)
        self._since_refresh = np.zeros(capacity, dtype=np.int64)

    def _arrays(self) -> list[np.ndarray]:
        return [self._A, self._A_inv, self._b, self._theta, self._packed, self._counts,
                self._since_refresh]

    def _grow(self) -> None:
        old = self._arrays()
        self._allocate(2 * len(self._counts))
        for new, array in zip(self._arrays(), old):
            new[: len(array)] = array


def _thompson(expected: np.ndarray, bonus: np.ndarray, z: np.ndarray):
    """Posterior-predictive draws (n, draws, K) → (first draw's scores (n, K), share of
    draws each arm wins (n, K), floored at 1/draws and renormalised, chosen index (n,))."""
    draws = expected[:, None, :] + bonus[:, None, :] * z
    winners = draws.argmax(axis=2)  # (n, draws)
    n, m, k = z.shape
    probs = np.zeros((n, k))
    np.add.at(probs, (np.repeat(np.arange(n), m), winners.ravel()), 1.0)
    probs = np.maximum(probs / m, 1.0 / m)
    probs /= probs.sum(axis=1, keepdims=True)
    return draws[:, 0, :], probs, winners[:, 0]


def _draw(probs: np.ndarray, u: float) -> int:
    cumulative = np.cumsum(probs)
    return min(int((cumulative < u * cumulative[-1]).sum()), len(probs) - 1)


def _inverse(A: np.ndarray) -> np.ndarray:
    inv = np.linalg.inv(A)
    return (inv + inv.T) / 2.0


def _arm_id(arm):
    if isinstance(arm, (bool, np.bool_)):
        raise BanditError(f"arm ids must be str or int, got {arm!r}")
    if isinstance(arm, Integral):
        return int(arm)
    if isinstance(arm, str):
        return arm
    raise BanditError(f"arm ids must be str or int, got {type(arm).__name__}")


def _reward(reward) -> float:
    if not _finite_real(reward):
        raise BanditError(f"reward must be a finite number, got {reward!r}")
    return float(reward)


def _finite_real(value) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool) and np.isfinite(value)


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise BanditError(message)
