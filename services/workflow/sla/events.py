"""The events the SLA timer raises (``pingtai.workflow.sla.*``)."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal

from libs.common.events import EventData

ClockKind = Literal["task", "application"]


class SlaClockEvent(EventData):
    """What every SLA event says about its clock."""

    clock_id: str
    kind: ClockKind
    ref_id: str
    application_id: str
    department_org_id: str | None
    round: int
    started_at: datetime
    due_at: datetime


class SlaReminder(SlaClockEvent):
    """A task's or application's deadline is near (``sla_reminder_working_days`` before it)."""

    event_type: ClassVar[str] = "pingtai.workflow.sla.reminder"

    remind_at: datetime


class SlaOverdue(SlaClockEvent):
    """A task's or application's deadline passed while its clock was running (超期)."""

    event_type: ClassVar[str] = "pingtai.workflow.sla.overdue"
