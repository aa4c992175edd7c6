"""Who used my data (数据使用记录, Estonia's data tracker): every ledger entry about the caller's
own subject reference, and nothing about anyone else's."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.auth import Principal
from services.exchange.access import repository as access_repository
from services.exchange.access.schemas import AccessView
from services.exchange.access.subjects import Whose, own_subject


async def my_accesses(
    *,
    session: AsyncSession,
    principal: Principal,
    whose: Whose | None,
    before: int | None,
    limit: int,
) -> list[AccessView]:
    """The accesses to the caller's records (or their enterprise's), newest first."""
    subject = await own_subject(session, principal=principal, whose=whose)
    entries = await access_repository.accesses_of(
        session, subject_ref=subject.subject_ref, before=before, limit=limit
    )
    orgs = await access_repository.organisation_names(
        session, org_ids=[e.actor_org_id for e in entries if e.actor_org_id]
    )
    datasets = await access_repository.dataset_names(
        session, dataset_ids=[e.dataset_id for e in entries]
    )
    return [
        AccessView(
            position=e.position,
            recorded_at=e.recorded_at,
            organisation_id=e.actor_org_id,
            organisation_name=orgs.get(e.actor_org_id) if e.actor_org_id else None,
            client_id=e.client_id,
            dataset_id=e.dataset_id,
            dataset_name=datasets.get(e.dataset_id),
            fields=list(e.fields),
            purpose=e.purpose,
            basis_kind=e.basis_kind,
            basis_ref=e.basis_ref,
            outcome=e.outcome,
            reason=e.reason,
        )
        for e in entries
    ]
