"""Live progress: who may follow what, and the stream of one connection."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import datetime
from typing import TypeVar

from sse_starlette import ServerSentEvent

from libs.common.auth import Principal, Role
from libs.common.database import Database
from libs.common.errors import Forbidden, NotFound
from services.workflow.applications.models import HistoryEntry
from services.workflow.applications.schemas import HistoryStep
from services.workflow.ids import utcnow
from services.workflow.live import repository as live_repository
from services.workflow.live.hub import HistoryHub
from services.workflow.live.repository import StreamScope

OFFICER_ROLES = (Role.OFFICER, Role.DEPT_ADMIN)
T = TypeVar("T")


async def application_scope(
    database: Database, *, principal: Principal, application_id: str
) -> StreamScope:
    """The stream of one application, for its applicant, their enterprise's agents, the
    departments with a task on it and platform admins; 404 for anyone else."""
    async with database.sessionmaker() as session:
        application = await live_repository.get_application(session, application_id=application_id)
        allowed = application is not None and (
            principal.sub == application.applicant_id
            or principal.has_role(Role.PLATFORM_ADMIN)
            or (
                principal.org is not None
                and principal.has_role(Role.ENTERPRISE_AGENT)
                and principal.org == application.applicant_org_id
            )
            or (
                principal.org is not None
                and any(principal.has_role(r) for r in OFFICER_ROLES)
                and (
                    principal.org == application.owner_org_id
                    or await live_repository.has_task_for(
                        session, application_id=application_id, org_id=principal.org
                    )
                )
            )
        )
    if not allowed:
        # The same answer whether it does not exist or is someone else's.
        raise NotFound(f"No application {application_id}.")
    return StreamScope(application_id=application_id)


def applicant_scope(principal: Principal) -> StreamScope:
    """The stream of every application the caller submitted."""
    return StreamScope(applicant_id=principal.sub)


def inbox_scope(principal: Principal) -> StreamScope:
    """The stream of the caller's department: the steps of its tasks."""
    if not any(principal.has_role(r) for r in OFFICER_ROLES) or principal.org is None:
        raise Forbidden("Only a department's officers follow its inbox.")
    return StreamScope(department_org_id=principal.org)


def to_event(entry: HistoryEntry) -> ServerSentEvent:
    """One history entry as a server-sent event: ``id`` is the entry's, ``data`` its JSON."""
    step = HistoryStep.model_validate(entry, from_attributes=True)
    data = {"application_id": entry.application_id, **step.model_dump(mode="json")}
    return ServerSentEvent(data=json.dumps(data, ensure_ascii=False), id=str(entry.id))


async def stream(
    database: Database,
    hub: HistoryHub,
    *,
    scope: StreamScope,
    last_event_id: int | None,
    replay_limit: int,
    retry_ms: int,
) -> AsyncIterator[ServerSentEvent]:
    """What was missed after ``last_event_id`` (from the database), then live entries."""
    subscriber = hub.subscribe(scope.matches)  # first, so nothing falls between replay and live
    try:
        yield ServerSentEvent(comment="pingtai live progress", retry=retry_ms)
        replayed: set[int] = set()
        if last_event_id is not None:
            async with database.sessionmaker() as session:
                missed = await live_repository.replay(
                    session, scope=scope, after=last_event_id, limit=replay_limit + 1
                )
            if len(missed) > replay_limit:
                missed = missed[1:]
                notice = {"replayed_from": missed[0].id, "reason": "too many missed entries"}
                yield ServerSentEvent(data=json.dumps(notice), event="truncated")
            for entry in missed:
                replayed.add(entry.id)
                yield to_event(entry)
        while True:
            live = await subscriber.queue.get()
            if live is None:
                return
            if live.id not in replayed:
                yield to_event(live)
    finally:
        hub.unsubscribe(subscriber)


async def until(events: AsyncIterator[T], deadline: datetime) -> AsyncIterator[T]:
    """``events`` until ``deadline`` (the access token's expiry): then the stream ends, and the
    client reconnects with a fresh token, checked again (roles, revocation, scope)."""
    iterator = aiter(events)
    try:
        while (left := (deadline - utcnow()).total_seconds()) > 0:
            try:
                yield await asyncio.wait_for(anext(iterator), timeout=left)
            except (StopAsyncIteration, TimeoutError):
                return
    finally:
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None:
            await aclose()
