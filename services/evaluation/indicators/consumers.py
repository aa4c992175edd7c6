"""The indicator projection's durable consumers: one per stream it reads."""

from __future__ import annotations

from libs.common.events import Subscription
from services.evaluation.facts.events import (
    CATALOG_SUBJECTS,
    EXCHANGE_SUBJECTS,
    IDENTITY_SUBJECTS,
    WORKFLOW_SUBJECTS,
)
from services.evaluation.indicators.contributions import Rules
from services.evaluation.indicators.projection import Projection
from services.evaluation.settings import EvaluationSettings

OWN_SUBJECTS = ["pingtai.evaluation.review.*", "pingtai.evaluation.case.*"]

# (durable consumer name, subjects), in the order a replay reads the streams.
STREAMS: tuple[tuple[str, list[str]], ...] = (
    ("evaluation-indicators-identity", IDENTITY_SUBJECTS),
    ("evaluation-indicators-catalog", CATALOG_SUBJECTS),
    ("evaluation-indicators-workflow", WORKFLOW_SUBJECTS),
    ("evaluation-indicators-exchange", EXCHANGE_SUBJECTS),
    ("evaluation-indicators-evaluation", OWN_SUBJECTS),
)


def rules_of(settings: EvaluationSettings) -> Rules:
    """The projection's rules from the part's settings."""
    return Rules(timezone=settings.timezone, online_channels=frozenset(settings.online_channels))


def subscriptions(settings: EvaluationSettings) -> list[Subscription]:
    """Every consumer of the indicator projection."""
    projection = Projection(rules_of(settings))
    return [
        Subscription(durable=durable, subjects=subjects, batch_handler=projection)
        for durable, subjects in STREAMS
    ]
