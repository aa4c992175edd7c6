"""Plans: what a key on it may do per minute and per day."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from gateway.base import Base
from gateway.ids import new_id, utcnow


class Plan(Base):
    """A plan (套餐): limits shared by every key issued on it, each key counted on its own."""

    __tablename__ = "plans"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    requests_per_minute: Mapped[int] = mapped_column(Integer)
    requests_per_day: Mapped[int] = mapped_column(Integer)
    # A key on this plan must come with a client-credentials access token too.
    requires_token: Mapped[bool] = mapped_column(default=False)
    # Listed on the developer page and open to new keys.
    published: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
