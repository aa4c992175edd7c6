"""The signing keys."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from services.identity.base import Base
from services.identity.ids import utcnow


class SigningKey(Base):
    """A key pair: the public JWK in the clear, the private key AES-GCM encrypted.

    A key is published from ``created_at``, signs from ``activates_at`` until the next key of
    its algorithm activates (``retired_at``), and is deleted once no token it signed is valid.
    """

    __tablename__ = "oauth_signing_keys"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    alg: Mapped[str] = mapped_column(String(8))
    public_jwk: Mapped[str] = mapped_column(Text)
    private_key_encrypted: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    activates_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    retired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
