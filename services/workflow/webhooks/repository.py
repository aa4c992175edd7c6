"""Every query of webhook subscriptions and deliveries."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.database import dialect_insert
from services.workflow.applications.models import Application
from services.workflow.tasks.models import Task
from services.workflow.webhooks.models import WebhookDelivery, WebhookSubscription


async def count_for_org(session: AsyncSession, *, org_id: str) -> int:
    """How many subscriptions an organisation has."""
    query = select(func.count()).where(WebhookSubscription.owner_org_id == org_id)
    return int((await session.execute(query)).scalar_one())


async def list_for_org(
    session: AsyncSession, *, org_id: str | None, after: str | None, limit: int
) -> list[WebhookSubscription]:
    """An organisation's subscriptions (every one for ``org_id=None``), by id."""
    query = select(WebhookSubscription)
    if org_id is not None:
        query = query.where(WebhookSubscription.owner_org_id == org_id)
    if after is not None:
        query = query.where(WebhookSubscription.id > after)
    query = query.order_by(WebhookSubscription.id).limit(limit)
    return list((await session.execute(query)).scalars())


async def get(session: AsyncSession, *, webhook_id: str) -> WebhookSubscription | None:
    """One subscription."""
    return await session.get(WebhookSubscription, webhook_id)


async def subscriptions_of(
    session: AsyncSession, *, org_ids: Sequence[str]
) -> list[WebhookSubscription]:
    """Every subscription owned by one of ``org_ids``."""
    if not org_ids:
        return []
    query = select(WebhookSubscription).where(WebhookSubscription.owner_org_id.in_(org_ids))
    return list((await session.execute(query)).scalars())


async def application_orgs(
    session: AsyncSession, *, application_id: str
) -> tuple[str | None, str | None]:
    """The applicant's enterprise and the owning department of an application."""
    row = (
        await session.execute(
            select(Application.applicant_org_id, Application.owner_org_id).where(
                Application.id == application_id
            )
        )
    ).first()
    return (row[0], row[1]) if row is not None else (None, None)


async def task_department(session: AsyncSession, *, task_id: str) -> str | None:
    """The department of a task."""
    query = select(Task.department_org_id).where(Task.id == task_id)
    return (await session.execute(query)).scalar_one_or_none()


async def task_departments(session: AsyncSession, *, application_id: str) -> list[str]:
    """Every department with a task on an application."""
    query = select(Task.department_org_id).where(Task.application_id == application_id).distinct()
    return list((await session.execute(query)).scalars())


async def add_deliveries(session: AsyncSession, *, rows: Sequence[dict[str, Any]]) -> None:
    """Record deliveries; one already recorded for the same subscription and event is kept."""
    if not rows:
        return
    insert = dialect_insert(session.bind.dialect.name)
    await session.execute(
        insert(WebhookDelivery)
        .values(list(rows))
        .on_conflict_do_nothing(index_elements=["subscription_id", "event_id"])
    )


async def due_deliveries(
    session: AsyncSession, *, now: datetime, limit: int, skip_locked: bool
) -> list[WebhookDelivery]:
    """Pending deliveries whose next attempt is due, oldest due first."""
    query = (
        select(WebhookDelivery)
        .where(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now)
        .order_by(WebhookDelivery.next_attempt_at)
        .limit(limit)
    )
    if skip_locked:
        query = query.with_for_update(skip_locked=True)
    return list((await session.execute(query)).scalars())


async def update_if_version(
    session: AsyncSession, *, delivery_id: str, version: int, values: dict[str, Any]
) -> bool:
    """Change a delivery only if nobody changed it since ``version``; True if this call did."""
    result: CursorResult[Any] = await session.execute(  # type: ignore[assignment]
        update(WebhookDelivery)
        .where(WebhookDelivery.id == delivery_id, WebhookDelivery.version == version)
        .values({**values, "version": version + 1})
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


async def deliveries_of(
    session: AsyncSession,
    *,
    subscription_id: str,
    status: str | None,
    before: tuple[datetime, str] | None,
    limit: int,
) -> list[WebhookDelivery]:
    """A subscription's deliveries, newest first."""
    query = select(WebhookDelivery).where(WebhookDelivery.subscription_id == subscription_id)
    if status is not None:
        query = query.where(WebhookDelivery.status == status)
    if before is not None:
        created, last_id = before
        query = query.where(
            or_(
                WebhookDelivery.created_at < created,
                and_(WebhookDelivery.created_at == created, WebhookDelivery.id < last_id),
            )
        )
    query = query.order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc())
    return list((await session.execute(query.limit(limit))).scalars())
