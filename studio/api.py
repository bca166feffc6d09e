"""The selection HTTP API (FastAPI): select, feedback, creatives, arms, health, metrics.

One process, one uvicorn worker (the bandit lives in memory; the store is its log).
Writes need ``Authorization: Bearer <key>`` (``--api-key`` or ``STUDIO_API_KEY``).
Errors are JSON ``{"error": message}``; validation errors are 422 with the field named.
"""

from __future__ import annotations

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
from pydantic import BaseModel, Field, field_validator, model_validator

from .errors import StudioError
from .serving import PLACEMENTS, Conflict, NotFound, SelectionService, ServingConfig
from .store import Store

EVENT_ID = re.compile(r"^[0-9a-f]{32}$")
CREATIVE_ID = re.compile(r"^[0-9a-f]{20}$")


class Placement(BaseModel):
    placement: Literal["1:1", "4:5", "9:16", "1.91:1"] = "1:1"


class SelectRequest(BaseModel):
    product_id: str = Field(min_length=1, max_length=200)
    user: Optional[dict[str, Any]] = Field(
        None, description="The user's features (columns of the user table).")
    cluster_id: Optional[int] = Field(None, ge=0)
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
               config: ServingConfig | None = None) -> FastAPI:
    """Build the API over a store. ``api_key`` defaults to ``$STUDIO_API_KEY``."""
    from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

    key = api_key or os.environ.get("STUDIO_API_KEY")
    if not key:
        raise StudioError("an API key is required: pass --api-key or set STUDIO_API_KEY")
    store = Store(store_dir)
    service = SelectionService(store, config=config, snapshot_every=snapshot_every,
                               feedback_window_s=feedback_window_s)
    registry = CollectorRegistry()
    requests = Counter("studio_requests_total", "HTTP requests", ["path", "status"],
                       registry=registry)
    latency = Histogram("studio_request_seconds", "Request latency", ["path"], registry=registry,
                        buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0))
    decisions = Counter("studio_decisions_total", "Selections made", ["category"], registry=registry)
    rewards = Counter("studio_rewards_total", "Rewards applied", ["status"], registry=registry)

    @asynccontextmanager
    async def lifespan(app):
        yield
        service.snapshot()

    app = FastAPI(title="Creative Studio selection API", version="1", lifespan=lifespan)
    app.state.service = service

    async def authorised(authorization: str | None = Header(None)) -> None:
        if authorization != f"Bearer {key}":
            raise HTTPException(401, "missing or wrong API key (Authorization: Bearer KEY)")

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

    app.add_middleware(Measure)

    @app.exception_handler(HTTPException)
    async def http_error(request, exc: HTTPException):
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def invalid(request, exc: RequestValidationError):
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", []) if p != "body")
        detail = [{k: e[k] for k in ("loc", "msg", "type") if k in e} for e in exc.errors()]
        return JSONResponse({"error": f"{where or 'request'}: {first.get('msg')}",
                             "detail": detail}, status_code=422)

    @app.exception_handler(StudioError)
    async def studio_error(request, exc: StudioError):
        status = 404 if isinstance(exc, NotFound) else 409 if isinstance(exc, Conflict) else 422
        return JSONResponse({"error": str(exc)}, status_code=status)

    # The service calls take well under a millisecond (in-memory bandit, one local SQLite
    # commit): they run on the event loop, which saves a thread hop per request.
    @app.post("/v1/select", response_model=SelectResponse, dependencies=[Depends(authorised)])
    async def select(body: SelectRequest) -> SelectResponse:
        chosen = service.select(body.product_id, user=body.user, cluster_id=body.cluster_id,
                                placement=body.context.placement)
        decisions.labels(service.products[body.product_id]).inc()
        return SelectResponse(image_url=f"/v1/creatives/{chosen.creative_id}",
                              **chosen.__dict__)

    @app.post("/v1/feedback", response_model=FeedbackResponse, dependencies=[Depends(authorised)])
    async def feedback(body: FeedbackRequest) -> FeedbackResponse:
        status = service.feedback(body.event_id, body.reward)
        rewards.labels(status).inc()
        return FeedbackResponse(event_id=body.event_id, status=status)

    @app.get("/v1/creatives/{creative_id}")
    def creative(creative_id: str):
        if not CREATIVE_ID.match(creative_id):
            raise HTTPException(404, "unknown creative")
        rows = store.query("SELECT image_sha256 FROM creatives WHERE creative_id = ?", (creative_id,))
        if not rows:
            raise HTTPException(404, "unknown creative")
        path = store.file_path(rows[0][0])
        if not path.is_file():
            raise HTTPException(404, "the creative's file is missing from the store")
        return FileResponse(path, media_type="image/png")

    @app.get("/v1/arms")
    def arms() -> dict:
        return {"arms": service.arm_report()}

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
          api_key: str | None = None) -> None:
    """Run the API with one uvicorn worker (its bandit state lives in this process)."""
    import uvicorn

    app = create_app(store_dir, api_key=api_key)
    uvicorn.run(app, host=host, port=port, workers=1, log_level="warning")
