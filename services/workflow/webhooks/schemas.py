"""The webhooks API's shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from services.workflow.ids import as_utc

# pingtai.workflow.<aggregate>.<event>, or a "*" for every event of an aggregate or of workflow.
EVENT_TYPE_PATTERN = r"^pingtai\.workflow\.(\*|[a-z][a-z0-9_-]*\.(\*|[a-z][a-z0-9_-]*))$"
DeliveryStatus = Literal["pending", "delivered", "failed"]


UtcDatetime = Annotated[datetime, AfterValidator(as_utc)]


class WebhookCreate(BaseModel):
    """A subscription: where to send which of workflow's events about the caller's organisation."""

    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        strict=True,
        json_schema_extra={
            "example": {
                "url": "https://dept.example.gov.cn/pingtai/webhooks",
                "event_types": ["pingtai.workflow.task.*", "pingtai.workflow.sla.overdue"],
                "description": "审批系统",
            }
        },
    )

    url: str = Field(min_length=8, max_length=2048)
    event_types: list[Annotated[str, Field(pattern=EVENT_TYPE_PATTERN, max_length=255)]] = Field(
        min_length=1, max_length=50
    )
    description: str | None = Field(default=None, max_length=500)


class Webhook(BaseModel):
    """A subscription as its owner sees it (never its secret)."""

    id: str
    owner_org_id: str
    url: str
    event_types: list[str]
    description: str | None
    created_by: str
    created_at: UtcDatetime


class WebhookCreated(Webhook):
    """The new subscription and its signing secret, shown this once."""

    secret: str = Field(
        description="The Standard Webhooks signing secret (whsec_...), not shown again."
    )


class DeliveryAttempt(BaseModel):
    """One try: when, what the receiver answered or what went wrong, and how long it took."""

    at: UtcDatetime
    status_code: int | None
    error: str | None
    duration_ms: int


class Delivery(BaseModel):
    """One event sent (or being sent) to a subscription, with every attempt."""

    id: str = Field(description="The webhook-id header: the same on every attempt.")
    event_id: str
    event_type: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: UtcDatetime | None
    created_at: UtcDatetime
    delivered_at: UtcDatetime | None
    attempt_log: list[DeliveryAttempt]
    payload: dict[str, Any]
