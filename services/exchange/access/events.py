"""The events grants and consents publish (metadata only: never a record, never a subject's
identifier)."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from libs.common.events import EventData


class GrantEvent(EventData):
    grant_id: str
    dataset_id: str
    requester_org_id: str
    owner_org_id: str
    status: str
    fields: list[str]
    valid_until: datetime
    by: str


class GrantRequested(GrantEvent):
    """An organisation asked for access to a dataset (``status`` pending, or granted at once)."""

    event_type: ClassVar[str] = "pingtai.exchange.grant.requested"

    purpose: str


class GrantApproved(GrantEvent):
    """Access was granted: by the owner, or at once for an unconditional dataset (by ``auto``)."""

    event_type: ClassVar[str] = "pingtai.exchange.grant.approved"


class GrantRefused(GrantEvent):
    event_type: ClassVar[str] = "pingtai.exchange.grant.refused"

    reason: str


class GrantRevoked(GrantEvent):
    event_type: ClassVar[str] = "pingtai.exchange.grant.revoked"

    reason: str | None


class ConsentGiven(EventData):
    """A subject let an organisation read named fields about them; ``subject_ref`` names them."""

    event_type: ClassVar[str] = "pingtai.exchange.consent.given"

    consent_id: str
    subject_ref: str
    grantee_org_id: str
    dataset_ids: list[str]
    valid_until: datetime


class ConsentRevoked(EventData):
    event_type: ClassVar[str] = "pingtai.exchange.consent.revoked"

    consent_id: str
    subject_ref: str
    grantee_org_id: str
