"""Webhook subscriptions (owned by the caller's organisation) and the fan-out of events."""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.auth import Principal, Role
from libs.common.errors import Conflict, Forbidden, InvalidInput, NotFound
from libs.common.events import CloudEvent
from services.workflow.ids import as_utc, new_id, utcnow
from services.workflow.webhooks import repository as webhooks_repository
from services.workflow.webhooks import secrets as webhook_secrets
from services.workflow.webhooks import urls as webhook_urls
from services.workflow.webhooks.models import WebhookDelivery, WebhookSubscription
from services.workflow.webhooks.schemas import Delivery, Webhook, WebhookCreate, WebhookCreated

SUBSCRIBER_ROLES = (Role.DEPT_ADMIN, Role.ENTERPRISE_AGENT, Role.PLATFORM_ADMIN)


def _owner_org(principal: Principal) -> str:
    if principal.org is None or not _subscribes(principal):
        raise Forbidden(
            "Webhooks belong to an organisation: a department admin, an enterprise agent or a "
            "platform admin acting for one subscribes."
        )
    return principal.org


def _subscribes(principal: Principal) -> bool:
    return any(principal.has_role(r) for r in SUBSCRIBER_ROLES)


def to_view(subscription: WebhookSubscription) -> Webhook:
    """The API view of a subscription."""
    return Webhook.model_validate(subscription, from_attributes=True)


async def create(
    session: AsyncSession,
    *,
    principal: Principal,
    draft: WebhookCreate,
    part_secret: str,
    check_addresses: bool,
    max_per_org: int,
) -> WebhookCreated:
    """Subscribe the caller's organisation; the secret is in the answer, and only there."""
    org_id = _owner_org(principal)
    try:
        webhook_urls.check_form(draft.url)
        if check_addresses:
            await webhook_urls.check_destination(draft.url)
    except webhook_urls.RefusedUrl as refused:
        raise InvalidInput.for_field("url", f"The URL {refused}.") from None
    if await webhooks_repository.count_for_org(session, org_id=org_id) >= max_per_org:
        raise Conflict(f"The organisation already has {max_per_org} webhooks; delete one first.")
    secret = webhook_secrets.new_secret()
    subscription = WebhookSubscription(
        owner_org_id=org_id,
        url=draft.url,
        event_types=sorted(set(draft.event_types)),
        description=draft.description,
        sealed_secret=webhook_secrets.seal(secret, part_secret=part_secret),
        created_by=principal.sub,
        created_at=utcnow(),
    )
    session.add(subscription)
    await session.flush()
    return WebhookCreated.model_validate({**to_view(subscription).model_dump(), "secret": secret})


async def read(
    session: AsyncSession, *, principal: Principal, webhook_id: str
) -> WebhookSubscription:
    """A subscription of the caller's organisation (platform admins: any); 404 otherwise.

    Only those who may subscribe read, delete or see the deliveries of a subscription (its
    payloads name applications): an officer or a citizen of the organisation gets a 403.
    """
    if not _subscribes(principal):
        raise Forbidden(
            "Webhooks are managed by a department admin, an enterprise agent or a platform admin."
        )
    subscription = await webhooks_repository.get(session, webhook_id=webhook_id)
    if subscription is None or not principal.acts_for(subscription.owner_org_id):
        raise NotFound(f"No webhook {webhook_id}.")
    return subscription


async def list_own(
    session: AsyncSession, *, principal: Principal, after: str | None, limit: int
) -> list[Webhook]:
    """The caller's organisation's subscriptions."""
    org_id = _owner_org(principal)
    rows = await webhooks_repository.list_for_org(session, org_id=org_id, after=after, limit=limit)
    return [to_view(r) for r in rows]


async def delete(session: AsyncSession, *, principal: Principal, webhook_id: str) -> None:
    """Unsubscribe; pending deliveries go with it."""
    subscription = await read(session, principal=principal, webhook_id=webhook_id)
    await session.delete(subscription)
    await session.flush()


def to_delivery(row: WebhookDelivery) -> Delivery:
    """The API view of a delivery."""
    return Delivery.model_validate(
        {
            "id": row.id,
            "event_id": row.event_id,
            "event_type": row.event_type,
            "status": row.status,
            "attempts": row.attempts,
            "next_attempt_at": row.next_attempt_at if row.status == "pending" else None,
            "created_at": row.created_at,
            "delivered_at": row.delivered_at,
            "attempt_log": row.attempt_log,
            "payload": json.loads(row.payload),
        }
    )


def delivery_cursor(row: WebhookDelivery) -> list[str]:
    """Where the delivery log continues after ``row``."""
    return [as_utc(row.created_at).isoformat(), row.id]


async def deliveries(
    session: AsyncSession,
    *,
    principal: Principal,
    webhook_id: str,
    status: str | None,
    after: tuple[datetime, str] | None,
    limit: int,
) -> list[WebhookDelivery]:
    """The delivery log of a subscription, newest first."""
    subscription = await read(session, principal=principal, webhook_id=webhook_id)
    return await webhooks_repository.deliveries_of(
        session, subscription_id=subscription.id, status=status, before=after, limit=limit
    )


def wants(subscription: WebhookSubscription, event_type: str) -> bool:
    """Whether ``subscription`` asked for events of ``event_type``."""
    for pattern in subscription.event_types:
        if pattern == event_type or (
            pattern.endswith(".*") and event_type.startswith(pattern[:-1])
        ):
            return True
    return False


async def orgs_concerned(session: AsyncSession, event: CloudEvent) -> set[str]:
    """The organisations an event is about.

    A task's event (one naming a task) concerns the task's department and the applicant's
    enterprise; an application's event concerns the applicant's enterprise, the owning
    department and every department with a task on the application.
    """
    data = event.data or {}
    application_id = data.get("application_id")
    task_id = data.get("task_id") or (data.get("ref_id") if data.get("kind") == "task" else None)
    orgs: set[str | None] = set()
    applicant_org, owner_org = (None, None)
    if isinstance(application_id, str):
        applicant_org, owner_org = await webhooks_repository.application_orgs(
            session, application_id=application_id
        )
    orgs.add(applicant_org or data.get("applicant_org_id"))
    if isinstance(task_id, str):
        orgs.add(
            data.get("department_org_id")
            or await webhooks_repository.task_department(session, task_id=task_id)
        )
    else:
        orgs.add(owner_org or data.get("owner_org_id"))
        orgs.add(data.get("department_org_id"))
        if isinstance(application_id, str):
            orgs.update(
                await webhooks_repository.task_departments(session, application_id=application_id)
            )
    return {o for o in orgs if isinstance(o, str) and o}


def payload_of(event: CloudEvent) -> str:
    """What a receiver gets: the Standard Webhooks shape (type, timestamp, data) and the ids."""
    return json.dumps(
        {
            "type": event.type,
            "timestamp": as_utc(event.time).isoformat().replace("+00:00", "Z"),
            "event_id": event.id,
            "subject": event.subject,
            "data": event.data,
        },
        ensure_ascii=False,
        separators=(",", ":"),
    )


async def fan_out(session: AsyncSession, event: CloudEvent) -> int:
    """Record a delivery of ``event`` for every subscription it concerns; returns how many."""
    if not event.type.startswith("pingtai.workflow.") or ".deadletter." in event.type:
        return 0
    orgs = await orgs_concerned(session, event)
    subscriptions = await webhooks_repository.subscriptions_of(session, org_ids=sorted(orgs))
    now = utcnow()
    rows = [
        {
            "id": new_id(),
            "subscription_id": s.id,
            "event_id": event.id,
            "event_type": event.type,
            "payload": payload_of(event),
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "attempt_log": [],
            "created_at": now,
            "version": 1,
        }
        for s in subscriptions
        if wants(s, event.type)
    ]
    await webhooks_repository.add_deliveries(session, rows=rows)
    return len(rows)
