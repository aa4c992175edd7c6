"""Grants and datasets kept in memory, so a record query reads neither from the database.

A grant is held per (organisation, dataset) for ``access_grant_cache_ttl_s`` (2 s by default),
a dataset's read copy for the same time. Every process forgets an entry as soon as it learns
that it changed:

- the process that changed a grant forgets its key when the change commits;
- every process of the exchange forgets it when the grant's event (approved, refused, revoked)
  reaches it through the ``exchange-grant-changes`` broadcast (``cache_broadcast``), and
  learns a dataset's retirement from the catalogue's event the same way — a retired dataset is
  refused from then on even before the read copy (kept by one replica's durable consumer)
  says so.

The time to live stays as the fallback when NATS is down or slow: a change then takes effect
everywhere within it. Expiry needs no invalidation: every query compares ``valid_until`` with
now. See docs/exchange.md ("Caching").
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from libs.common.database import Database
from libs.common.events import Broadcast, CloudEvent, EventData
from services.exchange.access import repository as access_repository
from services.exchange.access.events import GrantApproved, GrantRefused, GrantRevoked
from services.exchange.access.models import Grant
from services.exchange.datasets import ExchangeDataset, get_dataset
from services.exchange.datasets.events import RETIRED, CatalogDatasetRetired

MAX_ENTRIES = 100_000
GRANT_CHANGES = (GrantApproved.event_type, GrantRefused.event_type, GrantRevoked.event_type)
# Replayed at start-up and after each reconnection: longer than any time to live (a change
# missed while cut off from NATS is picked up when the entry's time is up anyway).
REPLAY_S = 120.0


class _GrantKey(EventData):
    """What the cache reads of a grant event: its key."""

    requester_org_id: str
    dataset_id: str


@dataclass(frozen=True, slots=True)
class GrantSnapshot:
    """What a query needs of the grant that decides it (granted, expired or revoked)."""

    id: str
    owner_org_id: str
    fields: tuple[str, ...]
    unmasked_fields: frozenset[str]
    statutes: frozenset[str]
    valid_from: datetime
    valid_until: datetime
    revoked_at: datetime | None = None  # set when the grant was revoked: it authorises nothing

    @classmethod
    def of(cls, grant: Grant) -> GrantSnapshot:
        """A snapshot of ``grant``."""
        return cls(
            id=grant.id,
            owner_org_id=grant.owner_org_id,
            fields=tuple(grant.fields),
            unmasked_fields=frozenset(grant.unmasked_fields),
            statutes=frozenset(grant.statutes),
            valid_from=_utc(grant.valid_from),
            valid_until=_utc(grant.valid_until),
            revoked_at=(
                _utc(grant.revoked_at or grant.updated_at) if grant.status == "revoked" else None
            ),
        )

    def live_at(self, now: datetime) -> bool:
        """Whether the grant authorises at ``now``."""
        return self.revoked_at is None and self.valid_from <= now < self.valid_until


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


Key = tuple[str, str]
K = TypeVar("K")
V = TypeVar("V")


class GrantCache:
    """The grant deciding the queries of each (requester organisation, dataset) — its granted
    one, else its latest expired or revoked one (``repository.latest_granted``) —, and
    each dataset's read copy (detached from any session; its columns are all loaded).

    A miss reads in a short session of its own, once for all the requests that miss the same
    entry at once. ``_epoch`` counts what was forgotten: a read that began before something was
    forgotten is answered but not kept, since it may hold the state from before the change.
    """

    def __init__(self, ttl_s: float, database: Database) -> None:
        self.ttl_s = ttl_s
        self.database = database
        self._entries: dict[Key, tuple[float, GrantSnapshot | None]] = {}
        self._datasets: dict[str, tuple[float, ExchangeDataset | None]] = {}
        self._retired: set[str] = set()
        self._refs: dict[tuple[str, str], tuple[float, str]] = {}
        self._loading: dict[tuple[int, Any], asyncio.Future[Any]] = {}
        self._epoch = 0

    async def latest(self, *, org_id: str, dataset_id: str) -> GrantSnapshot | None:
        """The grant a query of ``org_id`` on ``dataset_id`` goes by, if any."""
        key = (org_id, dataset_id)
        held = self._entries.get(key)
        if held is not None and held[0] > time.monotonic():
            return held[1]
        return await self._load(self._entries, key, self._read_grant)

    async def dataset(self, dataset_id: str) -> ExchangeDataset | None:
        """The dataset's read copy, as read at most ``ttl_s`` ago."""
        held = self._datasets.get(dataset_id)
        if held is not None and held[0] > time.monotonic():
            return held[1]
        return await self._load(self._datasets, dataset_id, self._read_dataset)

    async def subject_ref(self, kind: str, key: str) -> str | None:
        """A person's (``kind="person"``) or organisation's subject reference, as read at most
        ``ttl_s`` ago. One not known yet is read again on every call: identity's event about
        them may arrive at any moment."""
        now = time.monotonic()
        held = self._refs.get((kind, key))
        if held is not None and held[0] > now:
            return held[1]
        ref = await access_repository.subject_ref_of(self.database.engine, kind=kind, key=key)
        if ref is not None and self.ttl_s > 0:
            if len(self._refs) >= MAX_ENTRIES:
                self._refs.clear()
            self._refs[(kind, key)] = (now + self.ttl_s, ref)
        return ref

    async def _read_grant(self, key: Key) -> GrantSnapshot | None:
        session = self.database.sessionmaker()
        try:
            grant = await access_repository.latest_granted(
                session, requester_org_id=key[0], dataset_id=key[1]
            )
            return GrantSnapshot.of(grant) if grant is not None else None
        finally:
            await session.close()

    async def _read_dataset(self, dataset_id: str) -> ExchangeDataset | None:
        session = self.database.sessionmaker()
        try:
            return await get_dataset(session, dataset_id)
        finally:
            await session.close()

    async def _load(
        self, store: dict[K, tuple[float, V]], key: K, read: Callable[[K], Awaitable[V]]
    ) -> V:
        """Read what ``store`` misses for ``key`` once, however many requests miss it at once
        (when an entry's time is up, every request in flight would otherwise read it)."""
        loading = (id(store), key)
        pending = self._loading.get(loading)
        if pending is not None:
            held: V = await asyncio.shield(pending)
            return held
        future: asyncio.Future[V] = asyncio.get_running_loop().create_future()
        self._loading[loading] = future
        epoch = self._epoch
        try:
            value = await read(key)
        except BaseException as error:
            future.set_exception(error)
            future.exception()  # retrieved: a miss nobody else waited for logs nothing
            raise
        finally:
            del self._loading[loading]
        future.set_result(value)
        # Kept only if nothing was forgotten meanwhile (the read may predate the change).
        if self.ttl_s > 0 and epoch == self._epoch:
            if len(store) >= MAX_ENTRIES:
                store.clear()
            store[key] = (time.monotonic() + self.ttl_s, value)
        return value

    def is_retired(self, dataset: ExchangeDataset) -> bool:
        """Whether the dataset is retired, by its read copy or by the catalogue's event."""
        return dataset.status != "published" or dataset.id in self._retired

    def forget(self, org_id: str, dataset_id: str) -> None:
        """Drop what is held for the key."""
        self._epoch += 1
        self._entries.pop((org_id, dataset_id), None)

    def retire(self, dataset_id: str) -> None:
        """The catalogue retired the dataset: refuse it from now on (no later event revives
        a retired dataset), and drop its copy."""
        self._epoch += 1
        self._retired.add(dataset_id)
        self._datasets.pop(dataset_id, None)

    def forget_on_commit(self, session: AsyncSession, grant: Grant) -> None:
        """Drop the grant's key now and again once ``session`` commits (a query between the
        two would otherwise hold the state from before the change)."""
        key = (grant.requester_org_id, grant.dataset_id)
        self.forget(*key)

        def _after_commit(_session: Session) -> None:
            self.forget(*key)

        event.listen(session.sync_session, "after_commit", _after_commit, once=True)

    async def apply(self, change: CloudEvent) -> None:
        """Forget what a grant change or a dataset's retirement makes stale (idempotent)."""
        if change.type == RETIRED:
            self.retire(change.data_as(CatalogDatasetRetired).dataset_id)
        elif change.type in GRANT_CHANGES:
            grant = change.data_as(_GrantKey)
            self.forget(grant.requester_org_id, grant.dataset_id)


def cache_broadcasts(cache: GrantCache) -> list[Broadcast]:
    """Broadcasts that keep ``cache`` in step in every process: the exchange's own grant
    changes and the catalogue's retirements (one broadcast per publishing part's stream)."""
    return [
        Broadcast(
            name="exchange-grant-changes",
            subjects=list(GRANT_CHANGES),
            handler=cache.apply,
            replay_s=REPLAY_S,
        ),
        Broadcast(
            name="exchange-dataset-retirements",
            subjects=[RETIRED],
            handler=cache.apply,
            replay_s=REPLAY_S,
        ),
    ]
