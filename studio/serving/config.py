"""How the selection service decides: ``ServingConfig`` and the bandit it builds.

The ad formats a request may name, the decision rule and its exploration, how much the
reward model's prior counts, and what each arm regresses on. Simulations build their
bandits with the very same ``new_model`` and ``arm_prior`` the service uses.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from bandit import CTRPrior, LinUCB
from pipelines.placement import FORMATS

from ..errors import StudioError

#: The ad formats a request may name (defined once, in ``pipelines.placement``).
PLACEMENTS = tuple(FORMATS)
CONTEXTS = ("cluster", "user")


@dataclass(frozen=True)
class ServingConfig:
    """How the service explores and how much it trusts the reward model's priors.

    The defaults are the ones ``bench/evaluation.py`` picked in a world the studio cannot
    see (see README, "Evidence"): the decision rule ``policy`` over LinUCB's estimates
    with width ``alpha`` (``thompson``: α is the posterior scale), ``epsilon`` for the
    ``epsilon`` rule, and ``prior_impressions``: how many impressions an arm's predicted
    CTR counts for when the store has no calibrated value (``batch`` writes one per arm,
    from the reward model's error on held-out creatives). ``context`` is what each arm
    regresses on: ``cluster`` — nothing beyond the arm itself, since every pool already
    belongs to one cluster (each arm learns its mean CTR for that cluster) — or ``user``
    — the user's encoded features (unit length) and the placement, one-hot.
    """

    policy: str = "epsilon"
    alpha: float = 0.1
    epsilon: float = 0.05
    prior_impressions: float = 100.0
    context: str = "cluster"
    seed: int = 0

    def __post_init__(self):
        from bandit import POLICIES

        if self.policy not in POLICIES:
            raise StudioError(f"policy must be one of {', '.join(POLICIES)}, got {self.policy!r}")
        if not (np.isfinite(self.alpha) and self.alpha >= 0):
            raise StudioError(f"alpha must be a number >= 0, got {self.alpha}")
        if not 0 <= self.epsilon <= 1:
            raise StudioError(f"epsilon must be in [0, 1], got {self.epsilon}")
        if self.context not in CONTEXTS:
            raise StudioError(f"context must be one of {', '.join(CONTEXTS)}, got {self.context!r}")
        if not (np.isfinite(self.prior_impressions) and self.prior_impressions > 0):
            raise StudioError(f"prior_impressions must be > 0, got {self.prior_impressions}")

    def with_changes(self, **changes) -> "ServingConfig":
        return replace(self, **changes)


def model_features(contexts: np.ndarray, config: ServingConfig) -> np.ndarray:
    """What the bandit regresses on, from full context vectors (user features and
    placement, as ``SelectionService.context`` builds them; one or many rows)."""
    return contexts if config.context == "user" else contexts[..., :0]


def new_model(dim: int, config: ServingConfig) -> LinUCB:
    """The bandit of one product category, as the service builds it (``dim``: the full
    context's length; the model sees ``model_features`` of it)."""
    width = dim if config.context == "user" else 0
    return LinUCB(width, alpha=config.alpha, policy=config.policy, epsilon=config.epsilon,
                  seed=config.seed)


def arm_prior(prior_ctr: float | None, prior_impressions: float | None,
              config: ServingConfig) -> CTRPrior | None:
    """The warm start of an arm: its predicted CTR counted as ``prior_impressions``
    impressions (the store's calibrated value, else the config's)."""
    if prior_ctr is None:
        return None
    return CTRPrior(float(prior_ctr), float(prior_impressions or config.prior_impressions))
