"""Offline policy evaluation on a logged bandit feedback: replay, IPS, SNIPS, DR.

A log is a sequence of (context, action, reward, propensity), the propensity being the
probability with which the *logging* policy chose the logged action. A *target* policy
is described by its action distribution per logged context (n, K).

- ``replay`` (Li et al., 2011): run the policy over the log, keep the events where it
  picks the logged action; unbiased for a uniformly random logging policy, and the only
  estimator here that lets a policy learn as it goes.
- ``ips``: mean of w·r with w = π(a|x) / p. Unbiased, high variance.
- ``snips``: Σw·r / Σw. Self-normalised; small bias, much lower variance.
- ``dr``: Σ_a π(a|x) q̂(x, a) + w·(r − q̂(x, a_logged)), with q̂ from a supplied reward
  regressor. Unbiased if either the propensities or q̂ are right.

Each returns an ``Estimate`` with a percentile confidence interval. IPS/SNIPS/DR use a
bootstrap over events. Replay of a *learning* policy uses permutations of the log instead
(a bootstrap with replacement repeats click rows and inflates learners); replay of a fixed
policy bootstraps its matched events.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from .errors import BanditError


@dataclass(frozen=True)
class BanditLog:
    """Logged bandit feedback. ``actions`` are indices 0..n_actions-1; ``action_ids``
    optionally names them."""

    contexts: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    propensities: np.ndarray
    n_actions: int
    action_ids: tuple | None = None

    def __post_init__(self):
        contexts = np.asarray(self.contexts, dtype=np.float64)
        actions = np.asarray(self.actions)
        rewards = np.asarray(self.rewards, dtype=np.float64)
        propensities = np.asarray(self.propensities, dtype=np.float64)
        n = len(actions)
        if contexts.ndim != 2 or len(contexts) != n or rewards.shape != (n,) \
                or propensities.shape != (n,) or actions.shape != (n,):
            raise BanditError(
                f"log arrays disagree: contexts {contexts.shape}, actions {actions.shape}, "
                f"rewards {rewards.shape}, propensities {propensities.shape}")
        if n == 0:
            raise BanditError("the log is empty")
        if not np.issubdtype(actions.dtype, np.integer) or actions.min() < 0 \
                or actions.max() >= self.n_actions:
            raise BanditError(f"actions must be integers in [0, {self.n_actions})")
        if not (np.isfinite(contexts).all() and np.isfinite(rewards).all()):
            raise BanditError("the log contains NaN or inf")
        if not ((propensities > 0) & (propensities <= 1)).all():
            raise BanditError("propensities must lie in (0, 1]")
        object.__setattr__(self, "contexts", contexts)
        object.__setattr__(self, "actions", actions.astype(np.int64))
        object.__setattr__(self, "rewards", rewards)
        object.__setattr__(self, "propensities", propensities)

    def __len__(self) -> int:
        return len(self.actions)

    def subset(self, index) -> "BanditLog":
        return BanditLog(self.contexts[index], self.actions[index], self.rewards[index],
                         self.propensities[index], self.n_actions, self.action_ids)


@dataclass(frozen=True)
class Estimate:
    """A policy value with a (1 − level) percentile confidence interval; ``n`` is the
    number of events the estimate rests on (matched events for replay)."""

    value: float
    ci_low: float
    ci_high: float
    n: int

    def as_dict(self) -> dict:
        return {"value": self.value, "ci_low": self.ci_low, "ci_high": self.ci_high, "n": self.n}


def ips(log: BanditLog, action_dist, *, n_bootstrap: int = 1000, level: float = 0.05,
        seed: int = 0) -> Estimate:
    """Inverse propensity scoring."""
    terms = _weights(log, action_dist) * log.rewards
    return _bootstrap_mean(terms, n_bootstrap, level, seed)


def snips(log: BanditLog, action_dist, *, n_bootstrap: int = 1000, level: float = 0.05,
          seed: int = 0) -> Estimate:
    """Self-normalised inverse propensity scoring."""
    w = _weights(log, action_dist)
    if w.sum() <= 0:
        raise BanditError("the target policy never takes a logged action: SNIPS is undefined")
    numerator, denominator = w * log.rewards, w
    value = numerator.sum() / denominator.sum()
    samples = []
    for index in _bootstrap_indices(len(log), n_bootstrap, seed):
        den = denominator[index].sum(axis=1)
        samples.append(np.divide(numerator[index].sum(axis=1), den,
                                 out=np.zeros_like(den), where=den > 0))
    return _interval(float(value), np.concatenate(samples), level, len(log))


def dr(log: BanditLog, action_dist, estimated_rewards, *, n_bootstrap: int = 1000,
       level: float = 0.05, seed: int = 0) -> Estimate:
    """Doubly robust estimate with q̂ = ``estimated_rewards`` (n, K)."""
    dist = _action_dist(log, action_dist)
    q = np.asarray(estimated_rewards, dtype=np.float64)
    if q.shape != dist.shape:
        raise BanditError(f"estimated_rewards must be {dist.shape}, got {q.shape}")
    if not np.isfinite(q).all():
        raise BanditError("estimated_rewards contain NaN or inf")
    rows = np.arange(len(log))
    w = dist[rows, log.actions] / log.propensities
    terms = (dist * q).sum(axis=1) + w * (log.rewards - q[rows, log.actions])
    return _bootstrap_mean(terms, n_bootstrap, level, seed)


def estimate_rewards(regressor, train: BanditLog, contexts) -> np.ndarray:
    """Fit ``regressor`` (scikit-learn style: fit/predict, or predict_proba for
    classifiers) on [context, one-hot action] → reward of ``train``; return q̂ (n, K)
    for every action at each row of ``contexts``."""
    X = np.hstack([train.contexts, np.eye(train.n_actions)[train.actions]])
    regressor.fit(X, train.rewards)
    contexts = np.asarray(contexts, dtype=np.float64)
    n, k = len(contexts), train.n_actions
    grid = np.hstack([np.repeat(contexts, k, axis=0), np.tile(np.eye(k), (n, 1))])
    if hasattr(regressor, "predict_proba"):
        predicted = regressor.predict_proba(grid)[:, 1]
    else:
        predicted = regressor.predict(grid)
    return np.asarray(predicted, dtype=np.float64).reshape(n, k)


def replay(make_policy: Callable[[], object], log: BanditLog, *, learn: bool = True,
           n_resamples: int = 20, level: float = 0.05, seed: int = 0) -> Estimate:
    """Replay evaluation (Li et al., 2011) of the policy made by ``make_policy()``.

    The policy needs ``select(context)`` returning an object with ``.arm`` (an action
    index) and, to learn, ``update(arm, context, reward)``. The point estimate is the
    replay in log order; the interval comes from ``n_resamples`` permutations of the log
    (learning policies) or a bootstrap of the matched events (``learn=False``).
    """
    p = log.propensities
    if not np.allclose(p, p[0], rtol=1e-9, atol=0):
        raise BanditError("replay needs a uniformly random logging policy (equal "
                          "propensities); use ips, snips or dr for this log")
    order = np.arange(len(log))
    matched = _replay_once(make_policy(), log, order, learn)
    if not len(matched):
        raise BanditError("the policy never matched a logged action: replay is undefined")
    value = float(np.mean(matched))
    rng = np.random.default_rng(seed)
    if learn:
        samples = []
        for _ in range(n_resamples):
            rewards = _replay_once(make_policy(), log, rng.permutation(len(log)), learn)
            samples.append(np.mean(rewards) if len(rewards) else np.nan)
        return _interval(value, np.asarray(samples), level, len(matched))
    return _bootstrap_mean(np.asarray(matched), max(n_resamples, 200), level, seed,
                           value=value)


def _replay_once(policy, log: BanditLog, order: np.ndarray, learn: bool) -> list:
    rewards = []
    contexts, actions, rewards_all = log.contexts, log.actions, log.rewards
    for i in order:
        x = contexts[i]
        arm = policy.select(x).arm
        if arm == actions[i]:
            rewards.append(rewards_all[i])
            if learn:
                policy.update(arm, x, rewards_all[i])
    return rewards


def _action_dist(log: BanditLog, action_dist) -> np.ndarray:
    dist = np.asarray(action_dist, dtype=np.float64)
    if dist.shape != (len(log), log.n_actions):
        raise BanditError(f"action_dist must be ({len(log)}, {log.n_actions}), got {dist.shape}")
    if not np.isfinite(dist).all() or (dist < 0).any() \
            or not np.allclose(dist.sum(axis=1), 1.0, atol=1e-6):
        raise BanditError("action_dist rows must be probability distributions")
    return dist


def _weights(log: BanditLog, action_dist) -> np.ndarray:
    dist = _action_dist(log, action_dist)
    return dist[np.arange(len(log)), log.actions] / log.propensities


def _bootstrap_indices(n: int, n_bootstrap: int, seed: int, chunk: int = 100):
    if n_bootstrap < 1:
        raise BanditError(f"n_bootstrap must be >= 1, got {n_bootstrap}")
    rng = np.random.default_rng(seed)
    for start in range(0, n_bootstrap, chunk):
        yield rng.integers(0, n, size=(min(chunk, n_bootstrap - start), n))


def _bootstrap_mean(terms: np.ndarray, n_bootstrap: int, level: float, seed: int,
                    value: float | None = None) -> Estimate:
    samples = np.concatenate([terms[i].mean(axis=1)
                              for i in _bootstrap_indices(len(terms), n_bootstrap, seed)])
    return _interval(float(terms.mean()) if value is None else value, samples, level, len(terms))


def _interval(value: float, samples: np.ndarray, level: float, n: int) -> Estimate:
    if not 0 < level < 1:
        raise BanditError(f"level must be in (0, 1), got {level}")
    samples = samples[np.isfinite(samples)]
    low, high = np.percentile(samples, [100 * level / 2, 100 * (1 - level / 2)])
    return Estimate(value, float(low), float(high), int(n))


def uniform_distribution(n: int, n_actions: int) -> np.ndarray:
    """The action distribution of the uniformly random policy."""
    return np.full((n, n_actions), 1.0 / n_actions)


def one_hot_distribution(actions: Sequence[int], n_actions: int) -> np.ndarray:
    """The action distribution of a deterministic policy that takes ``actions``."""
    return np.eye(n_actions)[np.asarray(actions, dtype=np.int64)]
