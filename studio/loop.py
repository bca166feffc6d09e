"""The learning loop, simulated: a fixed prompt pool against an evolving one.

Both pools start from the same store (``studio batch``); each round serves the same
number of simulated impressions to each through the selection service (LinUCB learning
across rounds); after every round the evolving pool goes through ``studio evolve``
(worst arms retired, recombinations of the winners rendered, scored and added). The CTR
of each round shows whether what the audience clicks improves what gets rendered.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from .campaign import run_campaign
from .evolve import catalog_images, evolve
from .store import Store


def run_loop(base_store: Path, work: Path, users, users_path, catalog_path, *, rounds: int = 3,
             impressions: int = 3000, seed: int = 0, engine: str = "backdrop",
             size: str | None = None, placements=("1:1",), echo=print) -> dict:
    """Per-round CTRs of the fixed and the evolving pool (and the static creative)."""
    work = Path(work)
    stores = {}
    for name in ("fixed", "evolving"):
        folder = work / name
        shutil.rmtree(folder, ignore_errors=True)
        shutil.copytree(base_store, folder)
        store = Store(folder)
        store.clear_campaign()
        stores[name] = store
    images = catalog_images(catalog_path)
    result = {"fixed": [], "evolving": [], "static": []}
    for r in range(rounds):
        for name, store in stores.items():
            campaign, _ = run_campaign(store, users, impressions=impressions,
                                       placements=placements, seed=seed * 1000 + r)
            ctr = campaign.ctr()
            result[name].append(ctr["linucb"])
            if name == "fixed":
                result["static"].append(ctr["static"])
        echo(f"round {r + 1}: fixed {result['fixed'][-1]:.3%}, evolving "
             f"{result['evolving'][-1]:.3%}, static {result['static'][-1]:.3%}")
        if r < rounds - 1:
            evolve(stores["evolving"], catalog_images=images, engine=engine, size=size,
                   users_path=users_path, seed=seed + r, echo=lambda m: None)
    return result
