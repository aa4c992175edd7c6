"""The rules of consent (授权同意): a person, or an enterprise through its agent, lets one
organisation read named fields about them for a purpose and period, and can take it back."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.auth import Principal
from libs.common.errors import FieldError, InvalidInput
from libs.common.events import new_event, outbox
from services.exchange.access import repository as access_repository
from services.exchange.access.events import ConsentGiven, ConsentRevoked
from services.exchange.access.exceptions import ConsentClosed, ConsentNotFound
from services.exchange.access.grants import as_utc
from services.exchange.access.models import Consent, utcnow
from services.exchange.access.schemas import Consent as ConsentView
from services.exchange.access.schemas import ConsentCreate, ConsentScope
from services.exchange.access.subjects import OwnSubject, Whose, own_subject
from services.exchange.datasets import get_dataset

MAX_CONSENT_PERIOD = timedelta(days=366)


def is_live(consent: Consent, now: datetime) -> bool:
    """Whether the consent authorises at ``now``."""
    return consent.status == "given" and as_utc(consent.valid_from) <= now < as_utc(
        consent.valid_until
    )


def covers(consent: Consent, *, dataset_id: str, fields: Sequence[str]) -> bool:
    """Whether the consent names every one of ``fields`` of ``dataset_id``."""
    for scope in consent.scope:
        if scope["dataset_id"] == dataset_id:
            return set(fields) <= set(scope["fields"])
    return False


def to_view(
    consent: Consent, *, grantee_name: str | None, now: datetime | None = None
) -> ConsentView:
    """The API's view of a consent."""
    now = now or utcnow()
    status = consent.status
    if status == "given" and as_utc(consent.valid_until) <= now:
        status = "expired"
    return ConsentView(
        id=consent.id,
        subject_kind=consent.subject_kind,
        grantee_org_id=consent.grantee_org_id,
        grantee_name=grantee_name,
        purpose=consent.purpose,
        datasets=[ConsentScope.model_validate(s) for s in consent.scope],
        status="expired" if status == "expired" else "revoked" if status == "revoked" else "given",
        valid_from=consent.valid_from,
        valid_until=consent.valid_until,
        given_by=consent.given_by,
        revoked_by=consent.revoked_by,
        revoked_at=consent.revoked_at,
        created_at=consent.created_at,
    )


def _error(loc: list[str | int], message: str) -> FieldError:
    return FieldError(loc=["body", *loc], msg=message, type="value_error")


async def give(*, session: AsyncSession, principal: Principal, draft: ConsentCreate) -> Consent:
    """Record a consent of the caller (or of the enterprise they act for)."""
    subject = await own_subject(session, principal=principal, whose=draft.on_behalf_of)
    now = utcnow()
    if draft.valid_until <= now:
        raise InvalidInput.for_field("valid_until", "must be in the future")
    if draft.valid_until - now > MAX_CONSENT_PERIOD:
        raise InvalidInput.for_field("valid_until", "a consent runs at most a year")
    errors: list[FieldError] = []
    grantee = await access_repository.get_organisation(session, org_id=draft.grantee_org_id)
    if grantee is None:
        errors.append(_error(["grantee_org_id"], "is not an organisation the exchange knows"))
    seen: set[str] = set()
    for index, scope in enumerate(draft.datasets):
        if scope.dataset_id in seen:
            errors.append(_error(["datasets", index, "dataset_id"], "is named twice"))
            continue
        seen.add(scope.dataset_id)
        dataset = await get_dataset(session, scope.dataset_id)
        if dataset is None:
            errors.append(_error(["datasets", index, "dataset_id"], "is not a dataset"))
            continue
        if dataset.subject_key_kind != subject.kind:
            errors.append(
                _error(
                    ["datasets", index, "dataset_id"],
                    f"holds records keyed by {dataset.subject_key_kind}, "
                    f"not by your {subject.kind}",
                )
            )
        known = {f.name for f in dataset.fields}
        for position, name in enumerate(scope.fields):
            if name not in known:
                errors.append(
                    _error(["datasets", index, "fields", position], f"{name!r} is not a field")
                )
    if errors:
        raise InvalidInput(f"{len(errors)} part(s) of the consent are not valid.", errors=errors)
    consent = Consent(
        subject_ref=subject.subject_ref,
        subject_kind=subject.kind,
        given_by=principal.sub,
        grantee_org_id=draft.grantee_org_id,
        purpose=draft.purpose,
        scope=[s.model_dump() for s in draft.datasets],
        status="given",
        valid_from=now,
        valid_until=draft.valid_until,
        created_at=now,
    )
    access_repository.add(session, consent)
    await session.flush()
    await outbox.add(
        session,
        new_event(
            ConsentGiven(
                consent_id=consent.id,
                subject_ref=consent.subject_ref,
                grantee_org_id=consent.grantee_org_id,
                dataset_ids=[s.dataset_id for s in draft.datasets],
                valid_until=consent.valid_until,
            ),
            subject=consent.id,
        ),
    )
    return consent


async def _own(
    session: AsyncSession, *, principal: Principal, consent_id: str
) -> tuple[Consent, OwnSubject]:
    consent = await access_repository.get_consent(session, consent_id=consent_id)
    if consent is None:
        raise ConsentNotFound(f"No consent {consent_id}.")
    # The consent's own subject decides whose it is: the person's, or their enterprise's.
    whose: Whose = "self" if consent.subject_kind == "resident_id" else "organisation"
    subject = await own_subject(session, principal=principal, whose=whose)
    if subject.subject_ref != consent.subject_ref:
        raise ConsentNotFound(f"No consent {consent_id}.")
    return consent, subject


async def read(*, session: AsyncSession, principal: Principal, consent_id: str) -> Consent:
    """One of the caller's own consents; anyone else's is "not found"."""
    consent, _ = await _own(session, principal=principal, consent_id=consent_id)
    return consent


async def revoke(*, session: AsyncSession, principal: Principal, consent_id: str) -> Consent:
    """Take a consent back; queries citing it are refused from then on."""
    consent, _ = await _own(session, principal=principal, consent_id=consent_id)
    if consent.status != "given":
        raise ConsentClosed(f"Consent {consent.id} is revoked already.")
    consent.status = "revoked"
    consent.revoked_by = principal.sub
    consent.revoked_at = utcnow()
    await session.flush()
    await outbox.add(
        session,
        new_event(
            ConsentRevoked(
                consent_id=consent.id,
                subject_ref=consent.subject_ref,
                grantee_org_id=consent.grantee_org_id,
            ),
            subject=consent.id,
        ),
    )
    return consent


async def search(
    *,
    session: AsyncSession,
    principal: Principal,
    whose: Whose | None,
    before: str | None,
    limit: int,
) -> Sequence[Consent]:
    """The caller's own consents (or their enterprise's), newest first."""
    subject = await own_subject(session, principal=principal, whose=whose)
    return await access_repository.consents_of(
        session, subject_ref=subject.subject_ref, before=before, limit=limit
    )
