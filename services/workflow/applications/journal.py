"""Each step of an application, written twice in its transaction: a history entry and events."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.auth import Principal
from libs.common.events import EventData, new_event, outbox
from services.workflow.applications.models import Application, HistoryEntry

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
    return {
        "application_id": application.id,
        "applicant_id": application.applicant_id,
        "applicant_org_id": application.applicant_org_id,
        "service_code": application.service_code,
        "owner_org_id": application.owner_org_id,
        "status": application.status,
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
    return HistoryEntry(
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


async def write(
    session: AsyncSession,
    application: Application,
    *,
    entries: Sequence[HistoryEntry],
    events: Sequence[EventData],
) -> None:
    """Add history entries and record events (ordered by the application) in one go."""
    session.add_all(entries)
    await outbox.add_all(session, [new_event(e, subject=application.id) for e in events])
