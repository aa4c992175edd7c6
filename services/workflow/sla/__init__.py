"""SLA clocks (办理时限) in working days, their reminders and overdue events.

The interface the rest of workflow calls, in its own transaction:

- ``due_after(start, working_days)``: the deadline, the end of the Nth working day after the
  day of ``start`` (Asia/Shanghai, the official holiday calendar);
- ``await start_clock(session, kind=..., ref_id=..., application_id=..., department_org_id=...,
  due_at=...)`` when a task or application starts (again: a new round);
- ``await stop_clock(session, kind=..., ref_id=...)`` when it finishes.

``kind`` is ``"task"`` or ``"application"``. See docs/workflow-sla-and-live.md.
"""

from services.workflow.sla.calendar import due_after
from services.workflow.sla.service import start_clock, stop_clock

__all__ = ["due_after", "start_clock", "stop_clock"]
