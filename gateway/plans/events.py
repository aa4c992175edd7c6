"""The events plans publish: every gateway replica drops the keys it cached on a changed plan."""

from __future__ import annotations

from typing import ClassVar

from libs.common.events import EventData


class PlanChanged(EventData):
    """A plan's limits or terms changed."""

    event_type: ClassVar[str] = "pingtai.gateway.plan.changed"

    plan_id: str
    code: str
    requests_per_minute: int
    requests_per_day: int
    requires_token: bool
    published: bool
    changed_by: str
