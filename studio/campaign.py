"""A simulated campaign served through the real selection code.

The same stream of impressions (user, product, placement) is shown to three policies:
``linucb`` (the selection service over the store: every decision and click goes through
``SelectionService.select`` and ``feedback``), ``static`` (one creative per product and
placement for everybody: the one with the best reward score) and ``random`` (a uniformly
random creative of the user's cluster pool). Clicks are drawn from the simulator's true
CTR with common random numbers, so the policies differ only in their choices; regret is
measured against the best creative of the candidates for each impression.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from .progress import item_progress
from .serving import SelectionService
from .simulate import AudienceSimulator, SimulatedCreative, creative_attributes
from .store import Store

POLICIES = ("linucb", "static", "random")


@dataclass
class CampaignResult:
    impressions: int
    clicks: dict = field(default_factory=dict)  # policy -> 0/1 per impression
    regret: dict = field(default_factory=dict)  # policy -> expected regret per impression

    def ctr(self) -> dict:
        return {p: float(np.mean(c)) for p, c in self.clicks.items()}


def run_campaign(store: Store, users, *, impressions: int, placements=("1:1",), seed: int = 0,
                 snapshot_every: int = 500) -> tuple[CampaignResult, SelectionService]:
    """Serve ``impressions`` simulated impressions with each policy."""
    service = SelectionService(store, snapshot_every=snapshot_every, seed=seed)
    simulator = AudienceSimulator(users, seed=seed)
    rows = store.query("SELECT creative_id, product_id, format, image_sha256, mask_sha256, "
                       "manifest, reward FROM creatives WHERE selected = 1 ORDER BY creative_id")
    pool, index = [], {}
    for r in rows:
        image = np.asarray(Image.open(store.file_path(r["image_sha256"])).convert("RGB"))
        mask = np.asarray(Image.open(store.file_path(r["mask_sha256"]))) > 127
        prompt = json.loads(r["manifest"])["prompt"]
        index[r["creative_id"]] = len(pool)
        pool.append(SimulatedCreative(r["creative_id"], r["product_id"], r["format"],
                                      creative_attributes(image, mask, prompt)))
    static = {}
    for r in sorted(rows, key=lambda r: -(r["reward"] if r["reward"] is not None else 0.0)):
        static.setdefault((r["product_id"], r["format"]), r["creative_id"])

    encoded = service.audience.transform(users)
    rng = np.random.default_rng(seed)
    products = sorted(service.products)
    user_idx = rng.integers(0, len(users), impressions)
    product_idx = rng.integers(0, len(products), impressions)
    placement_idx = rng.integers(0, len(placements), impressions)
    coins = rng.random(impressions)  # common random numbers for the clicks
    random_pick = rng.random(impressions)
    result = CampaignResult(impressions, {p: np.zeros(impressions) for p in POLICIES},
                            {p: np.zeros(impressions) for p in POLICIES})
    for t in item_progress(range(impressions), "campaign", "impression"):
        u, product, placement = int(user_idx[t]), products[product_idx[t]], placements[placement_idx[t]]
        _, cluster_id = service.context(encoded=encoded[u], placement=placement)
        arms = service.candidates(product, cluster_id, placement)
        if not arms:
            continue
        candidates = [index[service.creative_of(product, a, placement)] for a in arms]
        true = simulator.true_ctr(np.full(len(candidates), u), pool, candidates)
        best = true.max()
        chosen = service.select(product, encoded=encoded[u], placement=placement)
        picks = {
            "linucb": candidates.index(index[chosen.creative_id]),
            "random": int(random_pick[t] * len(candidates)),
        }
        static_id = static.get((product, placement))
        static_ctr = float(simulator.true_ctr([u], pool, [index[static_id]])[0]) if static_id else 0.0
        for policy, ctr in (("linucb", true[picks["linucb"]]), ("random", true[picks["random"]]),
                            ("static", static_ctr)):
            click = float(coins[t] < ctr)
            result.clicks[policy][t] = click
            result.regret[policy][t] = best - ctr
        service.feedback(chosen.event_id, result.clicks["linucb"][t])
    service.snapshot()
    return result, service
