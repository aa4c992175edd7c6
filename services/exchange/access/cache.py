"""Grants and datasets kept in memory, so a record query reads neither from the database.

A grant is held per (organisation, dataset) for ``access_grant_cache_ttl_s`` (2 s by default)
and forgotten at once in this process when a grant of its key changes (after the change
commits). Other replicas of the exchange learn the change when their entry's time is up: a
revocation takes effect everywhere within that bound. Expiry needs no invalidation: every query
compares ``valid_until`` with now. A dataset's read copy is held for the same time, so a
catalogue change (a retirement, new fields) reaches queries within it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from services.exchange.access import repository as access_repository
from services.exchange.access.models import Grant
from services.exchange.datasets import ExchangeDataset, get_dataset

MAX_ENTRIES = 100_000


@dataclass(frozen=True, slots=True)
class GrantSnapshot:
    """What a query needs of a granted grant."""

    id: str
    owner_org_id: str
    fields: tuple[str, ...]
    unmasked_fields: frozenset[str]
    statutes: frozenset[str]
    valid_from: datetime
    valid_until: datetime

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
        )

    def live_at(self, now: datetime) -> bool:
        """Whether the grant authorises at ``now``."""
        return self.valid_from <= now < self.valid_until


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


Key = tuple[str, str]


class GrantCache:
    """The latest granted grant (expired or not) of each (requester organisation, dataset), and
    each dataset's read copy (detached from any session; its columns are all loaded)."""

    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._entries: dict[Key, tuple[float, GrantSnapshot | None]] = {}
        self._datasets: dict[str, tuple[float, ExchangeDataset | None]] = {}

    def _keep(self, store: dict[Any, tuple[float, Any]], key: Any, value: Any, now: float) -> None:
        if self.ttl_s > 0:
            if len(store) >= MAX_ENTRIES:
                store.clear()
            store[key] = (now + self.ttl_s, value)

    async def latest(
        self, session: AsyncSession, *, org_id: str, dataset_id: str
    ) -> GrantSnapshot | None:
        """The grant a query of ``org_id`` on ``dataset_id`` goes by, if any."""
        key = (org_id, dataset_id)
        now = time.monotonic()
        held = self._entries.get(key)
        if held is not None and held[0] > now:
            return held[1]
        grant = await access_repository.latest_granted(
            session, requester_org_id=org_id, dataset_id=dataset_id
        )
        snapshot = GrantSnapshot.of(grant) if grant is not None else None
        self._keep(self._entries, key, snapshot, now)
        return snapshot

    async def dataset(self, session: AsyncSession, dataset_id: str) -> ExchangeDataset | None:
        """The dataset's read copy, as read at most ``ttl_s`` ago."""
        now = time.monotonic()
        held = self._datasets.get(dataset_id)
        if held is not None and held[0] > now:
            return held[1]
        dataset = await get_dataset(session, dataset_id)
        self._keep(self._datasets, dataset_id, dataset, now)
        return dataset

    def forget(self, org_id: str, dataset_id: str) -> None:
        """Drop what is held for the key."""
        self._entries.pop((org_id, dataset_id), None)

    def forget_on_commit(self, session: AsyncSession, grant: Grant) -> None:
        """Drop the grant's key now and again once ``session`` commits (a query between the
        two would otherwise hold the state from before the change)."""
        key = (grant.requester_org_id, grant.dataset_id)
        self.forget(*key)

        def _after_commit(_session: Session) -> None:
            self.forget(*key)

        event.listen(session.sync_session, "after_commit", _after_commit, once=True)


def grant_cache(request: Request) -> GrantCache:
    """The app's grant cache, made on first use from its settings."""
    state = request.app.state
    cache: GrantCache | None = getattr(state, "grant_cache", None)
    if cache is None:
        ttl = float(getattr(state.settings, "access_grant_cache_ttl_s", 2.0))
        cache = state.grant_cache = GrantCache(ttl)
    return cache


async def _grant_cache(request: Request) -> GrantCache:
    return grant_cache(request)


GrantCacheDep = Annotated[GrantCache, Depends(_grant_cache)]
