"""Evaluation's read copies and per-subject facts, kept only from events.

Each fact row holds what the events said about one application, review or case, merged so that
the order of the events does not matter, plus ``contribution``: exactly what the row currently
adds to the daily indicator rows. A change replaces the old contribution with the new one, so a
repeated event changes nothing and a late one corrects the figures.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from services.evaluation.base import Base

# {"scopes": ["kind|id", ...], "days": {"YYYY-MM-DD": {counter: n}}}: every scope gets the
# same counters on the same days.
Contribution = dict[str, Any]


class ApplicationFact(Base):
    """One application (办件) as workflow's events describe it."""

    __tablename__ = "evaluation_application_fact"
    __table_args__ = (
        Index("ix_evaluation_application_fact_item", "item_id", "item_version"),
        Index("ix_evaluation_application_fact_bundle", "bundle_id", "bundle_version"),
        Index("ix_evaluation_application_fact_applicant", "applicant_id"),
    )

    application_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    applicant_id: Mapped[str | None] = mapped_column(String(64))
    applicant_org_id: Mapped[str | None] = mapped_column(String(64))
    item_id: Mapped[str | None] = mapped_column(String(64))
    item_version: Mapped[int | None] = mapped_column(Integer)
    bundle_id: Mapped[str | None] = mapped_column(String(64))
    bundle_version: Mapped[int | None] = mapped_column(Integer)
    # [{"item_id", "version"}] the application covers, when workflow names them.
    item_versions: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    service_code: Mapped[str | None] = mapped_column(String(64))
    owner_org_id: Mapped[str | None] = mapped_column(String(64))
    # Every department that worked on it (sorted, no repeats): grows, never shrinks.
    department_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    region_code: Mapped[str | None] = mapped_column(String(6))
    channel: Mapped[str | None] = mapped_column(String(32))
    submitted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # completed | rejected | withdrawn, from the earliest final event (by time, then event id).
    outcome: Mapped[str | None] = mapped_column(String(16))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_key: Mapped[str | None] = mapped_column(String(128))
    legal_limit_days: Mapped[int | None] = mapped_column(Integer)
    promised_limit_days: Mapped[int | None] = mapped_column(Integer)
    max_visits: Mapped[int | None] = mapped_column(Integer)
    visits: Mapped[int | None] = mapped_column(Integer)
    working_days_used: Mapped[int | None] = mapped_column(Integer)
    overdue: Mapped[bool] = mapped_column(Boolean, default=False)
    supplemented: Mapped[bool] = mapped_column(Boolean, default=False)
    # Materials fetched by the government and uploaded by the applicant, from the most final
    # event that counts them (materials_rank: 1 submitted, 2 started, 3 completed/rejected).
    materials_fetched: Mapped[int | None] = mapped_column(Integer)
    materials_uploaded: Mapped[int | None] = mapped_column(Integer)
    materials_rank: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    contribution: Mapped[Contribution] = mapped_column(JSON, default=dict)


class ReviewFact(Base):
    """A review as evaluation's own review events describe it (the highest revision wins)."""

    __tablename__ = "evaluation_review_fact"

    review_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    revision: Mapped[int] = mapped_column(Integer)
    state: Mapped[dict[str, Any]] = mapped_column(JSON)
    contribution: Mapped[Contribution] = mapped_column(JSON, default=dict)


class CaseFact(Base):
    """A rectification case as its events describe it (the highest revision wins)."""

    __tablename__ = "evaluation_case_fact"

    case_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    revision: Mapped[int] = mapped_column(Integer)
    state: Mapped[dict[str, Any]] = mapped_column(JSON)
    contribution: Mapped[Contribution] = mapped_column(JSON, default=dict)


class ItemVersionCopy(Base):
    """A published service-item version, as far as indicators need it."""

    __tablename__ = "evaluation_item_version"

    item_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    owner_org_id: Mapped[str] = mapped_column(String(64), index=True)
    region_code: Mapped[str | None] = mapped_column(String(6))
    legal_limit_days: Mapped[int | None] = mapped_column(Integer)
    promised_limit_days: Mapped[int | None] = mapped_column(Integer)
    max_visits: Mapped[int | None] = mapped_column(Integer)


class BundleVersionCopy(Base):
    """A published one-thing bundle version (一件事) and the item versions it is made of."""

    __tablename__ = "evaluation_bundle_version"

    bundle_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    owner_org_id: Mapped[str | None] = mapped_column(String(64))
    items: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)


class OrganisationCopy(Base):
    """An organisation registered with identity: its name and region, for roll-ups and labels."""

    __tablename__ = "evaluation_organisation"

    org_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str | None] = mapped_column(String(32))
    name: Mapped[str | None] = mapped_column(String(200))
    region_code: Mapped[str | None] = mapped_column(String(6), index=True)
    status: Mapped[str | None] = mapped_column(String(32))


class ExchangeSeen(Base):
    """Data-exchange events already counted: an access (by its ledger position when the event
    names it, else by event id) or an import counts once even past the inbox's retention."""

    __tablename__ = "evaluation_exchange_seen"

    key: Mapped[str] = mapped_column(String(96), primary_key=True)
