"""``studio batch``: render a catalog for an audience into a store, resumably.

catalog products × clusters × prompts (written per product category and cluster) ×
formats × seeds → renders → reward scores → the top-M prompts per (product, cluster)
become the bandit arms of (category, cluster). With ``--copies N``, each prompt is paired
with N ad copies written for the cluster (headline + CTA laid over the creative, read
back with OCR): the arms are (scene, copy) pairs, so the bandit learns copy × image.

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

Two executors render the pending jobs (``jobs.py`` is the job both run): ``local``
(``local_batch.py``, the default: this process, or the processes ``torchrun`` /
``accelerate launch`` started, splitting the jobs) and ``ray`` (``ray_batch.py``: a Ray
Data actor pool, one engine per GPU or CPU worker, on this machine or a cluster). The
main process (the Ray driver) plans, estimates, scores and chooses the arms.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from pipelines import load_product

from ..creatives.safety import SafetySettings
from ..errors import StudioError
from ..inputs.audience import Audience
from ..inputs.catalog import load_catalog
from ..inputs.tables import load_users
from ..prompts import category_product, make_copy_writer, make_generator
from ..store import Store, is_dsn
from ..store.pools import prompt_id as make_prompt_id
from .arms import score_and_choose_arms
from .jobs import Job, brand_kit, job_key, signing

#: How ``studio batch`` renders: ``local`` (this process, or the processes torchrun /
#: accelerate launched) or ``ray`` (a Ray Data actor pool).
EXECUTORS = ("local", "ray")


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
    #: How the pending jobs are rendered: one of ``EXECUTORS``.
    executor: str = "local"
    #: Ray actors (default: one per GPU, else the CPUs less one); ``ray`` only.
    workers: int | None = None
    #: A running Ray cluster (default: start Ray on this machine); ``ray`` only.
    ray_address: str | None = None
    #: Ad copies (headline + CTA) written per cluster; every scene prompt is paired with
    #: each, so an arm is a (scene, copy) pair and the bandit learns copy × image. 0: no
    #: copy on the creatives.
    copies: int = 0
    #: The prompt writer (``make_generator``: template, llm with ``generator_model`` or the
    #: bundled model).
    generator: str = "template"
    generator_model: str | None = None
    #: The brand kit the copy is written and laid out in (default: the example kit).
    brand_kit: str | None = None
    #: The safety gate's NSFW threshold for the creatives this run renders (0..1).
    nsfw_threshold: float = SafetySettings.nsfw_threshold
    #: A signing folder (``studio keys init``): every creative is signed with C2PA
    #: content credentials, and the API serves the signed files. None: not signed.
    signing: str | None = None


def run_batch(catalog_path, audience_source, store_dir, settings: BatchSettings, *,
              echo: Callable[[str], None] = print, store_folder=None) -> dict:
    """Render what is missing into the store (a folder, or a PostgreSQL DSN with
    ``store_folder`` for its files), then score and choose the arms."""
    started = time.perf_counter()
    _check(settings)
    catalog = load_catalog(catalog_path)  # bad input fails before the store is touched
    products = {row.product_id: (row, load_product(row.image, name=row.product_id))
                for row in catalog.itertuples()}
    executor = _executor(settings, echo)
    try:
        return _run(executor, catalog, products, audience_source, store_dir, store_folder,
                    settings, echo, started)
    finally:
        executor.close()


def _run(executor, catalog, products, audience_source, store_dir, store_folder,
         settings: BatchSettings, echo, started: float) -> dict:
    """Plan, estimate and render with ``executor``; on the main process, score and
    choose the arms and return the summary (elsewhere: ``{}``)."""
    main = executor.is_main
    store = Store(store_dir, folder=store_folder, create=True)
    if main:
        # Leftovers of a killed writer; a live writer's temporary files are younger.
        store.remove_temporary_files(min_age=600.0 if store.live_leases() else 1.0)
    audience = _audience(store, audience_source, settings, main)
    prompts = _prompts(store, catalog, products, audience, settings, main)
    executor.wait()

    plan = [(product.sha256, Job("", product_id, prompt, fmt, seed))
            for product_id, (row, product) in products.items()
            for prompt in prompts[row.category]
            for fmt in settings.formats for seed in settings.seeds]
    # Where workers open the store: a DSN with its files folder, or the folder itself.
    where = (str(store_dir), str(store.root)) if is_dsn(str(store_dir)) else \
        (str(store.root.resolve()), None)
    engine, engine_name, notice = executor.load(plan[0][1], products, where)
    if notice and main:
        echo(notice)
    done = store.job_keys()
    keyed = [job._replace(key=job_key(sha, job.prompt["prompt_id"], job.format, job.seed,
                                      engine, settings.size, settings.watermark))
             for sha, job in plan]
    jobs = [job for job in keyed if job.key not in done]
    workers = executor.workers
    if main:
        echo(f"{len(plan)} creatives in the plan: {len(plan) - len(jobs)} in the store, "
             f"{len(jobs)} to render" + (f" over {workers} processes"
                                         if settings.executor == "local" and workers > 1
                                         else ""))
    if jobs and main:
        _estimate(store, executor.estimate(jobs[0]), len(jobs), settings, echo)

    render_started = time.perf_counter()
    per_worker = executor.render(store, jobs, engine, echo)
    render_seconds = time.perf_counter() - render_started
    if not main:
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
    return {"store": store.location, **counts, "bytes": size, "rendered": sum(per_worker),
            "engine": engine_name, "seconds": round(time.perf_counter() - started, 1),
            "executor": settings.executor, "workers": workers,
            "rendered_per_worker": per_worker, "render_seconds": round(render_seconds, 2)}


def _executor(settings: BatchSettings, echo):
    """The executor ``settings`` name, started (Ray: joined or started here)."""
    if settings.executor == "ray":
        from .ray_batch import RayExecutor

        return RayExecutor(settings, echo)
    from .local_batch import LocalExecutor

    return LocalExecutor(settings)


def _check(settings: BatchSettings) -> None:
    if settings.executor not in EXECUTORS:
        raise StudioError(f"unknown executor {settings.executor!r}; choose one of: "
                          f"{', '.join(EXECUTORS)}")
    if settings.executor == "local" and (settings.workers is not None or settings.ray_address):
        raise StudioError("--workers and --ray-address are for --executor ray; to split the "
                          "local executor, launch it with `torchrun --nproc_per_node N -m "
                          "studio batch ...`")
    if settings.workers is not None and not 1 <= settings.workers <= 1024:
        raise StudioError(f"--workers must be from 1 to 1024, got {settings.workers}")
    if settings.executor == "ray":
        from .ray_batch import check_ray

        check_ray()
    if settings.per_cluster < 1:
        raise StudioError(f"per-cluster must be at least 1, got {settings.per_cluster}")
    if not 0 <= settings.copies <= 20:
        raise StudioError(f"copies must be from 0 to 20, got {settings.copies}")
    if settings.brand_kit and not settings.copies:
        raise StudioError("--brand-kit styles the copy: give --copies N as well")
    if settings.brand_kit:
        brand_kit(settings.brand_kit)  # a bad kit fails before anything is rendered
    SafetySettings(settings.nsfw_threshold)  # so does a bad threshold
    if settings.signing:
        signing(settings.signing)  # and a signing folder without a usable key
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
    """Prompts per category (for every cluster), written once and kept in the store.

    With ``settings.copies``, each scene prompt is paired with each of the cluster's
    copies: one prompt record (one arm) per pair, the copy in its ``tags``."""
    generator = make_generator(settings.generator, model=settings.generator_model)
    copy_writer = (make_copy_writer("template", brand=brand_kit(settings.brand_kit))
                   if settings.copies else None)
    result: dict[str, list[dict]] = {}
    rows = []
    for category in sorted(set(catalog["category"])):
        info = category_product(category)
        result[category] = []
        for cluster in audience.clusters_:
            copies = (copy_writer.write(info, cluster, settings.copies, seed=settings.prompt_seed)
                      if copy_writer else [None])
            for prompt in generator.generate(info, cluster, settings.per_cluster,
                                             seed=settings.prompt_seed):
                for copy in copies:
                    tags = dict(prompt.tags)
                    key = prompt.text
                    if copy is not None:
                        tags["copy"] = {"headline": copy.headline, "cta": copy.cta}
                        key = f"{prompt.text}\n{copy.headline} | {copy.cta}"
                    record = {"prompt_id": make_prompt_id(category, cluster.id, key),
                              "category": category, "cluster_id": cluster.id,
                              "text": prompt.text, "negative_prompt": prompt.negative_prompt,
                              "tags": json.dumps(tags), "source": prompt.source}
                    result[category].append(record)
                    rows.append(record)
    if writer:
        # the sha256 of the bytes read (and capped); a changed product is refused
        store.add_products((row.product_id, row.category, row.title,
                            products[row.product_id][1].sha256) for row in catalog.itertuples())
        store.add_prompts(rows)
    return result


def _estimate(store: Store, sample: tuple[float, int], pending: int,
              settings: BatchSettings, echo) -> None:
    """Print the time and bytes ``pending`` renders take, from one (seconds, bytes)
    sample; enforce --max-bytes."""
    seconds, per = sample
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
