"""Events about clients."""

from __future__ import annotations

from typing import ClassVar

from libs.common.events import EventData


class ClientCreated(EventData):
    """A client was registered."""

    event_type: ClassVar[str] = "pingtai.identity.client.created"

    client_id: str
    client_type: str
    grant_types: list[str]
    org_id: str | None
    roles: list[str]
    by: str | None


class ClientSecretRotated(EventData):
    """A client's secret was replaced; the old one no longer works."""

    event_type: ClassVar[str] = "pingtai.identity.client.secret_rotated"

    client_id: str
    by: str | None


class ClientUpdated(EventData):
    """A client's registration changed (``enabled`` false: disabled)."""

    event_type: ClassVar[str] = "pingtai.identity.client.updated"

    client_id: str
    changed: list[str]
    enabled: bool
    by: str | None
