"""Applications and their API keys; a key is stored only as a keyed hash."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from gateway.base import Base
from gateway.ids import new_id, utcnow


class Application(Base):
    """A third party's or a department's system that calls the platform's APIs."""

    __tablename__ = "applications"
    __table_args__ = (UniqueConstraint("org_id", "name"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    org_id: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    # The OAuth client (identity) whose client-credentials tokens go with its keys, if bound.
    client_id: Mapped[str | None] = mapped_column(String(128))
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ApiKey(Base):
    """One key of an application, on one plan. The secret itself is never stored."""

    __tablename__ = "api_keys"
    __table_args__ = (Index("ix_api_keys_application_id", "application_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    application_id: Mapped[str] = mapped_column(ForeignKey("applications.id"))
    plan_id: Mapped[str] = mapped_column(ForeignKey("plans.id"))
    label: Mapped[str] = mapped_column(String(100), default="")
    # HMAC-SHA256 of the key under a key derived from PINGTAI_SECRET_KEY (hex).
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The key's first characters, e.g. "pt_live_3fQa", so an owner can tell keys apart.
    hint: Mapped[str] = mapped_column(String(16))
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
