"""The read copy of identity (who is which subject), kept from identity's events, and whose
data a caller may look at as their own."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.auth import Principal, Role
from libs.common.events import CloudEvent, EventData, Subscription
from libs.common.subjects import ENTERPRISE_KIND, PERSON_KIND
from services.exchange.access import repository as access_repository
from services.exchange.access.exceptions import SubjectUnknown
from services.exchange.access.models import OrganisationSubject, PersonSubject, utcnow

Whose = Literal["self", "organisation"]


# The consumer's own copies of identity's event models (docs/events.md: consumers tolerate
# added fields and never import the publisher).
class PersonRegistered(EventData):
    event_type: ClassVar[str] = "pingtai.identity.person.registered"

    user_id: str
    subject_ref: str | None = None


class OrganisationChanged(EventData):
    """``pingtai.identity.organisation.registered`` and ``.updated`` alike."""

    event_type: ClassVar[str] = "pingtai.identity.organisation.registered"

    org_id: str
    kind: str | None = None
    name: str
    status: str = "active"
    subject_ref: str | None = None


async def apply_person(session: AsyncSession, event: CloudEvent) -> None:
    """Remember a registered person's subject reference."""
    data = event.data_as(PersonRegistered)
    if data.subject_ref is None:
        return  # published before identity added subject references
    person = await access_repository.get_person(session, person_id=data.user_id)
    if person is None:
        access_repository.add(
            session, PersonSubject(person_id=data.user_id, subject_ref=data.subject_ref)
        )
    else:
        person.subject_ref = data.subject_ref
        person.updated_at = utcnow()
    await session.flush()


async def apply_organisation(session: AsyncSession, event: CloudEvent) -> None:
    """Remember an organisation's kind, name, status and subject reference."""
    data = event.data_as(OrganisationChanged)
    org = await access_repository.get_organisation(session, org_id=data.org_id)
    if org is None:
        if data.subject_ref is None or data.kind is None:
            return  # too old a shape to be of use
        access_repository.add(
            session,
            OrganisationSubject(
                org_id=data.org_id,
                kind=data.kind,
                name=data.name,
                status=data.status,
                subject_ref=data.subject_ref,
            ),
        )
    else:
        org.name = data.name
        org.status = data.status
        if data.subject_ref is not None:
            org.subject_ref = data.subject_ref
        if data.kind is not None:
            org.kind = data.kind
        org.updated_at = utcnow()
    await session.flush()


person_subjects = Subscription(
    durable="exchange-person-subjects",
    subjects=["pingtai.identity.person.registered"],
    handler=apply_person,
)
organisation_subjects = Subscription(
    durable="exchange-organisation-subjects",
    subjects=["pingtai.identity.organisation.registered", "pingtai.identity.organisation.updated"],
    handler=apply_organisation,
)
SUBSCRIPTIONS = (person_subjects, organisation_subjects)


@dataclass(frozen=True)
class OwnSubject:
    """Whose data the caller looks at as their own: a reference and its kind."""

    subject_ref: str
    kind: str
    whose: Whose


def default_whose(principal: Principal) -> Whose:
    """An enterprise agent acting for their enterprise speaks for it; anyone else for themselves."""
    if principal.has_role(Role.ENTERPRISE_AGENT) and principal.org is not None:
        return "organisation"
    return "self"


async def own_subject(
    session: AsyncSession, *, principal: Principal, whose: Whose | None
) -> OwnSubject:
    """The caller's own subject: the signed-in person, or the enterprise an agent acts for."""
    whose = whose or default_whose(principal)
    if principal.acr == 0:
        raise SubjectUnknown("Only a signed-in person has data of their own here.")
    if whose == "organisation":
        if not (principal.has_role(Role.ENTERPRISE_AGENT) and principal.org is not None):
            raise SubjectUnknown("Only an enterprise agent speaks for an enterprise's data.")
        org = await access_repository.get_organisation(session, org_id=principal.org)
        if org is None:
            raise SubjectUnknown("The exchange has not learnt of your enterprise yet.")
        return OwnSubject(org.subject_ref, ENTERPRISE_KIND, "organisation")
    if not principal.has_role(Role.CITIZEN):
        raise SubjectUnknown("Only a citizen's own data can be looked at as their own.")
    person = await access_repository.get_person(session, person_id=principal.sub)
    if person is None:
        raise SubjectUnknown("The exchange has not learnt of your account yet; try again soon.")
    return OwnSubject(person.subject_ref, PERSON_KIND, "self")
