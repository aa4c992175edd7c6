"""The gateway part's whole schema: the base and every concept's tables."""

from __future__ import annotations

from gateway.applications.models import ApiKey, Application
from gateway.base import Base, event_tables
from gateway.plans.models import Plan
from gateway.usage.models import DailyUsage

__all__ = ["ApiKey", "Application", "Base", "DailyUsage", "Plan", "event_tables"]
