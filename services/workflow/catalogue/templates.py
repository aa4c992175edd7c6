"""Published versions read from the read copy, parsed once (versions never change)."""

from __future__ import annotations

from collections import OrderedDict
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
