"""``studio batch``: render a catalog for an audience into a store, resumably.

catalog products × clusters × prompts (written per product category and cluster) ×
formats × seeds → renders → reward scores → the top-M prompts per (product, cluster)
become the bandit arms of (category, cluster).

Every render has a *job key* (product bytes, prompt, format, seed, engine, size). A run
skips the jobs whose creative is already in the store, and each creative is committed in
one transaction after its files are in place, so a run killed at any moment and started
again ends with the same store as an uninterrupted run. Scores and arms are recomputed
from all creatives at the end of every run (deterministically).

Runs at the same time on one store share the work: each pending job is claimed with a
lease (``Store.claim_job``) before it is rendered, so no job is rendered twice; a run
that finds jobs leased by another waits for them (or takes them over when their owner
died or its lease expired) and ends with the complete store, like the other. The
audience, products and prompts rows are written idempotently, whichever run is first.

With ``accelerate launch -m studio batch ...`` the pending jobs are split over the
processes with ``PartialState``; each process claims and commits its own jobs, and the
main process scores and chooses the arms once all are done.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from pipelines import load_product
from pipelines.engines import load_engine

from ..creatives.render import RenderOptions, finish, prepare, render
from ..errors import StudioError
from ..inputs.audience import Audience
from ..inputs.catalog import load_catalog
from ..inputs.tables import load_users
from ..progress import item_progress
from ..prompts import TemplateGenerator, category_product
from ..store import Store
from ..store.pools import prompt_id as make_prompt_id
from .arms import score_and_choose_arms


@dataclass(frozen=True)
class BatchSettings:
    per_cluster: int = 4
    formats: tuple[str, ...] = ("1:1",)
    seeds: tuple[int, ...] = (0,)
    engine: str = "auto"
    size: str | None = None
    top_m: int = 2
    k: int | None = None
    max_bytes: int | None = None
    reward_model: str | None = None
    watermark: bool = True
    prompt_seed: int = 0
    #: False: render only; the arms are chosen later (``score_and_choose_arms``), e.g. by
    #: a reward model trained once the renders exist (``studio.simulation.stage``).
    choose_arms: bool = True


def run_batch(catalog_path, audience_source, store_dir, settings: BatchSettings, *,
              echo: Callable[[str], None] = print, store_folder=None) -> dict:
    """Render what is missing into the store (a folder, or a PostgreSQL DSN with
    ``store_folder`` for its files), then score and choose the arms."""
    from accelerate import PartialState

    started = time.perf_counter()
    _check(settings)
    state = PartialState()
    catalog = load_catalog(catalog_path)  # bad input fails before the store is touched
    products = {row.product_id: (row, load_product(row.image, name=row.product_id))
                for row in catalog.itertuples()}
    store = Store(store_dir, folder=store_folder, create=True)
    if state.is_main_process:
        # Leftovers of a killed writer; a live writer's temporary files are younger.
        store.remove_temporary_files(min_age=600.0 if store.live_leases() else 1.0)
    audience = _audience(store, audience_source, settings, state.is_main_process)
    prompts = _prompts(store, catalog, products, audience, settings, state.is_main_process)
    state.wait_for_everyone()

    engine, notice = load_engine(settings.engine)
    if notice and state.is_main_process:
        echo(notice)
    engine_key = json.dumps(engine.describe(), sort_keys=True)
    done = store.job_keys()
    jobs = []
    for product_id, (row, product) in products.items():
        for prompt in prompts[row.category]:
            for fmt in settings.formats:
                for seed in settings.seeds:
                    key = _job_key(product.sha256, prompt["prompt_id"], fmt, seed, engine_key,
                                   settings)
                    if key not in done:
                        jobs.append((key, product_id, prompt, fmt, seed))
    total = len(done) + len(jobs)
    mine = jobs[state.process_index::state.num_processes]
    if state.is_main_process:
        echo(f"{total} creatives in the plan: {len(done)} in the store, {len(jobs)} to render"
             + (f" over {state.num_processes} processes" if state.num_processes > 1 else ""))
    if mine and state.is_main_process:
        _estimate(store, products, mine[0], len(jobs), engine, settings, echo)

    rendered = _render_jobs(store, mine, products, engine, settings, echo)
    state.wait_for_everyone()
    if state.num_processes > 1:
        from accelerate.utils import gather_object

        rendered = sum(gather_object([rendered]))
    if not state.is_main_process:
        return {}
    spool = store.root / "spool"  # notes of an older studio's helper processes
    if spool.exists():
        notes = [json.loads(p.read_text()) for p in sorted(spool.glob("*.json"))]
        store.add_creatives(notes)
        for path in spool.glob("*.json"):
            path.unlink()
    if settings.choose_arms:
        score_and_choose_arms(store, audience, _reward_model(settings, echo), top_m=settings.top_m)
    counts = store.counts()
    size = store.store_bytes()
    echo(f"store {store.location}: {counts['creatives']} creatives ({size / 1e6:.1f} MB), "
         f"{counts['arms']} arms over {counts['clusters']} clusters")
    return {"store": store.location, **counts, "bytes": size, "rendered": rendered,
            "engine": engine.name, "seconds": round(time.perf_counter() - started, 1)}


#: Seconds between looks at jobs that another run holds.
POLL_SECONDS = 0.25


def _render_jobs(store: Store, jobs: list, products: dict, engine, settings: BatchSettings,
                 echo) -> int:
    """Claim, render and commit ``jobs``; jobs another live run holds are waited for (and
    taken over when their lease ends). Returns how many this call rendered."""
    owner = store.new_owner()
    rendered = 0
    pending = list(jobs)
    told = False
    with store.keep_leases(owner):
        while pending:
            busy = []
            for job in item_progress(pending, f"batch ({engine.name})", "creative"):
                status = store.claim_job(job[0], owner)
                if status == "busy":
                    busy.append(job)
                elif status == "claimed":
                    store.add_creatives([_render_job(store, job, products, engine, settings)])
                    rendered += 1
            pending = busy
            if pending:
                if not told:
                    echo(f"waiting for {len(pending)} creatives that another batch run is "
                         "rendering")
                    told = True
                time.sleep(POLL_SECONDS)
    return rendered


def _render_job(store: Store, job, products: dict, engine, settings: BatchSettings) -> dict:
    """Render one job and put its files in place; the note to commit."""
    key, product_id, prompt, fmt, seed = job
    row, product = products[product_id]
    options = RenderOptions(prompt=prompt["text"], negative_prompt=prompt["negative_prompt"],
                            format=fmt, size=settings.size, seed=seed, anchor="bottom",
                            watermark=settings.watermark)
    placed = prepare(product, options)
    creative = render(placed, options, engine)[0]
    png, mask_png, manifest = finish(creative, placed, product, options, engine)
    return {"job_key": key, "product_id": product_id, "prompt_id": prompt["prompt_id"],
            "cluster_id": prompt["cluster_id"], "format": fmt, "seed": seed,
            "image_sha256": store.put_file(png), "mask_sha256": store.put_file(mask_png),
            "bytes": len(png) + len(mask_png), "manifest": {**manifest, "product_id": product_id}}


def _check(settings: BatchSettings) -> None:
    if settings.per_cluster < 1:
        raise StudioError(f"per-cluster must be at least 1, got {settings.per_cluster}")
    if settings.top_m < 1:
        raise StudioError(f"top-m must be at least 1, got {settings.top_m}")
    if not settings.formats or not settings.seeds:
        raise StudioError("at least one format and one seed are needed")
    from pipelines import check_size, format_names

    for fmt in settings.formats:
        if fmt not in format_names()[1:]:
            raise StudioError(f"unknown format {fmt!r}; choose from {', '.join(format_names()[1:])}")
    check_size(settings.size, settings.formats)  # bounded, before anything is loaded


def _audience(store: Store, source, settings: BatchSettings, writer: bool) -> Audience:
    """The store's audience; fitted (or loaded from a clusters file) on the first run."""
    if store.has_audience():
        return store.audience()
    source = Path(source)
    audience = Audience.load(source) if source.suffix == ".json" else \
        Audience(settings.k).fit(load_users(source))
    # Another run may have written its audience since the check above: the first one
    # written is the store's, and this run uses it.
    if writer and not store.add_audience(audience):
        return store.audience()
    return audience


def _prompts(store: Store, catalog, products: dict, audience: Audience,
             settings: BatchSettings, writer: bool) -> dict[str, list[dict]]:
    """Prompts per category (for every cluster), written once and kept in the store."""
    generator = TemplateGenerator()
    result: dict[str, list[dict]] = {}
    rows = []
    for category in sorted(set(catalog["category"])):
        info = category_product(category)
        result[category] = []
        for cluster in audience.clusters_:
            for prompt in generator.generate(info, cluster, settings.per_cluster,
                                             seed=settings.prompt_seed):
                record = {"prompt_id": make_prompt_id(category, cluster.id, prompt.text), "category": category, "cluster_id": cluster.id,
                          "text": prompt.text, "negative_prompt": prompt.negative_prompt,
                          "tags": json.dumps(prompt.tags), "source": prompt.source}
                result[category].append(record)
                rows.append(record)
    if writer:
        # the sha256 of the bytes read (and capped); a changed product is refused
        store.add_products((row.product_id, row.category, row.title,
                            products[row.product_id][1].sha256) for row in catalog.itertuples())
        store.add_prompts(rows)
    return result


def _job_key(product_sha: str, prompt_id: str, fmt: str, seed: int, engine: str,
             settings: BatchSettings) -> str:
    key = f"{product_sha}|{prompt_id}|{fmt}|{seed}|{engine}|{settings.size}|{settings.watermark}"
    return hashlib.sha1(key.encode()).hexdigest()


def _estimate(store, products, job, pending: int, engine, settings, echo) -> None:
    """Render one job (not stored) to estimate bytes and time; enforce --max-bytes."""
    _, product_id, prompt, fmt, seed = job
    _, product = products[product_id]
    options = RenderOptions(prompt=prompt["text"], format=fmt, size=settings.size, seed=seed,
                            watermark=settings.watermark)
    started = time.perf_counter()
    placed = prepare(product, options)
    png, mask_png, _ = finish(render(placed, options, engine)[0], placed, product, options, engine)
    seconds = time.perf_counter() - started
    per = len(png) + len(mask_png)
    used = store.store_bytes()
    echo(f"estimate: {pending} renders x {seconds:.2f} s ~ {pending * seconds / 60:.1f} min, "
         f"{pending} creatives x {per / 1e3:.0f} kB ~ {pending * per / 1e6:.1f} MB")
    if settings.max_bytes is not None and used + pending * per > settings.max_bytes:
        raise StudioError(f"the store would grow to about {(used + pending * per) / 1e6:.1f} MB, "
                          f"over --max-bytes {settings.max_bytes / 1e6:.1f} MB")


def _reward_model(settings: BatchSettings, echo):
    """The configured reward model (``--reward-model``), else none: prompts tie."""
    from reward import CTRModel

    if settings.reward_model:
        return CTRModel.load(settings.reward_model)
    echo("no reward model (--reward-model): prompts are ranked equally")
    return None
