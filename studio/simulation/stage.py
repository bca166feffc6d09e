"""The stage of a simulated study: a past store, a campaign store, and per world the
reward model of its past, its arms and the arena.

Rendering is the slow part and does not depend on the world, so it happens once: the
*past* store holds earlier creatives (template prompts of another seed) and the
*campaign* store the creatives of the campaign (the default prompts), both rendered by
``studio batch`` for the same catalog and audience (the campaign reuses the clusters
fitted for the past store). Each world then trains its own past reward model, which
re-chooses the campaign's arms and their priors (exactly as ``studio batch
--reward-model`` does), and is judged on the campaign's held-out creatives.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pandas as pd

from ..assets import assets_dir
from ..inputs.tables import load_users
from ..learning.arms import score_and_choose_arms
from ..learning.batch import BatchSettings, run_batch
from ..store import Store
from .arena import Arena
from .past import Creatives, judge_on_heldout, train_past_model
from .population import make_users
from .world import World

#: Seed of the template prompts of the past period (the campaign uses 0).
PAST_PROMPT_SEED = 1001
#: Seed of the held-out prompts that judge reward models during the learning loop.
HELDOUT_PROMPT_SEED = 2002


@dataclass
class Stage:
    """Rendered stores and the users of both periods."""

    past_store: Store
    campaign_store: Store
    campaign_users: pd.DataFrame
    past_users: pd.DataFrame
    placements: tuple[str, ...]
    top_m: int
    catalog: Path
    users_path: Path
    heldout_store: Store | None = None  # creatives no pool serves, to judge reward models

    @property
    def engine(self) -> str:
        """The engine that rendered the campaign (``auto`` resolved)."""
        manifest = self.campaign_store.any_manifest()
        return str(manifest.get("engine", "?")) if manifest is not None else "none"

    def past_creatives(self) -> Creatives:
        if not hasattr(self, "_past"):
            self._past = Creatives.from_store(self.past_store)
        return self._past

    def heldout_creatives(self) -> Creatives | None:
        if self.heldout_store is None:
            return None
        if not hasattr(self, "_heldout"):
            self._heldout = Creatives.from_store(self.heldout_store)
        return self._heldout

    def campaign_creatives(self) -> Creatives:
        if not hasattr(self, "_campaign"):
            self._campaign = Creatives.from_store(self.campaign_store)
        return self._campaign


def build_stage(out: Path, *, engine: str = "backdrop", size: str | None = "256",
                placements: tuple[str, ...] = ("1:1",), per_cluster: int = 6,
                past_per_cluster: int = 6, top_m: int = 4, heldout_per_cluster: int = 0,
                catalog: Path | None = None,
                users_path: Path | None = None, past_users: int = 5000, seed: int = 0,
                watermark: bool = False, generator: str = "template", echo: Callable[[str], None] = print) -> Stage:
    """Render (or reuse: ``studio batch`` resumes) both stores under ``out`` (and, with
    ``heldout_per_cluster``, a third of prompts of another seed that judges the loop's
    reward models). ``generator`` writes the campaign's prompts (the past's are template
    prompts of another seed)."""
    out = Path(out)
    catalog = Path(catalog or assets_dir() / "demo" / "catalog.csv")
    users_path = Path(users_path or assets_dir() / "demo" / "users.csv")
    common = dict(formats=tuple(placements), seeds=(seed,), engine=engine, size=size,
                  watermark=watermark, choose_arms=False)  # each world's model chooses them
    echo("rendering the past period's creatives (other prompts)")
    run_batch(catalog, users_path, out / "past",
              BatchSettings(per_cluster=past_per_cluster, top_m=past_per_cluster,
                            prompt_seed=PAST_PROMPT_SEED, **common), echo=echo)
    past_store = Store(out / "past")
    clusters = out / "clusters.json"
    if not clusters.exists():
        past_store.audience().save(clusters)
    echo("rendering the campaign's creatives")
    run_batch(catalog, clusters, out / "store",
              BatchSettings(per_cluster=per_cluster, top_m=top_m, generator=generator, **common),
              echo=echo)
    heldout = None
    if heldout_per_cluster:
        echo("rendering held-out creatives (prompts of a third seed)")
        run_batch(catalog, clusters, out / "heldout",
                  BatchSettings(per_cluster=heldout_per_cluster, top_m=heldout_per_cluster,
                                prompt_seed=HELDOUT_PROMPT_SEED, **common), echo=echo)
        heldout = Store(out / "heldout")
    return Stage(past_store, Store(out / "store"), load_users(users_path),
                 make_users(past_users, seed=10_000 + seed), tuple(placements), top_m,
                 catalog, users_path, heldout)


@dataclass
class Prepared:
    """One world on a stage: its past reward model, the model's held-out judgement and
    the campaign arena with the arms the model chose."""

    world: World
    model: object
    judgement: dict
    arena: Arena


def prepare_world(stage: Stage, world: World, *, past_impressions: int = 200_000,
                  judge_impressions: int = 200_000, seed: int = 0) -> Prepared:
    """Train the past reward model, judge it on the campaign's held-out creatives, let it
    choose the campaign's arms and priors, and build the arena."""
    audience = stage.campaign_store.audience()
    campaign = stage.campaign_creatives()
    model = train_past_model(world, stage.past_creatives(), stage.past_users, audience,
                             impressions=past_impressions, seed=seed,
                             exclude_prompts=[r.prompt for r in campaign.records])
    judgement = judge_on_heldout(model, world, campaign, stage.campaign_users, audience,
                                 impressions=judge_impressions, seed=seed)
    store = stage.campaign_store
    store.clear_campaign()
    score_and_choose_arms(store, audience, model, top_m=stage.top_m, replace_arms=True)
    return Prepared(world, model, judgement, Arena.from_store(store, stage.campaign_users,
                                                              stage.placements))
