"""Versions of the composite index's indicator system; a version never changes once stored."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from services.evaluation.base import Base
from services.evaluation.clock import utcnow


class IndexSystem(Base):
    """One version of the dimensions, their indicators, weights and targets."""

    __tablename__ = "evaluation_index_system"

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    created_by: Mapped[str] = mapped_column(String(64))
