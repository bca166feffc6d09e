"""Off-policy evaluation of a candidate selection policy on a store's event log.

The served events carry their context, the candidate arms, the arm chosen, its logged
propensity and the reward. The candidate policy (LinUCB with a given α, one model per
category, or uniform random choice) learns from the first part of the rewarded events in
time order, then its action distribution on the rest is scored with IPS and SNIPS
against the logged propensities (``bandit.evaluation``); the logged policy's observed
reward on the same events is the reference.
"""

from __future__ import annotations

import json

import numpy as np

from bandit import LinUCB
from bandit.evaluation import BanditLog, ips, snips

from .errors import StudioError
from .store import Store

POLICIES = ("linucb", "random")


def evaluate_policy(store: Store, *, policy: str = "linucb", alpha: float = 0.5,
                    train_share: float = 0.5, seed: int = 0) -> dict:
    if policy not in POLICIES:
        raise StudioError(f"unknown policy {policy!r}; choose one of: {', '.join(POLICIES)}")
    if not 0 <= train_share < 1:
        raise StudioError(f"train share must be in [0, 1), got {train_share}")
    rows = store.query(
        "SELECT e.category, e.arm_id, e.candidates, e.context, e.propensity, r.reward "
        "FROM events e JOIN rewards r ON r.event_id = e.event_id ORDER BY e.created_at, r.seq")
    if len(rows) < 20:
        raise StudioError(f"the store has {len(rows)} rewarded events; at least 20 are needed")
    split = int(len(rows) * train_share)
    contexts = [np.array(json.loads(r["context"])) for r in rows]
    models: dict[str, LinUCB] = {}
    all_arms = sorted({a for r in rows for a in json.loads(r["candidates"])})
    index = {a: i for i, a in enumerate(all_arms)}

    def model(category: str, dim: int) -> LinUCB:
        if category not in models:
            models[category] = LinUCB(dim, alpha=alpha, seed=seed)
        return models[category]

    for row, x in zip(rows[:split], contexts[:split]):
        m = model(row["category"], len(x))
        for arm in json.loads(row["candidates"]):
            if arm not in m.arms:
                m.add_arm(arm)
        m.update(row["arm_id"], x, row["reward"])

    test = rows[split:]
    dist = np.zeros((len(test), len(all_arms)))
    for i, (row, x) in enumerate(zip(test, contexts[split:])):
        candidates = json.loads(row["candidates"])
        if policy == "random":
            dist[i, [index[a] for a in candidates]] = 1.0 / len(candidates)
            continue
        m = model(row["category"], len(x))
        for arm in candidates:
            if arm not in m.arms:
                m.add_arm(arm)
        decision = m.select(x, arms=candidates)
        dist[i, [index[a] for a in decision.arms]] = decision.propensities
    log = BanditLog(np.stack(contexts[split:]), np.array([index[r["arm_id"]] for r in test]),
                    np.array([r["reward"] for r in test], dtype=float),
                    np.array([r["propensity"] for r in test], dtype=float), len(all_arms))
    return {
        "policy": policy, "alpha": alpha if policy == "linucb" else None,
        "events": len(rows), "train_events": split, "test_events": len(test),
        "logged_reward": float(log.rewards.mean()),
        "ips": ips(log, dist, seed=seed).as_dict(),
        "snips": snips(log, dist, seed=seed).as_dict(),
    }
