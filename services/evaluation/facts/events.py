"""Evaluation's own copies of the events it reads from other parts (docs/events.md).

Every field a publisher may not send yet is optional, and unknown fields are ignored, so a
publisher may add to its events. ``docs/evaluation.md`` lists what each field feeds.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

_TOLERANT = ConfigDict(extra="ignore", populate_by_name=True)

WORKFLOW_SUBJECTS = [
    "pingtai.workflow.application.*",
    "pingtai.workflow.task.*",
    "pingtai.workflow.sla.*",
]
EXCHANGE_SUBJECTS = ["pingtai.exchange.access.*", "pingtai.exchange.records.*"]
CATALOG_SUBJECTS = ["pingtai.catalog.item.published", "pingtai.catalog.bundle.published"]
IDENTITY_SUBJECTS = [
    "pingtai.identity.organisation.registered",
    "pingtai.identity.organisation.updated",
]


class ItemRef(BaseModel):
    """An item version an application (or a bundle) covers."""

    model_config = _TOLERANT

    item_id: str
    version: int | None = None


class WorkflowApplicationEvent(BaseModel):
    """Any ``pingtai.workflow.application.*`` event; each type fills what it knows."""

    model_config = _TOLERANT

    application_id: str
    applicant_id: str | None = None
    applicant_org_id: str | None = None
    item_id: str | None = None
    item_version: int | None = None
    bundle_id: str | None = None
    bundle_version: int | None = None
    item_versions: list[ItemRef] | None = None
    service_code: str | None = None
    owner_org_id: str | None = None
    department_org_ids: list[str] | None = Field(
        default=None, validation_alias=AliasChoices("department_org_ids", "department_ids")
    )
    region_code: str | None = None
    channel: str | None = None
    submitted_at: datetime | None = None
    due_at: datetime | None = None
    decided_at: datetime | None = Field(
        default=None,
        validation_alias=AliasChoices(
            "decided_at", "completed_at", "rejected_at", "withdrawn_at", "finished_at"
        ),
    )
    legal_time_limit_days: int | None = None
    promised_time_limit_days: int | None = None
    max_visits: int | None = None
    visits: int | None = None
    working_days_used: int | None = None
    overdue: bool | None = None
    materials_total: int | None = None
    materials_fetched: int | None = None
    materials_uploaded: int | None = None
    materials_pending: int | None = None
    supplement_rounds: int | None = None


class WorkflowTaskEvent(BaseModel):
    """``pingtai.workflow.task.*``: which department works on an application."""

    model_config = _TOLERANT

    application_id: str
    department_org_id: str | None = Field(
        default=None, validation_alias=AliasChoices("department_org_id", "department_id")
    )


class WorkflowSlaEvent(BaseModel):
    """``pingtai.workflow.sla.*``: a clock of a task or of the whole application."""

    model_config = _TOLERANT

    application_id: str
    kind: str
    department_org_id: str | None = None


class ExchangeAccessRecorded(BaseModel):
    """``pingtai.exchange.access.recorded``: one read or refusal (metadata only)."""

    model_config = _TOLERANT

    dataset_id: str | None = None
    owner_org_id: str | None = None
    actor_org_id: str | None = None
    basis_kind: str | None = None
    outcome: str = "granted"
    recorded_at: datetime | None = None
    position: int | None = Field(
        default=None, validation_alias=AliasChoices("position", "ledger_position", "entry_position")
    )
    subjects: int | None = Field(
        default=None, validation_alias=AliasChoices("subjects", "subject_count", "count")
    )


class ExchangeAccessesRecorded(BaseModel):
    """``pingtai.exchange.access.batch_recorded``: the entries of one group commit."""

    model_config = _TOLERANT

    entries: list[ExchangeAccessRecorded] = Field(default_factory=list)


class ExchangeRecordsImported(BaseModel):
    """``pingtai.exchange.records.imported``: a department pushed records to a hosted dataset."""

    model_config = _TOLERANT

    import_id: str | None = Field(
        default=None, validation_alias=AliasChoices("import_id", "batch_id", "upload_id")
    )
    dataset_id: str | None = None
    owner_org_id: str | None = None
    accepted: int = Field(
        default=0, validation_alias=AliasChoices("accepted", "imported", "upserted", "count")
    )


class CatalogItemPublished(BaseModel):
    """``pingtai.catalog.item.published``: the parts of a version evaluation keeps."""

    model_config = _TOLERANT

    item_id: str
    code: str
    owner_org_id: str
    version: int
    snapshot: dict[str, Any]


class CatalogBundlePublished(BaseModel):
    """``pingtai.catalog.bundle.published``."""

    model_config = _TOLERANT

    bundle_id: str
    code: str
    owner_org_id: str | None = None
    version: int
    snapshot: dict[str, Any]


class OrganisationChanged(BaseModel):
    """``pingtai.identity.organisation.registered`` / ``.updated``."""

    model_config = _TOLERANT

    org_id: str
    kind: str | None = None
    name: str | None = None
    region_code: str | None = None
    status: str | None = None
