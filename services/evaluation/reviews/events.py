"""The events reviews publish: whole snapshots with a revision, metadata only.

Neither the applicant nor the comment's text leaves the service; the indicator projection (and
any other reader) keeps the highest revision of each review.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from libs.common.events import EventData


class ReviewSnapshot(EventData):
    """What every review event says about the review as it now stands."""

    review_id: str
    revision: int
    application_id: str
    outcome: str
    item_ids: list[str]
    service_code: str | None
    department_ids: list[str]
    region_code: str | None
    channel: str | None
    overall: int
    speed: int
    attitude: int
    clarity: int
    convenience: int
    has_comment: bool
    created_at: datetime
    updated_at: datetime


class ReviewSubmitted(ReviewSnapshot):
    """An applicant reviewed a finished application (好差评)."""

    event_type: ClassVar[str] = "pingtai.evaluation.review.submitted"


class ReviewUpdated(ReviewSnapshot):
    """An applicant changed their review within the edit window."""

    event_type: ClassVar[str] = "pingtai.evaluation.review.updated"
