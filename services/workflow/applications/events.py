"""The events applications publish (subject: the application id)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from pydantic import BaseModel, Field

from libs.common.events import EventData


class ItemVersion(BaseModel):
    """An item version an application covers (a bundle: each of its items)."""

    item_id: str
    version: int


class ApplicationEvent(EventData):
    """What every application event carries: who, what was applied for, where, its limits.

    The descriptive fields (from ``kind`` on) let a consumer such as evaluation count an
    application from any one of its events without a copy of the catalog.
    """

    application_id: str
    applicant_id: str
    applicant_org_id: str | None
    service_code: str
    owner_org_id: str | None
    status: str
    kind: str | None = None  # item | bundle
    item_id: str | None = None
    item_version: int | None = None
    bundle_id: str | None = None
    bundle_version: int | None = None
    item_versions: list[ItemVersion] = Field(default_factory=list)
    # The departments with a branch in it (a bundle's four items: their four departments).
    department_org_ids: list[str] = Field(default_factory=list)
    channel: str = "online"
    region_code: str | None = None  # GB/T 2260
    legal_time_limit_days: int | None = None  # a bundle: the largest of its items'
    promised_time_limit_days: int | None = None
    max_visits: int | None = None
    submitted_at: datetime | None = None
    due_at: datetime | None = None
    supplement_rounds: int = 0


class ApplicationDecided(ApplicationEvent):
    """What the final events (completed, rejected, withdrawn) add: the counts evaluation keeps."""

    decided_at: datetime
    # Working days after the (Asia/Shanghai) submission day up to the decision day, by
    # workflow's holiday calendar; None for one never submitted.
    working_days_used: int | None
    visits: int  # on-site visits: 0 online, 1 for a counter submission
    overdue: bool  # decided after due_at
    materials_total: int
    materials_fetched: int
    materials_uploaded: int


class ApplicationSubmitted(ApplicationEvent):
    """An application was submitted; ``materials_fetched`` of ``materials_total`` were fetched."""

    event_type: ClassVar[str] = "pingtai.workflow.application.submitted"

    materials_total: int
    materials_fetched: int
    materials_pending: int


class ApplicationMaterialsRequested(ApplicationEvent):
    """The applicant is asked to upload what the government does not hold."""

    event_type: ClassVar[str] = "pingtai.workflow.application.materials_requested"

    materials: list[str]


class MaterialUploaded(ApplicationEvent):
    """The applicant uploaded a material (metadata only, never the file)."""

    event_type: ClassVar[str] = "pingtai.workflow.material.uploaded"

    material: str
    content_type: str
    size_bytes: int
    sha256: str


class ApplicationStarted(ApplicationEvent):
    """Every material is in: the departments' tasks are open. The counts feed evaluation."""

    event_type: ClassVar[str] = "pingtai.workflow.application.started"

    branches: list[str]
    materials_fetched: int
    materials_uploaded: int


class SupplementRequested(ApplicationEvent):
    """A department asked for the single supplement (一次性告知)."""

    event_type: ClassVar[str] = "pingtai.workflow.application.supplement_requested"

    supplement_item_id: str  # the branch that asks
    task_id: str
    comment: str | None


class SupplementProvided(ApplicationEvent):
    """The applicant answered the supplement request."""

    event_type: ClassVar[str] = "pingtai.workflow.application.supplement_provided"

    changed_fields: list[str]


class ApplicationCompleted(ApplicationDecided):
    """Every branch approved; ``result`` is what was delivered."""

    event_type: ClassVar[str] = "pingtai.workflow.application.completed"

    result: dict[str, Any]


class ApplicationRejected(ApplicationDecided):
    """A branch refused: the application ends refused (``refused_item_id``: the branch)."""

    event_type: ClassVar[str] = "pingtai.workflow.application.rejected"

    refused_item_id: str
    comment: str | None
    result: dict[str, Any]


class ApplicationWithdrawn(ApplicationDecided):
    """The applicant withdrew before a decision."""

    event_type: ClassVar[str] = "pingtai.workflow.application.withdrawn"

    reason: str | None
