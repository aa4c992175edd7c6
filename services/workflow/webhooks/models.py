"""Webhook subscriptions and their deliveries (the delivery log)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from services.workflow.base import Base
from services.workflow.ids import new_id, utcnow


class WebhookSubscription(Base):
    """An organisation's endpoint and the event types it wants; the secret is stored sealed."""

    __tablename__ = "workflow_webhooks"
    __table_args__ = (Index("ix_workflow_webhooks_owner", "owner_org_id", "created_at", "id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    owner_org_id: Mapped[str] = mapped_column(String(64))
    url: Mapped[str] = mapped_column(String(2048))
    event_types: Mapped[list[str]] = mapped_column(JSON)
    description: Mapped[str | None] = mapped_column(String(500))
    # The signing secret, encrypted with a key derived from the part's secret key (AES-GCM).
    sealed_secret: Mapped[str] = mapped_column(String(200))
    created_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class WebhookDelivery(Base):
    """One event for one subscription: its payload, where it stands and every attempt.

    ``id`` is the ``webhook-id`` header: the same on every attempt, so a receiver can drop a
    repeat. ``version`` grows on every claim and result, so one deliverer at a time owns it.
    """

    __tablename__ = "workflow_webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("subscription_id", "event_id"),
        Index("ix_workflow_webhook_deliveries_due", "status", "next_attempt_at"),
        Index("ix_workflow_webhook_deliveries_log", "subscription_id", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    subscription_id: Mapped[str] = mapped_column(
        ForeignKey("workflow_webhooks.id", ondelete="CASCADE")
    )
    event_id: Mapped[str] = mapped_column(String(64))
    event_type: Mapped[str] = mapped_column(String(255))
    payload: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # delivered | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    attempt_log: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    version: Mapped[int] = mapped_column(Integer, default=1)
