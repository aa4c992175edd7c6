"""Published versions read from the read copy, parsed once (versions never change)."""

from __future__ import annotations

import time
from collections import OrderedDict
from datetime import datetime
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from services.workflow.applications.exceptions import CatalogueNotSynchronised
from services.workflow.catalogue import repository as catalogue_repository
from services.workflow.catalogue.schemas import BundleSnapshot, ItemSnapshot

_CACHE_SIZE = 1024
K = TypeVar("K")
V = TypeVar("V")
_items: OrderedDict[tuple[str, int], ItemSnapshot] = OrderedDict()
_bundles: OrderedDict[tuple[str, int], BundleSnapshot] = OrderedDict()
# Which version is newest and whether it is retired: kept this long per process (another
# process's consumer may apply catalog's event; this one forgets at once when it applies it).
HEADER_TTL_S = 1.0
Header = tuple[int, datetime | None]
_headers: OrderedDict[tuple[str, str, int | None], tuple[float, Header]] = OrderedDict()


def remember(cache: OrderedDict[K, V], key: K, value: V) -> V:
    """Keep ``value`` under ``key`` in a bounded cache (the oldest goes first); return it."""
    cache[key] = value
    while len(cache) > _CACHE_SIZE:
        cache.popitem(last=False)
    return value


def item_snapshot(item_id: str, version: int, snapshot: dict[str, object]) -> ItemSnapshot:
    """An item version's snapshot, parsed (cached)."""
    found = _items.get((item_id, version))
    if found is not None:
        return found
    return remember(_items, (item_id, version), ItemSnapshot.model_validate(snapshot))


def bundle_snapshot(bundle_id: str, version: int, snapshot: dict[str, object]) -> BundleSnapshot:
    """A bundle version's snapshot, parsed (cached)."""
    found = _bundles.get((bundle_id, version))
    if found is not None:
        return found
    return remember(_bundles, (bundle_id, version), BundleSnapshot.model_validate(snapshot))


async def item(session: AsyncSession, *, item_id: str, version: int) -> ItemSnapshot:
    """A published item version the read copy must hold (503 until catalog's event arrives)."""
    found = _items.get((item_id, version))
    if found is not None:
        return found
    row = await catalogue_repository.get(session, kind="item", offering_id=item_id, version=version)
    if row is None:
        raise CatalogueNotSynchronised(
            f"Item {item_id} version {version} has not reached workflow yet; try again shortly."
        )
    return item_snapshot(item_id, version, row.snapshot)


async def items(
    session: AsyncSession, *, keys: list[tuple[str, int]]
) -> dict[tuple[str, int], ItemSnapshot]:
    """Several item versions at once (a bundle's)."""
    missing = [k for k in keys if k not in _items]
    rows = await catalogue_repository.get_many(session, kind="item", keys=missing)
    for (item_id, version), row in rows.items():
        item_snapshot(item_id, version, row.snapshot)
    absent = [k for k in keys if k not in _items]
    if absent:
        raise CatalogueNotSynchronised(
            f"Item versions {absent} have not reached workflow yet; try again shortly."
        )
    return {k: _items[k] for k in keys}


async def version_header(
    session: AsyncSession, *, kind: str, offering_id: str, version: int | None
) -> Header | None:
    """(version, retired_at) of a version (the newest when ``version`` is None), read at most
    once per ``HEADER_TTL_S`` per process; an offering not (yet) there is not remembered."""
    key = (kind, offering_id, version)
    now = time.monotonic()
    held = _headers.get(key)
    if held is not None and held[0] > now:
        return held[1]
    header = await catalogue_repository.version_header(
        session, kind=kind, offering_id=offering_id, version=version
    )
    if header is not None:
        remember(_headers, key, (now + HEADER_TTL_S, header))
    return header


def forget_headers() -> None:
    """Forget every remembered header (a version was published or retired)."""
    _headers.clear()
