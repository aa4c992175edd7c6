"""What the applications API reads and writes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from services.workflow.ids import as_utc

_STRICT = ConfigDict(extra="forbid", strict=True)

ID_PATTERN = r"^[0-9a-zA-Z_-]{1,32}$"
UtcDatetime = Annotated[datetime, AfterValidator(as_utc)]
Comment = Annotated[str, Field(min_length=1, max_length=2000)]
# A form larger than this (serialised JSON) is refused.
MAX_FORM_BYTES = 64 * 1024

ApplicationStatus = Literal[
    "draft", "submitted", "awaiting_materials", "in_progress", "supplement_requested",
    "completed", "rejected", "withdrawn",
]  # fmt: skip


Channel = Literal["online", "app", "mini_program", "self_service", "counter"]


class ApplicationCreate(BaseModel):
    """One application for a published service item or a one-thing bundle, with one form."""

    model_config = ConfigDict(
        **_STRICT,
        json_schema_extra={
            "example": {
                "bundle_id": "7c1e0f9a2b3d4c5e6f708192a3b4c5d6",
                "form": {
                    "credit_code": "91330106MA2000017X",
                    "entity_name": "杭州云栖科技有限公司",
                },
            }
        },
    )

    item_id: str | None = Field(default=None, pattern=ID_PATTERN)
    bundle_id: str | None = Field(default=None, pattern=ID_PATTERN)
    version: int | None = Field(
        default=None, ge=1, le=1_000_000,
        description="A published version; the latest when omitted.",
    )  # fmt: skip
    form: dict[str, Any] = Field(description="Valid against the item's (or bundle's) form.")
    draft: bool = Field(default=False, description="Save as a draft instead of submitting.")
    channel: Channel = Field(
        default="online",
        description=(
            "Where the application is made: `online` (the portal), `app`, `mini_program`, "
            "`self_service` (a kiosk), `counter` (at a service hall's window: one visit)."
        ),
    )

    @model_validator(mode="after")
    def _one_offering(self) -> ApplicationCreate:
        if (self.item_id is None) == (self.bundle_id is None):
            raise ValueError("give either item_id or bundle_id")
        return self


class ApplicationUpdate(BaseModel):
    """A draft's new form (the whole form; validated when submitted)."""

    model_config = _STRICT

    form: dict[str, Any]


class Withdrawal(BaseModel):
    model_config = _STRICT

    reason: Comment | None = None


class SupplementAnswer(BaseModel):
    """The applicant's answer to the supplement request: changed form fields, a comment."""

    model_config = _STRICT

    form: dict[str, Any] = Field(
        default_factory=dict, description="Form fields to change; the rest stay."
    )
    comment: Comment | None = None


class Material(BaseModel):
    """One material: fetched from a dataset (with exchange's ledger receipt) or uploaded."""

    key: str
    name: str
    source: Literal["dataset", "upload"]
    state: Literal["pending_fetch", "fetched", "requested", "uploaded"]
    item_ids: list[str]
    dataset_id: str | None
    record: dict[str, Any] | None = Field(description="The fields exchange returned (masked).")
    receipt: dict[str, Any] | None = Field(description="Exchange's ledger position of the read.")
    fetched_at: UtcDatetime | None
    last_error: str | None
    allowed_types: list[str] | None
    max_bytes: int | None
    file_name: str | None
    content_type: str | None
    size_bytes: int | None
    sha256: str | None
    uploaded_at: UtcDatetime | None


class HistoryStep(BaseModel):
    """One step of the application's history."""

    id: int
    at: UtcDatetime
    action: str
    actor_role: str
    actor_id: str
    task_id: str | None
    department_org_id: str | None
    comment: str | None
    from_status: str | None
    to_status: str | None
    data: dict[str, Any] | None


class BranchView(BaseModel):
    """One item's branch of the application."""

    item_id: str
    item_version: int
    item_code: str
    item_name: str
    department_org_id: str
    status: Literal["active", "approved", "rejected", "cancelled"]
    marking: list[str]
    finished_at: UtcDatetime | None


class TaskBrief(BaseModel):
    """A department task, as the applicant sees it."""

    id: str
    item_id: str
    name: str
    department_org_id: str
    state: str
    due_at: UtcDatetime | None
    decision: str | None
    completed_at: UtcDatetime | None


class ApplicationSummary(BaseModel):
    """An application, briefly (lists)."""

    id: str
    kind: Literal["item", "bundle"]
    item_id: str | None
    item_version: int | None
    bundle_id: str | None
    bundle_version: int | None
    service_code: str
    service_name: str
    owner_org_id: str | None
    applicant_id: str
    applicant_org_id: str | None
    status: ApplicationStatus
    channel: str
    created_at: UtcDatetime
    updated_at: UtcDatetime
    submitted_at: UtcDatetime | None
    due_at: UtcDatetime | None
    decided_at: UtcDatetime | None


class Application(ApplicationSummary):
    """An application with its form, materials, branches, tasks and history."""

    form: dict[str, Any]
    supplement_rounds: int
    supplement: dict[str, Any] | None
    result: dict[str, Any] | None
    materials: list[Material]
    branches: list[BranchView]
    tasks: list[TaskBrief]
    history: list[HistoryStep]
