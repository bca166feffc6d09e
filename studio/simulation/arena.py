"""The campaign's pool as arrays: what every simulated policy chooses from.

An ``Arena`` is read from a store built by ``studio batch``: the selected creatives (their
ids, prompts, pixels and formats), the arms of each (category, cluster) pool with their
reward-model priors, the creative each arm serves for a product in a placement, and the
selection service's context vector of every campaign user in every placement — the very
contexts the served bandit sees. Policies choose among the arms of the user's cluster
pool; the world judges the creative served.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from PIL import Image

from ..errors import StudioError
from ..serving.config import ServingConfig
from ..serving.service import SelectionService
from ..store import Store
from .world import CreativeSet, World


@dataclass
class Arena:
    """Arrays of one store's serving pool, for a table of campaign users."""

    store: Store
    users: pd.DataFrame
    placements: tuple[str, ...]
    products: list[str]
    category: dict  # product -> category
    creative_ids: list[str]
    prompts: list[str]
    images: list[np.ndarray]
    formats: list[str]
    rewards: np.ndarray  # the reward model's score of each creative (NaN: none)
    pools: dict  # (category, cluster) -> arm ids (fixed order)
    prior: dict  # arm -> prior CTR (None: no reward model)
    prior_impressions: dict  # arm -> calibrated prior strength (None: the service default)
    pool_creatives: dict  # (category, cluster) -> (n_products * n_placements, K) creative
    #                       index, -1 where the arm has no creative of that product
    static: np.ndarray  # (n_products, n_placements): the best-scored creative for everybody
    clusters: np.ndarray  # (U,) cluster of each user
    contexts: np.ndarray  # (n_placements, U, dim) service contexts
    cluster_ids: list[int]

    @classmethod
    def from_store(cls, store: Store, users: pd.DataFrame,
                   placements: tuple[str, ...] = ("1:1",)) -> "Arena":
        service = SelectionService.open(store, config=ServingConfig())
        rows = store.creatives(selected_only=True)
        if not rows:
            raise StudioError("the store has no selected creatives; run `studio batch` first")
        index = {r["creative_id"]: i for i, r in enumerate(rows)}
        products = sorted(service.products)
        encoded = service.audience.transform(users)
        contexts, clusters = [], None
        for placement in placements:
            pairs = [service.context(encoded=e, placement=placement) for e in encoded]
            contexts.append(np.array([p[0] for p in pairs]))
            clusters = np.array([p[1] for p in pairs])
        pools, pool_creatives = {}, {}
        for arm_id, arm in sorted(service.arms.items()):
            pools.setdefault((arm["category"], arm["cluster_id"]), []).append(arm_id)
        for key, arms in pools.items():
            table = np.full((len(products) * len(placements), len(arms)), -1, dtype=np.int64)
            for p, product in enumerate(products):
                if service.products[product] != key[0]:
                    continue
                for q, placement in enumerate(placements):
                    for k, arm in enumerate(arms):  # -1: the arm does not serve it
                        creative = service.creative_of(product, arm, placement)
                        if creative is not None:
                            table[p * len(placements) + q, k] = index[creative]
            pool_creatives[key] = table
        rewards = np.array([np.nan if r["reward"] is None else r["reward"] for r in rows])
        static = np.zeros((len(products), len(placements)), dtype=np.int64)
        for p, product in enumerate(products):
            for q, placement in enumerate(placements):
                mine = [i for i, r in enumerate(rows)
                        if r["product_id"] == product and r["format"] == placement]
                if not mine:
                    raise StudioError(f"no {placement} creative of {product} in the store")
                static[p, q] = max(mine, key=lambda i: np.nan_to_num(rewards[i], nan=-1.0))
        return cls(
            store=store, users=users.reset_index(drop=True), placements=tuple(placements),
            products=products, category=dict(service.products),
            creative_ids=[r["creative_id"] for r in rows],
            prompts=[r["manifest"]["prompt"] for r in rows],
            images=[np.asarray(Image.open(store.file_path(r["image_sha256"])).convert("RGB"))
                    for r in rows],
            formats=[r["format"] for r in rows], rewards=rewards,
            pools=pools, prior={a: arm["prior_ctr"] for a, arm in service.arms.items()},
            prior_impressions={a: arm["prior_impressions"] for a, arm in service.arms.items()},
            pool_creatives=pool_creatives, static=static, clusters=clusters,
            contexts=np.stack(contexts), cluster_ids=sorted(service.clusters))

    def read(self, world: World) -> CreativeSet:
        """The world's view of this arena's creatives."""
        return world.read(self.creative_ids, self.prompts, self.images, self.formats)

    @property
    def dim(self) -> int:
        return self.contexts.shape[2]
