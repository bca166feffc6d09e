"""``studio evolve``: what the audience clicks decides what is rendered next (CG4CTR's loop).

One round, for every (category, cluster) pool of a store:

1. gather the campaign's clicks per arm and creative from the store's event log (or a
   table of them, as a simulation passes) and, with ``refit``, refit the reward model on
   them — warm-started from the past model, pointwise and pairwise within each (product,
   cluster) (``learning.refit``);
2. retire only the arms the data condemn (``learning.retirement``: a confident loser, or
   an arm that has had its impressions and is still last — never the pool's best, never
   below ``min_arms``), and only as many as new arms replace: a pool keeps its size;
3. breed ``candidates`` new prompts from the winners (``learning.breeding``: their slots
   inherited and some mutated), held to the brand guidelines;
4. render the candidates for every product of the category in the store's formats, score
   them with the (refitted) reward model, and add the best as new arms warm-started from
   that score and the model's calibrated prior strength.

Pools with nothing to retire render nothing. Every round is recorded (kept, retired and
added arms, the evidence, the scores and why) in the store and can be listed and rolled
back (``rollback``): retired arms come back, added ones retire.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from pipelines import load_product
from pipelines.engines import load_engine

from ..creatives.records import CreativeRecord
from ..creatives.render import RenderOptions, finish, prepare, render
from ..creatives.safety import SafetySettings
from ..errors import StudioError
from ..inputs.guidelines import DEFAULT_NEGATIVE_PROMPT, Guidelines
from ..store import Store
from ..store.pools import prompt_id
from .breeding import BREEDING, breed
from .refit import refit_on_clicks
from .retirement import RULES, ArmEvidence, choose_retirements
from .scoring import creative_tables, store_records

#: Prior strength of an arm whose reward model has no calibrated one (the service's default).
DEFAULT_PRIOR_IMPRESSIONS = 100.0


@dataclass(frozen=True)
class EvolveSettings:
    """How a round retires, breeds and scores (the defaults are the bench's choice).

    candidates : new prompts written, rendered and scored per pool that retires an arm.
    retire : at most this many arms retire per pool and round; min_arms : never fewer.
    rule : ``confident`` or ``lowest`` (see ``learning.retirement``); min_impressions :
        impressions after which the last arm of a pool may retire without a confident gap.
    refit : refit the reward model on the campaign's clicks before scoring candidates;
        pairwise_weight : weight of the within-(product, cluster) pairwise loss.
    breeding : ``inherit``, ``recombine`` or ``fresh`` (see ``learning.breeding``);
        mutation : chance that a child's slot is a new vocabulary entry.
    """

    candidates: int = 8
    retire: int = 1
    min_arms: int = 2
    rule: str = "confident"
    min_impressions: int = 300
    refit: bool = True
    pairwise_weight: float = 1.0
    breeding: str = "inherit"
    mutation: float = 0.25

    def __post_init__(self):
        if not (isinstance(self.candidates, int) and 1 <= self.candidates <= 50):
            raise StudioError(f"candidates must be an integer from 1 to 50, got {self.candidates!r}")
        if not (isinstance(self.retire, int) and self.retire >= 0):
            raise StudioError(f"retire must be an integer >= 0, got {self.retire!r}")
        if not (isinstance(self.min_arms, int) and self.min_arms >= 1):
            raise StudioError(f"min-arms must be an integer >= 1, got {self.min_arms!r}")
        if self.rule not in RULES:
            raise StudioError(f"rule must be one of {', '.join(RULES)}, got {self.rule!r}")
        if not (isinstance(self.min_impressions, int) and self.min_impressions >= 0):
            raise StudioError(f"min-impressions must be an integer >= 0, got {self.min_impressions!r}")
        if not (np.isfinite(self.pairwise_weight) and self.pairwise_weight >= 0):
            raise StudioError(f"pairwise-weight must be a number >= 0, got {self.pairwise_weight!r}")
        if self.breeding not in BREEDING:
            raise StudioError(f"breeding must be one of {', '.join(BREEDING)}, got {self.breeding!r}")
        if not 0 <= self.mutation <= 1:
            raise StudioError(f"mutation must be in [0, 1], got {self.mutation!r}")


def evolve(store: Store, *, catalog_images: dict[str, str] | None = None,
           products: dict | None = None, settings: EvolveSettings = EvolveSettings(), engine: str = "auto",
           size: str | None = None, reward_model=None, guidelines: Guidelines | None = None,
           seed: int = 0, safety: SafetySettings = SafetySettings(), clicks: list[dict] | None = None,
           refit_out: Path | None = None, echo=print) -> dict:
    """Run one round; return its record. ``reward_model``: a CTRModel or its file (the
    *past* model); without one, candidates are unscored and the first are added unranked.
    ``clicks``: rows of ``cluster_id, arm_id, creative_id, impressions, clicks`` (default:
    the store's event log). The products' images come from ``catalog_images`` (product
    id → image file) or, already loaded, from ``products`` (product id → Product). ``refit_out``: where to save the refitted model. A new
    creative the safety gate blocks (``safety``) counts for nothing: a candidate whose
    every creative is blocked is never added as an arm."""
    from reward import CTRModel

    rules = guidelines or Guidelines()
    loaded = dict(products or {})
    products = store.product_categories()
    missing = sorted(set(products) - set(catalog_images or {}) - set(loaded))
    if missing:
        raise StudioError(f"no image for product {missing[0]!r}: pass the catalog the store was built from")
    model = CTRModel.load(reward_model) if isinstance(reward_model, (str, Path)) else reward_model
    audience = store.audience()
    clicks = store.creative_clicks() if clicks is None else list(clicks)
    scorer = "past" if model is not None else "none"
    if model is not None and settings.refit and clicks:
        model = refit_on_clicks(model, clicks, _records(store, {r["creative_id"] for r in clicks}),
                                audience, pairwise_weight=settings.pairwise_weight)
        scorer = "refit"
        if refit_out is not None:
            model.save(refit_out)
    strength = (model.metadata_ or {}).get("prior_impressions") if model is not None else None
    round_id = store.last_round() + 1
    plans = _plans(store, audience, clicks, settings, rules, seed + round_id)
    to_render = [p for p in plans if p["retired"]]
    chosen, notice = (load_engine(engine) if to_render else (None, None))
    if notice:
        echo(notice)
    if to_render:
        loaded.update({pid: load_product(catalog_images[pid], name=pid)
                       for pid in products if pid not in loaded})
    notes, pixels = _render(store, to_render, products, loaded, chosen, rules, safety, size,
                            seed, round_id)
    store.add_prompts({"prompt_id": pid, "category": plan["category"],
                       "cluster_id": plan["cluster_id"], "text": text, "negative_prompt": "",
                       "tags": {**tags, "round": round_id}, "source": "evolve"}
                      for plan in to_render for pid, text, tags in plan["candidates"])
    store.add_creatives(notes)
    scores = _scores(notes, pixels, audience, model)

    record = {"round": round_id, "pools": [], "scorer": scorer, "settings": asdict(settings)}
    creative_scores, priors = {}, {}
    for plan in plans:
        mine = {pid for pid, _, _ in plan["candidates"]}
        by_prompt: dict[str, list[float]] = {}
        for note, score in zip(notes, scores):
            if note["prompt_id"] in mine and not _held(note):
                by_prompt.setdefault(note["prompt_id"], []).append(score)
        ranked = sorted(by_prompt, key=lambda p: (-np.nan_to_num(_mean(by_prompt[p]), nan=-1.0), p))
        added = ranked[:len(plan["retired"])]
        # An arm retires only when a new one takes its place: a pool never shrinks
        # because no new candidate could be written.
        plan["kept"] += plan["retired"][len(added):]
        plan["retired"] = plan["retired"][:len(added)]
        for note, score in zip(notes, scores):
            if note["prompt_id"] in mine:
                creative_scores[note["job_key"]] = (score, note["prompt_id"] in added and not _held(note))
        for arm in added:
            priors[arm] = _mean(by_prompt[arm])
        record["pools"].append({
            "category": plan["category"], "cluster_id": plan["cluster_id"],
            "kept": plan["kept"], "retired": plan["retired"], "added": added,
            "values": plan["values"], "evidence": plan["evidence"],
            "reasons": {a: plan["reasons"][a] for a in plan["retired"]},
            "candidate_scores": {p: _mean(v) for p, v in by_prompt.items()},
            "scorer": scorer,
            "reason": "; ".join(f"retired {a[:8]}: {plan['reasons'][a]}" for a in plan["retired"])
                      or "kept every arm: no arm is condemned by its clicks yet"})
    store.record_round(round_id, record["pools"], creative_scores=creative_scores,
                       priors=priors, strength=strength)
    retired_total = sum(len(p["retired"]) for p in record["pools"])
    echo(f"round {round_id}: {retired_total} arms retired and replaced over "
         f"{len(record['pools'])} pools ({len(notes)} creatives rendered, candidates scored by "
         f"the {scorer} reward model)")
    return record


def _plans(store: Store, audience, clicks: list[dict], settings: EvolveSettings,
           rules: Guidelines, seed: int) -> list[dict]:
    """Per pool: the evidence of each arm, what retires and why, and the candidates."""
    prompt_rows = store.prompt_records()
    existing = {r["text"] for r in prompt_rows.values()}
    seen: dict[str, list[float]] = {}
    for row in clicks:
        total = seen.setdefault(row["arm_id"], [0.0, 0.0])
        total[0] += float(row["impressions"])
        total[1] += float(row["clicks"])
    pools: dict[tuple, list[ArmEvidence]] = {}
    for arm_id, arm in store.active_arms().items():
        impressions, clicked = seen.get(arm_id, (0.0, 0.0))
        pools.setdefault((arm["category"], int(arm["cluster_id"])), []).append(ArmEvidence(
            arm_id, int(impressions), clicked, arm["prior_ctr"],
            float(arm["prior_impressions"] or DEFAULT_PRIOR_IMPRESSIONS)))
    clusters = {c.id: c for c in audience.clusters_}
    plans = []
    for (category, cluster_id), arms in sorted(pools.items()):
        retiring = choose_retirements(arms, rule=settings.rule, retire=settings.retire,
                                      min_arms=settings.min_arms,
                                      min_impressions=settings.min_impressions)
        retired = [a for a, _ in retiring]
        ranked = sorted(arms, key=lambda a: (-a.posterior_mean, a.arm_id))
        kept = [a.arm_id for a in ranked if a.arm_id not in retired]
        candidates = []
        if retired:
            winners = [(a, _tags(prompt_rows.get(a))) for a in kept]
            bred = breed(category, clusters[cluster_id], winners, existing, settings.candidates,
                         rules, how=settings.breeding, mutation=settings.mutation,
                         seed=seed * 1000 + cluster_id)
            candidates = [(prompt_id(category, cluster_id, text), text, tags) for text, tags in bred]
            existing.update(text for text, _ in bred)
        plans.append({"category": category, "cluster_id": cluster_id, "kept": kept,
                      "retired": retired, "reasons": dict(retiring),
                      "values": {a.arm_id: a.posterior_mean for a in arms},
                      "evidence": {a.arm_id: [a.impressions, a.clicks] for a in arms},
                      "candidates": candidates})
    return plans


def _render(store, plans, products, loaded, engine, rules, safety, size, seed, round_id):
    """Every candidate of ``plans`` for every product of its category in every format."""
    formats = store.creative_formats()
    notes, pixels = [], []
    for plan in plans:
        for candidate_id, text, _ in plan["candidates"]:
            for product_id, category in products.items():
                if category != plan["category"]:
                    continue
                for fmt in formats:
                    options = RenderOptions(prompt=text, format=fmt, size=size, seed=seed,
                                            negative_prompt=rules.negative_prompt(
                                                DEFAULT_NEGATIVE_PROMPT), anchor="bottom",
                                            safety=safety)
                    placed = prepare(loaded[product_id], options)
                    creative = render(placed, options, engine)[0]
                    finished = finish(creative, placed, loaded[product_id], options, engine)
                    notes.append({"job_key": f"evolve|{round_id}|{candidate_id}|{product_id}|{fmt}",
                                  "product_id": product_id, "prompt_id": candidate_id,
                                  "cluster_id": plan["cluster_id"], "format": fmt, "seed": seed,
                                  "image_sha256": store.put_file(finished.png),
                                  "mask_sha256": store.put_file(finished.mask_png),
                                  "bytes": finished.bytes,
                                  "manifest": {**finished.manifest, "product_id": product_id}})
                    pixels.append((creative.image, placed.mask))
    return notes, pixels


def _tags(row: dict | None) -> dict:
    if row is None:
        return {}
    tags = row["tags"]
    return json.loads(tags) if isinstance(tags, str) else dict(tags or {})


def _records(store: Store, creative_ids: set[str]) -> dict[str, CreativeRecord]:
    """The store's creatives of ``creative_ids`` with their pixels (for the refit)."""
    rows = [r for r in store.creatives() if r["creative_id"] in creative_ids]
    return {r.creative_id: r for r in store_records(store, rows)}


def _held(note: dict) -> bool:  # blocked by the safety gate: no arm's creative
    return bool((note["manifest"].get("safety") or {}).get("blocked"))


def _mean(values) -> float:  # of the known (non-NaN) scores; NaN when none is
    known = [v for v in values if not np.isnan(v)]
    return float(np.mean(known)) if known else float("nan")


def rounds(store: Store) -> list[dict]:
    """Every recorded round, oldest first."""
    return store.rounds()


def rollback(store: Store, to_round: int) -> int:
    """Undo the rounds after ``to_round`` (0: the batch's pool); returns the pool records undone."""
    return store.rollback_rounds(to_round)


def _scores(notes, pixels, audience, model) -> list[float]:
    """Reward scores of the new creatives at their cluster's centroid (NaN without a model)."""
    if not notes or model is None:
        return [float("nan")] * len(notes)
    records = [CreativeRecord(n["manifest"]["id"], n["product_id"], n["format"],
                              n["manifest"]["prompt"], image, mask)
               for n, (image, mask) in zip(notes, pixels)]
    image, text = creative_tables(records, clip=model.metadata_.get("clip"))
    centroids = audience.centroids_[[n["cluster_id"] for n in notes]]
    return list(model.predict_ctr(centroids, image, text, creative=np.arange(len(records))))


def catalog_images(catalog_path) -> dict[str, str]:
    from ..inputs.catalog import load_catalog

    return {row.product_id: row.image for row in load_catalog(Path(catalog_path)).itertuples()}
