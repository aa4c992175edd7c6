"""The events rectification cases publish: whole snapshots with a revision, no free text."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from libs.common.events import EventData


class CaseSnapshot(EventData):
    """What every case event says about the case as it now stands."""

    case_id: str
    revision: int
    review_id: str
    application_id: str
    department_id: str
    item_ids: list[str]
    region_code: str | None
    status: str
    opened_at: datetime
    deadline: datetime
    replied_at: datetime | None
    confirmed_at: datetime | None
    reopen_count: int
    overdue: bool


class CaseOpened(CaseSnapshot):
    """A bad review (overall <= 2) opened a case for the responsible department."""

    event_type: ClassVar[str] = "pingtai.evaluation.case.opened"


class CaseReplied(CaseSnapshot):
    """The department replied and recorded what it fixed."""

    event_type: ClassVar[str] = "pingtai.evaluation.case.replied"


class CaseConfirmed(CaseSnapshot):
    """The applicant accepted the fix: the case is rectified."""

    event_type: ClassVar[str] = "pingtai.evaluation.case.confirmed"


class CaseReopened(CaseSnapshot):
    """The applicant did not accept the fix: the case is open again, with a new deadline."""

    event_type: ClassVar[str] = "pingtai.evaluation.case.reopened"


class CaseOverdue(CaseSnapshot):
    """A case's deadline passed without a reply (raised once per deadline, across replicas)."""

    event_type: ClassVar[str] = "pingtai.evaluation.case.overdue"
