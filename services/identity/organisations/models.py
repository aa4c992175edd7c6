"""Organisations and memberships."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from services.identity.base import Base
from services.identity.ids import new_id, utcnow


class Organisation(Base):
    """A department (部门) or an enterprise (企业), placed in the region tree (GB/T 2260)."""

    __tablename__ = "organisations"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(16))  # department | enterprise
    name: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str | None] = mapped_column(String(200))
    region_code: Mapped[str] = mapped_column(String(6), index=True)
    # The unified social credit code (GB 32100), protected like a resident id number.
    credit_code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    credit_code_encrypted: Mapped[str] = mapped_column(Text)
    credit_code_masked: Mapped[str] = mapped_column(String(18))
    status: Mapped[str] = mapped_column(String(16), default="active")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Membership(Base):
    """A role a person holds, in an organisation or (``org_id`` empty) platform-wide."""

    __tablename__ = "memberships"
    __table_args__ = (
        UniqueConstraint("user_id", "org_id", "role"),
        Index("ix_memberships_org_role", "org_id", "role"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    org_id: Mapped[str | None] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
