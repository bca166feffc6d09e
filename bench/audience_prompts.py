"""Audience and prompt figures: clustering quality and speed, template prompts/s.

- ARI of the clusters against the planted segments of the demo audience (k chosen by
  silhouette), and the chosen k;
- time to fit a 100,000-user audience made by the demo generator (k chosen by silhouette
  on a sample; MiniBatchKMeans), against fitting KMeans alone with the known k on the same
  encoded matrix in the same run (the baseline);
- prompts/s of the template generator (MiniLM embeddings warm, as in a running service).

    python bench/audience_prompts.py [--users 100000]

The last line is JSON with every figure.
"""

from __future__ import annotations

import argparse
import importlib.util
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
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--prompt-rounds", type=int, default=10)
    args = parser.parse_args()

    from sklearn.cluster import MiniBatchKMeans
    from sklearn.metrics import adjusted_rand_score

    from studio.inputs.audience import Audience
    from studio.inputs.tables import encode, load_users
    from studio.inputs.catalog import ProductInfo
    from studio.prompts import TemplateGenerator

    demo = load_users(ROOT / "assets" / "demo" / "users.csv")
    started = time.perf_counter()
    audience = Audience().fit(demo)
    demo_seconds = time.perf_counter() - started
    ari = adjusted_rand_score(demo["segment"], audience.labels_)
    print(f"demo audience: {len(demo)} users, k={audience.k_} (silhouette), ARI {ari:.3f}, "
          f"fit {demo_seconds:.1f} s")

    spec = importlib.util.spec_from_file_location("make_users", ROOT / "assets/demo/make_users.py")
    make_users = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_users)
    big = load_users(make_users.make_users(args.users, seed=11))
    started = time.perf_counter()
    large = Audience().fit(big)
    fit_seconds = time.perf_counter() - started
    X = encode(big, large.encoding_)
    started = time.perf_counter()
    MiniBatchKMeans(n_clusters=large.k_, random_state=0, n_init=3, batch_size=4096).fit(X)
    kmeans_seconds = time.perf_counter() - started
    large_ari = adjusted_rand_score(big["segment"], large.labels_)
    print(f"{args.users} users: fit {fit_seconds:.1f} s (k={large.k_}, ARI {large_ari:.3f}); "
          f"MiniBatchKMeans alone {kmeans_seconds:.1f} s")

    generator = TemplateGenerator()
    product = ProductInfo("mug", "kitchenware", "blue enamel mug")
    generator.generate(product, audience.clusters_[0], 4, seed=0)  # warm the embedder
    started, count = time.perf_counter(), 0
    for seed in range(args.prompt_rounds):
        for cluster in audience.clusters_:
            count += len(generator.generate(product, cluster, 4, seed=seed))
    rate = count / (time.perf_counter() - started)
    print(f"template generator: {rate:.0f} prompts/s ({count} prompts)")
    print(json.dumps({"demo_ari": round(ari, 4), "demo_k": audience.k_,
                      "demo_fit_s": round(demo_seconds, 2), "users": args.users,
                      "fit_s": round(fit_seconds, 2), "large_k": large.k_,
                      "large_ari": round(large_ari, 4), "kmeans_only_s": round(kmeans_seconds, 2),
                      "fit_over_kmeans": round(fit_seconds / kmeans_seconds, 2),
                      "template_prompts_per_s": round(rate, 1)}))


if __name__ == "__main__":
    main()
