"""The demo's report: CTR over time, cumulative regret, best creative per cluster.

Markdown with PNG charts (matplotlib, no display needed), written next to the store.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from .campaign import CampaignResult
from .files import write_atomic
from .serving import SelectionService

COLOURS = {"linucb": "#1f77b4", "static": "#ff7f0e", "random": "#7f7f7f"}


def write_report(out: Path, result: CampaignResult, service: SelectionService, *,
                 engine: str, products: int, creatives: int, seconds: float,
                 loop: dict | None = None) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    n = np.arange(1, result.impressions + 1)
    figure, axis = plt.subplots(figsize=(7, 4))
    for policy, clicks in result.clicks.items():
        axis.plot(n, np.cumsum(clicks) / n, label=policy, color=COLOURS.get(policy))
    axis.set(xlabel="impressions", ylabel="CTR so far", title="CTR over time")
    axis.legend()
    figure.tight_layout()
    figure.savefig(out / "ctr_over_time.png", dpi=100)
    plt.close(figure)

    figure, axis = plt.subplots(figsize=(7, 4))
    for policy, regret in result.regret.items():
        axis.plot(n, np.cumsum(regret), label=policy, color=COLOURS.get(policy))
    axis.set(xlabel="impressions", ylabel="expected clicks lost", title="Cumulative regret")
    axis.legend()
    figure.tight_layout()
    figure.savefig(out / "regret.png", dpi=100)
    plt.close(figure)

    best = _best_creatives(service)
    _thumbnail_grid(service, best, out / "best_per_cluster.png")
    ctr = result.ctr()
    lines = [
        "# Creative Studio demo report", "",
        f"{products} products, {len(service.clusters)} clusters, {creatives} creatives "
        f"(engine `{engine}`), {result.impressions:,} simulated impressions, "
        f"{seconds:.0f} s.", "",
        "| policy | CTR | clicks | cumulative regret |", "|---|---|---|---|",
    ]
    for policy in result.clicks:
        lines.append(f"| {policy} | {ctr[policy]:.3%} | {int(result.clicks[policy].sum()):,} | "
                     f"{result.regret[policy].sum():.1f} |")
    lines += ["", "![CTR over time](ctr_over_time.png)", "", "![Cumulative regret](regret.png)", "",
              "## Best creative per cluster (learned)", "",
              "Rows are clusters, columns products: the creative with the highest learned "
              "mean reward for the cluster.", "", "![Best creatives](best_per_cluster.png)", ""]
    for cluster_id, cluster in sorted(service.clusters.items()):
        lines.append(f"- **{cluster.profile}**")
        for product_id, (arm_id, mean) in sorted(best.get(cluster_id, {}).items()):
            lines.append(f"  - {product_id}: \"{service.prompts[arm_id]}\" (mean {mean:.3f})")
    if loop:
        lines += _loop_section(out, loop, plt)
    report = out / "report.md"
    write_atomic(report, ("\n".join(lines) + "\n").encode())
    return report


def _loop_section(out: Path, loop: dict, plt) -> list[str]:
    rounds = np.arange(1, len(loop["fixed"]) + 1)
    figure, axis = plt.subplots(figsize=(7, 4))
    for name, colour in (("evolving", "#2ca02c"), ("fixed", COLOURS["linucb"]),
                         ("static", COLOURS["static"])):
        axis.plot(rounds, loop[name], marker="o", label=name, color=colour)
    axis.set(xlabel="round", ylabel="CTR", title="Learning loop: CTR per round")
    axis.set_xticks(rounds)
    axis.legend()
    figure.tight_layout()
    figure.savefig(out / "loop.png", dpi=100)
    plt.close(figure)
    lines = ["", "## Learning loop", "",
             "Both pools start from the batch's arms; between rounds the evolving pool retires "
             "its worst prompts and adds scored recombinations of its winners.", "",
             "| round | fixed pool (LinUCB) | evolving pool (LinUCB) | static creative |",
             "|---|---|---|---|"]
    for r, (f, e, s) in enumerate(zip(loop["fixed"], loop["evolving"], loop["static"]), 1):
        lines.append(f"| {r} | {f:.3%} | {e:.3%} | {s:.3%} |")
    return lines + ["", "![Learning loop](loop.png)", ""]


def _best_creatives(service: SelectionService) -> dict:
    """cluster -> product -> (arm, learned mean at the cluster centroid), 1:1 placement."""
    best: dict[int, dict] = {}
    for cluster_id in service.clusters:
        context, _ = service.context(cluster_id=cluster_id)
        for product_id, category in service.products.items():
            arms = service.candidates(product_id, cluster_id, "1:1")
            if not arms:
                continue
            ids, expected, _ = service.models[category].estimate(context, arms=arms)
            i = int(np.argmax(expected))
            best.setdefault(cluster_id, {})[product_id] = (ids[i], float(expected[i]))
    return best


def _thumbnail_grid(service: SelectionService, best: dict, path: Path, size: int = 128) -> None:
    products = sorted(service.products)
    clusters = sorted(service.clusters)
    grid = Image.new("RGB", (size * max(1, len(products)), size * max(1, len(clusters))), "white")
    for row, cluster_id in enumerate(clusters):
        for col, product_id in enumerate(products):
            choice = best.get(cluster_id, {}).get(product_id)
            if choice is None:
                continue
            creative_id = service.creative_of(product_id, choice[0], "1:1")
            sha = service.store.query("SELECT image_sha256 FROM creatives WHERE creative_id = ?",
                                      (creative_id,))[0][0]
            image = Image.open(service.store.file_path(sha)).convert("RGB")
            image.thumbnail((size, size))
            grid.paste(image, (col * size + (size - image.width) // 2,
                               row * size + (size - image.height) // 2))
    grid.save(path)


def summary(report: Path, result: CampaignResult, engine: str) -> dict:
    return {"report": str(report), "ctr": {k: round(v, 5) for k, v in result.ctr().items()},
            "impressions": result.impressions, "engine": engine}

