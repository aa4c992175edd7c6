"""The events applications publish: every gateway replica forgets a revoked key at once."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from libs.common.events import EventData


class ApiKeyIssued(EventData):
    """An application got a new key."""

    event_type: ClassVar[str] = "pingtai.gateway.api_key.issued"

    key_id: str
    application_id: str
    org_id: str
    plan_id: str
    expires_at: datetime | None
    issued_by: str


class ApiKeyRevoked(EventData):
    """A key was revoked: every replica refuses it from now on."""

    event_type: ClassVar[str] = "pingtai.gateway.api_key.revoked"

    key_id: str
    application_id: str
    org_id: str
    revoked_at: datetime
    revoked_by: str
