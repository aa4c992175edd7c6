"""The workflow part's app."""

from __future__ import annotations

from fastapi import FastAPI

from libs.common.app import create_service_app
from libs.common.events import EventBus
from services.workflow.applications.background import applications_lifespan
from services.workflow.catalogue.service import catalogue_subscription
from services.workflow.router import router
from services.workflow.settings import WorkflowSettings
from services.workflow.sla.background import sla_live_and_webhooks
from services.workflow.webhooks.consumers import webhook_fan_out


def create_app(settings: WorkflowSettings | None = None) -> FastAPI:
    """Build the workflow app from ``settings`` (read from the environment when omitted)."""
    settings = settings or WorkflowSettings()
    return create_service_app(
        settings,
        title="Pingtai Workflow",
        description=(
            "Workflow: applications (办件) from submission to result, parallel "
            "department tasks, SLA clocks."
        ),
        routers=[router],
        lifespans=[applications_lifespan, sla_live_and_webhooks],
        events=EventBus(settings, subscriptions=[catalogue_subscription, webhook_fan_out]),
    )
