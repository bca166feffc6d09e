"""The arms of a store's pools: every creative scored by the reward model at its
cluster's centroid, the top-M prompts per (product, cluster) made arms with their prior.

Used at the end of ``studio batch``, by the UI's render and by the simulation's stages
(which choose arms once a reward model is trained on their renders).
"""

from __future__ import annotations

import numpy as np

from ..inputs.audience import Audience
from ..store import Store


def score_and_choose_arms(store: Store, audience: Audience, model, *, top_m: int,
                          replace_arms: bool = False) -> None:
    """Reward scores (``model``, a CTRModel, or None: all prompts tie) for every creative
    at its cluster's centroid, the top-M prompts per (product, cluster), and the arms with
    their prior CTR and prior strength (``model.metadata_["prior_impressions"]``, the
    reward model's calibrated trust, when it has one). With ``replace_arms`` the active
    arms become exactly this selection (a new reward model re-chooses the pool); else
    arms are added or re-scored and retired ones stay retired. A creative the safety gate
    blocked (and no reviewer overrode) is left unscored and unselected, so it is never an
    arm's creative, and a prompt whose every creative is blocked is never an arm."""
    from .scoring import creative_tables, store_records

    everything = store.creatives()
    rows = [r for r in everything if r["servable"]]
    blocked = {r["creative_id"]: (None, False) for r in everything if not r["servable"]}
    if not rows:
        if blocked:
            store.set_scores_and_arms(blocked, {}, strength=None, replace_arms=replace_arms)
        return
    records = store_records(store, rows)
    if model is None:
        scores = np.full(len(records), np.nan)
    else:
        image, text = creative_tables(records, clip=model.metadata_.get("clip"))
        centroids = audience.centroids_[[r["cluster_id"] for r in rows]]
        scores = model.predict_ctr(centroids, image, text, creative=np.arange(len(records)))
    by_pair: dict[tuple, dict[str, list[float]]] = {}
    for row, score in zip(rows, scores):
        by_pair.setdefault((row["product_id"], row["cluster_id"]), {}).setdefault(
            row["prompt_id"], []).append(float(score))
    selected = set()
    for (product_id, cluster_id), prompts in by_pair.items():
        ranked = sorted(prompts, key=lambda p: (-np.nan_to_num(np.mean(prompts[p]), nan=0.0), p))
        selected.update((product_id, p) for p in ranked[:top_m])
    prompt_rows = store.prompt_records()
    arm_scores: dict[str, list[float]] = {}
    for row, score in zip(rows, scores):
        if (row["product_id"], row["prompt_id"]) in selected:
            arm_scores.setdefault(row["prompt_id"], []).append(float(score))
    strength = None if model is None else (model.metadata_ or {}).get("prior_impressions")
    arms = {}
    for arm_id, values in arm_scores.items():
        prompt = prompt_rows[arm_id]
        prior = None if np.isnan(values).all() else float(np.nanmean(values))
        arms[arm_id] = (prompt["category"], prompt["cluster_id"], prior)
    store.set_scores_and_arms(
        {row["creative_id"]: (score, (row["product_id"], row["prompt_id"]) in selected)
         for row, score in zip(rows, scores)} | blocked,
        arms, strength=strength, replace_arms=replace_arms)
