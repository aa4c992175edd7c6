"""SLA clocks (办理时限) in working days, their reminders and overdue events.

The interface the rest of workflow calls, in its own transaction:

- ``due_after(start, working_days)``: the deadline, the end of the Nth working day after the
  day of ``start`` (Asia/Shanghai, the official holiday calendar);
- ``await start_clock(session, kind=..., ref_id=..., application_id=..., department_org_id=...,
  due_at=...)`` when a task or application starts (again: a new round);
- ``await stop_clock(session, kind=..., ref_id=...)`` when it finishes;
- ``await start_clocks(session, [ClockStart(...), ...])`` and
  ``await stop_clocks(session, [(kind, ref_id), ...])``: several at once, one statement each;
- ``write_clocks(connection, started=..., stopped=...)``: both, inside a step's direct writes
  (``bulk.run``).

``kind`` is ``"task"`` or ``"application"``. See docs/workflow-sla-and-live.md.
"""

from services.workflow.sla.calendar import due_after, working_days_between
from services.workflow.sla.service import (
    ClockStart,
    start_clock,
    start_clocks,
    stop_clock,
    stop_clocks,
    write_clocks,
)

__all__ = [
    "ClockStart",
    "due_after",
    "start_clock",
    "start_clocks",
    "stop_clock",
    "stop_clocks",
    "working_days_between",
    "write_clocks",
]
