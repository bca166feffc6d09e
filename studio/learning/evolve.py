"""``studio evolve``: what the audience clicks decides what is rendered next (CG4CTR's loop).

One round, for every (category, cluster) pool of a store:

1. rank the active arms by their learned value — the LinUCB mean at the cluster's
   centroid (warm-started from the reward score, so unplayed arms rank by their prior);
2. retire the worst (``retire`` per pool, never below ``min_arms``, and only as many as
   new arms replace: a pool keeps its size): they stop being served, their events stay
   in the log;
3. write new candidates from the winners — their scene, surface, lighting, palette and
   style recombined (template prompts carry these tags); prompts without tags get fresh
   template prompts — held to the brand guidelines;
4. render the candidates for every product of the category in the store's formats, score
   them with the reward model, and add the best as new arms warm-started from their scores
   and the model's calibrated prior strength.

Every round is recorded (kept, retired and added arms, their scores, why) in the store and
can be listed and rolled back (``rollback``): retired arms come back, added ones retire.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np

from pipelines import load_product
from pipelines.engines import load_engine

from ..creatives.records import CreativeRecord
from ..creatives.render import RenderOptions, finish, prepare, render
from ..creatives.safety import SafetySettings
from ..errors import StudioError
from ..inputs.guidelines import DEFAULT_NEGATIVE_PROMPT, Guidelines
from ..prompts import SLOTS, TemplateGenerator, category_product, load_vocabulary
from ..serving.config import ServingConfig
from ..serving.service import SelectionService
from ..store import Store
from ..store.pools import prompt_id
from .scoring import creative_tables


def evolve(store: Store, *, catalog_images: dict[str, str], per_cluster: int = 2,
           retire: int = 1, min_arms: int = 2, engine: str = "auto", size: str | None = None,
           reward_model: str | None = None,
           guidelines: Guidelines | None = None, seed: int = 0,
           config: ServingConfig | None = None, safety: SafetySettings = SafetySettings(),
           echo=print) -> dict:
    """Run one round; return its record. Candidates are scored by ``reward_model`` (a
    CTRModel file); without one they are unscored and the first are added unranked. A new
    creative the safety gate blocks (``safety``) counts for nothing: a candidate whose
    every creative is blocked is never added as an arm."""
    if per_cluster < 1 or retire < 0 or min_arms < 1:
        raise StudioError("per-cluster >= 1, retire >= 0 and min-arms >= 1 are needed")
    rules = guidelines or Guidelines()
    service = SelectionService.open(store, config=config)
    audience = service.audience
    round_id = store.last_round() + 1
    chosen, notice = load_engine(engine)
    if notice:
        echo(notice)
    formats = store.creative_formats()
    products = store.product_categories()
    missing = sorted(set(products) - set(catalog_images))
    if missing:
        raise StudioError(f"no image for product {missing[0]!r}: pass the catalog the store was built from")
    loaded = {pid: load_product(catalog_images[pid], name=pid) for pid in products}
    prompt_rows = store.prompt_records()
    plans = []
    for (category, cluster_id), arms in _pools(service).items():
        ids, expected, _ = service.cluster_estimate(category, cluster_id, arms)
        ranked = [a for _, a in sorted(zip(expected, ids), key=lambda t: -t[0])]
        values = dict(zip(ids, map(float, expected)))
        retired = ranked[max(min_arms, len(ranked) - retire):][:retire] if len(ranked) > min_arms else []
        kept = [a for a in ranked if a not in retired]
        candidates = _candidates(category, cluster_id, kept, prompt_rows, audience, per_cluster,
                                 rules, seed + round_id)
        plans.append({"category": category, "cluster_id": cluster_id, "kept": kept,
                      "retired": retired, "values": values, "candidates": candidates})

    notes, pixels = [], []
    for plan in plans:
        for candidate_id, text in plan["candidates"]:
            for product_id, category in products.items():
                if category != plan["category"]:
                    continue
                for fmt in formats:
                    options = RenderOptions(prompt=text, format=fmt, size=size, seed=seed,
                                            negative_prompt=rules.negative_prompt(
                                                DEFAULT_NEGATIVE_PROMPT), anchor="bottom",
                                            safety=safety)
                    placed = prepare(loaded[product_id], options)
                    creative = render(placed, options, chosen)[0]
                    finished = finish(creative, placed, loaded[product_id], options, chosen)
                    notes.append({"job_key": f"evolve|{round_id}|{candidate_id}|{product_id}|{fmt}",
                                  "product_id": product_id, "prompt_id": candidate_id,
                                  "cluster_id": plan["cluster_id"], "format": fmt, "seed": seed,
                                  "image_sha256": store.put_file(finished.png),
                                  "mask_sha256": store.put_file(finished.mask_png),
                                  "bytes": finished.bytes,
                                  "manifest": {**finished.manifest, "product_id": product_id}})
                    pixels.append((creative.image, placed.mask))
    store.add_prompts({"prompt_id": pid, "category": plan["category"],
                       "cluster_id": plan["cluster_id"], "text": text, "negative_prompt": "",
                       "tags": {"round": round_id}, "source": "evolve"}
                      for plan in plans for pid, text in plan["candidates"])
    store.add_creatives(notes)
    scores, strength = _scores(notes, pixels, audience, reward_model)

    record = {"round": round_id, "pools": []}
    creative_scores, priors = {}, {}
    for plan in plans:
        by_prompt: dict[str, list[float]] = {}
        for note, score in zip(notes, scores):
            if (note["cluster_id"] == plan["cluster_id"] and not _held(note)
                    and note["prompt_id"] in dict(plan["candidates"])):
                by_prompt.setdefault(note["prompt_id"], []).append(score)
        ranked = sorted(by_prompt, key=lambda p: -_mean(by_prompt[p]))
        added = ranked[: max(1, len(plan["retired"]))] if ranked else []
        # An arm retires only when a new one takes its place: a pool never shrinks
        # because no new candidate could be written.
        plan["kept"] = plan["kept"] + plan["retired"][len(added):]
        plan["retired"] = plan["retired"][:len(added)]
        mine = dict(plan["candidates"])
        for note, score in zip(notes, scores):
            if note["prompt_id"] not in mine:
                continue  # another pool's candidate: that pool's plan decides
            creative_scores[note["job_key"]] = (score, note["prompt_id"] in added
                                                and not _held(note))
        for arm in added:
            priors[arm] = _mean(by_prompt[arm])
        entry = {"category": plan["category"], "cluster_id": plan["cluster_id"],
                 "kept": plan["kept"], "retired": plan["retired"], "added": added,
                 "values": plan["values"],
                 "candidate_scores": {p: _mean(v) for p, v in by_prompt.items()},
                 "reason": "retired the lowest learned means; added the best-scored "
                           "recombinations of the winners"}
        record["pools"].append(entry)
    store.record_round(round_id, record["pools"], creative_scores=creative_scores,
                       priors=priors, strength=strength)
    added_total = sum(len(p["added"]) for p in record["pools"])
    retired_total = sum(len(p["retired"]) for p in record["pools"])
    echo(f"round {round_id}: {retired_total} arms retired, {added_total} added over "
         f"{len(record['pools'])} pools ({len(notes)} creatives rendered)")
    return record


def _held(note: dict) -> bool:
    """Whether the safety gate blocked this new creative (it can be no arm's creative)."""
    return bool((note["manifest"].get("safety") or {}).get("blocked"))


def _mean(values) -> float:
    """Mean of the known (non-NaN) scores; NaN when none is known."""
    known = [v for v in values if not np.isnan(v)]
    return float(np.mean(known)) if known else float("nan")


def rounds(store: Store) -> list[dict]:
    """Every recorded round, oldest first."""
    return store.rounds()


def rollback(store: Store, to_round: int) -> int:
    """Undo every round after ``to_round`` (0 = back to the batch's pool); returns how
    many pool records were undone."""
    return store.rollback_rounds(to_round)


def _pools(service: SelectionService) -> dict[tuple, list[str]]:
    pools: dict[tuple, list[str]] = {}
    for arm_id, arm in sorted(service.arms.items()):
        pools.setdefault((arm["category"], arm["cluster_id"]), []).append(arm_id)
    return pools


def _candidates(category, cluster_id, winners, prompt_rows, audience, n, rules, seed):
    """New prompts: the winners' slots recombined, or fresh template prompts."""
    tags = [json.loads(prompt_rows[a]["tags"]) for a in winners[:2] if a in prompt_rows]
    tags = [t for t in tags if all(slot in t for slot in SLOTS)]
    existing = {r["text"] for r in prompt_rows.values()}
    texts = []
    if len(tags) == 2:
        subject = load_vocabulary(category).subject.format(title=category_product(category).label)
        combos = list(itertools.product(*[(tags[0][s], tags[1][s]) for s in SLOTS]))
        rng = np.random.default_rng(seed)
        for i in rng.permutation(len(combos)):
            picked = dict(zip(SLOTS, combos[i]))
            text = rules.enforce(f"{subject} {picked['surface']}, {picked['scene']}, "
                                 f"{picked['lighting']}, {picked['palette']}, {picked['style']}")
            if text not in existing and text not in texts:
                texts.append(text)
            if len(texts) == n:
                break
    if len(texts) < n:
        cluster = next(c for c in audience.clusters_ if c.id == cluster_id)
        for prompt in TemplateGenerator(rules).generate(category_product(category), cluster,
                                                        n - len(texts) + 2, seed=seed):
            if prompt.text not in existing and prompt.text not in texts and len(texts) < n:
                texts.append(prompt.text)
    return [(prompt_id(category, cluster_id, t), t) for t in texts]


def _scores(notes, pixels, audience, reward_model) -> tuple[list[float], float | None]:
    """Reward scores of the new creatives at their cluster's centroid, and the model's
    calibrated prior strength (None without a model)."""
    from reward import CTRModel

    if not notes or not reward_model:
        return [float("nan")] * len(notes), None
    records = [CreativeRecord(n["manifest"]["id"], n["product_id"], n["format"],
                              n["manifest"]["prompt"], image, mask)
               for n, (image, mask) in zip(notes, pixels)]
    model = CTRModel.load(reward_model)
    image, text = creative_tables(records, clip=model.metadata_.get("clip"))
    centroids = audience.centroids_[[n["cluster_id"] for n in notes]]
    return (list(model.predict_ctr(centroids, image, text, creative=np.arange(len(records)))),
            (model.metadata_ or {}).get("prior_impressions"))


def catalog_images(catalog_path) -> dict[str, str]:
    from ..inputs.catalog import load_catalog

    return {row.product_id: row.image for row in load_catalog(Path(catalog_path)).itertuples()}

