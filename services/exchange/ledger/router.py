"""The access ledger's API: published keys (anyone), verification and listings (auditors)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from libs.common.auth import AUTH_RESPONSES, Principal, Role, require_roles
from libs.common.database import SessionDep
from libs.common.errors import InvalidInput
from libs.common.pagination import INT_CURSOR, Page, PageDep, encode_cursor
from services.exchange.ledger import service as ledger_service
from services.exchange.ledger.schemas import (
    CheckpointView,
    LedgerEntryView,
    LedgerKeys,
    VerificationView,
)
from services.exchange.ledger.setup import LedgerDep, VerificationKeysDep

router = APIRouter(prefix="/ledger", tags=["ledger"])

Auditor = Annotated[Principal, Depends(require_roles(Role.AUDITOR, Role.PLATFORM_ADMIN))]
Id = Annotated[str | None, Query(min_length=1, max_length=255)]


@router.get(
    "/keys",
    summary="The Ed25519 public keys checkpoints are signed with (JWK set; anyone)",
)
async def ledger_keys(ledger: LedgerDep, keys: VerificationKeysDep) -> LedgerKeys:
    return ledger_service.published_keys(keys=keys, current_key_id=ledger.signer.key_id)


@router.get(
    "/verification",
    summary="Recompute the whole chain and every checkpoint (auditors, platform admins)",
    responses=AUTH_RESPONSES,
)
async def verify_ledger(
    _: Auditor, request: Request, keys: VerificationKeysDep
) -> VerificationView:
    settings = request.app.state.settings
    return await ledger_service.verify(
        engine=request.app.state.database.engine,
        keys=keys,
        max_checkpoint_gap=settings.ledger_checkpoint_every + settings.ledger_max_batch,
    )


@router.get(
    "/entries",
    summary="Ledger entries, newest first (auditors, platform admins)",
    responses=AUTH_RESPONSES,
)
async def list_entries(
    _: Auditor,
    session: SessionDep,
    page: PageDep,
    dataset_id: Id = None,
    actor_org_id: Id = None,
    since: Annotated[datetime | None, Query(description="Recorded at or after (ISO 8601).")] = None,
    until: Annotated[datetime | None, Query(description="Recorded before (ISO 8601).")] = None,
) -> Page[LedgerEntryView]:
    for name, value in (("since", since), ("until", until)):
        if value is not None and value.tzinfo is None:
            raise InvalidInput.for_field(name, "give a time zone (e.g. Z)", location="query")
    items = await ledger_service.list_entries(
        session=session,
        dataset_id=dataset_id,
        actor_org_id=actor_org_id,
        since=since,
        until=until,
        after=page.position(INT_CURSOR),
        limit=page.limit,
    )
    next_cursor = encode_cursor(items[-1].position) if len(items) == page.limit else None
    return Page[LedgerEntryView](items=items, next_cursor=next_cursor)


@router.get(
    "/checkpoints",
    summary="Signed checkpoints, newest first (auditors, platform admins)",
    responses=AUTH_RESPONSES,
)
async def list_checkpoints(_: Auditor, session: SessionDep, page: PageDep) -> Page[CheckpointView]:
    items = await ledger_service.list_checkpoints(
        session=session, after=page.position(INT_CURSOR), limit=page.limit
    )
    next_cursor = encode_cursor(items[-1].position) if len(items) == page.limit else None
    return Page[CheckpointView](items=items, next_cursor=next_cursor)
