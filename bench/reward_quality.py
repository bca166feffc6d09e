"""Reward-model quality on simulated logs, against the simulator's oracle.

Creatives: every demo product × every demo cluster × 4 template prompts × 2 formats,
rendered with the backdrop engine at 256 px. Users: the demo audience, with the
simulator's latent tastes. Log: uniformly random creative choice; the first 80 % of the
impressions train the CTRModel (context = the user's encoded features), the last 20 %
test it. The oracle scores each test impression with the simulator's true CTR; the
"segment oracle" with the CTR of the user's segment taste (no individual noise) — what a
model can reach from the observable features.

    python bench/reward_quality.py [--impressions 200000]

The last line is JSON with auc, oracle_auc, ece, pairwise_acc, oracle_pairwise_acc and
impressions. Goal: auc >= 0.95 x oracle_auc and ece < 0.02 at 200k impressions.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--impressions", type=int, default=200_000)
    parser.add_argument("--prompts", type=int, default=4, help="prompts per product x cluster")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import numpy as np

    from pipelines.engines import load_engine
    from reward import CTRModel, evaluate_scores
    from studio.audience import Audience, load_users
    from studio.pool import render_pool
    from studio.prompts import TemplateGenerator
    from studio.scoring import creative_tables
    from studio.simulate import AudienceSimulator, SimulatedCreative, creative_attributes

    started = time.perf_counter()
    users = load_users(ROOT / "assets/demo/users.csv")
    audience = Audience(5).fit(users)
    engine, _ = load_engine("backdrop")
    records = render_pool(ROOT / "assets/demo/catalog.csv", audience, TemplateGenerator(),
                          engine, formats=("1:1", "9:16"), prompts_per_cluster=args.prompts,
                          size="256", seed=args.seed)
    image, text = creative_tables(records)
    simulated = [SimulatedCreative(r.creative_id, r.product_id, r.format,
                                   creative_attributes(r.image, r.mask, r.prompt)) for r in records]
    simulator = AudienceSimulator(users, seed=args.seed)
    log = simulator.simulate(simulated, args.impressions, seed=args.seed + 1)
    contexts = audience.transform(users)[log["user_index"].to_numpy()]
    split = int(0.8 * len(log))
    train, test = log.iloc[:split], log.iloc[split:]
    prepared = time.perf_counter() - started

    started = time.perf_counter()
    model = CTRModel().fit(contexts[:split], image, text, train["click"],
                           creative=train["creative_index"].to_numpy())
    fit_seconds = time.perf_counter() - started
    clusters = audience.labels_[test["user_index"].to_numpy()]
    groups = [f"{p}|{c}" for p, c in zip(test["product_id"], clusters)]
    ours = model.evaluate(contexts[split:], image, text, test["click"],
                          creative=test["creative_index"].to_numpy(), groups=groups,
                          creative_ids=test["creative_id"].to_numpy())
    oracle = evaluate_scores(test["true_ctr"].to_numpy(), test["click"], groups=groups,
                             creative_ids=test["creative_id"].to_numpy())
    constant = evaluate_scores(np.full(len(test), train["click"].mean()), test["click"])
    achievable = evaluate_scores(simulator.segment_ctr(test["user_index"], simulated,
                                                       test["creative_index"]), test["click"])
    print(f"{len(records)} creatives, {len(log)} impressions (CTR {log['click'].mean():.3%}), "
          f"prepared in {prepared:.0f} s, model fitted in {fit_seconds:.1f} s")
    for name, metrics in (("model", ours), ("oracle", oracle), ("segment", achievable),
                          ("constant", constant)):
        print(f"{name:>9}: AUC {metrics['auc']:.4f}  log-loss {metrics['log_loss']:.5f}  "
              f"ECE {metrics['ece']:.5f}  pairwise {metrics.get('pairwise_acc', float('nan')):.3f}")
    print(json.dumps({
        "auc": round(ours["auc"], 4), "oracle_auc": round(oracle["auc"], 4),
        "auc_over_oracle": round(ours["auc"] / oracle["auc"], 4),
        "segment_oracle_auc": round(achievable["auc"], 4),
        "ece": round(ours["ece"], 5), "log_loss": round(ours["log_loss"], 5),
        "constant_auc": round(constant["auc"], 4), "constant_log_loss": round(constant["log_loss"], 5),
        "pairwise_acc": round(ours["pairwise_acc"], 4),
        "oracle_pairwise_acc": round(oracle["pairwise_acc"], 4),
        "impressions": len(log), "test_impressions": len(test), "creatives": len(records),
        "fit_s": round(fit_seconds, 2)}))


if __name__ == "__main__":
    main()
