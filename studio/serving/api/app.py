"""The application: ``create_app`` builds the API over a store (its selection service,
metrics, middleware, error handlers and routers); ``serve`` runs it with uvicorn. The
API's contract (authentication, every error as JSON, readiness) is in the package's
docstring."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
from contextlib import asynccontextmanager
from types import SimpleNamespace

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from ...errors import USER_ERRORS, StudioError
from ...store import Store
from ..config import ServingConfig
from ..service import SelectionService
from .errors import http_error, invalid, studio_error
from .middleware import BodyLimit, Guard, Measure
from .routers import creatives, health, selection

MAX_BODY_BYTES = 64 * 1024
MIN_FREE_BYTES = 32 * 1024 * 1024
RETRY_AFTER_S = 5
log = logging.getLogger("studio.serving.api")


def create_app(store_dir, *, api_key: str | None = None, snapshot_every: int = 100,
               feedback_window_s: float = 7 * 24 * 3600,
               config: ServingConfig | None = None, max_body_bytes: int = MAX_BODY_BYTES,
               retention_s: float | None = None, min_free_bytes: int = MIN_FREE_BYTES,
               maintenance_interval_s: float = 30.0,
               retry_after_s: int = RETRY_AFTER_S, follow_poll_s: float = 0.5) -> FastAPI:
    """Build the API over a store. ``api_key`` defaults to ``$STUDIO_API_KEY``.

    ``max_body_bytes``: larger request bodies are refused (413). ``retention_s``: keep
    events this long after their feedback window (None: keep all; see
    ``SelectionService.prune``). ``min_free_bytes``: the disk floor of ``/readyz`` and of
    new selections. ``maintenance_interval_s``: how often pending snapshots are retried
    and the log pruned. ``retry_after_s``: the ``Retry-After`` of 503 answers.
    ``follow_poll_s``: how often the service looks for rewards other replicas logged
    (on PostgreSQL a notification wakes it at once)."""
    from prometheus_client import CollectorRegistry, Counter, Histogram

    key = api_key or os.environ.get("STUDIO_API_KEY")
    if not key:
        raise StudioError("an API key is required: pass --api-key or set STUDIO_API_KEY")
    if not (isinstance(max_body_bytes, int) and max_body_bytes > 0):
        raise StudioError(f"max_body_bytes must be a positive integer, got {max_body_bytes!r}")
    if not maintenance_interval_s > 0:
        raise StudioError(f"maintenance_interval_s must be > 0, got {maintenance_interval_s}")
    expected = f"Bearer {key}".encode()
    store = Store(store_dir)
    service = SelectionService.open(store, config=config, snapshot_every=snapshot_every,
                                    feedback_window_s=feedback_window_s, retention_s=retention_s,
                                    min_free_bytes=min_free_bytes)
    retry_after = {"Retry-After": str(int(retry_after_s))}
    registry = CollectorRegistry()
    metrics = SimpleNamespace(
        registry=registry,
        requests=Counter("studio_requests_total", "HTTP requests", ["path", "status"],
                         registry=registry),
        latency=Histogram("studio_request_seconds", "Request latency", ["path"],
                          registry=registry,
                          buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0)),
        decisions=Counter("studio_decisions_total", "Selections made", ["category"],
                          registry=registry),
        rewards=Counter("studio_rewards_total", "Rewards applied", ["status"],
                        registry=registry))

    async def maintenance() -> None:
        while True:
            await asyncio.sleep(maintenance_interval_s)
            try:
                await run_in_threadpool(service.maintain)
            except Exception:  # keep the timer alive; the next tick retries
                log.exception("maintenance failed")

    @asynccontextmanager
    async def lifespan(app):
        timer = asyncio.create_task(maintenance())
        stop = threading.Event()
        follower = threading.Thread(target=service.follow, args=(stop,),
                                    kwargs={"poll_s": follow_poll_s}, name="studio-follow",
                                    daemon=True)
        follower.start()
        try:
            yield
        finally:
            timer.cancel()
            stop.set()
            follower.join(timeout=5 + follow_poll_s)
            try:
                service.snapshot()
            except Exception as exc:  # the rewards are in the log: a restart replays them
                log.warning("final snapshot failed (the log is replayed on start): %s", exc)

    app = FastAPI(title="Creative Studio selection API", version="1", lifespan=lifespan)
    app.state.service = service
    app.state.store = store
    app.state.metrics = metrics
    app.state.authorization = expected
    app.state.retry_after = retry_after

    # Outermost last: Measure sees every answer (413s and 500s included).
    app.add_middleware(Guard, retry_after=retry_after)
    app.add_middleware(BodyLimit, max_body_bytes=max_body_bytes)
    app.add_middleware(Measure, requests=metrics.requests, latency=metrics.latency)

    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid)
    for error in USER_ERRORS:  # bad input from the studio or a library: one JSON line
        app.add_exception_handler(error, studio_error)

    for routes in (selection, creatives, health):
        app.include_router(routes.router)
    return app


#: The settings ``serve`` hands to each replica process (``app_from_environment``).
SETTINGS_ENV = "STUDIO_SERVE_SETTINGS"


def serve(store_dir, *, host: str = "127.0.0.1", port: int = 8000,
          api_key: str | None = None, max_body_bytes: int = MAX_BODY_BYTES,
          retention_s: float | None = None, min_free_bytes: int = MIN_FREE_BYTES,
          replicas: int = 1) -> None:
    """Run the API with uvicorn: one process, or ``replicas`` worker processes sharing
    the port, each a replica with its own bandit that learns from the store's log."""
    import uvicorn

    settings = {"store": str(store_dir), "api_key": api_key, "max_body_bytes": max_body_bytes,
                "retention_s": retention_s, "min_free_bytes": min_free_bytes}
    if replicas < 1:
        raise StudioError(f"replicas must be >= 1, got {replicas}")
    if replicas == 1:
        app = _app(settings)
        uvicorn.run(app, host=host, port=port, workers=1, log_level="warning")
        return
    _app(settings)  # fail here, once, on a bad store or key — not in every worker
    os.environ[SETTINGS_ENV] = json.dumps(settings)
    uvicorn.run("studio.serving.api.app:app_from_environment", factory=True, host=host,
                port=port, workers=replicas, log_level="warning")


def app_from_environment() -> FastAPI:
    """The application of one replica process of ``serve(replicas=N)``."""
    return _app(json.loads(os.environ[SETTINGS_ENV]))


def _app(settings: dict) -> FastAPI:
    settings = dict(settings)
    return create_app(settings.pop("store"), **settings)
