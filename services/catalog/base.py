"""The catalog part's declarative base and event tables, and what every catalogue concept
(datasets, service items, bundles) does with drafts the same way: who sees them, whose a list
of drafts holds, and that list's page (its query is in ``services.catalog.repository``); and
how items and bundles are marked published and retired."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Protocol, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase

from libs.common.auth import Principal, Role
from libs.common.database import new_metadata
from libs.common.errors import Forbidden
from libs.common.events import CloudEvent, define_event_tables, outbox
from libs.common.pagination import Page, encode_cursor
from services.catalog.ids import utcnow


class Base(DeclarativeBase):
    """The declarative base of the catalog part; its metadata is this part's schema."""

    metadata = new_metadata()


# The outbox, inbox and dead-letter tables of the event backbone (docs/events.md).
event_tables = define_event_tables(Base.metadata)

Drafted = TypeVar("Drafted", bound=Base)
View = TypeVar("View")


def is_staff_of(principal: Principal | None, owner_org_id: str | None, *roles: Role) -> bool:
    """Platform admins, and people of the owner department holding one of ``roles``; an entry
    of no department (the platform's own bundle) is the platform admins' only."""
    if principal is None:
        return False
    if principal.has_role(Role.PLATFORM_ADMIN):
        return True
    return (
        owner_org_id is not None
        and principal.org == owner_org_id
        and any(principal.has_role(role) for role in roles)
    )


def may_see_drafts(principal: Principal | None, owner_org_id: str | None) -> bool:
    """The one rule for every draft (dataset, item, bundle): platform admins, and the owner
    department's officers and admins. A department's other people and its systems see what is
    published, as everyone does."""
    return is_staff_of(principal, owner_org_id, Role.DEPT_ADMIN, Role.OFFICER)


def drafts_owner(principal: Principal, owner_org_id: str | None) -> str | None:
    """Whose drafts a list of drafts holds: platform admins ``owner_org_id``'s or everyone's
    (None); a department's officers and admins their own department's; 403 for anyone else or
    for another department."""
    if principal.has_role(Role.PLATFORM_ADMIN):
        return owner_org_id
    org = principal.org
    if org is None or not may_see_drafts(principal, org):
        raise Forbidden("Drafts are listed for their department's officers and admins only.")
    if owner_org_id not in (None, org):
        raise Forbidden("A department's officers and admins list their own drafts only.")
    return org


async def drafts_page(
    page_type: type[Page[View]],
    found: Sequence[Drafted],
    *,
    limit: int,
    code: Callable[[Drafted], str],
    view: Callable[[Drafted], Awaitable[View]],
) -> Page[View]:
    """A page of drafts as their views, with a code cursor when the page is full."""
    views = [await view(row) for row in found]
    next_cursor = encode_cursor(code(found[-1])) if len(found) == limit else None
    return page_type(items=views, next_cursor=next_cursor)


class Offered(Protocol):
    """A service item or a bundle: a draft offered in published versions, until retired."""

    status: str
    published_version: int | None
    has_unpublished_changes: bool
    updated_at: datetime
    retired_at: datetime | None


async def mark_published(
    session: AsyncSession, offered: Offered, *, version: int, at: datetime, event: CloudEvent
) -> None:
    """``offered``'s draft is now its version ``version``, told to the platform by ``event``
    (through the outbox, in the same transaction)."""
    offered.status = "published"
    offered.published_version = version
    offered.has_unpublished_changes = False
    offered.updated_at = at
    await session.flush()
    await outbox.add(session, event)


async def mark_retired(session: AsyncSession, offered: Offered, *, event: CloudEvent) -> None:
    """``offered`` is no longer offered (its versions, already unlisted, stay readable), told to
    the platform by ``event`` (through the outbox, in the same transaction)."""
    offered.status = "retired"
    offered.retired_at = offered.updated_at = utcnow()
    await session.flush()
    await outbox.add(session, event)
