"""Fixed prompt pool + LinUCB against an evolving pool + LinUCB (CG4CTR's loop).

One demo store is built (demo catalog × demo audience, backdrop engine, small renders,
reward model trained on simulated impressions); then for each seed both pools serve the
same impression budget per round through the selection service, and the evolving pool
goes through ``studio evolve`` between rounds. Per round: mean CTR over seeds with a 95 %
t-interval, and the paired difference evolving − fixed.

    python bench/loop.py [--rounds 3] [--seeds 5] [--impressions 3000]

The last line is JSON with fixed_ctr, evolving_ctr, diff_ci_low, diff_ci_high (last
round), rounds and seeds. Goal: the evolving pool beats the fixed pool by a
statistically clear margin by round 3.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def interval(values):
    import numpy as np
    from scipy import stats

    values = np.asarray(values, dtype=float)
    mean = float(values.mean())
    if len(values) < 2:
        return mean, mean, mean
    half = float(stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values)))
    return mean, mean - half, mean + half


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--impressions", type=int, default=3000, help="per round and pool")
    parser.add_argument("--size", default="96")
    args = parser.parse_args()
    import numpy as np

    from studio.audience import load_users
    from studio.batch import BatchSettings, run_batch
    from studio.loop import run_loop

    users_path = ROOT / "assets/demo/users.csv"
    catalog = ROOT / "assets/demo/catalog.csv"
    users = load_users(users_path)
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder) / "base"
        run_batch(catalog, users_path, base, BatchSettings(per_cluster=3, top_m=3, size=args.size,
                                                           engine="backdrop", watermark=False, k=5),
                  echo=lambda m: None)
        runs = []
        for seed in range(args.seeds):
            print(f"seed {seed}:", flush=True)
            runs.append(run_loop(base, Path(folder) / f"seed{seed}", users, users_path, catalog,
                                 rounds=args.rounds, impressions=args.impressions, seed=seed,
                                 size=args.size))
    table = []
    for r in range(args.rounds):
        fixed = [run["fixed"][r] for run in runs]
        evolving = [run["evolving"][r] for run in runs]
        static = [run["static"][r] for run in runs]
        diff = interval(np.array(evolving) - np.array(fixed))
        table.append({"round": r + 1, "fixed": interval(fixed), "evolving": interval(evolving),
                      "static": interval(static), "diff": diff})
        print(f"round {r + 1}: fixed {np.mean(fixed):.3%}  evolving {np.mean(evolving):.3%}  "
              f"static {np.mean(static):.3%}  diff {diff[0]:+.3%} [{diff[1]:+.3%}, {diff[2]:+.3%}]")
    last = table[-1]
    print(json.dumps({"fixed_ctr": round(last["fixed"][0], 5), "evolving_ctr": round(last["evolving"][0], 5),
                      "static_ctr": round(last["static"][0], 5),
                      "diff_ci_low": round(last["diff"][1], 5), "diff_ci_high": round(last["diff"][2], 5),
                      "rounds": args.rounds, "seeds": args.seeds,
                      "impressions_per_round": args.impressions,
                      "per_round": [{"round": t["round"], "fixed": round(t["fixed"][0], 5),
                                     "evolving": round(t["evolving"][0], 5),
                                     "diff": round(t["diff"][0], 5)} for t in table]}))


if __name__ == "__main__":
    main()
