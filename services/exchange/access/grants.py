"""The rules of access grants (共享授权): who may ask, what is granted at once, who decides,
revocation and expiry."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.auth import Principal, Role
from libs.common.errors import FieldError, Forbidden, InvalidInput
from libs.common.events import new_event, outbox
from services.exchange.access import repository as access_repository
from services.exchange.access.cache import GrantCache
from services.exchange.access.events import (
    GrantApproved,
    GrantEvent,
    GrantRefused,
    GrantRequested,
    GrantRevoked,
)
from services.exchange.access.exceptions import (
    DatasetNotShared,
    GrantClosed,
    GrantExists,
    GrantNotFound,
    GrantNotPending,
)
from services.exchange.access.models import Grant, utcnow
from services.exchange.access.schemas import Grant as GrantView
from services.exchange.access.schemas import GrantApproval, GrantCreate, GrantStatus
from services.exchange.datasets import get_dataset
from services.exchange.datasets.exceptions import DatasetNotFound, DatasetRetired

# The longest a grant may run before it must be asked for again.
MAX_GRANT_PERIOD = timedelta(days=3 * 366)
AUTO = "auto"
# Who revoked a grant the catalogue's change ended (``revoked_by`` and the event's ``by``).
CATALOGUE = "catalogue"
# Open grants are read in pages of this many when the catalogue ends them.
_CLOSE_PAGE = 200


def as_utc(value: datetime) -> datetime:
    """``value`` as an aware UTC time (SQLite hands back naive ones)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def is_department_caller(principal: Principal) -> bool:
    """An officer or department admin acting for their organisation, or an organisation's
    system (client credentials, no person signed in) with an ``org``."""
    if principal.org is None:
        return False
    if principal.acr == 0:
        return True
    return principal.has_role(Role.OFFICER) or principal.has_role(Role.DEPT_ADMIN)


def _acts_for_side(principal: Principal, org_id: str) -> bool:
    return principal.org == org_id and is_department_caller(principal)


def may_see(principal: Principal, grant: Grant) -> bool:
    """Platform admins and auditors see every grant; the requester's and the owner's people
    and systems see theirs."""
    if principal.has_role(Role.PLATFORM_ADMIN) or principal.has_role(Role.AUDITOR):
        return True
    return _acts_for_side(principal, grant.requester_org_id) or _acts_for_side(
        principal, grant.owner_org_id
    )


def may_decide(principal: Principal, grant: Grant) -> bool:
    """The owner department's admins and platform admins approve and refuse."""
    if principal.has_role(Role.PLATFORM_ADMIN):
        return True
    return principal.org == grant.owner_org_id and principal.has_role(Role.DEPT_ADMIN)


def may_revoke(principal: Principal, grant: Grant) -> bool:
    """The owner's admins, the requester's people and systems, and platform admins revoke."""
    return may_decide(principal, grant) or _acts_for_side(principal, grant.requester_org_id)


def status_of(grant: Grant, now: datetime) -> GrantStatus:
    """The grant's status as the API shows it: a granted grant past its period is expired (and
    stored so once its organisation asks again)."""
    if grant.status == "expired" or (
        grant.status == "granted" and as_utc(grant.valid_until) <= now
    ):
        return "expired"
    if grant.status == "pending":
        return "pending"
    if grant.status == "granted":
        return "granted"
    if grant.status == "refused":
        return "refused"
    return "revoked"


def to_view(grant: Grant, *, now: datetime | None = None) -> GrantView:
    """The API's view of a grant."""
    return GrantView(
        id=grant.id,
        dataset_id=grant.dataset_id,
        requester_org_id=grant.requester_org_id,
        owner_org_id=grant.owner_org_id,
        status=status_of(grant, now or utcnow()),
        fields=list(grant.fields),
        unmasked_fields=list(grant.unmasked_fields),
        statutes=list(grant.statutes),
        purpose=grant.purpose,
        valid_from=grant.valid_from,
        valid_until=grant.valid_until,
        requested_by=grant.requested_by,
        decided_by=grant.decided_by,
        decided_at=grant.decided_at,
        decision_reason=grant.decision_reason,
        revoked_by=grant.revoked_by,
        revoked_at=grant.revoked_at,
        revoke_reason=grant.revoke_reason,
        created_at=grant.created_at,
    )


def _event_fields(grant: Grant, by: str) -> dict[str, object]:
    return {
        "grant_id": grant.id,
        "dataset_id": grant.dataset_id,
        "requester_org_id": grant.requester_org_id,
        "owner_org_id": grant.owner_org_id,
        "status": grant.status,
        "fields": list(grant.fields),
        "valid_until": grant.valid_until,
        "by": by,
    }


async def _record(session: AsyncSession, data: GrantEvent, grant: Grant) -> None:
    await outbox.add(session, new_event(data, subject=grant.id))


def _check_period(valid_until: datetime, now: datetime, *, location: str = "body") -> None:
    if valid_until <= now:
        raise InvalidInput.for_field("valid_until", "must be in the future", location=location)
    if valid_until - now > MAX_GRANT_PERIOD:
        raise InvalidInput.for_field(
            "valid_until", "a grant runs at most three years; ask again then", location=location
        )


async def request(
    *,
    session: AsyncSession,
    cache: GrantCache,
    principal: Principal,
    draft: GrantCreate,
    requester_org_id: str | None,
) -> Grant:
    """Ask for access; an unconditional dataset asked for plainly is granted at once."""
    if principal.has_role(Role.PLATFORM_ADMIN) and requester_org_id is not None:
        org_id = requester_org_id
    elif requester_org_id is not None and requester_org_id != principal.org:
        raise Forbidden("Only platform admins ask for access on another organisation's behalf.")
    elif is_department_caller(principal) and principal.org is not None:
        org_id = principal.org
    else:
        raise Forbidden(
            "Access is asked for by an officer or department admin acting for their "
            "organisation, or by an organisation's system (client credentials)."
        )
    now = utcnow()
    _check_period(draft.valid_until, now)
    dataset = await get_dataset(session, draft.dataset_id)
    if dataset is None:
        raise DatasetNotFound(f"No dataset {draft.dataset_id}.")
    if dataset.status != "published":
        raise DatasetRetired(f"Dataset {dataset.id} is retired; no new access is granted.")
    if dataset.share_type == "not_shared":
        raise DatasetNotShared(
            f"Dataset {dataset.id} is not shared between departments (不予共享); "
            "ask its owner department directly."
        )
    known = {f.name for f in dataset.fields}
    errors = [
        FieldError(loc=["body", where, index], msg=f"{name!r} is not a field of the dataset",
                   type="value_error")
        for where, names in (("fields", draft.fields), ("unmasked_fields", draft.unmasked_fields))
        for index, name in enumerate(names)
        if name not in known
    ]  # fmt: skip
    errors += [
        FieldError(loc=["body", "unmasked_fields", index], msg=f"{name!r} is not asked for",
                   type="value_error")
        for index, name in enumerate(draft.unmasked_fields)
        if name in known and name not in draft.fields
    ]  # fmt: skip
    if errors:
        raise InvalidInput(f"{len(errors)} field(s) are not valid.", errors=errors)
    await _refuse_if_open(session, org_id=org_id, dataset_id=dataset.id, now=now)
    await access_repository.close_expired(
        session, requester_org_id=org_id, dataset_id=dataset.id, now=now
    )
    # Granted at once only when nothing needs the owner's judgement.
    at_once = (
        dataset.share_type == "unconditional" and not draft.unmasked_fields and not draft.statutes
    )
    order = [f.name for f in dataset.fields]
    grant = Grant(
        dataset_id=dataset.id,
        requester_org_id=org_id,
        owner_org_id=dataset.owner_org_id,
        status="granted" if at_once else "pending",
        fields=sorted(draft.fields, key=order.index),
        unmasked_fields=sorted(draft.unmasked_fields, key=order.index),
        statutes=list(dict.fromkeys(draft.statutes)),
        purpose=draft.purpose,
        valid_from=now,
        valid_until=draft.valid_until,
        requested_by=principal.sub,
        decided_by=AUTO if at_once else None,
        decided_at=now if at_once else None,
        created_at=now,
        updated_at=now,
    )
    try:
        async with session.begin_nested():
            access_repository.add(session, grant)
            await session.flush()
    except IntegrityError:
        # A request at the same time opened one first (the partial unique index): the same 409.
        await _refuse_if_open(session, org_id=org_id, dataset_id=dataset.id, now=now)
        raise GrantExists("A grant for this dataset was opened at the same time.") from None
    await _record(
        session, GrantRequested(**_event_fields(grant, principal.sub), purpose=grant.purpose), grant
    )
    if at_once:
        await _record(session, GrantApproved(**_event_fields(grant, AUTO)), grant)
        cache.forget_on_commit(session, grant)
    return grant


async def _refuse_if_open(
    session: AsyncSession, *, org_id: str, dataset_id: str, now: datetime
) -> None:
    """409 ``grant-exists`` (naming it) when the organisation has an open grant for the dataset."""
    existing = await access_repository.open_grant(
        session, requester_org_id=org_id, dataset_id=dataset_id, now=now
    )
    if existing is not None:
        raise GrantExists(
            f"Grant {existing.id} for this dataset is {existing.status}; revoke it to ask anew.",
            grant_id=existing.id,
        )


async def visible(*, session: AsyncSession, principal: Principal, grant_id: str) -> Grant:
    """A grant the caller may see; anyone else gets the same 404 as for an unknown id."""
    grant = await access_repository.get_grant(session, grant_id=grant_id)
    if grant is None or not may_see(principal, grant):
        raise GrantNotFound(f"No grant {grant_id}.")
    return grant


async def approve(
    *,
    session: AsyncSession,
    cache: GrantCache,
    principal: Principal,
    grant_id: str,
    approval: GrantApproval,
) -> Grant:
    """The owner grants a pending request, perhaps for a shorter period."""
    grant = await visible(session=session, principal=principal, grant_id=grant_id)
    if not may_decide(principal, grant):
        raise Forbidden("Only the owner department's admins and platform admins decide.")
    if grant.status != "pending":
        raise GrantNotPending(f"Grant {grant.id} is {grant.status}, not pending.")
    now = utcnow()
    if approval.valid_until is not None:
        _check_period(approval.valid_until, now)
        if approval.valid_until > as_utc(grant.valid_until):
            raise InvalidInput.for_field(
                "valid_until", "an approval may shorten the period asked for, never extend it"
            )
        grant.valid_until = approval.valid_until
    elif as_utc(grant.valid_until) <= now:
        raise GrantNotPending(f"Grant {grant.id}'s period has passed; it must be asked anew.")
    grant.status = "granted"
    grant.valid_from = now
    grant.decided_by = principal.sub
    grant.decided_at = now
    grant.decision_reason = approval.reason
    grant.updated_at = now
    await session.flush()
    await _record(session, GrantApproved(**_event_fields(grant, principal.sub)), grant)
    cache.forget_on_commit(session, grant)
    return grant


async def refuse(
    *, session: AsyncSession, principal: Principal, grant_id: str, reason: str
) -> Grant:
    """The owner refuses a pending request, saying why."""
    grant = await visible(session=session, principal=principal, grant_id=grant_id)
    if not may_decide(principal, grant):
        raise Forbidden("Only the owner department's admins and platform admins decide.")
    if grant.status != "pending":
        raise GrantNotPending(f"Grant {grant.id} is {grant.status}, not pending.")
    now = utcnow()
    grant.status = "refused"
    grant.decided_by = principal.sub
    grant.decided_at = now
    grant.decision_reason = reason
    grant.updated_at = now
    await session.flush()
    await _record(
        session, GrantRefused(**_event_fields(grant, principal.sub), reason=reason), grant
    )
    return grant


async def revoke(
    *,
    session: AsyncSession,
    cache: GrantCache,
    principal: Principal,
    grant_id: str,
    reason: str | None,
) -> Grant:
    """End a pending or granted grant: its owner, its requester or a platform admin."""
    grant = await visible(session=session, principal=principal, grant_id=grant_id)
    if not may_revoke(principal, grant):
        raise Forbidden("Only the owner's admins, the requester or platform admins revoke.")
    if grant.status not in {"pending", "granted"}:
        raise GrantClosed(f"Grant {grant.id} is {grant.status} already.")
    await _mark_revoked(session, grant, by=principal.sub, reason=reason, now=utcnow())
    cache.forget_on_commit(session, grant)
    return grant


async def _mark_revoked(
    session: AsyncSession, grant: Grant, *, by: str, reason: str | None, now: datetime
) -> None:
    """Store the grant as revoked and record ``grant.revoked`` (every process's grant cache
    forgets it when the event reaches it: access/cache.py)."""
    grant.status = "revoked"
    grant.revoked_by = by
    grant.revoked_at = now
    grant.revoke_reason = reason
    grant.updated_at = now
    await session.flush()
    await _record(session, GrantRevoked(**_event_fields(grant, by), reason=reason), grant)


async def close_for_catalogue(
    session: AsyncSession, *, dataset_id: str, reason: str, automatic_only: bool = False
) -> list[Grant]:
    """Revoke the dataset's open grants (pending, or granted and not expired) because the
    catalogue changed it; ``automatic_only`` ends only grants given at once (by ``auto``).

    Runs in the catalogue consumer's transaction: the revocations and their events commit with
    the read copy's change, or none of them does.
    """
    now = utcnow()
    closed: list[Grant] = []
    statuses = ("granted",) if automatic_only else ("pending", "granted")
    for status in statuses:
        before: str | None = None
        while True:
            page = await access_repository.list_grants(
                session, org_id=None, side="either", status=status, dataset_id=dataset_id,
                now=now, before=before, limit=_CLOSE_PAGE,
            )  # fmt: skip
            for grant in page:
                if automatic_only and grant.decided_by != AUTO:
                    continue
                await _mark_revoked(session, grant, by=CATALOGUE, reason=reason, now=now)
                closed.append(grant)
            if len(page) < _CLOSE_PAGE:
                break
            before = page[-1].id
    return closed


async def search(
    *,
    session: AsyncSession,
    principal: Principal,
    side: str,
    status: str | None,
    dataset_id: str | None,
    before: str | None,
    limit: int,
) -> Sequence[Grant]:
    """Grants the caller may see: their organisation's as requester or owner; all for admins."""
    if principal.has_role(Role.PLATFORM_ADMIN) or principal.has_role(Role.AUDITOR):
        org_id = None
    elif is_department_caller(principal):
        org_id = principal.org
    else:
        raise Forbidden("Grants are listed for departments, their systems and platform admins.")
    return await access_repository.list_grants(
        session,
        org_id=org_id,
        side=side,
        status=status,
        dataset_id=dataset_id,
        now=utcnow(),
        before=before,
        limit=limit,
    )
