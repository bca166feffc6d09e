"""``studio demo``: the whole data flow on the bundled assets, judged by a hidden world.

products → demo audience → clusters → prompts per cluster → renders (``studio batch``):
an earlier set of creatives for the *past* period (``OUT/past``) and the campaign's
(``OUT/store``) → the past served uniformly to other users of a drifted world → a reward
model trained on that log (``OUT/reward-model.npz``), judged on the campaign's held-out
creatives → it chooses the campaign's arms and their priors → a simulated campaign in
which every policy (random, static, greedy-on-prior, epsilon-greedy, LinUCB, Thompson,
the served configuration, and the real selection service) faces the same impressions,
with the per-cluster and per-user oracles → the ad panel (each cluster's best creative re-rendered at a platform preset with a
headline and a call to action, read back with OCR) → the learning loop (fixed vs
evolving pool) → a report with charts that says what the world is and is not.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from ..serving.config import ServingConfig
from ..serving.service import SelectionService
from .campaign import run_campaign
from .loop import run_loop
from .policies import make_policies
from .panel import write_panel
from .report import best_creatives, summary, write_report
from .stage import build_stage, prepare_world
from .world import World, WorldConfig


def run_demo(out: Path, *, engine: str = "auto", formats: tuple[str, ...] = ("1:1", "9:16"),
             impressions: int = 50_000, per_cluster: int = 6, top_m: int = 4,
             size: str | None = None, rounds: int = 2, drift: bool = True, seed: int = 0,
             generator: str = "template", echo: Callable[[str], None] = print) -> dict:
    """Run the demo into ``out``; return the one-line summary as a dict. With ``rounds``,
    the learning loop follows: ``rounds + 1`` rounds of ``impressions // 2`` per pool."""
    started = time.perf_counter()
    out = Path(out)
    stage = build_stage(out, engine=engine, size=size, placements=tuple(formats),
                        per_cluster=per_cluster, past_per_cluster=per_cluster, top_m=top_m,
                        seed=seed, watermark=True, generator=generator, echo=echo)
    world = World(seed, WorldConfig() if drift else WorldConfig().without_drift())
    echo(f"world {seed}: training the reward model on the past period and judging it on "
         "the campaign's held-out creatives")
    prepared = prepare_world(stage, world, seed=seed)
    prepared.model.save(out / "reward-model.npz")
    served = ServingConfig(seed=seed)
    service = SelectionService.open(stage.campaign_store, config=served, snapshot_every=1000)
    policies = make_policies(prepared.arena, served, seed=seed, service=service)
    echo(f"simulating {impressions:,} impressions for {len(policies)} policies (the service's "
         "through the real selection service)")
    result = run_campaign(prepared.arena, world, policies, impressions=impressions, seed=seed)
    service.snapshot()
    best = best_creatives(service)
    echo("the ad panel: each cluster's best creative at a platform preset, with copy")
    panel = write_panel(out, service, best, stage.catalog, engine=engine, seed=seed, echo=echo)
    loop = None
    if rounds > 0:
        echo(f"learning loop: {rounds + 1} rounds of {max(1, impressions // 2):,} impressions, "
             "fixed pool vs evolving pool (equal arms, equal impressions)")
        loop = run_loop(stage, prepared, out / "loop", rounds=rounds + 1,
                        impressions=max(1, impressions // 2), engine=engine, size=size,
                        served=served, seed=seed, echo=echo)
    report = write_report(out, result, service, world=world, judgement=prepared.judgement,
                          model_metadata=prepared.model.metadata_, engine=stage.engine,
                          seconds=time.perf_counter() - started, best=best, panel=panel,
                          loop=loop)
    ctr = result.ctr()
    echo("true CTR: " + ", ".join(f"{p} {ctr[p]:.3%}" for p in
                                  ("service", "greedy_prior", "random", "oracle_cluster")))
    echo(f"report: {report} (charts beside it); store: {stage.campaign_store.root}")
    return summary(report, result, stage.engine, panel)
