"""Identity-provider sessions and the failed sign-ins of each client address."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, DateTime, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from services.identity.base import Base
from services.identity.ids import new_id, utcnow


class IdpSession(Base):
    """A browser signed in at the provider; the cookie holds a token, the row its SHA-256."""

    __tablename__ = "oauth_sessions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[str] = mapped_column(String(32), index=True)
    auth_time: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    acr: Mapped[int] = mapped_column(Integer)
    amr: Mapped[list[str]] = mapped_column(JSON)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class SignInFailure(Base):
    """One failed sign-in from a client address: a sliding window shared by every replica."""

    __tablename__ = "oauth_sign_in_failures"
    __table_args__ = (Index("ix_oauth_sign_in_failures_ip_at", "ip", "occurred_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    ip: Mapped[str] = mapped_column(String(64))
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
