"""``studio demo``: the whole data flow on the bundled assets.

products → demo audience → clusters → prompts per cluster → renders in two formats →
reward model trained on simulated impressions → arms (``studio batch``, into
``OUT/store``) → a simulated campaign served through the real selection code (LinUCB
against one static creative and random creative choice) → the learning loop (the pool
evolves between rounds, against the fixed pool) → a report with charts.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from .assets import assets_dir
from .audience import load_users
from .batch import BatchSettings, run_batch
from .campaign import run_campaign
from .loop import run_loop
from .report import summary, write_report
from .store import Store


def run_demo(out: Path, *, engine: str = "auto", formats: tuple[str, ...] = ("1:1", "9:16"),
             impressions: int = 20_000, per_cluster: int = 3, size: str | None = None,
             rounds: int = 2, seed: int = 0, echo: Callable[[str], None] = print) -> dict:
    """Run the demo into ``out``; return the one-line summary as a dict. With ``rounds``,
    the learning loop follows: the pool evolves between rounds of impressions, against
    the fixed pool (``impressions // 4`` per round and pool)."""
    started = time.perf_counter()
    out = Path(out)
    users_path = assets_dir() / "demo" / "users.csv"
    settings = BatchSettings(per_cluster=per_cluster, formats=tuple(formats), seeds=(seed,),
                             engine=engine, size=size, top_m=2)
    built = run_batch(assets_dir() / "demo" / "catalog.csv", users_path, out / "store",
                      settings, echo=echo)
    store = Store(out / "store")
    store.clear_campaign()  # every demo run starts a fresh campaign
    echo(f"simulating {impressions:,} impressions (LinUCB vs static vs random)")
    result, service = run_campaign(store, load_users(users_path), impressions=impressions,
                                   placements=tuple(formats), seed=seed)
    loop = None
    if rounds > 0:
        echo(f"learning loop: {rounds + 1} rounds of {impressions // 4:,} impressions, "
             "fixed pool vs evolving pool")
        loop = run_loop(out / "store", out / "loop", load_users(users_path), users_path,
                        assets_dir() / "demo" / "catalog.csv", rounds=rounds + 1,
                        impressions=max(1, impressions // 4), seed=seed, engine=engine,
                        size=size, placements=tuple(formats), echo=echo)
    report = write_report(out, result, service, engine=built["engine"],
                          products=built["products"], creatives=built["creatives"],
                          seconds=time.perf_counter() - started, loop=loop)
    ctr = result.ctr()
    echo(f"CTR: LinUCB {ctr['linucb']:.2%}, static {ctr['static']:.2%}, random {ctr['random']:.2%}")
    echo(f"report: {report} (charts beside it); store: {out / 'store'}")
    return summary(report, result, built["engine"])
