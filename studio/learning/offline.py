"""Off-policy evaluation of a candidate selection policy on a store's event log.

The served events carry what the bandit saw (its features), the candidate arms, the arm
chosen, its logged propensity and the reward. A candidate is scored on the later part of
the rewarded events (time order) with IPS, SNIPS and DR against the logged propensities
(``bandit.evaluation``: intervals widened to a Wilson bound at the effective sample size,
refused when the candidate overlaps the log too little); the logged policy's observed
reward on the same events is the reference. Candidates:

- ``greedy_prior``: the arm with the best reward-model prior, never learning — the
  baseline a bandit must beat;
- ``random``: uniform among the candidates;
- ``bandit``: the service's bandit (``ServingConfig``, with ``alpha`` and ``rule``
  overriding it), warm-started from the arms' priors as the service does, learning from
  the first ``train_share`` of the events, then frozen.

DR's reward model is the arms' prior CTR (fitted on the past, not on this log).
"""

from __future__ import annotations

import numpy as np

from bandit import BanditError
from bandit.evaluation import BanditLog, dr, ips, snips

from ..errors import StudioError
from ..serving.config import ServingConfig, arm_prior, new_model
from ..store import Store

CANDIDATES = ("bandit", "greedy_prior", "random")


def evaluate_policy(store: Store, *, policy: str = "bandit", alpha: float | None = None,
                    rule: str | None = None, train_share: float = 0.5, seed: int = 0,
                    config: ServingConfig | None = None) -> dict:
    """Estimates of ``policy``'s CTR on the later events of the store's log."""
    if policy not in CANDIDATES:
        raise StudioError(f"unknown policy {policy!r}; choose one of: {', '.join(CANDIDATES)}")
    if not 0 <= train_share < 1:
        raise StudioError(f"train share must be in [0, 1), got {train_share}")
    config = config or ServingConfig()
    changes = {k: v for k, v in (("alpha", alpha), ("policy", rule)) if v is not None}
    config = config.with_changes(seed=seed, **changes)
    rows = store.rewarded_events()  # time order
    if len(rows) < 20:
        raise StudioError(f"the store has {len(rows)} rewarded events; at least 20 are needed")
    arms = store.arm_priors()
    split = int(len(rows) * train_share)
    contexts = [np.array(r.context, dtype=np.float64) for r in rows]
    all_arms = sorted({a for r in rows for a in r.candidates})
    index = {a: i for i, a in enumerate(all_arms)}
    models: dict = {}

    def model(category: str, width: int):
        if category not in models:
            models[category] = new_model(width, config.with_changes(context="user"))
        return models[category]

    def ensure(m, candidates) -> None:
        for arm in candidates:
            if arm not in m.arms:
                known = arms.get(arm, {})
                m.add_arm(arm, prior=arm_prior(known.get("prior_ctr"), known.get("prior_impressions"),
                                               config))

    if policy == "bandit":
        for row, x in zip(rows[:split], contexts[:split]):
            m = model(row.category, len(x))
            ensure(m, row.candidates)
            m.update(row.arm_id, x, row.reward)

    test = rows[split:]
    dist = np.zeros((len(test), len(all_arms)))
    prior = np.zeros((len(test), len(all_arms)))
    for i, (row, x) in enumerate(zip(test, contexts[split:])):
        candidates = row.candidates
        columns = [index[a] for a in candidates]
        values = [arms.get(a, {}).get("prior_ctr") for a in candidates]
        prior[i, columns] = [0.0 if v is None else v for v in values]
        if policy == "random":
            dist[i, columns] = 1.0 / len(candidates)
        elif policy == "greedy_prior":
            best = int(np.argmax([-np.inf if v is None else v for v in values]))
            dist[i, columns[best]] = 1.0
        else:
            m = model(row.category, len(x))
            ensure(m, candidates)
            decision = m.select(x, arms=candidates)
            dist[i, [index[a] for a in decision.arms]] = decision.propensities
    log = BanditLog(np.stack(contexts[split:]), np.array([index[r.arm_id] for r in test]),
                    np.array([r.reward for r in test], dtype=float),
                    np.array([r.propensity for r in test], dtype=float), len(all_arms))
    report = {
        "policy": policy, "rule": config.policy if policy == "bandit" else None,
        "alpha": config.alpha if policy == "bandit" else None,
        "events": len(rows), "train_events": split, "test_events": len(test),
        "logged_reward": float(log.rewards.mean()),
    }
    for name, estimate in (("ips", lambda: ips(log, dist, seed=seed)),
                           ("snips", lambda: snips(log, dist, seed=seed)),
                           ("dr", lambda: dr(log, dist, prior, seed=seed))):
        try:
            report[name] = estimate().as_dict()
        except BanditError as exc:
            report[name] = {"refused": str(exc)}
    return report
