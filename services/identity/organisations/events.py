"""The events organisations and memberships publish."""

from __future__ import annotations

from typing import ClassVar

from libs.common.events import EventData


class OrganisationRegistered(EventData):
    event_type: ClassVar[str] = "pingtai.identity.organisation.registered"

    org_id: str
    kind: str
    name: str
    region_code: str
    # The organisation's subject reference (libs.common.subjects), from its credit code.
    subject_ref: str


class OrganisationUpdated(EventData):
    event_type: ClassVar[str] = "pingtai.identity.organisation.updated"

    org_id: str
    name: str
    status: str
    kind: str
    subject_ref: str


class RoleGranted(EventData):
    event_type: ClassVar[str] = "pingtai.identity.membership.granted"

    membership_id: str
    user_id: str
    org_id: str | None
    role: str
    granted_by: str


class RoleRevoked(EventData):
    event_type: ClassVar[str] = "pingtai.identity.membership.revoked"

    membership_id: str
    user_id: str
    org_id: str | None
    role: str
    revoked_by: str
