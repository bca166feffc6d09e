"""``/v1/select`` and ``/v1/feedback``: a decision, and the reward it earned (writes: the
API key is required).

Plain ``def``: FastAPI runs them in its threadpool, so that no request's work (user
validation, the bandit, a SQLite commit waiting on the disk) blocks the event loop and
with it ``/healthz`` and ``/metrics``. The service is thread-safe (the models have their
own locks, feedback is serialised, SQLite connections are per thread).
"""

from __future__ import annotations

from fastapi import APIRouter, Depends

from ...service import SelectionService
from ..dependencies import authorised, get_metrics, get_service
from ..schemas import FeedbackRequest, FeedbackResponse, SelectRequest, SelectResponse

router = APIRouter()


@router.post("/v1/select", response_model=SelectResponse, dependencies=[Depends(authorised)])
def select(body: SelectRequest, service: SelectionService = Depends(get_service),
           counters=Depends(get_metrics)) -> SelectResponse:
    chosen = service.select(body.product_id, user=body.user, cluster_id=body.cluster_id,
                            placement=body.context.placement)
    counters.decisions.labels(service.products[body.product_id]).inc()
    return SelectResponse(image_url=f"/v1/creatives/{chosen.creative_id}",
                          **chosen.__dict__)


@router.post("/v1/feedback", response_model=FeedbackResponse, dependencies=[Depends(authorised)])
def feedback(body: FeedbackRequest, service: SelectionService = Depends(get_service),
             counters=Depends(get_metrics)) -> FeedbackResponse:
    status = service.feedback(body.event_id, body.reward)
    counters.rewards.labels(status).inc()
    return FeedbackResponse(event_id=body.event_id, status=status)
