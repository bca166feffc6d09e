"""The demo's report: what the world is, how good the past reward model is on held-out
creatives, every policy's true CTR over time against greedy-on-prior and the oracles,
cumulative regret, the best creative per cluster and the learning loop.

Markdown with PNG charts (matplotlib, no display needed), written next to the store.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from ..files import write_atomic
from ..serving.service import SelectionService
from .campaign import CampaignResult
from .world import World

COLOURS = {"service": "#1f77b4", "served": "#17becf", "greedy_prior": "#d62728",
           "static": "#ff7f0e", "random": "#7f7f7f", "epsilon_greedy": "#8c564b",
           "linucb": "#9467bd", "thompson": "#e377c2", "oracle_cluster": "#2ca02c",
           "oracle_user": "#bcbd22"}
DESCRIPTIONS = {
    "service": "the real selection service (select + feedback per impression), as the API serves",
    "served": "the served configuration through the bandit library's batch path",
    "greedy_prior": "the reward model's top arm per cluster, never learning",
    "static": "one best-scored creative per product and placement for everybody",
    "random": "uniform within the cluster's pool",
    "epsilon_greedy": "learned means, 10 % uniform exploration",
    "linucb": "learned means + α·confidence width (UCB)",
    "thompson": "linear Thompson sampling",
    "oracle_cluster": "the truly best arm of the cluster's pool (the regret reference)",
    "oracle_user": "the truly best arm for this very user",
}


def write_report(out: Path, result: CampaignResult, service: SelectionService, *, world: World,
                 judgement: dict, model_metadata: dict, engine: str, seconds: float,
                 best: dict, panel: dict | None = None, loop: dict | None = None) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    from matplotlib.ticker import PercentFormatter

    n = np.arange(1, result.impressions + 1)
    start = min(200, result.impressions - 1)  # the first impressions are noise
    figure, axis = plt.subplots(figsize=(7, 4))
    for policy, value in result.value.items():
        style = "--" if policy.startswith("oracle") else "-"
        axis.plot(n[start:], (np.cumsum(value) / n)[start:], style, label=policy,
                  color=COLOURS.get(policy))
    axis.set(xlabel="impressions", ylabel="true CTR so far", title="CTR over time")
    axis.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=1))
    axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(out / "ctr_over_time.png", dpi=100)
    plt.close(figure)

    figure, axis = plt.subplots(figsize=(7, 4))
    for policy, regret in result.regret.items():
        if not policy.startswith("oracle"):
            axis.plot(n, np.cumsum(regret), label=policy, color=COLOURS.get(policy))
    axis.set(xlabel="impressions", ylabel="expected clicks lost",
             title="Cumulative regret vs the per-cluster oracle")
    axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(out / "regret.png", dpi=100)
    plt.close(figure)

    _thumbnail_grid(service, best, out / "best_per_cluster.png")
    ctr, observed = result.ctr(), result.observed_ctr()
    baseline = ctr["greedy_prior"]
    model, oracle = judgement["model"], judgement["oracle"]
    lines = [
        "# Creative Studio demo report", "",
        f"{len(service.products)} products, {len(service.clusters)} clusters, "
        f"{len(service.arms)} arms (engine `{engine}`), {result.impressions:,} simulated "
        f"impressions per policy, {seconds:.0f} s.", "",
        "## The world (what the figures below are, and are not)", "",
        "Clicks come from a simulated audience whose truth the studio cannot see: it reads "
        "creatives through its own concept lexicon and a random projection of a Lab "
        "thumbnail (not the studio's image features, text embeddings or prompt vocabulary), "
        "gives every creative a latent appeal no feature predicts, and its tastes drift "
        "between the past (which trained the reward model) and the campaign, and during "
        "it. **This is one world and one stream: a demonstration, not evidence.** The "
        "evidence — paired intervals over many independent worlds — is "
        "`bench/evaluation.py` (see README). No real user clicked anything here.", "",
        "```", world.describe(), "```", "",
        "## The reward model: trained on the past, judged on held-out creatives", "",
        f"Trained on {model_metadata.get('past_impressions', 0):,} past impressions of "
        f"{model_metadata.get('past_creatives', 0)} earlier creatives (other users, drifted "
        f"tastes, uniform policy); judged on the campaign's {judgement['heldout_creatives']} "
        "creatives (prompts the past never showed) against the world's oracle (the true "
        "mean CTR of each cluster for each creative). Prior strength calibrated from its "
        f"held-out error on past prompts: {model_metadata.get('prior_impressions', 0):.0f} "
        "impressions.", "",
        "| | AUC | log-loss | ECE | pairwise accuracy within (product, cluster) |",
        "|---|---|---|---|---|",
        f"| reward model | {model['auc']:.3f} | {model['log_loss']:.4f} | {model['ece']:.4f} | "
        f"{model['pairwise_acc']:.3f} |",
        f"| world oracle | {oracle['auc']:.3f} | {oracle['log_loss']:.4f} | {oracle['ece']:.4f} | "
        f"{oracle['pairwise_acc']:.3f} |", "",
        "## The campaign", "",
        "Every policy faces the same impressions with the same random numbers; true CTR "
        "is the mean click probability of what it served, observed CTR its clicks.", "",
        "| policy | true CTR | vs greedy-on-prior | observed CTR | cumulative regret | what it is |",
        "|---|---|---|---|---|---|",
    ]
    for policy in sorted(result.value, key=lambda p: -ctr[p]):
        lines.append(f"| {policy} | {ctr[policy]:.3%} | {ctr[policy] / baseline - 1:+.1%} | "
                     f"{observed[policy]:.3%} | {result.regret[policy].sum():.1f} | "
                     f"{DESCRIPTIONS.get(policy, '')} |")
    lines += ["", "![CTR over time](ctr_over_time.png)", "", "![Cumulative regret](regret.png)", "",
              "## Best creative per cluster (learned by the service)", "",
              "Rows are clusters, columns products: the creative with the highest learned "
              "mean reward for the cluster.", "", "![Best creatives](best_per_cluster.png)", ""]
    for cluster_id, cluster in sorted(service.clusters.items()):
        lines.append(f"- **{cluster.profile}**")
        for product_id, (arm_id, mean) in sorted(best.get(cluster_id, {}).items()):
            lines.append(f"  - {product_id}: \"{service.prompts[arm_id]}\" (learned mean {mean:.3%})")
    if panel:
        lines += _panel_section(panel)
    if loop:
        lines += _loop_section(out, loop, plt)
    report = out / "report.md"
    write_atomic(report, ("\n".join(lines) + "\n").encode())
    return report


def _panel_section(panel: dict) -> list[str]:
    preset = panel["preset"]
    n, matched = panel["creatives"], panel["ocr_match"]
    lines = ["", "## The ad panel: each cluster's best creative as an ad", "",
             f"Re-rendered at `{preset['name']}` ({preset['width']}×{preset['height']}) from "
             "the same prompt and seed, with a headline and a call to action written for the "
             "cluster (template writer, the example brand kit) laid out off the product and "
             f"read back with OCR: **{matched} of {n} read back exactly**"
             f"{f' ({matched / n:.0%})' if n else ''}.", "",
             f"![Ad panel]({panel['sheet']})", "",
             "| cluster | product | headline | call to action | OCR read back |",
             "|---|---|---|---|---|"]
    for item in panel["items"]:
        check = "exactly" if item["ocr_match"] else "read: " + " / ".join(
            repr(v) for v in item["read"].values())
        lines.append(f"| {item['cluster']} | {item['product_id']} | {item['headline']} | "
                     f"{item['cta']} | {check} |")
    return lines


def _loop_section(out: Path, loop: dict, plt) -> list[str]:
    """CTR per round of the fixed and the evolving pool, and what each round did and why."""
    from .loop import DEFAULT_VARIANT

    evolving = DEFAULT_VARIANT if DEFAULT_VARIANT in loop["ctr"] else next(
        n for n in loop["ctr"] if n != "fixed")
    rounds = np.arange(1, len(loop["ctr"]["fixed"]) + 1)
    figure, axis = plt.subplots(figsize=(7, 4))
    for name, label, colour in ((evolving, "evolving pool", "#2ca02c"),
                                ("fixed", "fixed pool", COLOURS["service"])):
        axis.plot(rounds, 100 * np.array(loop["ctr"][name]), marker="o", label=label, color=colour)
    axis.set(xlabel="round", ylabel="true CTR (%)", title="Learning loop: CTR per round")
    axis.set_xticks(rounds)
    axis.legend()
    figure.tight_layout()
    figure.savefig(out / "loop.png", dpi=100)
    plt.close(figure)
    lines = ["", "## Learning loop", "",
             "Both pools start from the campaign's arms and serve the same impressions "
             f"({loop['impressions_per_round']:,} per round) through the served bandit; between "
             "rounds the evolving pool runs `studio evolve`: it retires only arms whose clicks "
             "condemn them, breeds candidates from the winners (their slots inherited, some "
             "mutated), scores them with the reward model refitted on the campaign's clicks "
             "(as far as held-out creatives support) and adds the best. Candidates draw no "
             "impressions; arm counts stay equal. One world is a demonstration: the evidence "
             "is `bench/loop.py` (README, Evidence).", "",
             "| round | fixed pool | evolving pool | difference | arms (fixed / evolving) | "
             "before the round: retired / added (scorer) |", "|---|---|---|---|---|---|"]
    log = {entry["round"] + 1: entry for entry in loop["log"][evolving]}
    for r in rounds:
        f, e = loop["ctr"]["fixed"][r - 1], loop["ctr"][evolving][r - 1]
        entry = log.get(r)
        did = (f"{entry['retired']} / {entry['added']} in {entry['pools_changed']} of "
               f"{entry['pools']} pools ({entry['scorer']})" if entry else "—")
        lines.append(f"| {r} | {f:.3%} | {e:.3%} | {e / f - 1:+.1%} | {loop['arms']['fixed'][r - 1]}"
                     f" / {loop['arms'][evolving][r - 1]} | {did} |")
    examples = [(entry["round"], x) for entry in loop["log"][evolving] for x in entry["examples"]]
    if examples:
        lines += ["", "What the rounds retired and why (first of each round):", ""]
        for round_id, x in examples[:6]:
            lines.append(f"- round {round_id}, {x['pool']}: retired “{x['retired']}” — "
                         f"{x['why']}; added “{x['added']}”")
    return lines + ["", "![Learning loop](loop.png)", ""]


def best_creatives(service: SelectionService) -> dict:
    """cluster -> product -> (arm, learned mean at the cluster centroid), first placement."""
    best: dict[int, dict] = {}
    placement = _first_placement(service)
    for cluster_id in service.clusters:
        for product_id, category in service.products.items():
            arms = service.candidates(product_id, cluster_id, placement)
            if not arms:
                continue
            ids, expected, _ = service.cluster_estimate(category, cluster_id, arms)
            i = int(np.argmax(expected))
            best.setdefault(cluster_id, {})[product_id] = (ids[i], float(expected[i]))
    return best


def _first_placement(service: SelectionService) -> str:
    formats = {fmt for (_, _, fmt) in service.creatives}
    return "1:1" if "1:1" in formats or not formats else sorted(formats)[0]


def _thumbnail_grid(service: SelectionService, best: dict, path: Path, size: int = 128) -> None:
    products = sorted(service.products)
    clusters = sorted(service.clusters)
    placement = _first_placement(service)
    grid = Image.new("RGB", (size * max(1, len(products)), size * max(1, len(clusters))), "white")
    for row, cluster_id in enumerate(clusters):
        for col, product_id in enumerate(products):
            choice = best.get(cluster_id, {}).get(product_id)
            if choice is None:
                continue
            creative_id = service.creative_of(product_id, choice[0], placement)
            sha = service.store.creative_image_sha(creative_id)
            image = Image.open(service.store.file_path(sha)).convert("RGB")
            image.thumbnail((size, size))
            grid.paste(image, (col * size + (size - image.width) // 2,
                               row * size + (size - image.height) // 2))
    grid.save(path)


def summary(report: Path, result: CampaignResult, engine: str,
            panel: dict | None = None) -> dict:
    return {"report": str(report), "ctr": {k: round(v, 5) for k, v in result.ctr().items()},
            "impressions": result.impressions, "engine": engine,
            "panel_ocr_match": (f"{panel['ocr_match']}/{panel['creatives']}"
                                if panel else None)}
