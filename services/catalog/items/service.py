"""The rules about service items: who manages them, drafts, publishing, versions and search."""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from libs.common.auth import Principal, Role
from libs.common.errors import FieldError, Forbidden, InvalidInput
from libs.common.events import new_event, outbox
from libs.common.pagination import CursorShape, CursorText, PageRequest
from services.catalog import base as catalog_base
from services.catalog import repository as catalog_repository
from services.catalog.ids import utcnow
from services.catalog.items import checks
from services.catalog.items import repository as items_repository
from services.catalog.items.events import ItemDraftChanged, ItemPublished
from services.catalog.items.events import ItemRetired as ItemRetiredEvent
from services.catalog.items.exceptions import (
    ItemExists,
    ItemNotFound,
    ItemRetired,
    ItemVersionNotFound,
    NothingToPublish,
)
from services.catalog.items.models import ServiceItem, ServiceItemTerm, ServiceItemVersion
from services.catalog.items.repository import ItemFilters
from services.catalog.items.schemas import (
    Item,
    ItemCreate,
    ItemDefinition,
    ItemSnapshot,
    ItemStatus,
    ItemSummary,
    ItemUpdate,
    ItemVersion,
    UtcDatetime,
)

_DEFINITION_FIELDS = set(ItemDefinition.model_fields)


def normalise(text: str) -> str:
    """Text as keyword search compares it: NFKC (full-width to half-width) and lower-case."""
    return unicodedata.normalize("NFKC", text).casefold()


def search_terms(text: str) -> set[str]:
    """What keyword search indexes of a normalised text: every character and every pair of
    adjacent characters, except those with white space. Every keyword of one or two characters
    is then one term; a longer one is found through any of its pairs and checked with LIKE."""
    grams = {text[i : i + 2] for i in range(len(text) - 1)} | set(text)
    return {g for g in grams if g and not any(c.isspace() for c in g)}


def keyword_term(keyword: str) -> str | None:
    """The term a search for the (normalised) ``keyword`` walks: the keyword itself when it is
    one term, else its first pair of characters (its first character when every pair has
    white space)."""
    terms = search_terms(keyword)
    if keyword in terms:
        return keyword
    pairs = [keyword[i : i + 2] for i in range(len(keyword) - 1)]
    return next((p for p in pairs if p in terms), next((c for c in keyword if c in terms), None))


def terms_of(version: ServiceItemVersion) -> list[ServiceItemTerm]:
    """The search-index rows of a listed version."""
    return [
        ServiceItemTerm(
            term=term, in_name=0 if term in version.name_search else 1, code=version.code,
            item_id=version.item_id, version=version.version,
            owner_org_id=version.owner_org_id, kind=version.kind,
            region_code=version.region_code, for_individuals=version.for_individuals,
            for_enterprises=version.for_enterprises, max_visits=version.max_visits,
        )
        for term in sorted(search_terms(version.text_search))
    ]  # fmt: skip


# What an anonymous read adds to a version's stored public body: the item's current state.
_STATE_FIELDS = {"status", "retired_at", "created_at", "updated_at"}


class _ItemState(BaseModel):
    status: ItemStatus
    retired_at: UtcDatetime | None
    created_at: UtcDatetime
    updated_at: UtcDatetime


def public_body(version: ServiceItemVersion) -> str:
    """The public view of a version as JSON, without the item's state (``_STATE_FIELDS``),
    which changes after publishing: made once at publish, served as is by anonymous reads."""
    view = Item.model_validate(
        {
            **version.snapshot, "id": version.item_id, "status": "published",
            "showing": "published", "version": version.version, "has_unpublished_changes": None,
            "published_at": version.published_at, "retired_at": None,
            "created_at": version.published_at, "updated_at": version.published_at,
        },
        strict=False,
    )  # fmt: skip
    body = view.model_dump(mode="json", exclude=_STATE_FIELDS)
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))


def _with_state(
    body: str,
    *,
    status: str,
    retired_at: datetime | str | None,
    created_at: datetime | str,
    updated_at: datetime | str,
) -> str:
    state = _ItemState.model_validate(
        {"status": status, "retired_at": retired_at, "created_at": created_at,
         "updated_at": updated_at},
        strict=False,
    ).model_dump_json()  # fmt: skip
    return f"{body[:-1]},{state[1:]}"


def region_prefix(region_code: str) -> str:
    """The code prefix a region filter matches: 330000 → 33, 330100 → 3301, 330106 → 330106."""
    if region_code.endswith("0000"):
        return region_code[:2]
    if region_code.endswith("00"):
        return region_code[:4]
    return region_code


def may_manage(principal: Principal | None, owner_org_id: str | None) -> bool:
    """Platform admins manage everything; a department admin their own department's entries."""
    return catalog_base.is_staff_of(principal, owner_org_id, Role.DEPT_ADMIN)


def _ensure_manages(principal: Principal, owner_org_id: str) -> None:
    if not may_manage(principal, owner_org_id):
        raise Forbidden("Only the owning department's admins and platform admins manage this item.")


def _definition(item: ServiceItem) -> ItemDefinition:
    return ItemDefinition.model_validate(item.definition, strict=False)


def snapshot_of(item: ServiceItem) -> ItemSnapshot:
    """The item's working copy as a full snapshot."""
    return ItemSnapshot.model_validate(
        {**item.definition, "item_id": item.id, "code": item.code,
         "owner_org_id": item.owner_org_id},
        strict=False,
    )  # fmt: skip


async def _draft_changed(session: AsyncSession, item: ServiceItem, principal: Principal) -> None:
    await outbox.add(
        session,
        new_event(
            ItemDraftChanged(
                item_id=item.id, code=item.code, owner_org_id=item.owner_org_id,
                status=item.status, changed_by=principal.sub,
            ),
            subject=item.id,
        ),
    )  # fmt: skip


async def create(*, session: AsyncSession, principal: Principal, draft: ItemCreate) -> ServiceItem:
    """Describe a new service item, as a draft of the caller's (or the given) department."""
    owner = draft.owner_org_id or principal.org
    if owner is None:
        raise InvalidInput.for_field("owner_org_id", "name the department that owns the item")
    _ensure_manages(principal, owner)
    definition = ItemDefinition.model_validate(draft.model_dump(include=_DEFINITION_FIELDS))
    await checks.check_definition(session, definition=definition)
    if await items_repository.get_by_code(session, code=draft.code):
        raise ItemExists(f"An item with code {draft.code} exists already.")
    item = ServiceItem(
        code=draft.code,
        owner_org_id=owner,
        status="draft",
        has_unpublished_changes=True,
        name=definition.name,
        definition=definition.model_dump(mode="json"),
    )
    items_repository.add(session, item)
    await session.flush()
    await _draft_changed(session, item, principal)
    return item


async def get(*, session: AsyncSession, item_id: str) -> ServiceItem:
    """An item, or a not-found problem."""
    item = await items_repository.get(session, item_id=item_id)
    if item is None:
        raise ItemNotFound(f"No service item {item_id}.")
    return item


async def update(
    *, session: AsyncSession, principal: Principal, item_id: str, update: ItemUpdate
) -> ServiceItem:
    """Edit an item's working copy; a published item keeps its published version meanwhile."""
    item = await get(session=session, item_id=item_id)
    _ensure_manages(principal, item.owner_org_id)
    if item.status == "retired":
        raise ItemRetired("A retired item cannot change.")
    changes = update.model_dump(mode="json", exclude_unset=True)
    merged = {**item.definition, **changes}
    try:
        definition = ItemDefinition.model_validate(merged, strict=False)
    except ValidationError as exc:
        errors = [
            FieldError(loc=["body", *e["loc"]], msg=e["msg"], type=e["type"]) for e in exc.errors()
        ]
        raise InvalidInput("The edited item is not valid.", errors=errors) from exc
    await checks.check_definition(session, definition=definition)
    item.definition = definition.model_dump(mode="json")
    item.name = definition.name
    item.has_unpublished_changes = True
    item.updated_at = utcnow()
    await session.flush()
    await _draft_changed(session, item, principal)
    return item


async def publish(
    *, session: AsyncSession, principal: Principal, item_id: str
) -> ServiceItemVersion:
    """Freeze the working copy as the next version; it replaces the previous one in search."""
    item = await get(session=session, item_id=item_id)
    _ensure_manages(principal, item.owner_org_id)
    if item.status == "retired":
        raise ItemRetired("A retired item cannot be published again.")
    if not item.has_unpublished_changes:
        raise NothingToPublish("The draft is the same as the latest published version.")
    # Datasets may have changed since the draft was written: check the sources again.
    await checks.check_definition(session, definition=_definition(item))
    snapshot = snapshot_of(item)
    number = (item.published_version or 0) + 1
    await items_repository.unlist(session, item_id=item.id)
    version = ServiceItemVersion(
        item_id=item.id,
        version=number,
        listed=True,
        code=item.code,
        owner_org_id=item.owner_org_id,
        name=snapshot.name,
        name_search=normalise(f"{snapshot.name} {snapshot.name_en or ''}"),
        text_search=normalise(
            f"{snapshot.name} {snapshot.name_en or ''} {snapshot.description} "
            f"{snapshot.description_en or ''}"
        ),
        kind=snapshot.kind,
        region_code=snapshot.region_code,
        for_individuals="individual" in snapshot.applicant_types,
        for_enterprises="enterprise" in snapshot.applicant_types,
        max_visits=snapshot.max_visits,
        snapshot=snapshot.model_dump(mode="json"),
        published_at=utcnow(),
    )
    version.public_body = public_body(version)
    items_repository.add(session, version)
    items_repository.add_all(session, terms_of(version))
    await catalog_base.mark_published(
        session, item, version=number, at=version.published_at,
        event=new_event(
            ItemPublished(
                item_id=item.id, code=item.code, owner_org_id=item.owner_org_id,
                version=number, snapshot=version.snapshot,
            ),
            subject=item.id,
        ),
    )  # fmt: skip
    return version


async def retire(*, session: AsyncSession, principal: Principal, item_id: str) -> ServiceItem:
    """Stop offering an item: it leaves search; its versions stay readable for applications."""
    item = await get(session=session, item_id=item_id)
    _ensure_manages(principal, item.owner_org_id)
    if item.status == "retired":
        return item
    await items_repository.unlist(session, item_id=item.id)
    await catalog_base.mark_retired(
        session, item,
        event=new_event(
            ItemRetiredEvent(
                item_id=item.id, code=item.code, owner_org_id=item.owner_org_id,
                version=item.published_version,
            ),
            subject=item.id,
        ),
    )  # fmt: skip
    return item


async def get_version(
    *, session: AsyncSession, principal: Principal | None, item_id: str, version: int
) -> ServiceItemVersion:
    """One published version; versions are public once made."""
    found = await items_repository.get_version(session, item_id=item_id, version=version)
    if found is None:
        raise ItemVersionNotFound(f"Service item {item_id} has no version {version}.")
    return found


async def list_versions(
    *, session: AsyncSession, item_id: str, after: int | None, limit: int
) -> Sequence[ServiceItemVersion]:
    """An item's versions, oldest first."""
    await get(session=session, item_id=item_id)
    return await items_repository.list_versions(session, item_id=item_id, after=after, limit=limit)


async def read_published(
    *, engine: AsyncEngine, principal: Principal | None, item_id: str
) -> str | None:
    """For those who see an item's published version, the public body stored at publish with the
    item's state, as JSON text (one query outside any unit of work, nothing validated but the
    state). None when the caller sees the draft or nothing is published: then ``read``."""
    found = await items_repository.get_public(engine, item_id=item_id)
    if found is None:
        raise ItemNotFound(f"No service item {item_id}.")
    owner_org_id, status, retired_at, created_at, updated_at, body = found
    if body is None or catalog_base.may_see_drafts(principal, owner_org_id):
        return None
    return _with_state(
        body, status=status, retired_at=retired_at, created_at=created_at, updated_at=updated_at
    )


async def read(*, session: AsyncSession, principal: Principal | None, item_id: str) -> Item:
    """An item as ``view`` shows it."""
    item = await get(session=session, item_id=item_id)
    return await view(session=session, principal=principal, item=item)


async def view(*, session: AsyncSession, principal: Principal | None, item: ServiceItem) -> Item:
    """The API's view: the draft for those who may see it, else the latest published version."""
    if catalog_base.may_see_drafts(principal, item.owner_org_id):
        return _view(item, snapshot_of(item), showing="draft", published_at=None, insider=True)
    if item.published_version is None:
        raise ItemNotFound(f"No service item {item.id}.")
    version = await items_repository.get_version(
        session, item_id=item.id, version=item.published_version
    )
    if version is None:
        raise ItemNotFound(f"No service item {item.id}.")
    return _view(
        item, ItemSnapshot.model_validate(version.snapshot, strict=False),
        showing="published", published_at=version.published_at, insider=False,
    )  # fmt: skip


def _view(
    item: ServiceItem, snapshot: ItemSnapshot, *, showing: str, published_at: Any, insider: bool
) -> Item:
    return Item.model_validate(
        {
            **snapshot.model_dump(),
            "id": item.id,
            "status": item.status,
            "showing": showing,
            "version": item.published_version,
            "has_unpublished_changes": item.has_unpublished_changes if insider else None,
            "published_at": published_at,
            "retired_at": item.retired_at,
            "created_at": item.created_at,
            "updated_at": item.updated_at,
        }
    )


def version_view(version: ServiceItemVersion) -> ItemVersion:
    """The API's view of a version."""
    return ItemVersion(
        item_id=version.item_id,
        version=version.version,
        published_at=version.published_at,
        snapshot=ItemSnapshot.model_validate(version.snapshot, strict=False),
    )


def summary(row: Sequence[Any]) -> ItemSummary:
    """A search result, from a row of ``items_repository.SUMMARY_COLUMNS``."""
    (item_id, version, code, name, _name_search, kind, owner_org_id, region_code,
     for_individuals, for_enterprises, max_visits) = row  # fmt: skip
    types = [t for t, on in (("individual", bool(for_individuals)),
                             ("enterprise", for_enterprises)) if on]  # fmt: skip
    return ItemSummary(
        id=item_id, code=code, name=name, kind=kind, owner_org_id=owner_org_id,
        region_code=region_code, applicant_types=types, max_visits=max_visits, version=version,
        status="published",
    )  # fmt: skip


def search_filters(
    *,
    keyword: str | None,
    code: str | None,
    owner_org_id: str | None,
    region_code: str | None,
    applicant_type: str | None,
    max_visits: int | None,
    online_only: bool,
    kind: str | None,
    item_ids: Sequence[str] | None,
) -> ItemFilters:
    """The repository's filters from a search request."""
    normalised = normalise(keyword).strip() if keyword else None
    visits = 0 if online_only else max_visits
    return ItemFilters(
        keyword=normalised or None, keyword_term=keyword_term(normalised) if normalised else None,
        code=code, owner_org_id=owner_org_id,
        region_prefix=region_prefix(region_code) if region_code else None,
        applicant_type=applicant_type, max_visits=visits, kind=kind, item_ids=item_ids,
    )  # fmt: skip


# A search cursor names its sort order: ["r", rank, code], ["n", name, code] or ["c", code].
_SEARCH_CURSORS: dict[str, CursorShape[tuple[Any, ...]]] = {
    "relevance": CursorShape(tuple[Literal["r"], Literal[0, 1], CursorText]),
    "name": CursorShape(tuple[Literal["n"], CursorText, CursorText]),
    "code": CursorShape(tuple[Literal["c"], CursorText]),
}


async def search(
    *, session: AsyncSession, filters: ItemFilters, sort: str, page: PageRequest
) -> tuple[Sequence[Sequence[Any]], list[Any] | None]:
    """Published items matching ``filters``; returns the page and the next cursor position
    (a cursor of another sort order is InvalidCursor)."""
    if sort == "relevance" and not filters.keyword:
        sort = "code"
    after = page.position(_SEARCH_CURSORS[sort])
    position = list(after[1:]) if after is not None else None
    limit = page.limit
    found = await items_repository.search_published(
        session, filters=filters, sort=sort, after=position, limit=limit
    )
    if len(found) < limit:
        return found, None
    _, _, code, name, name_search, *_ = found[-1]  # items_repository.SUMMARY_COLUMNS
    if sort == "relevance":
        keyword = filters.keyword or ""
        return found, ["r", 0 if keyword in name_search else 1, code]
    if sort == "name":
        return found, ["n", name, code]
    return found, ["c", code]


async def drafts(
    *,
    session: AsyncSession,
    principal: Principal,
    owner_org_id: str | None,
    after: str | None,
    limit: int,
) -> Sequence[ServiceItem]:
    """Items with unpublished changes: a department's own, or any for platform admins."""
    return await catalog_repository.search_drafts(
        session, ServiceItem, owner_org_id=catalog_base.drafts_owner(principal, owner_org_id),
        after=after, limit=limit,
    )  # fmt: skip


async def published_versions(
    *, session: AsyncSession, item_ids: Sequence[str]
) -> dict[str, ServiceItemVersion]:
    """The latest published version of each listed item among ``item_ids``."""
    items = await items_repository.get_many(session, item_ids=item_ids)
    found: dict[str, ServiceItemVersion] = {}
    for item in items:
        if item.status != "published" or item.published_version is None:
            continue
        version = await items_repository.get_version(
            session, item_id=item.id, version=item.published_version
        )
        if version is not None:
            found[item.id] = version
    return found
