"""Daily usage per key: every replica adds its counts, in batches."""

from __future__ import annotations

from datetime import date

from sqlalchemy import BigInteger, Date, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from gateway.base import Base


class DailyUsage(Base):
    """Calls and errors of one key on one UTC day."""

    __tablename__ = "daily_usage"

    key_id: Mapped[str] = mapped_column(ForeignKey("api_keys.id"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    application_id: Mapped[str] = mapped_column(String(32), index=True)
    calls: Mapped[int] = mapped_column(BigInteger, default=0)
    # Answers with a status of 400 or more, the gateway's own refusals (429, 401) included.
    errors: Mapped[int] = mapped_column(BigInteger, default=0)
    rejected: Mapped[int] = mapped_column(BigInteger, default=0)  # 429: over a limit
