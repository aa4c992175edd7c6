"""The events people's accounts publish."""

from __future__ import annotations

from typing import ClassVar

from libs.common.events import EventData


class PersonRegistered(EventData):
    event_type: ClassVar[str] = "pingtai.identity.person.registered"

    user_id: str
    acr: int
    region_code: str
    # The person's subject reference (libs.common.subjects): how exchange knows whose records
    # and accesses are theirs, without the resident id itself.
    subject_ref: str


class RegistrationConflict(EventData):
    """Someone tried to register with identifiers an account already holds; tell its holder."""

    event_type: ClassVar[str] = "pingtai.identity.person.registration_conflict"

    user_id: str


class AssuranceRaised(EventData):
    event_type: ClassVar[str] = "pingtai.identity.person.assurance_raised"

    user_id: str
    previous_acr: int
    acr: int
    method: str
    verified_by: str


class ResidentIdRevealed(EventData):
    """An entitled caller read a person's full resident id number."""

    event_type: ClassVar[str] = "pingtai.identity.person.resident_id_revealed"

    user_id: str
    revealed_to: str


class EmailChangeRequested(EventData):
    """A person asked to use a new e-mail address; a code went to it (not in this event)."""

    event_type: ClassVar[str] = "pingtai.identity.person.email_change_requested"

    user_id: str


class EmailChangeConflict(EventData):
    """Someone asked to use the e-mail address this account holds; tell its holder."""

    event_type: ClassVar[str] = "pingtai.identity.person.email_change_conflict"

    user_id: str


class EmailChanged(EventData):
    """A person's e-mail address changed (confirmed by code, or removed)."""

    event_type: ClassVar[str] = "pingtai.identity.person.email_changed"

    user_id: str
