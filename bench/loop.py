"""The self-cyclic loop in the hidden-truth world: evolving pools against a fixed pool.

For each independent world (seeds), both drift conditions (a past that drifted before
and during the campaign, and a stable one): the stage's campaign pool (25 pools of 4
arms chosen by the world's past reward model) serves ``--rounds`` rounds of
``--impressions`` impressions each; the fixed pool never changes, each evolving pool runs
``studio evolve`` between rounds with its own settings — the ablation adds one part at a
time: longer rounds only (today's rule: retire the lowest mean, recombine the two
winners, past model), + confident retirement, + the reward model refitted on the
campaign's clicks, + inheritance and mutation (8 candidates per pool: the default
``studio evolve``). Every pool faces the same impressions (common random numbers) and
has the same number of arms every round; candidates draw no impressions.

Prints per round and variant the relative difference in true CTR to the fixed pool with
a paired 95 % t-interval over the worlds, the scorers' held-out pairwise accuracy against
the world's oracle, and what the rounds retired; the last line is the JSON.

Goal (issue 22): >= +4 % after 3 rounds of evolution with the interval above 0, still
rising at round 5; held-out pairwise >= 0.9 x the oracle's by round 3.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CONDITIONS = ("drift", "no_drift")


def _variants(args) -> dict:
    from studio.learning.evolve import EvolveSettings
    from studio.simulation.loop import ABLATION, DEFAULT_VARIANT

    variants = dict(ABLATION) if args.ablation else {DEFAULT_VARIANT: ABLATION[DEFAULT_VARIANT]}
    for spec in args.variant:
        name, _, settings = spec.partition("=")
        variants[name] = EvolveSettings(**json.loads(settings))
    return variants


def _run(task):
    import torch

    torch.set_num_threads(1)
    args, seed, condition = task
    from studio.serving.config import ServingConfig
    from studio.simulation.loop import run_loop
    from studio.simulation.stage import build_stage, prepare_world
    from studio.simulation.world import World, WorldConfig

    base, mine = Path(args.out) / "stage", Path(args.out) / f"worker-{os.getpid()}"
    if not (mine / "store").exists():  # each world rewrites the campaign's arms: a private copy
        shutil.rmtree(mine, ignore_errors=True)
        shutil.copytree(base, mine)
    stage = build_stage(mine, size=args.size, per_cluster=args.per_cluster,
                        past_per_cluster=args.per_cluster, top_m=args.top_m,
                        heldout_per_cluster=args.per_cluster, echo=lambda message: None)
    config = WorldConfig() if condition == "drift" else WorldConfig().without_drift()
    started = time.perf_counter()
    world = World(seed, config)
    prepared = prepare_world(stage, world, past_impressions=args.past_impressions,
                             judge_impressions=args.past_impressions, seed=seed)
    result = run_loop(stage, prepared, mine / f"loop-{seed}-{condition}", rounds=args.rounds,
                      impressions=args.impressions, variants=_variants(args), engine="backdrop",
                      size=args.size, served=ServingConfig(), heldout=stage.heldout_creatives(),
                      judge_impressions=args.judge_impressions, seed=seed,
                      echo=lambda message: None)
    result.update(seed=seed, condition=condition, seconds=time.perf_counter() - started,
                  past_judgement=prepared.judgement["pairwise_ratio"])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worlds", type=int, default=5, help="independent world seeds")
    parser.add_argument("--first-world", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=5, help="serving rounds (evolutions = rounds - 1)")
    parser.add_argument("--impressions", type=int, default=100_000, help="per round and pool")
    parser.add_argument("--past-impressions", type=int, default=200_000)
    parser.add_argument("--judge-impressions", type=int, default=100_000,
                        help="held-out log per round that judges each scorer")
    parser.add_argument("--conditions", default=",".join(CONDITIONS))
    parser.add_argument("--no-ablation", dest="ablation", action="store_false",
                        help="only the default loop")
    parser.add_argument("--variant", action="append", default=[],
                        help='an extra variant, NAME={"rule": "lowest", ...} (EvolveSettings)')
    parser.add_argument("--size", default="256")
    parser.add_argument("--per-cluster", type=int, default=6)
    parser.add_argument("--top-m", type=int, default=4)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", default=str(ROOT / "bench-out" / "loop"))
    args = parser.parse_args()

    import multiprocessing

    import numpy as np

    from studio.simulation.evaluation import paired_interval
    from studio.simulation.stage import build_stage

    started = time.perf_counter()
    build_stage(Path(args.out) / "stage", size=args.size, per_cluster=args.per_cluster,
                past_per_cluster=args.per_cluster, top_m=args.top_m,
                heldout_per_cluster=args.per_cluster, echo=print)
    conditions = [c for c in args.conditions.split(",") if c]
    tasks = [(args, seed, c) for c in conditions
             for seed in range(args.first_world, args.first_world + args.worlds)]
    results = []
    with multiprocessing.get_context("spawn").Pool(args.jobs) as pool:
        for r in pool.imap_unordered(_run, tasks):
            results.append(r)
            last = {n: d[-1] for n, d in r["difference"].items()}
            print(f"world {r['seed']} {r['condition']}: " + "; ".join(
                f"{n} {v:+.1%}" for n, v in last.items()) + f" at round {args.rounds} "
                f"({r['seconds']:.0f} s)", flush=True)
    summary = {}
    for condition in conditions:
        mine = sorted((r for r in results if r["condition"] == condition), key=lambda r: r["seed"])
        names = list(mine[0]["difference"])
        per = {}
        for name in names:
            per[name] = {
                "lift_per_round": [paired_interval([r["difference"][name][k] for r in mine])
                                   for k in range(args.rounds)],
                "pairwise_ratio_per_round": [float(np.mean([r["judgement"][name][k]["pairwise_ratio"]
                                                            for r in mine])) for k in range(args.rounds)],
                "retired_per_round": [float(np.mean([r["log"][name][k]["retired"] for r in mine]))
                                      for k in range(args.rounds - 1)],
                "arms_equal": all(r["arms"][name] == r["arms"]["fixed"] for r in mine),
            }
        summary[condition] = {
            "worlds": len(mine),
            "fixed_ctr_per_round": [float(np.mean([r["ctr"]["fixed"][k] for r in mine]))
                                    for k in range(args.rounds)],
            "fixed_pairwise_ratio_per_round": [float(np.mean(
                [r["judgement"]["fixed"][k]["pairwise_ratio"] for r in mine])) for k in range(args.rounds)],
            "variants": per}
        print(f"\n## {condition}: {len(mine)} worlds, {args.rounds} rounds of "
              f"{args.impressions:,} impressions; evolving vs fixed pool, true CTR [95 % CI]")
        print("variant                          " + "  ".join(f"round {k + 1:<14}" for k in range(args.rounds)))
        for name, v in per.items():
            print(f"{name:32s} " + "  ".join(
                f"{d['mean']:+6.1%} [{d['ci_low']:+.1%}, {d['ci_high']:+.1%}]"[:20].ljust(20)
                for d in v["lift_per_round"]))
        print("held-out pairwise / oracle: fixed (past model) " + " ".join(
            f"{x:.2f}" for x in summary[condition]["fixed_pairwise_ratio_per_round"]))
        for name, v in per.items():
            print(f"  {name}: " + " ".join(f"{x:.2f}" for x in v["pairwise_ratio_per_round"])
                  + "; arms retired per round " + " ".join(f"{x:.1f}" for x in v["retired_per_round"]))
    full = summary.get("drift", next(iter(summary.values())))["variants"]
    default = full[list(full)[-1]] if args.ablation else next(iter(full.values()))
    after3 = default["lift_per_round"][min(3, args.rounds - 1)]
    output = {"worlds": args.worlds, "rounds": args.rounds, "impressions_per_round": args.impressions,
              "summary": summary, "seconds": round(time.perf_counter() - started, 1),
              "goals_met": {
                  "lift_after_3_evolutions_at_least_4pct_ci_above_0":
                      after3["mean"] >= 0.04 and after3["ci_low"] > 0,
                  "still_rising_at_round_5": args.rounds >= 5 and
                      default["lift_per_round"][-1]["mean"] > default["lift_per_round"][-2]["mean"],
                  "pairwise_at_least_0.9_oracle_by_round_3":
                      default["pairwise_ratio_per_round"][min(2, args.rounds - 1)] >= 0.9}}
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "loop.json").write_text(json.dumps(output, indent=1))
    print(json.dumps(output))


if __name__ == "__main__":
    main()
