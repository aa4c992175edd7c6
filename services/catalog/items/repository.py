"""Every query about service items and their versions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import (
    Select,
    and_,
    bindparam,
    case,
    delete,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from libs.common.database import DirectRead
from services.catalog.items.models import ServiceItem, ServiceItemTerm, ServiceItemVersion


@dataclass(frozen=True)
class ItemFilters:
    """What a search of published items is narrowed to; ``None`` leaves a filter out."""

    keyword: str | None = None  # normalised already (see service.normalise)
    # The search term (service.search_terms) whose rows drive a keyword search; when it is the
    # whole keyword, its rows are exactly the matches and no LIKE is needed.
    keyword_term: str | None = None
    code: str | None = None
    owner_org_id: str | None = None
    region_prefix: str | None = None
    applicant_type: str | None = None
    max_visits: int | None = None
    kind: str | None = None
    item_ids: Sequence[str] | None = None


def add(session: AsyncSession, entity: ServiceItem | ServiceItemVersion | ServiceItemTerm) -> None:
    """Stage a new item or version."""
    session.add(entity)


async def get(session: AsyncSession, *, item_id: str) -> ServiceItem | None:
    """The item with ``item_id``."""
    return await session.get(ServiceItem, item_id)


async def get_by_code(session: AsyncSession, *, code: str) -> ServiceItem | None:
    """The item with ``code``."""
    result = await session.execute(select(ServiceItem).where(ServiceItem.code == code))
    return result.scalar_one_or_none()


async def get_many(session: AsyncSession, *, item_ids: Sequence[str]) -> Sequence[ServiceItem]:
    """The items among ``item_ids`` that exist."""
    if not item_ids:
        return []
    result = await session.execute(select(ServiceItem).where(ServiceItem.id.in_(item_ids)))
    return result.scalars().all()


def add_all(session: AsyncSession, entities: Sequence[ServiceItemTerm]) -> None:
    """Stage many new rows."""
    session.add_all(entities)


def _public_read() -> Select[Any]:
    i, v = ServiceItem, ServiceItemVersion
    return (
        select(i.owner_org_id, i.status, i.retired_at, i.created_at, i.updated_at, v.public_body)
        .outerjoin(v, and_(v.item_id == i.id, v.version == i.published_version))
        .where(i.id == bindparam("item_id"))
    )


# The hottest read of the catalog, run straight on a pooled connection: building and keying a
# select, and a session around it, cost far more than SQLite takes to answer it.
_PUBLIC_READ = DirectRead(_public_read())


async def get_public(engine: AsyncEngine, *, item_id: str) -> tuple[Any, ...] | None:
    """In one query, outside any unit of work, what a public read of an item needs:
    ``(owner_org_id, status, retired_at, created_at, updated_at, public_body)``, the last the
    stored body of its latest published version (NULL when it has none). Times as the driver
    gives them (text on SQLite)."""
    rows = await _PUBLIC_READ.rows(engine, {"item_id": item_id})
    return tuple(rows[0]) if rows else None


async def get_version(
    session: AsyncSession, *, item_id: str, version: int
) -> ServiceItemVersion | None:
    """One published version of an item."""
    return await session.get(ServiceItemVersion, (item_id, version))


async def list_versions(
    session: AsyncSession, *, item_id: str, after: int | None, limit: int
) -> Sequence[ServiceItemVersion]:
    """An item's versions, oldest first, after the cursor."""
    statement = (
        select(ServiceItemVersion)
        .where(ServiceItemVersion.item_id == item_id)
        .order_by(ServiceItemVersion.version)
        .limit(limit)
    )
    if after is not None:
        statement = statement.where(ServiceItemVersion.version > after)
    result = await session.execute(statement)
    return result.scalars().all()


async def unlist(session: AsyncSession, *, item_id: str) -> None:
    """Take every version of an item out of the public search."""
    await session.execute(
        update(ServiceItemVersion)
        .where(ServiceItemVersion.item_id == item_id, ServiceItemVersion.listed.is_(True))
        .values(listed=False)
    )
    await session.execute(delete(ServiceItemTerm).where(ServiceItemTerm.item_id == item_id))


def _like_pattern(keyword: str) -> str:
    """``%keyword%`` with LIKE's wildcards (and the escape character) taken literally."""
    escaped = keyword.replace("/", "//").replace("%", "/%").replace("_", "/_")
    return f"%{escaped}%"


# What a search result needs of a version (and name_search, for the relevance cursor).
SUMMARY_COLUMNS = (
    ServiceItemVersion.item_id,
    ServiceItemVersion.version,
    ServiceItemVersion.code,
    ServiceItemVersion.name,
    ServiceItemVersion.name_search,
    ServiceItemVersion.kind,
    ServiceItemVersion.owner_org_id,
    ServiceItemVersion.region_code,
    ServiceItemVersion.for_individuals,
    ServiceItemVersion.for_enterprises,
    ServiceItemVersion.max_visits,
)


@dataclass(frozen=True)
class _Shape:
    """Which parts a search statement has; its values are bound parameters."""

    keyword: bool
    keyword_is_term: bool
    code: bool
    owner_org_id: bool
    region_prefix: bool
    applicant_type: str | None
    max_visits: bool
    kind: bool
    item_ids: bool
    sort: str
    after: bool


def _search_statement(shape: _Shape) -> Select[Any]:
    v = ServiceItemVersion
    statement = select(*SUMMARY_COLUMNS).where(v.listed.is_(True)).limit(bindparam("limit"))
    # With a keyword, one term's rows (already in relevance order, carrying copies of the
    # filtered columns) drive the query, so it reads only matching items and no sort is needed
    # for a keyword of one or two characters; a longer keyword is checked with LIKE on the few.
    f: Any = v
    code: Any = v.code
    rank: Any = None
    if shape.keyword:
        t = ServiceItemTerm
        statement = statement.join(t, and_(t.item_id == v.item_id, t.version == v.version))
        statement = statement.where(t.term == bindparam("term"))
        f, code = t, t.code
        if shape.keyword_is_term:
            rank = t.in_name
        else:
            statement = statement.where(v.text_search.like(bindparam("pattern"), escape="/"))
            # 0 when the name matches, 1 when only the description does.
            rank = case((v.name_search.like(bindparam("pattern"), escape="/"), 0), else_=1)
    if shape.code:
        statement = statement.where(f.code == bindparam("code"))
    if shape.owner_org_id:
        statement = statement.where(f.owner_org_id == bindparam("owner_org_id"))
    if shape.region_prefix:
        statement = statement.where(f.region_code.startswith(bindparam("region_prefix")))
    if shape.applicant_type == "individual":
        statement = statement.where(f.for_individuals.is_(True))
    elif shape.applicant_type == "enterprise":
        statement = statement.where(f.for_enterprises.is_(True))
    if shape.max_visits:
        statement = statement.where(f.max_visits <= bindparam("max_visits"))
    if shape.kind:
        statement = statement.where(f.kind == bindparam("kind"))
    if shape.item_ids:
        statement = statement.where(v.item_id.in_(bindparam("item_ids", expanding=True)))
    first: Any = bindparam("after_0")
    second: Any = bindparam("after_1")
    if shape.sort == "relevance" and rank is not None:
        statement = statement.order_by(rank, code)
        if shape.after:
            statement = statement.where(or_(rank > first, and_(rank == first, code > second)))
    elif shape.sort == "name":
        statement = statement.order_by(v.name, v.code)
        if shape.after:
            statement = statement.where(or_(v.name > first, and_(v.name == first, v.code > second)))
    else:
        statement = statement.order_by(v.code)
        if shape.after:
            statement = statement.where(v.code > first)
    return statement


# One statement per shape, built once: building and keying a select cost more than SQLite
# takes to answer most searches. The shapes are finite (a few hundred at most).
_statements: dict[_Shape, Select[Any]] = {}
_direct: dict[_Shape, DirectRead] = {}


async def search_published(
    session: AsyncSession,
    *,
    filters: ItemFilters,
    sort: str,
    after: list[Any] | None,
    limit: int,
) -> Sequence[Sequence[Any]]:
    """Listed versions matching every filter, in ``sort`` order, after the cursor position:
    the columns a search result shows (``SUMMARY_COLUMNS``, in that order, as tuples; booleans
    may be 0 and 1), not the stored snapshot and body.

    The cursor position is ``[rank, code]`` for relevance, ``[name, code]`` for name and
    ``[code]`` for code.
    """
    keyword = filters.keyword or None
    term = (filters.keyword_term or keyword[:2]) if keyword else None
    shape = _Shape(
        keyword=keyword is not None, keyword_is_term=term == keyword,
        code=filters.code is not None, owner_org_id=filters.owner_org_id is not None,
        region_prefix=filters.region_prefix is not None,
        applicant_type=filters.applicant_type, max_visits=filters.max_visits is not None,
        kind=filters.kind is not None, item_ids=filters.item_ids is not None, sort=sort,
        after=after is not None,
    )  # fmt: skip
    statement = _statements.get(shape)
    if statement is None:
        statement = _statements[shape] = _search_statement(shape)
    values: dict[str, Any] = {
        "limit": limit, "term": term, "pattern": _like_pattern(keyword) if keyword else None,
        "code": filters.code, "owner_org_id": filters.owner_org_id,
        "region_prefix": filters.region_prefix, "max_visits": filters.max_visits,
        "kind": filters.kind, "item_ids": list(filters.item_ids or ()),
        "after_0": after[0] if after else None,
        "after_1": after[1] if after and len(after) > 1 else None,
    }  # fmt: skip
    if shape.item_ids:
        # An expanding IN list is rendered for each execution: Core, on the session's connection.
        connection = await session.connection()
        result = await connection.execute(statement, values)
        return result.all()
    # Columns only, straight on a pooled connection: no unit of work, no result objects.
    direct = _direct.get(shape)
    if direct is None:
        direct = _direct[shape] = DirectRead(statement)
    return await direct.rows(cast(AsyncEngine, session.bind), values)
