"""Applications (办件), their materials and their history."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from services.workflow.base import Base
from services.workflow.ids import new_id, utcnow

# What an application goes through (docs/workflow.md, "Application states").
APPLICATION_STATUSES = (
    "draft",  # saved by the applicant, not submitted
    "submitted",  # accepted; materials still being fetched from exchange (retried)
    "awaiting_materials",  # the applicant is asked to upload what the government does not hold
    "in_progress",  # departments' tasks are open
    "supplement_requested",  # one branch asked the applicant for the single supplement (补正)
    "completed",  # every branch approved; the result is delivered
    "rejected",  # a branch refused (不予许可)
    "withdrawn",  # the applicant withdrew before a decision
)
OPEN_STATUSES = ("submitted", "awaiting_materials", "in_progress", "supplement_requested")
FINAL_STATUSES = ("completed", "rejected", "withdrawn")


class Application(Base):
    """An application for one published item version or one published bundle version.

    Exactly one of (``item_id``, ``item_version``) and (``bundle_id``, ``bundle_version``) is
    set. ``version`` counts changes: every action on the application increments it first, which
    serialises concurrent actions on one application (a row lock on PostgreSQL, the write lock on
    SQLite) so the checks that follow read what is current.
    """

    __tablename__ = "applications"
    __table_args__ = (
        UniqueConstraint("applicant_id", "idempotency_key"),
        Index("ix_applications_applicant_created", "applicant_id", "created_at", "id"),
        Index("ix_applications_status_updated", "status", "updated_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    # The person who applies (the token's sub) and, for an enterprise agent, the enterprise.
    applicant_id: Mapped[str] = mapped_column(String(64))
    applicant_org_id: Mapped[str | None] = mapped_column(String(32), index=True)
    kind: Mapped[str] = mapped_column(String(8))  # item | bundle
    item_id: Mapped[str | None] = mapped_column(String(32))
    item_version: Mapped[int | None] = mapped_column(Integer)
    bundle_id: Mapped[str | None] = mapped_column(String(32))
    bundle_version: Mapped[int | None] = mapped_column(Integer)
    service_code: Mapped[str] = mapped_column(String(64))
    service_name: Mapped[str] = mapped_column(String(200))
    # The owning department (an item's; a bundle's, or null for a platform bundle).
    owner_org_id: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(24))
    # Where it was submitted (online, app, mini_program, self_service, counter): evaluation's
    # online and zero-visit rates.
    channel: Mapped[str] = mapped_column(String(16), server_default="online", default="online")
    # From the version applied for (a bundle: its first item's region, its items' largest
    # limits), so every event can carry them.
    region_code: Mapped[str | None] = mapped_column(String(12))
    legal_time_limit_days: Mapped[int | None] = mapped_column(Integer)
    promised_time_limit_days: Mapped[int | None] = mapped_column(Integer)
    max_visits: Mapped[int | None] = mapped_column(Integer)
    # The item versions covered and their departments: [{"item_id", "version", "owner_org_id"}].
    items: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    form: Mapped[dict[str, Any]] = mapped_column(JSON)
    # How many supplement rounds were asked (at most one).
    supplement_rounds: Mapped[int] = mapped_column(Integer, default=0)
    # The branch that asked for the supplement and what it asked, while it is open.
    supplement: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # The final decision and what was delivered to the applicant.
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    # SHA-256 of the canonical request body the idempotency key was first used with.
    request_hash: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    submitted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    version: Mapped[int] = mapped_column(Integer, default=1)


# What a material's row says about where it stands.
MATERIAL_STATES = (
    "pending_fetch",  # to be asked of exchange (it was unreachable; retried in the background)
    "fetched",  # exchange had the record: attached, with the ledger's receipt
    "requested",  # the applicant is asked to upload it (not found, or an upload by nature)
    "uploaded",  # the applicant uploaded it
)


class ApplicationMaterial(Base):
    """One material of an application: fetched from a dataset or uploaded by the applicant."""

    __tablename__ = "application_materials"

    application_id: Mapped[str] = mapped_column(
        ForeignKey("applications.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(8))  # dataset | upload (the catalog's source)
    state: Mapped[str] = mapped_column(String(16))
    # The items (of a bundle) that need it.
    item_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    # For a dataset-sourced material: which dataset and subject, on behalf of which department.
    dataset_id: Mapped[str | None] = mapped_column(String(32))
    subject_key: Mapped[str | None] = mapped_column(String(128))
    on_behalf_of: Mapped[str | None] = mapped_column(String(32))
    wanted_fields: Mapped[list[str] | None] = mapped_column(JSON)
    # What exchange returned: the (masked) fields and its ledger receipt.
    record: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    receipt: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    fetched_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    fetch_attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(500))
    # For an upload: what the applicant sent, where it is and its checksum.
    allowed_types: Mapped[list[str] | None] = mapped_column(JSON)
    max_bytes: Mapped[int | None] = mapped_column(BigInteger)
    file_name: Mapped[str | None] = mapped_column(String(255))
    content_type: Mapped[str | None] = mapped_column(String(100))
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    sha256: Mapped[str | None] = mapped_column(String(64))
    storage_path: Mapped[str | None] = mapped_column(String(500))
    uploaded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class HistoryEntry(Base):
    """One step of an application's history: who did what, when, with which comment.

    ``id`` only grows, so it serves as the server-sent events' ``id`` (``Last-Event-ID``)
    per applicant and per department.
    """

    __tablename__ = "application_history"
    __table_args__ = (
        Index("ix_application_history_applicant_id", "applicant_id", "id"),
        Index("ix_application_history_department_id", "department_org_id", "id"),
        Index("ix_application_history_application_id", "application_id", "id"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    application_id: Mapped[str] = mapped_column(ForeignKey("applications.id", ondelete="CASCADE"))
    applicant_id: Mapped[str] = mapped_column(String(64))
    task_id: Mapped[str | None] = mapped_column(String(32))
    # The department the step concerns (a task's), for officers' live streams.
    department_org_id: Mapped[str | None] = mapped_column(String(32))
    actor_id: Mapped[str] = mapped_column(String(64))  # who: a person's sub, or "system"
    actor_role: Mapped[str] = mapped_column(String(24))  # applicant | officer | system | ...
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    action: Mapped[str] = mapped_column(String(48))
    comment: Mapped[str | None] = mapped_column(Text)
    from_status: Mapped[str | None] = mapped_column(String(24))
    to_status: Mapped[str | None] = mapped_column(String(24))
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON)
