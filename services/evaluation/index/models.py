"""Versions of the composite index's indicator system (a version never changes once stored),
and the rankings stored as computed."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Date, DateTime, Index, Integer, String, Text
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


class StoredRanking(Base):
    """A ranking as computed for one period, scope kind (region level) and system version.

    ``body`` is the ranking's JSON as the API answers it. A row is deleted when the daily rows
    of a day in its period change, or any organisation copy does (names, kinds and regions of
    departments); ``generation`` is the indicators' generation it was computed from.
    """

    __tablename__ = "evaluation_ranking_stored"
    __table_args__ = (
        Index(
            "ix_evaluation_ranking_stored_key",
            "scope_kind",
            "level",
            "period_start",
            "period_end",
            "system_version",
            unique=True,
        ),  # fmt: skip
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    scope_kind: Mapped[str] = mapped_column(String(16))
    # The region level (province, city, county); "" for departments.
    level: Mapped[str] = mapped_column(String(16))
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)
    system_version: Mapped[int] = mapped_column(Integer)
    generation: Mapped[int] = mapped_column(BigInteger)
    computed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    body: Mapped[str] = mapped_column(Text)
