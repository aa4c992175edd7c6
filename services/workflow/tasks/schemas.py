"""What the officer inbox reads and writes."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from services.workflow.applications.schemas import UtcDatetime

TaskState = Literal["waiting", "open", "claimed", "completed", "cancelled"]
TaskSort = Literal["due_at", "-due_at", "created_at"]


class TaskAction(BaseModel):
    """An officer's decision on a task: one of its ``decisions``, and a comment."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={"example": {"decision": "approve", "comment": "材料齐全，准予许可"}},
    )

    decision: str = Field(min_length=1, max_length=64)
    comment: Annotated[str, Field(max_length=2000)] | None = None
    expected_version: int | None = Field(
        default=None, ge=1, description="The task's version the officer saw (409 if it moved)."
    )


class Task(BaseModel):
    """A task in a department's inbox."""

    id: str
    application_id: str
    item_id: str
    item_code: str
    step: str
    name: str
    decisions: list[str]
    department_org_id: str
    role: Literal["officer", "dept_admin"]
    state: TaskState
    claimed_by: str | None
    claimed_at: UtcDatetime | None
    created_at: UtcDatetime
    opened_at: UtcDatetime | None
    due_at: UtcDatetime | None
    completed_at: UtcDatetime | None
    completed_by: str | None
    decision: str | None
    comment: str | None
    version: int
    service_code: str | None = None
    service_name: str | None = None
    application_status: str | None = None


class TaskDetail(Task):
    """A task with the application's form and materials, for the officer deciding it."""

    form: dict[str, Any]
    materials: list[dict[str, Any]]
