"""The values LinUCB takes and gives: priors for warm starts, and decisions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Hashable, Sequence

import numpy as np


@dataclass(frozen=True)
class ParameterPrior:
    """Warm start from a mean parameter vector: the arm starts at θ = ``theta`` and is
    regularised toward it with strength λ + ``pseudo_count``."""

    theta: Sequence[float]
    pseudo_count: float = 1.0


@dataclass(frozen=True)
class CTRPrior:
    """Warm start from a predicted reward (e.g. a reward-model CTR): ``pseudo_count``
    pseudo-observations of reward ``ctr`` at ``context`` — by default the intercept alone,
    so the arm predicts about ``ctr`` for every context until real feedback arrives."""

    ctr: float
    pseudo_count: float = 10.0
    context: Sequence[float] | None = None


@dataclass(slots=True)
class Decision:
    """One selection. ``arms`` are the candidates in order; the arrays are per candidate;
    ``propensities`` is the policy's action distribution and ``propensity`` the
    probability of the arm chosen."""

    arm: Hashable
    index: int
    arms: tuple
    expected: np.ndarray
    bonus: np.ndarray
    score: np.ndarray
    propensities: np.ndarray

    @property
    def propensity(self) -> float:
        return float(self.propensities[self.index])


@dataclass(slots=True)
class BatchDecision:
    """Selections for n contexts over the same candidates; arrays are (n, K) except
    ``chosen`` (the candidate index per context) and ``propensity`` (n,)."""

    arms: tuple
    chosen: np.ndarray
    expected: np.ndarray
    bonus: np.ndarray
    score: np.ndarray
    propensities: np.ndarray

    @property
    def chosen_arms(self) -> list:
        return [self.arms[i] for i in self.chosen]

    @property
    def propensity(self) -> np.ndarray:
        return self.propensities[np.arange(len(self.chosen)), self.chosen]

    def __len__(self) -> int:
        return len(self.chosen)

    def __getitem__(self, row: int) -> Decision:
        i = int(self.chosen[row])
        return Decision(self.arms[i], i, self.arms, self.expected[row], self.bonus[row],
                        self.score[row], self.propensities[row])
