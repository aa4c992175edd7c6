"""The people table."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from services.identity.base import Base
from services.identity.ids import new_id, utcnow


class User(Base):
    """A person who can sign in. The resident id number is kept only as a keyed hash (for
    lookup), an AES-GCM ciphertext (for those entitled to read it) and its masked form."""

    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(100))
    phone: Mapped[str | None] = mapped_column(String(20), unique=True)
    email: Mapped[str | None] = mapped_column(String(254), unique=True)
    resident_id_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    resident_id_encrypted: Mapped[str | None] = mapped_column(Text)
    resident_id_masked: Mapped[str | None] = mapped_column(String(18))
    password_hash: Mapped[str] = mapped_column(String(255))
    # Assurance level: 1 self-registered, 2 real-name verified, 3 verified in person.
    acr: Mapped[int] = mapped_column(Integer, default=1)
    status: Mapped[str] = mapped_column(String(16), default="active")
    failed_sign_ins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )
