"""Decisions/s and updates/s of bandit.LinUCB against peer libraries, in the same run.

Single-context ``select`` (one decision per call, as in the selection API) and single
``update``, at d ∈ {16, 64, 256} features and K ∈ {10, 100, 1000} arms, for:
- ours: ``bandit.LinUCB``;
- a plain numpy reference: stacked A⁻¹ with an einsum bonus and Sherman–Morrison updates
  (what one writes in an afternoon);
- MABWiser ``LearningPolicy.LinUCB`` (``predict`` / ``partial_fit``);
- Vowpal Wabbit ``--cb_explore_adf --squarecb`` (select only: it has no LinUCB);
- obp's ``LinUCB`` (``select_action`` / ``update_params``).
Peers that do not install are reported as missing. BLAS runs on one thread for everyone.

    python bench/bandit_speed.py [--quick] [--seconds 0.5]

``--quick`` runs only d=64, K=100. The last line is JSON with every figure and the goal
ratios at d=64, K=100: select ≥ 20× MABWiser and ≥ 5× VW, update ≥ 200× MABWiser.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ["OPENBLAS_NUM_THREADS"] = "1"
os.environ["OMP_NUM_THREADS"] = "1"
os.environ["MKL_NUM_THREADS"] = "1"
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

WARM_ROWS = 300


def rate(fn, seconds: float, limit: int = 200_000) -> float:
    """Calls per second of ``fn(i)`` over about ``seconds`` (at least 3 calls)."""
    fn(0)
    calls, started = 0, time.perf_counter()
    while calls < limit and (calls < 3 or time.perf_counter() - started < seconds):
        fn(calls)
        calls += 1
    return calls / (time.perf_counter() - started)


def ours(d, k, X, r, seconds):
    from bandit import LinUCB

    model = LinUCB(d, alpha=1.0, l2=1.0)
    for arm in range(k):
        model.add_arm(arm)
    model.update_batch(list(np.arange(WARM_ROWS) % k), X[:WARM_ROWS], r[:WARM_ROWS])
    n = len(X)
    select = rate(lambda i: model.select(X[i % n]), seconds)
    update = rate(lambda i: model.update(i % k, X[i % n], r[i % n]), seconds)
    return select, update


class NumpyLinUCB:
    """The straightforward vectorised implementation, as a reference point."""

    def __init__(self, d, k):
        self.A_inv = np.tile(np.eye(d), (k, 1, 1))
        self.b = np.zeros((k, d))
        self.theta = np.zeros((k, d))

    def select(self, x):
        bonus = np.sqrt(np.einsum("kij,i,j->k", self.A_inv, x, x))
        return int(np.argmax(self.theta @ x + bonus))

    def update(self, arm, x, reward):
        Ax = self.A_inv[arm] @ x
        self.A_inv[arm] -= np.outer(Ax, Ax) / (1.0 + x @ Ax)
        self.b[arm] += reward * x
        self.theta[arm] = self.A_inv[arm] @ self.b[arm]


def numpy_reference(d, k, X, r, seconds):
    model = NumpyLinUCB(d, k)
    n = len(X)
    for i in range(WARM_ROWS):
        model.update(i % k, X[i], r[i])
    select = rate(lambda i: model.select(X[i % n]), seconds)
    update = rate(lambda i: model.update(i % k, X[i % n], r[i % n]), seconds)
    return select, update


def mabwiser(d, k, X, r, seconds):
    from mabwiser.mab import MAB, LearningPolicy

    mab = MAB(list(range(k)), LearningPolicy.LinUCB(alpha=1.0, l2_lambda=1.0), seed=0)
    mab.fit(decisions=np.arange(WARM_ROWS) % k, rewards=r[:WARM_ROWS], contexts=X[:WARM_ROWS])
    n = len(X)
    select = rate(lambda i: mab.predict(X[i % n].reshape(1, -1)), seconds)
    update = rate(lambda i: mab.partial_fit([i % k], [r[i % n]], X[i % n].reshape(1, -1)),
                  seconds)
    return select, update


def vowpal_wabbit(d, k, X, r, seconds):
    import vowpalwabbit

    ws = vowpalwabbit.Workspace("--cb_explore_adf --squarecb --quiet")
    actions = [f"|a a{j}" for j in range(k)]

    def example(x, label=None):
        shared = "shared |s " + " ".join(f"f{i}:{v:.5f}" for i, v in enumerate(x))
        lines = [shared] + actions
        if label is not None:
            lines = lines.copy()
            lines[1 + label] = f"0:{-r[label % len(r)]}:{1.0 / k} {actions[label]}"
        return lines

    for i in range(WARM_ROWS):
        ws.learn(example(X[i], i % k))
    n = len(X)
    select = rate(lambda i: ws.predict(example(X[i % n])), seconds)
    ws.finish()
    return select, None


def obp_linucb(d, k, X, r, seconds):
    from obp.policy import LinUCB as ObpLinUCB

    policy = ObpLinUCB(dim=d, n_actions=k, epsilon=1.0, random_state=0)
    for i in range(WARM_ROWS):
        policy.update_params(i % k, r[i], X[i].reshape(1, -1))
    n = len(X)
    select = rate(lambda i: policy.select_action(X[i % n].reshape(1, -1)), seconds)
    update = rate(lambda i: policy.update_params(i % k, r[i % n], X[i % n].reshape(1, -1)),
                  seconds)
    return select, update


PEERS = {"ours": ours, "numpy": numpy_reference, "mabwiser": mabwiser,
         "vw": vowpal_wabbit, "obp": obp_linucb}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="only d=64, K=100")
    parser.add_argument("--seconds", type=float, default=0.5, help="time per measurement")
    args = parser.parse_args()
    grid = [(64, 100)] if args.quick else [(d, k) for d in (16, 64, 256) for k in (10, 100, 1000)]
    rng = np.random.default_rng(0)
    results: dict = {}
    missing: dict = {}
    print(f"{'d':>4} {'K':>5} {'library':>9} {'select/s':>10} {'update/s':>10}")
    for d, k in grid:
        X = rng.normal(size=(2000, d)) / np.sqrt(d)
        r = (rng.random(2000) < 0.1).astype(float)
        row = results.setdefault(f"d{d}_K{k}", {})
        for name, run in PEERS.items():
            if name in missing:
                continue
            try:
                select, update = run(d, k, X, r, args.seconds)
            except ImportError as exc:
                missing[name] = str(exc).splitlines()[0]
                continue
            row[f"{name}_select"] = round(select, 1)
            if update is not None:
                row[f"{name}_update"] = round(update, 1)
            print(f"{d:>4} {k:>5} {name:>9} {select:>10.1f} "
                  f"{update if update is not None else float('nan'):>10.1f}", flush=True)
    for name, why in missing.items():
        print(f"not measured: {name} ({why})")
    key = results["d64_K100"]
    goals = {}
    if "mabwiser_select" in key:
        goals["select_vs_mabwiser"] = round(key["ours_select"] / key["mabwiser_select"], 2)
        goals["update_vs_mabwiser"] = round(key["ours_update"] / key["mabwiser_update"], 2)
    if "vw_select" in key:
        goals["select_vs_vw"] = round(key["ours_select"] / key["vw_select"], 2)
    goals["select_vs_numpy"] = round(key["ours_select"] / key["numpy_select"], 2)
    goals["update_vs_numpy"] = round(key["ours_update"] / key["numpy_update"], 2)
    met = {"select_20x_mabwiser": goals.get("select_vs_mabwiser", 0) >= 20,
           "select_5x_vw": goals.get("select_vs_vw", 0) >= 5,
           "update_200x_mabwiser": goals.get("update_vs_mabwiser", 0) >= 200}
    print(json.dumps({"results": results, "ratios_d64_K100": goals, "goals_met": met,
                      "missing": missing}))


if __name__ == "__main__":
    main()
