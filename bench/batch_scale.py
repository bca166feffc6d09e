"""Creatives per second of ``studio batch`` with one worker and with two, per executor.

Every run renders the same plan — the demo catalog for five clusters, backdrop engine,
watermark on; 1600 creatives by default — into a new SQLite store, one after the other
in this same run:

- ``local``: one process, then two CPU processes under ``torchrun --nproc_per_node 2``
  (accelerate's ``PartialState`` splits the jobs);
- ``ray``: a Ray started by the command with ``--workers 1``, then ``--workers 2``.

The rate is ``rendered / render_seconds`` from the run's summary: the rendering phase
(claims, renders, commits), not the start of Python, torch, Ray or the prompt writer.
For Ray it includes starting the actor pool (each actor imports the studio and loads
the engine once: a few seconds, the same with one actor or two), which a Ray run pays
once per command; the larger the plan, the less it weighs. The ratio printed per
executor is the rate with two workers over the rate with one (issue 15's goal: >= 1.6
on two cores).

    python bench/batch_scale.py [--per-cluster 4] [--seeds 8] [--size 256]
                                [--executors local,ray]

The last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
GOAL = 1.6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-cluster", type=int, default=4)
    parser.add_argument("--seeds", type=int, default=8, help="Seeds per prompt and format.")
    parser.add_argument("--size", default="256")
    parser.add_argument("--executors", default="local,ray")
    args = parser.parse_args()
    executors = [e.strip() for e in args.executors.split(",") if e.strip()]

    from studio.inputs.audience import Audience
    from studio.inputs.tables import load_users

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT),
           "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("STUDIO_PROGRESS", None)
    rates: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="batch-scale-") as tmp:
        clusters = Path(tmp) / "clusters.json"
        Audience(5).fit(load_users(ROOT / "assets" / "demo" / "users.csv")).save(clusters)
        batch = ["-m", "studio", "batch", str(ROOT / "assets" / "demo" / "catalog.csv"),
                 "--audience", str(clusters), "--per-cluster", str(args.per_cluster),
                 "--formats", "1:1,9:16", "--seeds", ",".join(map(str, range(args.seeds))),
                 "--size", args.size, "--engine", "backdrop"]
        planned = None
        for executor in executors:
            rates[executor] = {}
            for workers in (1, 2):
                store = Path(tmp) / f"{executor}-{workers}"
                if executor == "ray":
                    command = [sys.executable, *batch, "--store", str(store),
                               "--executor", "ray", "--workers", str(workers)]
                elif workers == 1:
                    command = [sys.executable, *batch, "--store", str(store)]
                else:
                    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                               "--nproc_per_node", str(workers), *batch, "--store", str(store)]
                result = subprocess.run(command, env=env, capture_output=True, text=True)
                if result.returncode != 0:
                    sys.exit(f"{executor} with {workers} workers failed:\n{result.stderr[-3000:]}")
                summary = json.loads(result.stdout.strip().splitlines()[-1])
                planned = summary["creatives"]
                rate = summary["rendered"] / summary["render_seconds"]
                rates[executor][str(workers)] = round(rate, 2)
                print(f"{executor:>5}, {workers} worker{'s' if workers > 1 else ' '}: "
                      f"{summary['rendered']} creatives in {summary['render_seconds']:.1f} s "
                      f"= {rate:.1f} creatives/s (split {summary['rendered_per_worker']})",
                      flush=True)
    ratios = {e: round(r["2"] / r["1"], 2) for e, r in rates.items()}
    for executor, ratio in ratios.items():
        print(f"{executor}: 2 workers / 1 worker = {ratio:.2f}x "
              f"(goal >= {GOAL}x: {'met' if ratio >= GOAL else 'not met'})")
    print(json.dumps({"creatives": planned, "size": args.size, "engine": "backdrop",
                      "cpus": os.cpu_count(), "creatives_per_s": rates, "ratios": ratios,
                      "goal_met": {e: r >= GOAL for e, r in ratios.items()}}))


if __name__ == "__main__":
    main()
