"""Revision exchange_0006 resolves the duplicate open grants made before it, then adds the
partial unique index that keeps one open grant per (requester, dataset)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from libs.common.database import Database
from libs.common.migrations import migrate
from services.exchange.access.models import Grant


def _grant(grant_id: str, org: str, status: str, *, lapsed: bool = False) -> dict[str, object]:
    now = datetime.now(UTC)
    return {
        "id": grant_id, "dataset_id": "ds-a", "requester_org_id": org, "owner_org_id": "org-o",
        "status": status, "fields": ["x"], "unmasked_fields": [], "statutes": [],
        "purpose": "测试", "valid_from": now - timedelta(days=10),
        "valid_until": now + timedelta(days=-1 if lapsed else 30), "requested_by": "t",
        "created_at": now, "updated_at": now,
    }  # fmt: skip


async def test_duplicates_are_resolved_and_a_second_open_grant_is_refused(
    database_url: str,
) -> None:
    await asyncio.to_thread(migrate, "services.exchange", database_url, "exchange_0005")
    database = Database(database_url)
    try:
        async with database.sessionmaker() as session:
            await session.execute(insert(Grant), [
                # org-a: a lapsed grant, the one in force, a pending one made in the race.
                _grant("a1", "org-a", "granted", lapsed=True),
                _grant("a2", "org-a", "granted"),
                _grant("a3", "org-a", "pending"),
                # org-b: two pending ones (the newer is kept) and a refused one (left alone).
                _grant("b1", "org-b", "pending"),
                _grant("b2", "org-b", "pending"),
                _grant("b3", "org-b", "refused"),
                # org-c: one lapsed grant alone: left as it was.
                _grant("c1", "org-c", "granted", lapsed=True),
            ])  # fmt: skip
            await session.commit()
        await asyncio.to_thread(migrate, "services.exchange", database_url)
        async with database.sessionmaker() as session:
            rows = await session.execute(select(Grant).order_by(Grant.id))
            stored = {g.id: g for g in rows.scalars()}
        assert {i: g.status for i, g in stored.items()} == {
            "a1": "expired", "a2": "granted", "a3": "revoked",
            "b1": "revoked", "b2": "pending", "b3": "refused",
            "c1": "granted",
        }  # fmt: skip
        assert stored["a3"].revoked_by == "migration:exchange_0006"
        assert stored["a3"].revoke_reason == "duplicate of grant a2"
        assert stored["b1"].revoke_reason == "duplicate of grant b2"
        async with database.sessionmaker() as session:
            with pytest.raises(IntegrityError):
                await session.execute(insert(Grant), [_grant("a4", "org-a", "pending")])
    finally:
        await database.dispose()
