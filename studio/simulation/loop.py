"""The learning loop in the world: a fixed pool against an evolving one, at equal arms
and an equal, counted budget of impressions.

Both pools start as copies of the campaign store. Each round serves the same stream of
impressions (same users, products, slots and coins) to each pool through the real
selection service (``SelectionService.select`` + ``feedback``, the bandit learning across
rounds); between rounds the evolving pool goes through ``studio evolve``: in every pool
the arm with the lowest learned mean retires and the best-scored of ``candidates`` new
prompts (recombinations of the winners) takes its place, scored and warm-started by the
*past* reward model. Evolve draws no simulated impressions: the only clicks either pool
ever sees are its rounds' — the budgets are equal and all counted. Round *r* spans the
world's campaign time [r/R, (r+1)/R], so tastes drift under both pools alike.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from ..learning.evolve import catalog_images, evolve
from ..serving.config import ServingConfig
from ..serving.service import SelectionService
from ..store import Store
from .arena import Arena
from .campaign import run_campaign
from .policies import ServiceChoice
from .stage import Prepared, Stage


def run_loop(stage: Stage, prepared: Prepared, work: Path, *, rounds: int = 3,
             impressions: int = 5000, candidates: int = 2, engine: str = "backdrop",
             size: str | None = None, served: ServingConfig | None = None, seed: int = 0,
             echo=print) -> dict:
    """Per-round mean true CTR of the fixed and the evolving pool, and their arm counts."""
    work = Path(work)
    served = served or ServingConfig()
    model_path = work / "reward-model.npz"
    work.mkdir(parents=True, exist_ok=True)
    prepared.model.save(model_path)
    stores = {}
    for name in ("fixed", "evolving"):
        folder = work / name
        shutil.rmtree(folder, ignore_errors=True)
        shutil.copytree(stage.campaign_store.root, folder)
        stores[name] = Store(folder)
        stores[name].clear_campaign()
    images = catalog_images(stage.catalog)
    result = {"fixed": [], "evolving": [], "arms": {"fixed": [], "evolving": []},
              "impressions_per_round": impressions}
    for r in range(rounds):
        for name, store in stores.items():
            arena = Arena.from_store(store, stage.campaign_users, stage.placements)
            service = SelectionService.open(store, config=served, snapshot_every=10**9)
            campaign = run_campaign(arena, prepared.world, {"served": ServiceChoice(arena, service)},
                                    impressions=impressions, seed=seed * 1000 + r,
                                    window=(r / rounds, (r + 1) / rounds), progress=False)
            service.snapshot()
            result[name].append(campaign.ctr()["served"])
            result["arms"][name].append(int(sum(len(a) for a in arena.pools.values())))
        echo(f"round {r + 1}: fixed pool {result['fixed'][-1]:.3%}, evolving pool "
             f"{result['evolving'][-1]:.3%} (true CTR)")
        if r < rounds - 1:
            evolve(stores["evolving"], catalog_images=images, per_cluster=candidates, retire=1,
                   min_arms=1, engine=engine, size=size, reward_model=str(model_path),
                   seed=seed + r, config=served, echo=lambda message: None)
    result["difference"] = float(np.mean(np.subtract(result["evolving"][1:], result["fixed"][1:]))) \
        if rounds > 1 else 0.0
    return result
