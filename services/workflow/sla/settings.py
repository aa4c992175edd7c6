"""Settings of the SLA timer, mixed into ``WorkflowSettings`` (``PINGTAI_WORKFLOW_SLA_*``)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class SlaSettings(BaseModel):
    """How often the SLA timer looks for due clocks, and when it reminds."""

    # The timer's tick; a deadline is raised at most this long after it passed.
    sla_timer_poll_s: float = Field(default=5.0, gt=0, le=3600)
    # Clocks claimed per transaction.
    sla_timer_batch: int = Field(default=100, ge=1, le=5000)
    # A reminder this many working days before the deadline (0: no reminders).
    sla_reminder_working_days: int = Field(default=1, ge=0, le=30)
    # Whether this replica runs the timer at all (every replica may; each clock fires once).
    sla_timer_enabled: bool = True
