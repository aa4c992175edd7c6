"""The evaluation part's app."""

from __future__ import annotations

from fastapi import FastAPI

from libs.common.app import create_service_app
from libs.common.events import EventBus
from services.evaluation.cases.timer import overdue_timer
from services.evaluation.indicators.consumers import subscriptions
from services.evaluation.router import router
from services.evaluation.settings import EvaluationSettings


def create_app(settings: EvaluationSettings | None = None) -> FastAPI:
    """Build the evaluation app from ``settings`` (read from the environment when omitted)."""
    settings = settings or EvaluationSettings()
    return create_service_app(
        settings,
        title="Pingtai Evaluation",
        description=(
            "Evaluation: citizen reviews (好差评), rectification of bad reviews (差评整改), "
            "indicators computed from the platform's events, and the composite index."
        ),
        routers=[router],
        lifespans=[overdue_timer(settings)],
        events=EventBus(settings, subscriptions=subscriptions(settings)),
    )
