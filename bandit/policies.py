"""Context-free baseline policies with the same select/update shape as LinUCB, for
offline evaluation and simulations: uniform random, and greedy on empirical CTR."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import BanditError


@dataclass(slots=True)
class Choice:
    """A baseline's decision: the arm and the policy's action distribution."""

    arm: int
    propensities: np.ndarray

    @property
    def propensity(self) -> float:
        return float(self.propensities[self.arm])


class RandomPolicy:
    """Chooses uniformly among ``n_actions`` arms (0..n_actions-1)."""

    def __init__(self, n_actions: int, *, seed: int = 0):
        if n_actions < 1:
            raise BanditError(f"n_actions must be >= 1, got {n_actions}")
        self.n_actions = n_actions
        self._rng = np.random.default_rng(seed)
        self._probs = np.full(n_actions, 1.0 / n_actions)

    def select(self, context=None) -> Choice:
        return Choice(int(self._rng.integers(self.n_actions)), self._probs)

    def update(self, arm: int, context, reward: float) -> None:
        """Random choice learns nothing."""

    def action_distribution(self, contexts) -> np.ndarray:
        return np.full((len(contexts), self.n_actions), 1.0 / self.n_actions)


class GreedyPolicy:
    """Chooses the arm with the highest posterior-mean CTR under a Beta(a, b) prior
    (ties broken uniformly); context-free."""

    def __init__(self, n_actions: int, *, prior_clicks: float = 1.0,
                 prior_misses: float = 1.0, seed: int = 0):
        if n_actions < 1:
            raise BanditError(f"n_actions must be >= 1, got {n_actions}")
        self.n_actions = n_actions
        self.clicks_ = np.full(n_actions, float(prior_clicks))
        self.pulls_ = np.full(n_actions, float(prior_clicks + prior_misses))
        self._rng = np.random.default_rng(seed)

    def select(self, context=None) -> Choice:
        probs = self._greedy()
        arm = int(self._rng.choice(self.n_actions, p=probs))
        return Choice(arm, probs)

    def update(self, arm: int, context, reward: float) -> None:
        self.clicks_[arm] += reward
        self.pulls_[arm] += 1

    def action_distribution(self, contexts) -> np.ndarray:
        return np.tile(self._greedy(), (len(contexts), 1))

    def _greedy(self) -> np.ndarray:
        mean = self.clicks_ / self.pulls_
        best = mean == mean.max()
        return best / best.sum()
