"""The selection HTTP API (FastAPI): select, feedback, creatives, arms, health, metrics.

One process, one uvicorn worker (the bandit lives in memory; the store is its log).
Writes need ``Authorization: Bearer <key>`` (``--api-key`` or ``STUDIO_API_KEY``),
compared in constant time.

Every error is JSON ``{"error": message}`` and keeps the connection open:

- 401 wrong or missing key; 404 unknown product, cluster, event or creative;
- 409 feedback after the event's window, or a second reward for an event with another
  value (the body has ``recorded`` and ``received``; the same value again is 200
  ``duplicate``);
- 413 a body over ``max_body_bytes`` (default 64 KiB; counted as it streams, chunked or not);
- 422 invalid input, the field named: unknown request fields; a ``user`` key that is not
  one of the store audience's columns (named in the error, never processed); a number that
  is not finite or beyond ±1e9; text over 1,000 characters; over 100 interest tags
  (see ``studio.user_features.check_user_features``);
- 503 + ``Retry-After`` when the store cannot be written (full or read-only disk, I/O
  error): nothing was recorded; the service recovers by itself once writes succeed;
  selections are also refused while the disk has less than ``min_free_bytes`` free;
- 500 an unexpected error (its traceback is logged).

``/healthz`` is liveness (the process answers); ``/readyz`` is readiness: 200 when the store
takes a write and the disk has ``min_free_bytes`` free, else 503 + ``Retry-After``.
``/v1/select`` and ``/v1/feedback`` run in the threadpool, so ``/healthz`` and ``/metrics``
answer while they work. A committed reward is answered 200 even when the snapshot after it
fails (logged; retried on the next reward and every ``maintenance_interval_s``). With
``retention_s``, old events whose rewards are folded into a snapshot are pruned on that
timer (see ``studio.serving``).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import math
import os
import re
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal, Optional

from fastapi import Depends, FastAPI, Header, HTTPException
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from .errors import USER_ERRORS, StudioError
from .serving import (Conflict, NotFound, RewardConflict, SelectionService, StoreUnavailable,
                      storage_fault)
from .serving_config import PLACEMENTS, ServingConfig
from .store import Store

EVENT_ID = re.compile(r"^[0-9a-f]{32}$")
CREATIVE_ID = re.compile(r"^[0-9a-f]{20}$")
MAX_BODY_BYTES = 64 * 1024
MIN_FREE_BYTES = 32 * 1024 * 1024
RETRY_AFTER_S = 5
log = logging.getLogger("studio.api")


class Placement(BaseModel):
    model_config = ConfigDict(extra="forbid")
    placement: Literal[PLACEMENTS] = "1:1"


class SelectRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    product_id: str = Field(min_length=1, max_length=200)
    user: Optional[dict[str, Any]] = Field(
        None, description="The user's features: the columns of the store audience's user "
        "table (null imputes one; unknown keys are refused). Numbers finite within ±1e9, "
        "text up to 1,000 characters, interests as ';'-separated text or a list (≤ 100 tags).")
    cluster_id: Optional[int] = Field(None, ge=0, le=1_000_000)
    context: Placement = Placement()

    @model_validator(mode="after")
    def one_audience(self):
        if (self.user is None) == (self.cluster_id is None):
            raise ValueError("give exactly one of user (features) or cluster_id")
        return self


class SelectResponse(BaseModel):
    event_id: str
    creative_id: str
    image_url: str
    cluster_id: int
    arm_id: str
    prompt: str
    score: float
    mean: float
    bonus: float
    propensity: float


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    event_id: str = Field(pattern=EVENT_ID.pattern)
    reward: float = Field(ge=0.0, le=1.0)

    @field_validator("reward")
    @classmethod
    def finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("reward must be a finite number")
        return value


class FeedbackResponse(BaseModel):
    event_id: str
    status: Literal["applied", "duplicate"]


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
    from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

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
    requests = Counter("studio_requests_total", "HTTP requests", ["path", "status"],
                       registry=registry)
    latency = Histogram("studio_request_seconds", "Request latency", ["path"], registry=registry,
                        buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0))
    decisions = Counter("studio_decisions_total", "Selections made", ["category"], registry=registry)
    rewards = Counter("studio_rewards_total", "Rewards applied", ["status"], registry=registry)

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

    async def authorised(authorization: str | None = Header(None)) -> None:
        given = (authorization or "").encode("latin-1", "replace")  # the raw header bytes
        if not hmac.compare_digest(given, expected):
            raise HTTPException(401, "missing or wrong API key (Authorization: Bearer KEY)")

    def error_response(status: int, message: str, headers=None, **extra) -> JSONResponse:
        return JSONResponse({"error": message, **extra}, status_code=status, headers=headers)

    class Measure:
        """Pure ASGI middleware: request counts and latency per route (no body copies)."""

        def __init__(self, inner):
            self.inner = inner

        async def __call__(self, scope, receive, send):
            if scope["type"] != "http":
                return await self.inner(scope, receive, send)
            started = time.perf_counter()
            status = [500]

            async def capture(message):
                if message["type"] == "http.response.start":
                    status[0] = message["status"]
                await send(message)

            try:
                await self.inner(scope, receive, capture)
            finally:
                route = scope.get("route")
                path = route.path if route is not None else "unmatched"
                latency.labels(path).observe(time.perf_counter() - started)
                requests.labels(path, str(status[0])).inc()

    class BodyLimit:
        """Pure ASGI middleware: read the body (at most ``max_body_bytes``, counted as it
        streams, whatever Content-Length says) before the app sees it; 413 beyond."""

        def __init__(self, inner):
            self.inner = inner

        async def __call__(self, scope, receive, send):
            if scope["type"] != "http":
                return await self.inner(scope, receive, send)
            too_large = error_response(
                413, f"the request body is larger than {max_body_bytes} bytes",
                headers={"Connection": "close"})
            declared = dict(scope.get("headers") or []).get(b"content-length")
            if declared is not None:
                try:
                    if int(declared) > max_body_bytes:
                        return await too_large(scope, receive, send)
                except ValueError:
                    return await error_response(400, "bad Content-Length")(scope, receive, send)
            chunks, size = [], 0
            while True:
                message = await receive()
                if message["type"] != "http.request":  # the client went away
                    return
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > max_body_bytes:
                    return await too_large(scope, receive, send)
                chunks.append(chunk)
                if not message.get("more_body", False):
                    break
            body = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]

            async def replay():
                return body.pop() if body else await receive()

            await self.inner(scope, replay, send)

    class Guard:
        """Pure ASGI middleware: an exception that escapes the app becomes a JSON answer
        (503 + Retry-After for storage faults; 500, traceback logged, otherwise) and is
        not re-raised — the server keeps the connection."""

        def __init__(self, inner):
            self.inner = inner

        async def __call__(self, scope, receive, send):
            if scope["type"] != "http":
                return await self.inner(scope, receive, send)
            started = [False]

            async def watch(message):
                if message["type"] == "http.response.start":
                    started[0] = True
                await send(message)

            try:
                await self.inner(scope, receive, watch)
            except Exception as exc:
                if started[0]:
                    raise  # half an answer is out: only closing the connection is honest
                fault = storage_fault(exc)
                if fault is not None:
                    log.warning("%s %s: storage fault: %s", scope.get("method"),
                                scope.get("path"), fault)
                    response = error_response(503, f"the store cannot be written now ({fault}); "
                                              "retry later", headers=retry_after)
                else:
                    log.exception("%s %s failed", scope.get("method"), scope.get("path"))
                    response = error_response(500, f"internal error ({type(exc).__name__}); "
                                              "the server log has the details")
                await response(scope, receive, send)

    # Outermost last: Measure sees every answer (413s and 500s included).
    app.add_middleware(Guard)
    app.add_middleware(BodyLimit)
    app.add_middleware(Measure)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request, exc: StarletteHTTPException):
        return error_response(exc.status_code, str(exc.detail), headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request, exc: RequestValidationError):
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", []) if p != "body")
        detail = [{k: e[k] for k in ("loc", "msg", "type") if k in e} for e in exc.errors()]
        return JSONResponse({"error": f"{where or 'request'}: {first.get('msg')}",
                             "detail": detail}, status_code=422)

    async def studio_error(request, exc: ValueError):
        if isinstance(exc, StoreUnavailable):
            return error_response(503, str(exc), headers=retry_after)
        if isinstance(exc, RewardConflict):
            return error_response(409, str(exc), event_id=exc.event_id,
                                  recorded=exc.recorded, received=exc.received)
        status = 404 if isinstance(exc, NotFound) else 409 if isinstance(exc, Conflict) else 422
        return error_response(status, str(exc))

    for error in USER_ERRORS:  # bad input from the studio or a library: one JSON line
        app.add_exception_handler(error, studio_error)

    # Plain `def`: FastAPI runs them in its threadpool, so that no request's work (user
    # validation, the bandit, a SQLite commit waiting on the disk) blocks the event loop
    # and with it /healthz and /metrics. The service is thread-safe (the models have
    # their own locks, feedback is serialised, SQLite connections are per thread).
    @app.post("/v1/select", response_model=SelectResponse, dependencies=[Depends(authorised)])
    def select(body: SelectRequest) -> SelectResponse:
        chosen = service.select(body.product_id, user=body.user, cluster_id=body.cluster_id,
                                placement=body.context.placement)
        decisions.labels(service.products[body.product_id]).inc()
        return SelectResponse(image_url=f"/v1/creatives/{chosen.creative_id}",
                              **chosen.__dict__)

    @app.post("/v1/feedback", response_model=FeedbackResponse, dependencies=[Depends(authorised)])
    def feedback(body: FeedbackRequest) -> FeedbackResponse:
        status = service.feedback(body.event_id, body.reward)
        rewards.labels(status).inc()
        return FeedbackResponse(event_id=body.event_id, status=status)

    @app.get("/v1/creatives/{creative_id}")
    def creative(creative_id: str):
        if not CREATIVE_ID.match(creative_id):
            raise HTTPException(404, "unknown creative")
        try:
            sha = store.creative_image_sha(creative_id)
        except StudioError:
            raise HTTPException(404, "unknown creative") from None
        path = store.file_path(sha)
        if not path.is_file():
            raise HTTPException(404, "the creative's file is missing from the store")
        return FileResponse(path, media_type="image/png")

    @app.get("/v1/arms")
    def arms() -> dict:
        return {"arms": service.arm_report()}

    @app.get("/readyz")
    def ready():
        report = service.readiness()
        if report["ready"]:
            return {"status": "ready", **report}
        return error_response(503, "not ready: " + "; ".join(report["problems"]),
                              headers=retry_after, **report)

    @app.get("/healthz")
    def health() -> dict:
        counts = store.counts()
        return {"status": "ok", "schema_version": store.schema_version,
                "arms": len(service.arms), "events": counts["events"],
                "rewards": counts["rewards"], "placements": list(PLACEMENTS)}

    @app.get("/metrics")
    def metrics() -> Response:
        text = generate_latest(registry).decode()
        lines = ["# HELP studio_arm_ctr Observed CTR of each arm (rewarded events)",
                 "# TYPE studio_arm_ctr gauge"]
        for arm in service.arm_report():
            if arm["ctr"] is not None:
                lines.append(f'studio_arm_ctr{{arm="{arm["arm_id"]}",category="{arm["category"]}",'
                             f'cluster="{arm["cluster_id"]}"}} {arm["ctr"]}')
        return Response(text + "\n".join(lines) + "\n", media_type="text/plain; version=0.0.4")

    return app


def serve(store_dir: Path, *, host: str = "127.0.0.1", port: int = 8000,
          api_key: str | None = None, max_body_bytes: int = MAX_BODY_BYTES,
          retention_s: float | None = None, min_free_bytes: int = MIN_FREE_BYTES) -> None:
    """Run the API with one uvicorn worker (its bandit state lives in this process)."""
    import uvicorn

    app = create_app(store_dir, api_key=api_key, max_body_bytes=max_body_bytes,
                     retention_s=retention_s, min_free_bytes=min_free_bytes)
    uvicorn.run(app, host=host, port=port, workers=1, log_level="warning")
