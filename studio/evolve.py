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

import hashlib
import itertools
import json
import time
from pathlib import Path

import numpy as np

from pipelines import load_product
from pipelines.engines import load_engine

from .batch import commit_creatives
from .errors import StudioError
from .guidelines import Guidelines
from .prompts import SLOTS, TemplateGenerator, category_product, load_vocabulary
from .render import DEFAULT_NEGATIVE_PROMPT, RenderOptions, finish, prepare, render
from .scoring import CreativeRecord, creative_tables
from .serving import SelectionService, ServingConfig
from .store import Store


def evolve(store: Store, *, catalog_images: dict[str, str], per_cluster: int = 2,
           retire: int = 1, min_arms: int = 2, engine: str = "auto", size: str | None = None,
           reward_model: str | None = None,
           guidelines: Guidelines | None = None, seed: int = 0,
           config: ServingConfig | None = None, echo=print) -> dict:
    """Run one round; return its record. Candidates are scored by ``reward_model`` (a
    CTRModel file); without one they are unscored and the first are added unranked."""
    if per_cluster < 1 or retire < 0 or min_arms < 1:
        raise StudioError("per-cluster >= 1, retire >= 0 and min-arms >= 1 are needed")
    rules = guidelines or Guidelines()
    service = SelectionService(store, config=config)
    audience = service.audience
    round_id = int(store.query("SELECT COALESCE(MAX(round), 0) FROM evolution")[0][0]) + 1
    chosen, notice = load_engine(engine)
    if notice:
        echo(notice)
    formats = [r[0] for r in store.query("SELECT DISTINCT format FROM creatives ORDER BY format")]
    products = {r["product_id"]: r["category"] for r in store.query("SELECT * FROM products")}
    missing = sorted(set(products) - set(catalog_images))
    if missing:
        raise StudioError(f"no image for product {missing[0]!r}: pass the catalog the store was built from")
    loaded = {pid: load_product(catalog_images[pid], name=pid) for pid in products}
    prompt_rows = {r["prompt_id"]: dict(r) for r in store.query("SELECT * FROM prompts")}
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
        for prompt_id, text in plan["candidates"]:
            for product_id, category in products.items():
                if category != plan["category"]:
                    continue
                for fmt in formats:
                    options = RenderOptions(prompt=text, format=fmt, size=size, seed=seed,
                                            negative_prompt=rules.negative_prompt(
                                                DEFAULT_NEGATIVE_PROMPT), anchor="bottom")
                    placed = prepare(loaded[product_id], options)
                    creative = render(placed, options, chosen)[0]
                    png, mask_png, manifest = finish(creative, placed, loaded[product_id], options, chosen)
                    notes.append({"job_key": f"evolve|{round_id}|{prompt_id}|{product_id}|{fmt}",
                                  "product_id": product_id, "prompt_id": prompt_id,
                                  "cluster_id": plan["cluster_id"], "format": fmt, "seed": seed,
                                  "image_sha256": store.put_file(png),
                                  "mask_sha256": store.put_file(mask_png),
                                  "bytes": len(png) + len(mask_png),
                                  "manifest": {**manifest, "product_id": product_id}})
                    pixels.append((creative.image, placed.mask))
    with store.transaction() as tx:
        for plan in plans:
            for prompt_id, text in plan["candidates"]:
                tx.execute("INSERT OR IGNORE INTO prompts VALUES (?, ?, ?, ?, ?, ?, ?)",
                           (prompt_id, plan["category"], plan["cluster_id"], text, "",
                            json.dumps({"round": round_id}), "evolve"))
    commit_creatives(store, notes)
    scores, strength = _scores(notes, pixels, audience, reward_model)

    record = {"round": round_id, "pools": []}
    with store.transaction() as tx:
        for plan in plans:
            by_prompt: dict[str, list[float]] = {}
            for note, score in zip(notes, scores):
                if note["cluster_id"] == plan["cluster_id"] and note["prompt_id"] in dict(plan["candidates"]):
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
                tx.execute("UPDATE creatives SET reward = ?, selected = ? WHERE job_key = ?",
                           (None if np.isnan(score) else float(score),
                            int(note["prompt_id"] in added), note["job_key"]))
            for arm in plan["retired"]:
                tx.execute("UPDATE arms SET active = 0 WHERE arm_id = ?", (arm,))
            for arm in added:
                prior = None if np.isnan(_mean(by_prompt[arm])) else _mean(by_prompt[arm])
                tx.execute("INSERT INTO arms (arm_id, category, cluster_id, prior_ctr, active, "
                           "prior_impressions) VALUES (?, ?, ?, ?, 1, ?) ON CONFLICT(arm_id) DO "
                           "UPDATE SET active = 1, prior_ctr = excluded.prior_ctr, "
                           "prior_impressions = excluded.prior_impressions",
                           (arm, plan["category"], plan["cluster_id"], prior, strength))
            entry = {"category": plan["category"], "cluster_id": plan["cluster_id"],
                     "kept": plan["kept"], "retired": plan["retired"], "added": added,
                     "values": plan["values"],
                     "candidate_scores": {p: _mean(v) for p, v in by_prompt.items()},
                     "reason": "retired the lowest learned means; added the best-scored "
                               "recombinations of the winners"}
            record["pools"].append(entry)
            tx.execute("INSERT INTO evolution (round, created_at, category, cluster_id, record) "
                       "VALUES (?, ?, ?, ?, ?)", (round_id, time.time(), plan["category"],
                                                  plan["cluster_id"], json.dumps(entry)))
    added_total = sum(len(p["added"]) for p in record["pools"])
    retired_total = sum(len(p["retired"]) for p in record["pools"])
    echo(f"round {round_id}: {retired_total} arms retired, {added_total} added over "
         f"{len(record['pools'])} pools ({len(notes)} creatives rendered)")
    return record


def _mean(values) -> float:
    """Mean of the known (non-NaN) scores; NaN when none is known."""
    known = [v for v in values if not np.isnan(v)]
    return float(np.mean(known)) if known else float("nan")


def rounds(store: Store) -> list[dict]:
    """Every recorded round, oldest first."""
    return [{"round": r["round"], **json.loads(r["record"])}
            for r in store.query("SELECT round, record FROM evolution ORDER BY round, id")]


def rollback(store: Store, to_round: int) -> int:
    """Undo every round after ``to_round`` (0 = back to the batch's pool); returns how
    many pool records were undone."""
    rows = store.query("SELECT id, record FROM evolution WHERE round > ? ORDER BY round DESC, id DESC",
                       (to_round,))
    with store.transaction() as tx:
        for row in rows:
            entry = json.loads(row["record"])
            for arm in entry["added"]:
                tx.execute("UPDATE arms SET active = 0 WHERE arm_id = ?", (arm,))
            for arm in entry["retired"]:
                tx.execute("UPDATE arms SET active = 1 WHERE arm_id = ?", (arm,))
            tx.execute("DELETE FROM evolution WHERE id = ?", (row["id"],))
    return len(rows)


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
    return [(hashlib.sha1(f"{category}|{cluster_id}|{t}".encode()).hexdigest()[:16], t)
            for t in texts]


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
    from .catalog import load_catalog

    return {row.product_id: row.image for row in load_catalog(Path(catalog_path)).itertuples()}

