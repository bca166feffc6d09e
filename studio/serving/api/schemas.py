"""The API's request and answer bodies (pydantic): unknown fields are refused."""

from __future__ import annotations

import math
import re
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator, model_validator

from ..config import PLACEMENTS

EVENT_ID = re.compile(r"^[0-9a-f]{32}$")


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
    cluster_id: Optional[StrictInt] = Field(None, ge=0, le=1_000_000)  # true is no id
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
