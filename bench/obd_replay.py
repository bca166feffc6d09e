"""Policies on real logged clicks: the Open Bandit Dataset's uniformly random log.

For LinUCB at α ∈ {0.1, 0.5, 1.0}, uniform random choice, and greedy on empirical CTR:
- replay (Li et al., 2011) over the whole log, the policy learning as it goes; the
  interval comes from permutations of the log;
- IPS, SNIPS and DR (logistic-regression reward model) on the second half of the log
  for the policy as trained on the first half, with bootstrap intervals;
- where obp's estimators import, the same IPS/SNIPS/DR computed by obp on the same
  inputs: they must agree to 1e-9.

The sample is small (10,000 rounds, ~40 clicks, 80 items): a replay keeps ~125 events
with a handful of clicks, so the intervals are wide and cannot rank the policies. The
bench shows that loading, replay and the estimators work on real data and agree with
obp — not which policy wins.

    python bench/obd_replay.py [--resamples 10] [--campaign all]

The last line is JSON with every estimate and the obp agreement.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from bandit import LinUCB  # noqa: E402
from bandit.evaluation import dr, estimate_rewards, ips, replay, snips  # noqa: E402
from bandit.obd import load_obd  # noqa: E402
from bandit.policies import GreedyPolicy, RandomPolicy  # noqa: E402

ALPHAS = (0.1, 0.5, 1.0)


def linucb_factory(n_features: int, n_actions: int, alpha: float):
    def make():
        model = LinUCB(n_features, alpha=alpha, l2=1.0, seed=0)
        for arm in range(n_actions):
            model.add_arm(arm)
        return model
    return make


def trained_distribution(name: str, make, train, test) -> np.ndarray:
    """The action distribution on ``test`` of the policy trained on ``train``'s events."""
    policy = make()
    if name.startswith("linucb"):
        policy.update_batch(list(train.actions), train.contexts, train.rewards)
        return policy.select_batch(test.contexts).propensities
    for x, a, r in zip(train.contexts, train.actions, train.rewards):
        policy.update(int(a), x, float(r))
    return policy.action_distribution(test.contexts)


def obp_estimates(test, dist, q) -> dict | None:
    try:
        from obp.ope import (
            DoublyRobust,
            InverseProbabilityWeighting,
            SelfNormalizedInverseProbabilityWeighting,
        )
    except Exception:  # obp pins old dependencies; it may not import
        return None
    inputs = dict(reward=test.rewards, action=test.actions, pscore=test.propensities,
                  action_dist=dist[:, :, None], position=np.zeros(len(test), dtype=int))
    return {
        "ips": float(InverseProbabilityWeighting().estimate_policy_value(**inputs)),
        "snips": float(SelfNormalizedInverseProbabilityWeighting().estimate_policy_value(**inputs)),
        "dr": float(DoublyRobust().estimate_policy_value(
            **inputs, estimated_rewards_by_reg_model=q[:, :, None])),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resamples", type=int, default=10, help="replay permutations")
    parser.add_argument("--campaign", default="all", choices=("all", "men", "women"))
    args = parser.parse_args()
    from sklearn.linear_model import LogisticRegression

    log = load_obd("random", args.campaign)
    d, k = log.contexts.shape[1], log.n_actions
    print(f"Open Bandit Dataset random/{args.campaign}: {len(log)} rounds, {k} items, "
          f"{int(log.rewards.sum())} clicks, CTR {log.rewards.mean():.4%}, {d} context features")
    policies = {f"linucb_a{a}": linucb_factory(d, k, a) for a in ALPHAS}
    policies["random"] = lambda: RandomPolicy(k, seed=0)
    policies["greedy"] = lambda: GreedyPolicy(k, seed=0)

    half = len(log) // 2
    train, test = log.subset(slice(0, half)), log.subset(slice(half, None))
    q = estimate_rewards(LogisticRegression(max_iter=2000), train, test.contexts)

    results, disagreement = {}, 0.0
    print(f"{'policy':>12} {'replay CTR [95% CI]':>30} {'n':>4}   "
          f"{'IPS':>8} {'SNIPS':>8} {'DR':>8}   seconds")
    for name, make in policies.items():
        started = time.perf_counter()
        rep = replay(make, log, learn=True, n_resamples=args.resamples, seed=1)
        dist = trained_distribution(name, make, train, test)
        estimates = {"ips": ips(test, dist, seed=2), "snips": snips(test, dist, seed=2),
                     "dr": dr(test, dist, q, seed=2)}
        row = {"replay": rep.as_dict(), **{k_: e.as_dict() for k_, e in estimates.items()}}
        theirs = obp_estimates(test, dist, q)
        if theirs is not None:
            row["obp"] = theirs
            disagreement = max(disagreement, *(abs(theirs[m] - estimates[m].value)
                                               for m in theirs))
        results[name] = row
        print(f"{name:>12} {rep.value:>9.4%} [{rep.ci_low:.4%}, {rep.ci_high:.4%}] {rep.n:>4}   "
              f"{estimates['ips'].value:>8.4%} {estimates['snips'].value:>8.4%} "
              f"{estimates['dr'].value:>8.4%}   {time.perf_counter() - started:.1f}")
    obp_checked = all("obp" in row for row in results.values())
    if obp_checked:
        print(f"max |ours - obp| over IPS/SNIPS/DR: {disagreement:.2e}")
    else:
        print("obp's estimators did not import: agreement not checked")
    print(json.dumps({"rounds": len(log), "clicks": int(log.rewards.sum()), "results": results,
                      "obp_max_abs_diff": disagreement if obp_checked else None,
                      "obp_agree_1e-9": (disagreement < 1e-9) if obp_checked else None}))


if __name__ == "__main__":
    main()
