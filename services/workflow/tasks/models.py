"""The process engine's state: one branch per item of an application, and department tasks."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from services.workflow.base import Base
from services.workflow.ids import new_id, utcnow

BRANCH_STATUSES = ("active", "approved", "rejected", "cancelled")


class Branch(Base):
    """One item's process instance inside an application (a bundle has one per item).

    ``marking`` lists the template states the branch is in (several after a fork).
    """

    __tablename__ = "application_branches"

    application_id: Mapped[str] = mapped_column(
        ForeignKey("applications.id", ondelete="CASCADE"), primary_key=True
    )
    item_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    item_version: Mapped[int] = mapped_column(Integer)
    item_code: Mapped[str] = mapped_column(String(64))
    item_name: Mapped[str] = mapped_column(String(200))
    department_org_id: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="active")
    marking: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


TASK_STATES = (
    "waiting",  # created behind the supplement: opens when the applicant answers
    "open",  # in the department's inbox, unclaimed
    "claimed",  # an officer took it
    "completed",  # decided
    "cancelled",  # no longer possible (another decision, a withdrawal, a rejection elsewhere)
)
ACTIVE_TASK_STATES = ("waiting", "open", "claimed")


class Task(Base):
    """A step a department's officers may take: the template's actions enabled in a branch.

    ``decisions`` are the keys of the actions the officer may choose (those sharing the same
    ``from_states``, role and department). ``version`` increments on every change; claims and
    decisions are conditional updates on (state, version), so two concurrent ones cannot both win.
    """

    __tablename__ = "tasks"
    __table_args__ = (
        Index("ix_tasks_inbox", "department_org_id", "state", "due_at", "id"),
        Index("ix_tasks_application_id", "application_id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    application_id: Mapped[str] = mapped_column(ForeignKey("applications.id", ondelete="CASCADE"))
    # The branch: the item whose template this step belongs to.
    item_id: Mapped[str] = mapped_column(String(32))
    item_code: Mapped[str] = mapped_column(String(64))
    step: Mapped[str] = mapped_column(String(200))  # the from_states, joined by "+"
    name: Mapped[str] = mapped_column(String(200))
    decisions: Mapped[list[str]] = mapped_column(JSON)
    department_org_id: Mapped[str] = mapped_column(String(32))
    role: Mapped[str] = mapped_column(String(16))  # officer | dept_admin
    state: Mapped[str] = mapped_column(String(16))
    sla_days: Mapped[int] = mapped_column(Integer)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    opened_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    completed_by: Mapped[str | None] = mapped_column(String(64))
    decision: Mapped[str | None] = mapped_column(String(64))
    comment: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, default=1)
