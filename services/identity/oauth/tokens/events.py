"""Events about tokens."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from libs.common.events import EventData


class RefreshTokenReused(EventData):
    """A used refresh token (or authorization code) came back: its whole family was revoked."""

    event_type: ClassVar[str] = "pingtai.identity.refresh_token.reused"

    family_id: str
    client_id: str
    user_id: str
    kind: str  # refresh_token | authorization_code
    revoked_access_tokens: int


class AccessTokensRevoked(EventData):
    """Access tokens revoked before their expiry: verifiers deny these ``jti`` until ``until``."""

    event_type: ClassVar[str] = "pingtai.identity.access_token.revoked"

    jtis: list[str]
    until: datetime
    reason: str  # revoked | refresh_token_reuse | code_reuse
