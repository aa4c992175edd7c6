"""The fan-out: workflow's own events, consumed from its stream, become delivery rows.

A durable consumer (one replica gets each event) on ``pingtai.workflow.>``; its handler runs in
the transaction that records the event in the inbox, so each event is fanned out once even when
NATS delivers it again.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.events import CloudEvent, Subscription
from services.workflow.webhooks import service as webhooks_service
from services.workflow.webhooks.deliverer import wake_after_commit


async def record_deliveries(session: AsyncSession, event: CloudEvent) -> None:
    """Record a delivery of ``event`` for each subscription that wants it."""
    if await webhooks_service.fan_out(session, event):
        wake_after_commit(session)


webhook_fan_out = Subscription(
    durable="workflow-webhooks",
    subjects=["pingtai.workflow.>"],
    handler=record_deliveries,
)
