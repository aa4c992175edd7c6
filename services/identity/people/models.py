"""The people table."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Integer, String, Text
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


class EmailChange(Base):
    """An e-mail address a person asked to use, waiting for the code sent to it.

    The address takes effect only when the code comes back, so an account never holds an
    address its holder has not shown they read, and asking for one tells nothing about who
    else uses it. One pending change per person; a new request replaces it.
    """

    __tablename__ = "email_changes"

    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    email: Mapped[str] = mapped_column(String(254))
    # A keyed hash of the code, bound to the person and the address.
    code_hash: Mapped[str] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
