"""The ledger's read side for auditors: listing, verification, published keys."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from libs.common.pagination import InvalidCursor
from services.exchange.ledger import repository
from services.exchange.ledger.models import LedgerCheckpoint, LedgerEntry, to_micros
from services.exchange.ledger.schemas import (
    CheckpointView,
    LedgerEntryView,
    LedgerKeys,
    PublicJwk,
    TamperingView,
    VerificationView,
)
from services.exchange.ledger.signing import VerificationKeys, public_jwk, public_pem
from services.exchange.ledger.verification import verify_ledger


def position_cursor(after: object) -> int | None:
    """The position a list cursor stands for; 400 if it is not one the ledger gave out."""
    if after is None:
        return None
    if isinstance(after, bool) or not isinstance(after, int) or after < 1:
        raise InvalidCursor("The cursor is not one this list gave out.")
    return after


async def list_entries(
    *,
    session: AsyncSession,
    dataset_id: str | None,
    actor_org_id: str | None,
    since: datetime | None,
    until: datetime | None,
    after: object,
    limit: int,
) -> list[LedgerEntryView]:
    """Entries newest first, filtered."""
    rows = await repository.list_entries(
        session,
        dataset_id=dataset_id,
        actor_org_id=actor_org_id,
        since=since,
        until=until,
        before_position=position_cursor(after),
        limit=limit,
    )
    return [entry_view(row) for row in rows]


def entry_view(entry: LedgerEntry) -> LedgerEntryView:
    """The API's view of an entry."""
    return LedgerEntryView.model_validate(entry)


async def list_checkpoints(
    *, session: AsyncSession, after: object, limit: int
) -> list[CheckpointView]:
    """Checkpoints newest first."""
    rows = await repository.list_checkpoints(
        session, before_position=position_cursor(after), limit=limit
    )
    return [checkpoint_view(row) for row in rows]


def checkpoint_view(checkpoint: LedgerCheckpoint) -> CheckpointView:
    """The API's view of a checkpoint, with the exact signed time."""
    return CheckpointView(
        position=checkpoint.position,
        entry_hash=checkpoint.entry_hash,
        signed_at=checkpoint.signed_at,
        signed_at_us=to_micros(checkpoint.signed_at),
        key_id=checkpoint.key_id,
        signature=checkpoint.signature,
    )


async def verify(
    *, engine: AsyncEngine, keys: VerificationKeys, max_checkpoint_gap: int | None = None
) -> VerificationView:
    """Recompute the chain and every checkpoint."""
    report = await verify_ledger(engine, keys, max_checkpoint_gap=max_checkpoint_gap)
    problem = report.problem
    return VerificationView(
        valid=report.valid,
        entries=report.entries,
        head_position=report.head_position,
        head_hash=report.head_hash,
        checkpoints=report.checkpoints,
        last_checkpoint_position=report.last_checkpoint_position,
        unsigned_entries=report.unsigned_entries,
        problem=None
        if problem is None
        else TamperingView(kind=problem.kind, position=problem.position, detail=problem.detail),
        seconds=round(report.seconds, 6),
        entries_per_s=round(report.entries_per_s, 1),
    )


def published_keys(*, keys: VerificationKeys, current_key_id: str) -> LedgerKeys:
    """Every trusted checkpoint key, the current one first."""
    ordered = sorted(keys.by_id.items(), key=lambda item: item[0] != current_key_id)
    return LedgerKeys(
        keys=[
            PublicJwk.model_validate(
                {**public_jwk(key), "pem": public_pem(key), "current": kid == current_key_id}
            )
            for kid, key in ordered
        ]
    )
