"""The Ray executor of ``studio batch`` (``--executor ray``): the pending jobs become a
Ray Data dataset (``ray.data.from_items``) mapped by a pool of actors, one per GPU (or
per CPU worker), each loading the render engine once in its constructor — the pattern
of Ray's "Stable Diffusion batch prediction with Ray Data".

Each actor runs whole jobs (``jobs.run_job``: claim the lease, engine call, placement,
compositing, checks, watermark, PNG encoding, content-addressed files, the row's
commit), so a job is held, rendered and committed by one process. Nothing is lost or
written twice when a worker dies: Ray Data retries its batch on a restarted actor, the
jobs already committed answer "done", and the one in flight is claimed again (its dead
owner's lease is free on that host). When the driver dies, the jobs committed stay, and
a rerun renders only the rest, as with the local executor.

The driver first runs one *probe* task with a worker's resources: it opens the store
and loads the engine there (so the job keys name the engine the workers use, e.g. on
their GPU, and a store the workers cannot reach fails at once) and renders one job for
the estimate. Ray is started on this machine unless ``--ray-address`` names a running
cluster; a cluster of several machines needs a PostgreSQL store and a files folder that
every machine mounts at the same path.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os

from ..errors import StudioError
from ..store import Store, database_errors
from .jobs import Job, engine_key, measure, render_pending, run_job

#: The install command named when Ray is missing.
RAY_INSTALL = "pip install 'creative-studio[ray]'"
#: Jobs per batch an actor is given. Each job commits on its own, so a dying worker loses
#: only the one in flight whatever the size; small batches keep the progress bar moving,
#: larger ones pay Ray's cost per batch (a task round trip) less often.
BATCH_SIZE = 8
#: Where a local Ray keeps its sockets and logs: a short path (a Unix socket path is
#: limited to about 100 characters, and TMPDIR may be long).
RAY_TEMP = "/tmp/studio-ray-{uid}"


def check_ray() -> None:
    """Refuse ``--executor ray`` at once when Ray is not installed."""
    if importlib.util.find_spec("ray") is None:
        raise StudioError(f"--executor ray needs Ray, which is not installed: {RAY_INSTALL}")


class RayExecutor:
    """Ray for one run: started (or joined) on creation, shut down by ``close``."""

    is_main = True  # the driver plans, estimates and chooses the arms

    def __init__(self, settings, echo):
        import ray

        self.settings = settings
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        if settings.ray_address:
            ray.init(address=settings.ray_address, logging_level=logging.WARNING)
        else:
            # "local": a new Ray even where one runs already. One CPU more than the
            # actors take: Ray Data's own tasks must not starve.
            ray.init(address="local",
                     num_cpus=max(os.cpu_count() or 1, (settings.workers or 0) + 1),
                     include_dashboard=False, _node_ip_address="127.0.0.1",
                     _temp_dir=RAY_TEMP.format(uid=os.getuid()), logging_level=logging.WARNING)
        try:
            resources = ray.cluster_resources()
            gpus, cpus = int(resources.get("GPU", 0)), int(resources.get("CPU", 0))
            self.resources = {"num_gpus": 1} if gpus else {"num_cpus": 1}
            self.workers = settings.workers or gpus or max(1, cpus - 1)
            if self.workers > (gpus or cpus):
                raise StudioError(f"--workers {self.workers} needs {self.workers} "
                                  f"{'GPUs' if gpus else 'CPUs'}; the Ray cluster has "
                                  f"{gpus or cpus}")
        except BaseException:
            ray.shutdown()
            raise
        echo(f"ray: {self.workers} worker{'s' if self.workers > 1 else ''} with one "
             f"{'GPU' if gpus else 'CPU'} each, on {settings.ray_address or 'a local Ray'}")

    def close(self) -> None:
        import ray

        ray.shutdown()

    def wait(self) -> None:
        """Nothing to wait for: the driver is the only process that plans."""

    def load(self, sample: Job, products: dict, where: tuple[str, str | None]):
        """Open the store (``where``: location and files folder, as workers open it) and
        load the engine in a probe task with a worker's resources, render ``sample``
        there; (engine key, engine name, notice)."""
        import ray
        from ray.exceptions import RayTaskError

        self.products, self.where = products, where
        probe = ray.remote(max_calls=1, **self.resources)(_probe)  # max_calls: frees its GPU
        try:
            key, name, notice, self.sample = ray.get(
                probe.remote(where, sample, products, self.settings))
        except RayTaskError as exc:  # the probe's own error, as the local run raises it
            raise exc.cause from None
        self.description = f"batch ({name}, ray x{self.workers})"
        return key, name, notice

    def estimate(self, job: Job) -> tuple[float, int]:
        """(seconds, bytes) of the probe's render (one job stands for any)."""
        return self.sample

    def render(self, store: Store, jobs: list[Job], engine: str, echo) -> list[int]:
        """Render ``jobs`` on the actor pool, in rounds until none is left (``store``: the
        driver's, unused: the workers open their own); creatives committed per worker
        process, most first."""
        import numpy as np
        import ray
        from ray.data import ActorPoolStrategy, DataContext

        DataContext.get_current().enable_progress_bars = False  # the driver shows its own
        logging.getLogger("ray.data").setLevel(logging.ERROR)  # its per-dataset notes
        constructor = {"where": self.where, "products": self.products,
                       "settings": self.settings, "engine": engine}

        def run(pending: list[Job]):
            dataset = ray.data.from_items([{"job": json.dumps(job)} for job in pending])
            results = dataset.map_batches(
                _Renderer, fn_constructor_kwargs=constructor, batch_size=BATCH_SIZE,
                compute=ActorPoolStrategy(size=min(self.workers, len(pending))),
                **self.resources)
            for batch in results.iter_batches(batch_size=None, batch_format="numpy"):
                for key, status, worker, message in zip(*(
                        np.asarray(batch[c]).tolist()
                        for c in ("key", "status", "worker", "message"))):
                    if status == "error":
                        raise StudioError(f"a Ray worker failed: {message}")
                    yield key, status, worker

        counts = render_pending(jobs, run, self.description, echo)
        return sorted(counts.values(), reverse=True)


class _Renderer:
    """A Ray actor: opens the store and loads the engine once, then runs each job of the
    batches it is given. A bad-input, OS or database error comes back as ``error`` rows
    with its message (the driver stops with it): Ray's own error would carry a
    traceback, not the one line the command prints."""

    def __init__(self, where: tuple[str, str | None], products: dict, settings, engine: str):
        from pipelines.engines import EngineUnavailableError, load_engine

        from ..errors import USER_ERRORS

        self.errors = (*USER_ERRORS, OSError, EngineUnavailableError, *database_errors())
        self.products, self.settings, self.error = products, settings, None
        try:
            self.store = Store(where[0], folder=where[1])
            self.engine = load_engine(settings.engine)[0]
            if engine_key(self.engine) != engine:
                raise StudioError(f"this worker's engine {engine_key(self.engine)} differs "
                                  f"from the probe's {engine}; give every worker the same "
                                  "kind of device")
            self.owner = self.store.new_owner()
        except self.errors as exc:
            self.error = _one_line(exc)

    def __call__(self, batch: dict) -> dict:
        import numpy as np

        jobs = [Job(*json.loads(text)) for text in batch["job"]]
        statuses, error = ["error"] * len(jobs), self.error
        if error is None:
            try:
                with self.store.keep_leases(self.owner):
                    statuses = [run_job(self.store, job, self.owner, self.products,
                                        self.engine, self.settings) for job in jobs]
            except self.errors as exc:
                statuses, error = ["error"] * len(jobs), _one_line(exc)
        return {"key": np.array([job.key for job in jobs]), "status": np.array(statuses),
                "worker": np.array([getattr(self, "owner", "")] * len(jobs)),
                "message": np.array([error or ""] * len(jobs))}


def _probe(where: tuple[str, str | None], sample: Job, products: dict, settings):
    """In a worker: open the store, load the engine, render ``sample``; (engine key,
    engine name, notice, (seconds, bytes))."""
    from pipelines.engines import load_engine

    Store(where[0], folder=where[1]).close()
    engine, notice = load_engine(settings.engine)
    return engine_key(engine), engine.name, notice, measure(sample, products, engine, settings)


def _one_line(exc: BaseException) -> str:
    """An error as one line, naming the store or file it concerns."""
    path = getattr(exc, "store_path", None) or getattr(exc, "filename", None)
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"{text} ({path})" if path and str(path) not in text else text
