"""Every query of access: grants, consents, the subjects' read copy, the access history."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import bindparam, case, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from libs.common.database import DirectRead
from services.exchange.access.models import Consent, Grant, OrganisationSubject, PersonSubject
from services.exchange.datasets.models import ExchangeDataset
from services.exchange.ledger.models import LedgerEntry

# --- Grants ------------------------------------------------------------------------------------


async def get_grant(session: AsyncSession, *, grant_id: str) -> Grant | None:
    """The grant with ``grant_id``."""
    return await session.get(Grant, grant_id)


def add(
    session: AsyncSession, entity: Grant | Consent | PersonSubject | OrganisationSubject
) -> None:
    """Stage a new row."""
    session.add(entity)


async def open_grant(
    session: AsyncSession, *, requester_org_id: str, dataset_id: str, now: datetime
) -> Grant | None:
    """A pending grant, or a granted one not expired, of the requester for the dataset."""
    result = await session.execute(
        select(Grant)
        .where(
            Grant.requester_org_id == requester_org_id,
            Grant.dataset_id == dataset_id,
            or_(
                Grant.status == "pending",
                (Grant.status == "granted") & (Grant.valid_until > now),
            ),
        )
        .limit(1)
    )
    return result.scalar_one_or_none()


async def close_expired(
    session: AsyncSession, *, requester_org_id: str, dataset_id: str, now: datetime
) -> None:
    """Store as ``expired`` the requester's granted grants for the dataset whose period has
    passed, so that a new one may be opened (one open grant per pair, a unique index)."""
    await session.execute(
        update(Grant)
        .where(
            Grant.requester_org_id == requester_org_id,
            Grant.dataset_id == dataset_id,
            Grant.status == "granted",
            Grant.valid_until <= now,
        )
        .values(status="expired", updated_at=now)
    )


async def latest_granted(
    session: AsyncSession, *, requester_org_id: str, dataset_id: str
) -> Grant | None:
    """The grant that decides the requester's queries of the dataset: its granted one (in force
    or not), else the one granted most recently that expired or was revoked since (one revoked
    while still pending was never granted: it does not count)."""
    result = await session.execute(
        select(Grant)
        .where(
            Grant.requester_org_id == requester_org_id,
            Grant.dataset_id == dataset_id,
            Grant.status.in_(("granted", "expired", "revoked")),
            Grant.decided_at.is_not(None),
        )
        .order_by(
            case((Grant.status == "granted", 0), else_=1),
            Grant.decided_at.desc(),
            Grant.valid_until.desc(),
        )
        .limit(1)
    )
    return result.scalar_one_or_none()


async def list_grants(
    session: AsyncSession,
    *,
    org_id: str | None,
    side: str,
    status: str | None,
    dataset_id: str | None,
    now: datetime,
    before: str | None,
    limit: int,
) -> Sequence[Grant]:
    """Grants newest first; of ``org_id`` as requester, owner or either (``None``: all)."""
    statement = select(Grant).order_by(Grant.id.desc()).limit(limit)
    if org_id is not None:
        if side == "requester":
            statement = statement.where(Grant.requester_org_id == org_id)
        elif side == "owner":
            statement = statement.where(Grant.owner_org_id == org_id)
        else:
            statement = statement.where(
                or_(Grant.requester_org_id == org_id, Grant.owner_org_id == org_id)
            )
    if status == "expired":
        statement = statement.where(
            or_(Grant.status == "expired", (Grant.status == "granted") & (Grant.valid_until <= now))
        )
    elif status == "granted":
        statement = statement.where(Grant.status == "granted", Grant.valid_until > now)
    elif status is not None:
        statement = statement.where(Grant.status == status)
    if dataset_id is not None:
        statement = statement.where(Grant.dataset_id == dataset_id)
    if before is not None:
        statement = statement.where(Grant.id < before)
    result = await session.execute(statement)
    return result.scalars().all()


# --- Consents ----------------------------------------------------------------------------------


async def get_consent(session: AsyncSession, *, consent_id: str) -> Consent | None:
    """The consent with ``consent_id``."""
    return await session.get(Consent, consent_id)


async def consents_of(
    session: AsyncSession, *, subject_ref: str, before: str | None, limit: int
) -> Sequence[Consent]:
    """A subject's consents, newest first."""
    statement = (
        select(Consent)
        .where(Consent.subject_ref == subject_ref)
        .order_by(Consent.id.desc())
        .limit(limit)
    )
    if before is not None:
        statement = statement.where(Consent.id < before)
    result = await session.execute(statement)
    return result.scalars().all()


# --- Subjects (the read copy of identity) ------------------------------------------------------


async def get_person(session: AsyncSession, *, person_id: str) -> PersonSubject | None:
    """A person's subject row."""
    return await session.get(PersonSubject, person_id)


async def get_organisation(session: AsyncSession, *, org_id: str) -> OrganisationSubject | None:
    """An organisation's subject row."""
    return await session.get(OrganisationSubject, org_id)


# The applicant check's reads on every fetch citing an application: no session (libs.common).
# On SQLite on connections of their own, without a pool checkout or a greenlet trip.
_PERSON_REF = DirectRead(
    select(PersonSubject.subject_ref).where(PersonSubject.person_id == bindparam("key")),
    own_connections=True,
)
_ORGANISATION_REF = DirectRead(
    select(OrganisationSubject.subject_ref).where(OrganisationSubject.org_id == bindparam("key")),
    own_connections=True,
)


async def subject_ref_of(engine: AsyncEngine, *, kind: str, key: str) -> str | None:
    """The subject reference of the person (``kind="person"``) or organisation identity told
    the exchange of, if it has."""
    direct = _PERSON_REF if kind == "person" else _ORGANISATION_REF
    rows = await direct.rows(engine, {"key": key})
    return str(rows[0][0]) if rows else None


async def _names(
    session: AsyncSession, key: InstrumentedAttribute[str], name: InstrumentedAttribute[str],
    ids: Iterable[str],
) -> dict[str, str]:  # fmt: skip
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    result = await session.execute(select(key, name).where(key.in_(wanted)))
    return {row[0]: row[1] for row in result.all()}


async def organisation_names(session: AsyncSession, *, org_ids: Iterable[str]) -> dict[str, str]:
    """The names of the organisations among ``org_ids`` that the read copy knows."""
    return await _names(session, OrganisationSubject.org_id, OrganisationSubject.name, org_ids)


async def dataset_names(session: AsyncSession, *, dataset_ids: Iterable[str]) -> dict[str, str]:
    """The names of the datasets among ``dataset_ids``."""
    return await _names(session, ExchangeDataset.id, ExchangeDataset.name, dataset_ids)


# --- The access history ------------------------------------------------------------------------


async def accesses_of(
    session: AsyncSession, *, subject_ref: str, before: int | None, limit: int
) -> Sequence[LedgerEntry]:
    """Ledger entries about one subject, newest first."""
    statement = (
        select(LedgerEntry)
        .where(LedgerEntry.subject_ref == subject_ref)
        .order_by(LedgerEntry.position.desc())
        .limit(limit)
    )
    if before is not None:
        statement = statement.where(LedgerEntry.position < before)
    result = await session.execute(statement)
    return result.scalars().all()
