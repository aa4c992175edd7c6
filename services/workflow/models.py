"""The workflow part's whole schema: the base and every concept's tables."""

from __future__ import annotations

from services.workflow.applications.models import Application, ApplicationMaterial, HistoryEntry
from services.workflow.base import Base, event_tables
from services.workflow.catalogue.models import OfferingVersion
from services.workflow.sla.models import CalendarYear, SlaClock  # noqa: F401
from services.workflow.tasks.models import Branch, Task
from services.workflow.webhooks.models import WebhookDelivery, WebhookSubscription  # noqa: F401

__all__ = [
    "Application",
    "ApplicationMaterial",
    "Base",
    "Branch",
    "HistoryEntry",
    "OfferingVersion",
    "Task",
    "event_tables",
]
