"""Priors from the past, never from the judge.

The reward model that ranks a campaign's creatives and warm-starts its arms is trained on
a logged *past* period of the world: other users (another draw of the population), the
segment tastes of before the drift, earlier creatives (other prompts, rendered into a
store of their own), served by a uniformly random policy. It is then judged on
**held-out creatives** — the campaign's, whose prompts the past never showed — against
the world's oracle (the true mean CTR of each cluster for each creative: the best any
model with cluster context could do).

How far to trust it is measured on the past too: the model is refitted on 80 % of the
past prompts and scored on the other 20 %; the error it makes there beyond click noise
gives the prior's strength as an effective number of impressions,
``n₀ = p̄(1 − p̄) / (excess squared error)`` — a prior as uncertain as n₀ impressions of
the arm. It is saved with the model (``metadata_["prior_impressions"]``) and
``studio batch`` writes it on every arm.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from reward.model import evaluate_scores

from ..creatives.records import CreativeRecord
from ..errors import StudioError
from ..inputs.audience import Audience
from ..learning.scoring import store_records, train_reward_model
from ..store import Store
from .world import World

#: Bounds of the calibrated prior strength (impressions).
PRIOR_IMPRESSIONS = (10.0, 20_000.0)


@dataclass
class Creatives:
    """Every creative of a store (not only the served ones), for training and judging."""

    records: list[CreativeRecord]
    cluster_ids: np.ndarray  # the cluster whose prompt made each creative

    @classmethod
    def from_store(cls, store: Store) -> "Creatives":
        rows = store.creatives()
        return cls(store_records(store, rows), np.array([r["cluster_id"] for r in rows]))

    def read(self, world: World):
        return world.read([r.creative_id for r in self.records], [r.prompt for r in self.records],
                          [r.image for r in self.records], [r.format for r in self.records])

    def subset(self, keep) -> "Creatives":
        keep = np.asarray(keep, dtype=bool)
        return Creatives([r for r, k in zip(self.records, keep) if k], self.cluster_ids[keep])


def impression_log(world: World, creatives: Creatives, users: pd.DataFrame, *, period: str,
                   impressions: int, seed: int, t: float = 0.0) -> pd.DataFrame:
    """A log of a uniformly random policy, one row per impression: a random user of
    ``users`` sees a random creative in a random slot, and clicks or not. The true click
    probability is not in the log (the studio never sees it)."""
    if impressions < 1:
        raise StudioError(f"impressions must be >= 1, got {impressions}")
    if not creatives.records:
        raise StudioError("no creatives to show")
    population = world.population(users, period)
    seen = creatives.read(world)
    rng = np.random.default_rng([seed, 3])
    user = rng.integers(0, len(users), impressions)
    chosen = rng.integers(0, len(creatives.records), impressions)
    position = rng.integers(1, world.config.slots + 1, impressions)
    clicks = rng.random(impressions) < population.ctr(user, seen, chosen, t=t, position=position)
    records = creatives.records
    return pd.DataFrame({
        "impression": np.arange(impressions), "user_index": user,
        "user_id": users["user_id"].to_numpy()[user],
        "creative_id": [records[i].creative_id for i in chosen],
        "product_id": [records[i].product_id for i in chosen],
        "format": [records[i].format for i in chosen],
        "position": position, "click": clicks.astype(np.int64)})


def world_log(records: list[CreativeRecord], users: pd.DataFrame, *, seed: int, period: str,
              impressions: int) -> pd.DataFrame:
    """``impression_log`` of published creatives in the world of ``seed`` (what
    ``studio simulate`` writes)."""
    return impression_log(World(seed), Creatives(records, np.zeros(len(records), dtype=np.int64)),
                          users, period=period, impressions=impressions, seed=seed)


def uniform_log(world: World, creatives: Creatives, users: pd.DataFrame, audience: Audience,
                *, period: str, impressions: int, seed: int, t: float = 0.0) -> pd.DataFrame:
    """``impression_log`` aggregated per (cluster of the user, creative) as
    ``cluster_id, creative_id, clicks, impressions`` (the studio's log format)."""
    log = impression_log(world, creatives, users, period=period, impressions=impressions,
                         seed=seed, t=t)
    log["cluster_id"] = audience.assign(users)[log["user_index"].to_numpy()]
    return log.groupby(["cluster_id", "creative_id"]).agg(
        clicks=("click", "sum"), impressions=("click", "size")).reset_index()


def train_past_model(world: World, past: Creatives, past_users: pd.DataFrame, audience: Audience,
                     *, impressions: int = 200_000, seed: int = 0, exclude_prompts=()):
    """The reward model of the past period, with its calibrated prior strength and its
    past log's size in ``metadata_``. ``exclude_prompts``: prompts the past must not have
    shown (the campaign's, so that they stay held out)."""
    excluded = {" ".join(p.lower().split()) for p in exclude_prompts}
    past = past.subset([" ".join(r.prompt.lower().split()) not in excluded for r in past.records])
    log = uniform_log(world, past, past_users, audience, period="past",
                      impressions=impressions, seed=seed)
    strength, validation = _calibrate(log, past, audience, seed)
    model = train_reward_model(log, past.records, audience)
    model.metadata_ = {**model.metadata_, "prior_impressions": strength,
                       "past_impressions": int(impressions), "past_creatives": len(past.records),
                       "validation": validation}
    return model


def _calibrate(log: pd.DataFrame, past: Creatives, audience: Audience, seed: int):
    """Refit on 80 % of the past prompts, measure the error on the rest beyond click
    noise, and turn it into an effective number of impressions."""
    prompts = sorted({r.prompt for r in past.records})
    rng = np.random.default_rng([seed, 5])
    held = set(rng.choice(prompts, size=max(1, len(prompts) // 5), replace=False))
    held_ids = {r.creative_id for r in past.records if r.prompt in held}
    train = log[~log["creative_id"].isin(held_ids)]
    test = log[log["creative_id"].isin(held_ids)]
    model = train_reward_model(train, past.records, audience)
    index = {r.creative_id: i for i, r in enumerate(past.records)}
    from ..learning.scoring import creative_tables

    image, text = creative_tables(past.records)
    predicted = model.predict_ctr(audience.centroids_[test["cluster_id"].to_numpy()], image, text,
                                  creative=test["creative_id"].map(index).to_numpy())
    n = test["impressions"].to_numpy(float)
    observed = test["clicks"].to_numpy(float) / n
    mean = float(np.average(observed, weights=n))
    noise = np.average(mean * (1 - mean) / n, weights=n)
    excess = float(np.average((predicted - observed) ** 2, weights=n) - noise)
    strength = float(np.clip(mean * (1 - mean) / max(excess, 1e-12), *PRIOR_IMPRESSIONS))
    return strength, {"rmse_excess": float(np.sqrt(max(excess, 0.0))), "mean_ctr": mean,
                      "held_out_prompts": len(held)}


def judge_on_heldout(model, world: World, heldout: Creatives, users: pd.DataFrame,
                     audience: Audience, *, impressions: int = 200_000, seed: int = 0,
                     t: float = 0.0) -> dict:
    """AUC, log-loss, ECE and within-(product, cluster) pairwise accuracy of ``model`` on
    held-out creatives, next to the world oracle's on the very same held-out log (a log
    drawn only to measure: no policy learns from it), at campaign time ``t``."""
    from ..learning.scoring import creative_tables

    log = uniform_log(world, heldout, users, audience, period="campaign",
                      impressions=impressions, seed=seed + 1, t=t)
    index = {r.creative_id: i for i, r in enumerate(heldout.records)}
    rows = log["creative_id"].map(index).to_numpy()
    clusters = log["cluster_id"].to_numpy()
    image, text = creative_tables(heldout.records)
    predicted = model.predict_ctr(audience.centroids_[clusters], image, text, creative=rows)
    population = world.population(users, "campaign")
    matrix = population.ctr_matrix(heldout.read(world), t=t)
    members = audience.assign(users)
    means = np.array([matrix[members == c].mean(axis=0) if (members == c).any()
                      else np.full(matrix.shape[1], np.nan) for c in range(len(audience.clusters_))])
    oracle = means[clusters, rows]
    groups = [f"{heldout.records[i].product_id}|{c}" for i, c in zip(rows, clusters)]
    ids = log["creative_id"].to_numpy()
    kwargs = dict(groups=groups, creative_ids=ids)
    ours = evaluate_scores(predicted, log["clicks"], log["impressions"], **kwargs)
    best = evaluate_scores(oracle, log["clicks"], log["impressions"], **kwargs)
    return {"model": ours, "oracle": best,
            "pairwise_ratio": ours["pairwise_acc"] / best["pairwise_acc"],
            "heldout_creatives": len(heldout.records), "impressions": int(impressions)}
