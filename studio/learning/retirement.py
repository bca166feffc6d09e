"""Which arms of a pool a round of ``studio evolve`` retires: only those the data condemn.

A round of a real campaign gives a pool a few thousand impressions; at a 2 % CTR that is
too few clicks to tell most arms apart, and retiring "the lowest mean" is then close to a
random draw that throws away arms the bandit has not yet learned. So an arm retires only

- ``confident``: when its upper bound is below the pool's best lower bound (Beta
  intervals of the observed clicks alone, at ``z`` standard errors), or when it is the
  lowest posterior mean (the reward-model prior counted as its pseudo-impressions, plus
  the clicks) among the arms that have had ``min_impressions`` impressions — an arm that
  has been given its chance and is still last. Arms newer than that are not judged yet;
- ``lowest`` (the rule before): the lowest posterior mean, whatever the evidence.

The pool's best arm (highest posterior mean) never retires, nor does a pool shrink below
``min_arms``. Each retirement carries its reason in words.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RULES = ("confident", "lowest")


@dataclass(frozen=True)
class ArmEvidence:
    """What a pool knows about one of its arms."""

    arm_id: str
    impressions: int
    clicks: float
    prior_ctr: float | None
    prior_impressions: float  # how many impressions the prior counts for

    @property
    def posterior_mean(self) -> float:
        """The prior's pseudo-impressions plus the observed clicks (the bandit's mean
        for a cluster-context arm)."""
        if self.prior_ctr is None:
            return self.clicks / self.impressions if self.impressions else 0.0
        n0 = self.prior_impressions
        return (n0 * self.prior_ctr + self.clicks) / (n0 + self.impressions)

    def bounds(self, z: float) -> tuple[float, float]:
        """(lower, upper) bound of the CTR from the clicks alone (a Beta(1 + clicks,
        1 + misses) mean ± z standard deviations, clipped to [0, 1])."""
        a, b = 1.0 + self.clicks, 1.0 + self.impressions - self.clicks
        mean = a / (a + b)
        sd = np.sqrt(a * b / ((a + b) ** 2 * (a + b + 1)))
        return max(0.0, mean - z * sd), min(1.0, mean + z * sd)


def choose_retirements(arms: list[ArmEvidence], *, rule: str = "confident", retire: int = 1,
                       min_arms: int = 2, min_impressions: int = 300,
                       z: float = 1.96) -> list[tuple[str, str]]:
    """(arm id, reason) of the arms to retire, worst first, at most ``retire``."""
    if rule not in RULES:
        raise ValueError(f"rule must be one of {', '.join(RULES)}, got {rule!r}")
    room = min(retire, len(arms) - min_arms)
    if room <= 0:
        return []
    ranked = sorted(arms, key=lambda a: (a.posterior_mean, a.arm_id))
    best = ranked[-1]
    if rule == "lowest":
        return [(a.arm_id, f"lowest posterior mean {a.posterior_mean:.3%}") for a in ranked[:room]]
    best_lower = max(a.bounds(z)[0] for a in arms)
    chosen, judged = [], False
    for arm in ranked[:-1]:
        upper = arm.bounds(z)[1]
        if upper < best_lower:
            reason = (f"its upper bound {upper:.3%} is below the pool's best lower bound "
                      f"{best_lower:.3%} ({arm.impressions} impressions, {arm.clicks:g} clicks)")
        elif not judged and arm.impressions >= min_impressions:
            judged = True
            reason = (f"lowest posterior mean {arm.posterior_mean:.3%} of the arms given "
                      f"{min_impressions}+ impressions ({arm.impressions}; best: "
                      f"{best.posterior_mean:.3%})")
        else:
            continue
        chosen.append((arm.arm_id, reason))
        if len(chosen) == room:
            break
    return chosen
