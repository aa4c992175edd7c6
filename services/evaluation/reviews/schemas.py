"""What the reviews API reads and writes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from services.evaluation.clock import as_utc

_STRICT = ConfigDict(extra="forbid", str_strip_whitespace=True, strict=True)

APPLICATION_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
ID_PATTERN = r"^[0-9a-f]{32}$"

Rating = Annotated[int, Field(ge=1, le=5)]
UtcDatetime = Annotated[datetime, AfterValidator(as_utc)]


class ReviewCreate(BaseModel):
    """A review of one of your finished applications: 1 (very poor) to 5 (very good)."""

    model_config = ConfigDict(
        **_STRICT,
        json_schema_extra={
            "example": {
                "application_id": "5d0c6f0f3a4b4c2e9e1f7a8b9c0d1e2f",
                "overall": 2,
                "speed": 2,
                "attitude": 4,
                "clarity": 2,
                "convenience": 3,
                "comment": "材料清单写得不清楚，来回补了一次。",
            }
        },
    )

    application_id: str = Field(pattern=APPLICATION_ID_PATTERN)
    overall: Rating
    speed: Rating
    attitude: Rating
    clarity: Rating
    convenience: Rating
    comment: str | None = Field(default=None, max_length=500)


class ReviewUpdate(BaseModel):
    """Changes to your review while it may still be edited; what is omitted stays."""

    model_config = _STRICT

    overall: Rating | None = None
    speed: Rating | None = None
    attitude: Rating | None = None
    clarity: Rating | None = None
    convenience: Rating | None = None
    comment: str | None = Field(default=None, max_length=500)

    @model_validator(mode="after")
    def _no_null_ratings(self) -> ReviewUpdate:
        for name in sorted(self.model_fields_set - {"comment"}):
            if getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null; omit it to leave it as it is")
        if not self.model_fields_set:
            raise ValueError("nothing to change")
        return self


class Review(BaseModel):
    """A review. Evaluators see it anonymised: no application, applicant or comment."""

    id: str
    application_id: str | None = Field(description="Null for evaluators.")
    applicant_id: str | None = Field(description="Only for the applicant and platform admins.")
    outcome: str = Field(description="completed or rejected: how the application ended.")
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
    comment: str | None = Field(description="Null for evaluators.")
    created_at: UtcDatetime
    updated_at: UtcDatetime
    editable_until: UtcDatetime
    revision: int
    case_ids: list[str] = Field(
        default_factory=list, description="Rectification cases the review opened."
    )
