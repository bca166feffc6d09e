"""The application: ``create_app`` builds the API over a store (its selection service,
metrics, middleware, error handlers and routers); ``serve`` runs it with uvicorn. The
API's contract (authentication, every error as JSON, readiness) is in the package's
docstring."""

from __future__ import annotations

import asyncio
import logging
import os
from contextlib import asynccontextmanager
from pathlib import Path
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
               retry_after_s: int = RETRY_AFTER_S) -> FastAPI:
    """Build the API over a store. ``api_key`` defaults to ``$STUDIO_API_KEY``.

    ``max_body_bytes``: larger request bodies are refused (413). ``retention_s``: keep
    events this long after their feedback window (None: keep all; see
    ``SelectionService.prune``). ``min_free_bytes``: the disk floor of ``/readyz`` and of
    new selections. ``maintenance_interval_s``: how often pending snapshots are retried
    and the log pruned. ``retry_after_s``: the ``Retry-After`` of 503 answers."""
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
        try:
            yield
        finally:
            timer.cancel()
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


def serve(store_dir: Path, *, host: str = "127.0.0.1", port: int = 8000,
          api_key: str | None = None, max_body_bytes: int = MAX_BODY_BYTES,
          retention_s: float | None = None, min_free_bytes: int = MIN_FREE_BYTES) -> None:
    """Run the API with one uvicorn worker (its bandit state lives in this process)."""
    import uvicorn

    app = create_app(store_dir, api_key=api_key, max_body_bytes=max_body_bytes,
                     retention_s=retention_s, min_free_bytes=min_free_bytes)
    uvicorn.run(app, host=host, port=port, workers=1, log_level="warning")
