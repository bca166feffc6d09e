"""``/v1/creatives/{id}`` (a served creative's image) and ``/v1/arms`` (what the
bandit learned of each arm)."""

from __future__ import annotations

import re

from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import FileResponse

from ....errors import StudioError
from ....store import Store
from ...service import SelectionService
from ..dependencies import get_service, get_store

CREATIVE_ID = re.compile(r"^[0-9a-f]{20}$")

router = APIRouter()


@router.get("/v1/creatives/{creative_id}")
def creative(creative_id: str, store: Store = Depends(get_store)):
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


@router.get("/v1/arms")
def arms(service: SelectionService = Depends(get_service)) -> dict:
    return {"arms": service.arm_report()}
