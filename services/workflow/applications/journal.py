"""Each step of an application, written twice in its transaction: a history entry and events."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.auth import Principal
from libs.common.events import EventData, new_event, outbox
from services.workflow import bulk, sla
from services.workflow.applications.models import Application, ApplicationMaterial, HistoryEntry
from services.workflow.ids import as_utc
from services.workflow.tasks import repository as tasks_repository
from services.workflow.tasks.models import Branch, Task

SYSTEM = "system"


def actor_role(principal: Principal | None, application: Application) -> str:
    """How the history names the actor: applicant, officer, dept_admin, or system."""
    if principal is None:
        return SYSTEM
    if principal.sub == application.applicant_id:
        return "applicant"
    for role in ("dept_admin", "officer", "platform_admin"):
        if role in principal.roles:
            return role
    return "user"


def event_base(application: Application) -> dict[str, Any]:
    """The fields every application event carries."""
    items = application.items or []
    return {
        "application_id": application.id,
        "applicant_id": application.applicant_id,
        "applicant_org_id": application.applicant_org_id,
        "service_code": application.service_code,
        "owner_org_id": application.owner_org_id,
        "status": application.status,
        "kind": application.kind,
        "item_id": application.item_id,
        "item_version": application.item_version,
        "bundle_id": application.bundle_id,
        "bundle_version": application.bundle_version,
        "item_versions": [{"item_id": i["item_id"], "version": i["version"]} for i in items],
        "department_org_ids": sorted({i["owner_org_id"] for i in items}),
        "channel": application.channel,
        "region_code": application.region_code,
        "legal_time_limit_days": application.legal_time_limit_days,
        "promised_time_limit_days": application.promised_time_limit_days,
        "max_visits": application.max_visits,
        "submitted_at": application.submitted_at,
        "due_at": application.due_at,
        "supplement_rounds": application.supplement_rounds,
    }


def decision_facts(
    application: Application, *, at: datetime, materials: dict[str, int]
) -> dict[str, Any]:
    """What a final event adds: time used by the calendar, visits, overdue, material counts.

    ``materials`` counts the application's materials by state.
    """
    submitted = application.submitted_at
    return {
        "decided_at": at,
        "working_days_used": sla.working_days_between(as_utc(submitted), at)
        if submitted is not None
        else None,
        # The result is delivered electronically: a visit only where the submission was one.
        "visits": 1 if application.channel == "counter" else 0,
        "overdue": application.due_at is not None and as_utc(application.due_at) < at,
        "materials_total": sum(materials.values()),
        "materials_fetched": materials.get("fetched", 0),
        "materials_uploaded": materials.get("uploaded", 0),
    }


def entry(
    application: Application,
    *,
    action: str,
    at: datetime,
    principal: Principal | None,
    from_status: str | None = None,
    to_status: str | None = None,
    task_id: str | None = None,
    department_org_id: str | None = None,
    comment: str | None = None,
    data: dict[str, Any] | None = None,
) -> HistoryEntry:
    """A history entry of ``application`` (not yet added)."""
    return bulk.new_row(
        HistoryEntry,
        application_id=application.id,
        applicant_id=application.applicant_id,
        task_id=task_id,
        department_org_id=department_org_id,
        actor_id=principal.sub if principal is not None else SYSTEM,
        actor_role=actor_role(principal, application),
        at=at,
        action=action,
        comment=comment,
        from_status=from_status,
        to_status=to_status,
        data=data,
    )


@dataclass
class Changes:
    """What one step wrote, in memory until ``write``: history, events, new rows, clocks."""

    entries: list[HistoryEntry] = field(default_factory=list)
    events: list[EventData] = field(default_factory=list)
    materials: list[ApplicationMaterial] = field(default_factory=list)
    branches: list[Branch] = field(default_factory=list)
    tasks: list[Task] = field(default_factory=list)
    clocks_started: list[sla.ClockStart] = field(default_factory=list)
    clocks_stopped: list[tuple[str, str]] = field(default_factory=list)

    def merge(self, other: Changes) -> None:
        """Add what another step wrote after this one's."""
        self.entries += other.entries
        self.events += other.events
        self.materials += other.materials
        self.branches += other.branches
        self.tasks += other.tasks
        self.clocks_started += other.clocks_started
        self.clocks_stopped += other.clocks_stopped

    def stop_clock(self, kind: str, ref_id: str) -> None:
        """Stop a clock: one started in this step is simply not started."""
        started = len(self.clocks_started)
        self.clocks_started = [
            c for c in self.clocks_started if (c.kind, c.ref_id) != (kind, ref_id)
        ]
        if len(self.clocks_started) == started:
            self.clocks_stopped.append((kind, ref_id))


async def write(
    session: AsyncSession,
    application: Application,
    changes: Changes,
    *,
    branches: Sequence[Branch] = (),
) -> None:
    """Write a step: new rows, clocks, history entries (numbered) and events, with prebuilt
    statements in two greenlet trips (the rows, then the outbox's events).

    ``branches``: loaded branches whose changes (marking, status, end) are written too; the
    changed ones leave the session then (its flush would visit each again, to write nothing).
    The application itself is the caller's: a new one inserted before, a loaded one flushed by
    the session.
    """

    def write_rows(connection: Connection) -> list[Branch]:
        written = tasks_repository.write_branches(connection, branches)
        bulk.insert_new(connection, changes.materials)
        bulk.insert_new(connection, changes.branches)
        bulk.insert_new(connection, changes.tasks)
        sla.write_clocks(connection, started=changes.clocks_started, stopped=changes.clocks_stopped)
        bulk.insert_numbered(connection, changes.entries)
        return written

    for branch in await bulk.run(session, write_rows):
        session.expunge(branch)
    await outbox.add_all(session, [new_event(e, subject=application.id) for e in changes.events])
