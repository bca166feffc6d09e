"""What the routes take from the application: its selection service, store and metrics
(``app.state``, set by ``create_app``), and the API-key check of writes."""

from __future__ import annotations

import hmac
from types import SimpleNamespace

from fastapi import Header, HTTPException, Request

from ...store import Store
from ..service import SelectionService


async def get_service(request: Request) -> SelectionService:
    return request.app.state.service


async def get_store(request: Request) -> Store:
    return request.app.state.store


async def get_metrics(request: Request) -> SimpleNamespace:
    """The Prometheus registry and counters of this application."""
    return request.app.state.metrics


async def authorised(request: Request, authorization: str | None = Header(None)) -> None:
    """``Authorization: Bearer <key>``, compared in constant time."""
    given = (authorization or "").encode("latin-1", "replace")  # the raw header bytes
    if not hmac.compare_digest(given, request.app.state.authorization):
        raise HTTPException(401, "missing or wrong API key (Authorization: Bearer KEY)")
