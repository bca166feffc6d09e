"""``/readyz`` (readiness: the store takes a write, the disk has room), ``/healthz``
(liveness, counts, this replica's lag behind the reward log) and ``/metrics`` (Prometheus text, with each arm's observed CTR)."""

from __future__ import annotations

import os

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from ....store import Store
from ...config import PLACEMENTS
from ...service import SelectionService
from ..dependencies import get_metrics, get_service, get_store
from ..errors import error_response

router = APIRouter()


@router.get("/readyz")
def ready(request: Request, service: SelectionService = Depends(get_service)):
    report = service.readiness()
    if report["ready"]:
        return {"status": "ready", **report}
    return error_response(503, "not ready: " + "; ".join(report["problems"]),
                          headers=request.app.state.retry_after, **report)


@router.get("/healthz")
def health(service: SelectionService = Depends(get_service),
           store: Store = Depends(get_store)) -> dict:
    counts = store.counts()
    return {"status": "ok", "schema_version": store.schema_version,
            "arms": len(service.arms), "events": counts["events"],
            "rewards": counts["rewards"], "placements": list(PLACEMENTS),
            "store": store.backend, "replica": {"pid": os.getpid(), **service.lag()}}


@router.get("/metrics")
def metrics(service: SelectionService = Depends(get_service),
            counters=Depends(get_metrics)) -> Response:
    from prometheus_client import generate_latest

    text = generate_latest(counters.registry).decode()
    lines = ["# HELP studio_arm_ctr Observed CTR of each arm (rewarded events)",
             "# TYPE studio_arm_ctr gauge"]
    for arm in service.arm_report():
        if arm["ctr"] is not None:
            lines.append(f'studio_arm_ctr{{arm="{arm["arm_id"]}",category="{arm["category"]}",'
                         f'cluster="{arm["cluster_id"]}"}} {arm["ctr"]}')
    return Response(text + "\n".join(lines) + "\n", media_type="text/plain; version=0.0.4")
