"""The client registry."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, DateTime, String
from sqlalchemy.orm import Mapped, mapped_column

from services.identity.base import Base
from services.identity.ids import utcnow


class OAuthClient(Base):
    """A registered client; a confidential one keeps only an HMAC of its secret."""

    __tablename__ = "oauth_clients"

    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    # confidential | public
    client_type: Mapped[str] = mapped_column(String(16))
    # client_secret_basic | client_secret_post | none
    token_endpoint_auth_method: Mapped[str] = mapped_column(String(32))
    secret_hash: Mapped[str | None] = mapped_column(String(64))
    grant_types: Mapped[list[str]] = mapped_column(JSON)
    scopes: Mapped[list[str]] = mapped_column(JSON)
    redirect_uris: Mapped[list[str]] = mapped_column(JSON)
    # Where the end-session endpoint may send the browser back (RP-initiated logout).
    post_logout_redirect_uris: Mapped[list[str]] = mapped_column(JSON, default=list)
    # What a client_credentials token carries: the organisation acted for and the roles.
    org_id: Mapped[str | None] = mapped_column(String(32))
    roles: Mapped[list[str]] = mapped_column(JSON)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )
    secret_rotated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
