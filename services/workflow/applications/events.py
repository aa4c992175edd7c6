"""The events applications publish (subject: the application id)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from libs.common.events import EventData


class ApplicationEvent(EventData):
    """What every application event carries."""

    application_id: str
    applicant_id: str
    applicant_org_id: str | None
    service_code: str
    owner_org_id: str | None
    status: str


class ApplicationSubmitted(ApplicationEvent):
    """An application was submitted; ``materials_fetched`` of ``materials_total`` were fetched."""

    event_type: ClassVar[str] = "pingtai.workflow.application.submitted"

    kind: str
    item_id: str | None
    item_version: int | None
    bundle_id: str | None
    bundle_version: int | None
    submitted_at: datetime
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
    due_at: datetime | None
    materials_fetched: int
    materials_uploaded: int


class SupplementRequested(ApplicationEvent):
    """A department asked for the single supplement (一次性告知)."""

    event_type: ClassVar[str] = "pingtai.workflow.application.supplement_requested"

    item_id: str
    task_id: str
    comment: str | None


class SupplementProvided(ApplicationEvent):
    """The applicant answered the supplement request."""

    event_type: ClassVar[str] = "pingtai.workflow.application.supplement_provided"

    changed_fields: list[str]


class ApplicationCompleted(ApplicationEvent):
    """Every branch approved; ``result`` is what was delivered."""

    event_type: ClassVar[str] = "pingtai.workflow.application.completed"

    decided_at: datetime
    result: dict[str, Any]


class ApplicationRejected(ApplicationEvent):
    """A branch refused: the application ends refused."""

    event_type: ClassVar[str] = "pingtai.workflow.application.rejected"

    decided_at: datetime
    item_id: str
    comment: str | None
    result: dict[str, Any]


class ApplicationWithdrawn(ApplicationEvent):
    """The applicant withdrew before a decision."""

    event_type: ClassVar[str] = "pingtai.workflow.application.withdrawn"

    reason: str | None
