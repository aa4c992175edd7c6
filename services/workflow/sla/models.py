"""SLA clocks (时限) and the calendar years an admin replaced."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from services.workflow.base import Base
from services.workflow.ids import new_id


class SlaClock(Base):
    """The deadline of one task or application, and which of its events were raised.

    One row per (kind, ref_id): starting the clock again (a new round) resets it. The timer
    claims a due reminder or overdue by setting its ``*_raised_at`` with a conditional UPDATE
    in the transaction that writes the event to the outbox, so each is raised once.
    """

    __tablename__ = "workflow_sla_clocks"
    __table_args__ = (
        UniqueConstraint("kind", "ref_id"),
        Index("ix_workflow_sla_clocks_overdue_due", "stopped_at", "overdue_raised_at", "due_at"),
        Index(
            "ix_workflow_sla_clocks_reminder_due", "stopped_at", "reminder_raised_at", "remind_at"
        ),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(16))
    ref_id: Mapped[str] = mapped_column(String(64))
    application_id: Mapped[str] = mapped_column(String(64), index=True)
    department_org_id: Mapped[str | None] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    remind_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    stopped_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reminder_raised_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    overdue_raised_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Bumped on every restart, so an event names the round it belongs to.
    round: Mapped[int] = mapped_column(Integer, default=1)


class CalendarYear(Base):
    """A year of the working-day calendar as a platform admin set it (overrides the packaged)."""

    __tablename__ = "workflow_calendar_years"

    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_by: Mapped[str] = mapped_column(String(255))
