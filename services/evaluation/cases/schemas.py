"""What the rectification API reads and writes."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from services.evaluation.reviews.schemas import UtcDatetime

_STRICT = ConfigDict(extra="forbid", str_strip_whitespace=True, strict=True)


class CaseReply(BaseModel):
    """The department's answer: what it says to the applicant and what it fixed."""

    model_config = ConfigDict(
        **_STRICT,
        json_schema_extra={
            "example": {
                "reply": "已核实，窗口材料清单表述不清。",
                "fix": "更新了办事指南的材料说明，并对窗口人员进行了培训。",
            }
        },
    )

    reply: str = Field(min_length=1, max_length=2000)
    fix: str = Field(min_length=1, max_length=2000)


class CaseReopen(BaseModel):
    """Why the applicant does not accept the fix."""

    model_config = _STRICT

    reason: str = Field(min_length=1, max_length=2000)


class Case(BaseModel):
    """A rectification case. Evaluators see no ids of the applicant or application, no text."""

    id: str
    review_id: str
    application_id: str | None
    applicant_id: str | None
    department_id: str
    item_ids: list[str]
    region_code: str | None
    status: str = Field(description="open, replied or confirmed.")
    opened_at: UtcDatetime
    deadline: UtcDatetime
    overdue: bool = Field(description="Whether a deadline passed without a reply.")
    reply: str | None
    fix: str | None
    replied_at: UtcDatetime | None
    confirmed_at: UtcDatetime | None
    reopen_count: int
    reopen_reason: str | None
    revision: int
