"""Tables of sessions and of sign-ins in progress."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, DateTime, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from portal.models import Base


class PortalSession(Base):
    """A signed-in browser. The cookie holds a random token; the table holds its SHA-256."""

    __tablename__ = "portal_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(200))
    roles: Mapped[list[str]] = mapped_column(JSON)
    org: Mapped[str | None] = mapped_column(String(64))
    acr: Mapped[int] = mapped_column(Integer)
    csrf_token: Mapped[str] = mapped_column(String(64))
    # Tokens sealed with AES-GCM under a key derived from PINGTAI_SECRET_KEY.
    access_token: Mapped[bytes] = mapped_column(LargeBinary)
    refresh_token: Mapped[bytes | None] = mapped_column(LargeBinary)
    # The ID token of the sign-in: the hint identity's end-session endpoint takes.
    id_token: Mapped[bytes | None] = mapped_column(LargeBinary)
    access_expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # Bumped at each refresh: a replica that lost the race re-reads instead of refreshing twice.
    token_generation: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class PendingSignIn(Base):
    """A sign-in sent to identity and not yet back: state, nonce and PKCE verifier."""

    __tablename__ = "portal_pending_sign_ins"

    # SHA-256 of the browser's sign-in cookie: the callback must come back to the same browser.
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    state: Mapped[str] = mapped_column(String(64))
    nonce: Mapped[str] = mapped_column(String(64))
    code_verifier: Mapped[str] = mapped_column(String(128))
    return_to: Mapped[str] = mapped_column(String(2000))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
