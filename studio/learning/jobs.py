"""One job of ``studio batch`` — a creative to render — as both executors run it.

A job is a product, a prompt record, an ad format and a seed, named by its *job key*
(product bytes, prompt, format, seed, engine, size, watermark). The local executor
(one process, or several under ``torchrun`` / ``accelerate launch``) and the Ray
executor (``ray_batch.py``) call the same ``run_job``: claim the job's lease, render,
put the files in place, commit the row. A creative is committed once whatever dies
when: ``add_creatives`` skips a job key already in the store, files are content
addressed (a re-render writes the very same bytes), and the lease of a dead process is
free again at once on its host (after ``lease_seconds()`` elsewhere).
"""

from __future__ import annotations

import functools
import hashlib
import json
import time
from collections import Counter
from typing import Callable, Iterator, Mapping, NamedTuple

from ..creatives.credentials import Signing
from ..creatives.render import Finished, RenderOptions, finish, prepare_with_copy_room, render
from ..creatives.safety import SafetySettings
from ..inputs.brand import BrandKit
from ..progress import item_progress
from ..prompts.copy import AdCopy
from ..store import Store

#: Seconds between looks at jobs that another run holds.
POLL_SECONDS = 0.25


class Job(NamedTuple):
    """One creative to render. ``prompt`` is the prompt's record (``prompt_id``,
    ``cluster_id``, ``text``, ``negative_prompt``, ...)."""

    key: str
    product_id: str
    prompt: dict
    format: str
    seed: int


def engine_key(engine) -> str:
    """The engine's part of a job key: its description, with the device's index left out
    (``cuda:1`` is ``cuda``), so that every process of a multi-GPU run, and a Ray worker
    on any GPU, plans the same keys."""
    description = dict(engine.describe())
    if isinstance(description.get("device"), str):
        description["device"] = description["device"].split(":")[0]
    return json.dumps(description, sort_keys=True)


def job_key(product_sha: str, prompt_id: str, fmt: str, seed: int, engine: str,
            size: str | None, watermark: bool) -> str:
    """The key that names a creative's job in the store (unchanged across versions: a
    store resumes with the keys it was built with)."""
    key = f"{product_sha}|{prompt_id}|{fmt}|{seed}|{engine}|{size}|{watermark}"
    return hashlib.sha1(key.encode()).hexdigest()


def run_job(store: Store, job: Job, owner: str, products: Mapping, engine, settings) -> str:
    """Claim ``job`` for ``owner`` and, when the claim holds, render and commit it.
    Returns ``"rendered"``, ``"done"`` (already in the store) or ``"busy"`` (another
    live run holds it)."""
    status = store.claim_job(job.key, owner)
    if status != "claimed":
        return status
    store.add_creatives([render_note(store, job, products, engine, settings)])
    return "rendered"


def render_pending(jobs: list[Job], run: Callable[[list[Job]], Iterator[tuple]],
                   description: str, echo) -> Counter:
    """Render ``jobs`` with ``run`` — pending jobs -> one ``(key, status, worker)`` per
    job, in any order, as ``run_job`` answers them — under a progress bar; the jobs
    another live run holds are tried again (and taken over when their lease ends) until
    none is left. Returns the creatives committed per worker."""
    rendered: Counter = Counter()
    pending, told = list(jobs), False
    while pending:
        by_key = {job.key: job for job in pending}
        results, busy = run(pending), []
        for _ in item_progress(pending, description, "creative"):
            key, status, worker = next(results)
            if status == "rendered":
                rendered[worker] += 1
            elif status == "busy":
                busy.append(by_key[key])
        pending = busy
        if pending:
            if not told:
                echo(f"waiting for {len(pending)} creatives that another batch run is "
                     "rendering")
                told = True
            time.sleep(POLL_SECONDS)
    return rendered


def render_note(store: Store, job: Job, products: Mapping, engine, settings) -> dict:
    """Render one job and put its files in place; the note to commit."""
    _, product = products[job.product_id]
    finished = _render(product, job, engine, settings)
    return {"job_key": job.key, "product_id": job.product_id,
            "prompt_id": job.prompt["prompt_id"], "cluster_id": job.prompt["cluster_id"],
            "format": job.format, "seed": job.seed,
            "image_sha256": store.put_file(finished.png),
            "mask_sha256": store.put_file(finished.mask_png), "bytes": finished.bytes,
            "manifest": {**finished.manifest, "product_id": job.product_id}}


def measure(job: Job, products: Mapping, engine, settings) -> tuple[float, int]:
    """Render one job without storing it: (seconds, bytes of its files), for the
    estimate a run prints before it starts and ``--max-bytes``."""
    _, product = products[job.product_id]
    started = time.perf_counter()
    finished = _render(product, job, engine, settings)
    return time.perf_counter() - started, finished.bytes


@functools.lru_cache(maxsize=4)
def brand_kit(path: str | None) -> BrandKit:
    """The brand kit at ``path`` (the example kit when None), loaded once per process."""
    return BrandKit.load(path) if path else BrandKit.default()


@functools.lru_cache(maxsize=4)
def signing(folder: str) -> Signing:
    """The signing configuration in ``folder``, loaded once per process."""
    return Signing.load(folder)


def _render(product, job: Job, engine, settings) -> Finished:
    tags = job.prompt.get("tags") or {}
    copy = (json.loads(tags) if isinstance(tags, str) else tags).get("copy")
    options = RenderOptions(prompt=job.prompt["text"],
                            negative_prompt=job.prompt["negative_prompt"], format=job.format,
                            size=settings.size, seed=job.seed, anchor="bottom",
                            watermark=settings.watermark,
                            copy=AdCopy(copy["headline"], copy["cta"]) if copy else None,
                            brand=brand_kit(settings.brand_kit) if copy else None,
                            safety=SafetySettings(settings.nsfw_threshold),
                            signing=signing(settings.signing) if settings.signing else None)
    placed, options = prepare_with_copy_room(product, options)
    return finish(render(placed, options, engine)[0], placed, product, options, engine)
