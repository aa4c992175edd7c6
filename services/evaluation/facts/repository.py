"""Queries of evaluation's read copies and facts: those the APIs need, and those the indicator
projection reads and writes them with."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, cast

from sqlalchemy import RowMapping, Table, and_, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.database import dialect_insert
from services.evaluation.facts.models import (
    ApplicationFact,
    BundleVersionCopy,
    ExchangeSeen,
    ItemVersionCopy,
    OrganisationCopy,
)

# Ids per ``IN (...)`` list: well under SQLite's and asyncpg's bound-parameter limits.
CHUNK = 500
APPLICATIONS = cast(Table, ApplicationFact.__table__)
ITEMS = cast(Table, ItemVersionCopy.__table__)
BUNDLES = cast(Table, BundleVersionCopy.__table__)
SEEN = cast(Table, ExchangeSeen.__table__)


async def get_application(session: AsyncSession, application_id: str) -> ApplicationFact | None:
    """What evaluation knows of an application from workflow's events."""
    return await session.get(ApplicationFact, application_id)


async def organisations(session: AsyncSession) -> list[OrganisationCopy]:
    """Every organisation evaluation has heard of."""
    return list((await session.execute(select(OrganisationCopy))).scalars())


async def item_names(session: AsyncSession, item_ids: Iterable[str]) -> dict[str, str]:
    """The latest known name of each item."""
    ids = sorted(set(item_ids))
    if not ids:
        return {}
    rows = await session.execute(
        select(ItemVersionCopy.item_id, ItemVersionCopy.name)
        .where(ItemVersionCopy.item_id.in_(ids))
        .order_by(ItemVersionCopy.item_id, ItemVersionCopy.version)
    )
    return {str(item_id): str(name) for item_id, name in rows}


async def items_of_department(session: AsyncSession, department_id: str) -> list[str]:
    """The items a department owns (any version)."""
    rows = await session.execute(
        select(ItemVersionCopy.item_id)
        .where(ItemVersionCopy.owner_org_id == department_id)
        .distinct()
    )
    return sorted(r[0] for r in rows)


def chunks(values: Sequence[Any]) -> Iterable[Sequence[Any]]:
    """``values`` in slices of at most ``CHUNK``."""
    for start in range(0, len(values), CHUNK):
        yield values[start : start + CHUNK]


async def lock_projection(session: AsyncSession, key: int) -> None:
    """Take the transaction-scoped advisory lock ``key`` (PostgreSQL; SQLite has one writer)."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


async def first_seen(session: AsyncSession, keys: Sequence[str]) -> set[str]:
    """Record ``keys`` as counted; returns those not counted before."""
    insert = dialect_insert(session.get_bind().dialect.name)
    statement = insert(SEEN).on_conflict_do_nothing(index_elements=["key"]).returning(SEEN.c.key)
    result = await session.execute(statement, [{"key": k} for k in keys])
    return set(result.scalars().all())


async def rows_by_key(
    session: AsyncSession, table: Table, key: str, ids: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """The rows of ``table`` whose column ``key`` is one of ``ids``, as dicts by that key."""
    found: dict[str, dict[str, Any]] = {}
    for chunk in chunks(ids):
        rows = await session.execute(select(table).where(table.c[key].in_(chunk)))
        for row in rows.mappings():
            found[row[key]] = dict(row)
    return found


async def applications_referencing(
    session: AsyncSession, versions: Sequence[tuple[str, str, int]]
) -> list[str]:
    """Applications that refer to one of ``versions`` (kind ``item``/``bundle``, id, version)."""
    table = APPLICATIONS
    found: list[str] = []
    for chunk in chunks(versions):
        conditions = [
            and_(table.c.item_id == i, table.c.item_version == v)
            if kind == "item"
            else and_(table.c.bundle_id == i, table.c.bundle_version == v)
            for kind, i, v in chunk
        ]
        rows = await session.execute(select(table.c.application_id).where(or_(*conditions)))
        found += [r[0] for r in rows]
    return found


async def version_copies(
    session: AsyncSession, table: Table, key: str, ids: Sequence[str]
) -> list[RowMapping]:
    """Every version's read copy of the items or bundles (``table``, id column ``key``) ``ids``."""
    found: list[RowMapping] = []
    for chunk in chunks(ids):
        found += (await session.execute(select(table).where(table.c[key].in_(chunk)))).mappings()
    return found
