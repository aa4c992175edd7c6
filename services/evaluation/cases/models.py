"""Rectification cases (差评整改): a bad review's case for the responsible department."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from services.evaluation.base import Base
from services.evaluation.clock import new_id, utcnow

# open -> replied (the department replied and recorded the fix) -> confirmed by the applicant,
# or reopened by the applicant (back to open, with a new deadline).
CASE_STATUSES = ("open", "replied", "confirmed")


class Case(Base):
    """A rectification case; ``revision`` counts changes (events carry it)."""

    __tablename__ = "evaluation_case"
    __table_args__ = (
        Index("ix_evaluation_case_department", "department_id", "opened_at", "id"),
        Index("ix_evaluation_case_applicant", "applicant_id", "opened_at", "id"),
        Index("ix_evaluation_case_due", "status", "deadline"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    review_id: Mapped[str] = mapped_column(ForeignKey("evaluation_review.id", ondelete="CASCADE"))
    application_id: Mapped[str] = mapped_column(String(64))
    applicant_id: Mapped[str] = mapped_column(String(64))
    applicant_org_id: Mapped[str | None] = mapped_column(String(64))
    department_id: Mapped[str] = mapped_column(String(64))
    item_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    region_code: Mapped[str | None] = mapped_column(String(6))
    status: Mapped[str] = mapped_column(String(16), default="open")
    opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    deadline: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    reply: Mapped[str | None] = mapped_column(Text)
    fix: Mapped[str | None] = mapped_column(Text)
    replied_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    replied_by: Mapped[str | None] = mapped_column(String(64))
    confirmed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reopen_count: Mapped[int] = mapped_column(Integer, default=0)
    reopen_reason: Mapped[str | None] = mapped_column(Text)
    # Set by the timer that raised this deadline's overdue event; cleared by a new deadline.
    overdue_raised_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Whether any deadline of the case passed without a reply (for the indicators).
    ever_overdue: Mapped[bool] = mapped_column(default=False)
    revision: Mapped[int] = mapped_column(Integer, default=1)
