"""The events tasks publish (subject: the application id, so one application's stay in order)."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from libs.common.events import EventData


class TaskEvent(EventData):
    """What every task event carries."""

    task_id: str
    application_id: str
    item_id: str
    department_org_id: str
    role: str
    step: str


class TaskCreated(TaskEvent):
    """A step is possible: the task is in its department's inbox (or waits for a supplement)."""

    event_type: ClassVar[str] = "pingtai.workflow.task.created"

    state: str
    decisions: list[str]
    due_at: datetime | None


class TaskOpened(TaskEvent):
    """A task waiting behind the supplement is now in its department's inbox."""

    event_type: ClassVar[str] = "pingtai.workflow.task.opened"

    due_at: datetime | None


class TaskClaimed(TaskEvent):
    event_type: ClassVar[str] = "pingtai.workflow.task.claimed"

    claimed_by: str


class TaskUnclaimed(TaskEvent):
    event_type: ClassVar[str] = "pingtai.workflow.task.unclaimed"

    unclaimed_by: str


class TaskCompleted(TaskEvent):
    """An officer decided; ``overdue`` says whether after the deadline."""

    event_type: ClassVar[str] = "pingtai.workflow.task.completed"

    decision: str
    completed_by: str
    comment: str | None
    completed_at: datetime
    overdue: bool


class TaskCancelled(TaskEvent):
    """The step is no longer possible (another branch refused, the applicant withdrew...)."""

    event_type: ClassVar[str] = "pingtai.workflow.task.cancelled"

    reason: str
