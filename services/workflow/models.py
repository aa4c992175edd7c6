"""The workflow part's whole schema: the base and every concept's tables."""

from __future__ import annotations

from services.workflow.base import Base, event_tables

__all__ = [
    "Base",
    "event_tables",
]
