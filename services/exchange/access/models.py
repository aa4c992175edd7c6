"""The tables of access: grants, consents and the read copy of whom people and organisations
are as subjects."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Connection, DateTime, Index, String, Table, Text, event, text
from sqlalchemy.orm import Mapped, mapped_column

from services.exchange.base import Base


def utcnow() -> datetime:
    """Now, in UTC, timezone-aware."""
    return datetime.now(UTC)


def new_id() -> str:
    """A new row id: 32 hex characters that sort in the order they were made (time first)."""
    return f"{time.time_ns():016x}{os.urandom(8).hex()}"


# The grants of which one per (requester, dataset) may exist (the partial unique index's rows).
OPEN_GRANT = "status IN ('pending', 'granted')"


class Grant(Base):
    """A consuming organisation's access to named fields of a dataset, for a purpose and period.

    ``status`` is ``pending`` (waiting for the owner), ``granted``, ``refused`` or ``revoked``;
    a granted grant whose ``valid_until`` has passed is expired and authorises nothing, and is
    stored as ``expired`` once its organisation asks for the dataset again. At most one grant
    per (requester, dataset) is open (``pending`` or ``granted``): a partial unique index, so
    two requests at once cannot both open one.
    ``unmasked_fields`` lists the sensitive or personal fields returned in plain; ``statutes``
    the statute references this grant allows as a legal basis (both need the owner's approval).
    """

    __tablename__ = "exchange_grants"
    __table_args__ = (
        Index("ix_exchange_grants_requester_dataset", "requester_org_id", "dataset_id", "status"),
        Index("ix_exchange_grants_owner_org_id_id", "owner_org_id", "id"),
        Index(
            "uq_exchange_grants_open",
            "requester_org_id",
            "dataset_id",
            unique=True,
            sqlite_where=text(OPEN_GRANT),
            # postgresql_where: added when the table is created on PostgreSQL (below), so that a
            # process on SQLite never loads PostgreSQL's dialect to check the keyword. The
            # migrations create the index with both (exchange_0006).
        ),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    dataset_id: Mapped[str] = mapped_column(String(32))
    requester_org_id: Mapped[str] = mapped_column(String(64))
    owner_org_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    fields: Mapped[list[str]] = mapped_column(JSON)
    unmasked_fields: Mapped[list[str]] = mapped_column(JSON)
    statutes: Mapped[list[str]] = mapped_column(JSON)
    purpose: Mapped[str] = mapped_column(Text)
    valid_from: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    valid_until: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    requested_by: Mapped[str] = mapped_column(String(255))
    decided_by: Mapped[str | None] = mapped_column(String(255))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    decision_reason: Mapped[str | None] = mapped_column(Text)
    revoked_by: Mapped[str | None] = mapped_column(String(255))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoke_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Consent(Base):
    """A subject's permission for one organisation to read named fields of named datasets
    about them, for a purpose and period (GovStack Consent, DEPA's consent artefact).

    ``subject_ref`` names the person or enterprise (libs.common.subjects); ``scope`` is
    ``[{"dataset_id": ..., "fields": [...]}]``; ``status`` is ``given`` or ``revoked``.
    """

    __tablename__ = "exchange_consents"
    __table_args__ = (Index("ix_exchange_consents_subject_ref_id", "subject_ref", "id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    subject_ref: Mapped[str] = mapped_column(String(64))
    subject_kind: Mapped[str] = mapped_column(String(16))
    given_by: Mapped[str] = mapped_column(String(255))
    grantee_org_id: Mapped[str] = mapped_column(String(64))
    purpose: Mapped[str] = mapped_column(Text)
    scope: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))
    valid_from: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    valid_until: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_by: Mapped[str | None] = mapped_column(String(255))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class PersonSubject(Base):
    """A person of identity and their subject reference (from identity's events)."""

    __tablename__ = "exchange_person_subjects"

    person_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    subject_ref: Mapped[str] = mapped_column(String(64), index=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class OrganisationSubject(Base):
    """An organisation of identity: its kind, name and subject reference (from its credit
    code), from identity's events."""

    __tablename__ = "exchange_organisation_subjects"

    org_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16))
    subject_ref: Mapped[str] = mapped_column(String(64), index=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


def _partial_on_postgresql(table: Table, connection: Connection, **_: Any) -> None:
    """Make the open-grant index partial on PostgreSQL too before the table is created there."""
    if connection.dialect.name == "postgresql":
        for index in table.indexes:
            if index.name == "uq_exchange_grants_open":
                index.dialect_options["postgresql"]["where"] = text(OPEN_GRANT)


event.listen(Grant.__table__, "before_create", _partial_on_postgresql)
