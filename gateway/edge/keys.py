"""API keys at the edge: one HMAC and a cache lookup per request; the database on a miss."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.applications import repository as applications_repository
from gateway.applications.keys import KeyHasher, key_prefix, looks_like_key
from libs.common.errors import Unauthorized

API_KEY_HEADER = "X-API-Key"
MAX_CACHED = 50_000


class InvalidApiKey(Unauthorized):
    """The X-API-Key is malformed, unknown, revoked or expired."""

    code = "invalid-api-key"
    title = "Invalid API key"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.headers = {"WWW-Authenticate": f'ApiKey realm="pingtai", header="{API_KEY_HEADER}"'}


class ApiKeyRequired(Unauthorized):
    """The route needs an API key and none was sent."""

    code = "api-key-required"
    title = "API key required"

    def __init__(self) -> None:
        super().__init__(f"This API needs an application's key in the {API_KEY_HEADER} header.")
        self.headers = {"WWW-Authenticate": f'ApiKey realm="pingtai", header="{API_KEY_HEADER}"'}


@dataclass(frozen=True, slots=True)
class KeyGrant:
    """What a valid key lets through: its application, organisation and plan's limits."""

    key_id: str
    application_id: str
    org_id: str
    client_id: str | None
    plan_id: str
    plan_code: str
    per_minute: int
    per_day: int
    requires_token: bool
    expires_at: float | None
    revoked: bool


def _epoch(value: datetime | None) -> float | None:
    if value is None:
        return None
    if value.tzinfo is None:  # SQLite hands back naive UTC
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


class KeyDirectory:
    """Verifies ``X-API-Key`` values; caches what it found (valid or not) for ``cache_s``."""

    def __init__(
        self,
        *,
        hasher: KeyHasher,
        sessionmaker: Callable[[], async_sessionmaker[AsyncSession]],
        env: str,
        cache_s: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.hasher = hasher
        self._sessionmaker = sessionmaker
        self._prefix = key_prefix(env)
        self.cache_s = cache_s
        self._clock = clock
        self._cache: OrderedDict[str, tuple[float, KeyGrant | None]] = OrderedDict()
        self._loading: dict[str, asyncio.Future[KeyGrant | None]] = {}

    async def verify(self, presented: str) -> KeyGrant:
        """The grant of a working key, else InvalidApiKey."""
        if not looks_like_key(presented) or not presented.startswith(self._prefix):
            raise InvalidApiKey("The API key is malformed or not for this environment.")
        digest = self.hasher.digest(presented)
        now = self._clock()
        cached = self._cache.get(digest)
        if cached is not None and now - cached[0] < self.cache_s:
            grant = cached[1]
        else:
            grant = await self._load(digest, now)
        if grant is None:
            raise InvalidApiKey("The API key is not known.")
        if grant.revoked:
            raise InvalidApiKey("The API key has been revoked.")
        if grant.expires_at is not None and now >= grant.expires_at:
            raise InvalidApiKey("The API key has expired.")
        return grant

    async def _load(self, digest: str, now: float) -> KeyGrant | None:
        # One query per key however many requests with it arrive at once.
        loading = self._loading.get(digest)
        if loading is not None:
            return await asyncio.shield(loading)
        future: asyncio.Future[KeyGrant | None] = asyncio.get_running_loop().create_future()
        self._loading[digest] = future
        try:
            async with self._sessionmaker()() as session:
                row = await applications_repository.grant_by_hash(session, digest)
            grant = None
            if row is not None:
                key, application, plan = row
                grant = KeyGrant(
                    key_id=key.id,
                    application_id=application.id,
                    org_id=application.org_id,
                    client_id=application.client_id,
                    plan_id=plan.id,
                    plan_code=plan.code,
                    per_minute=plan.requests_per_minute,
                    per_day=plan.requests_per_day,
                    requires_token=plan.requires_token,
                    expires_at=_epoch(key.expires_at),
                    revoked=key.revoked_at is not None,
                )
            self._cache[digest] = (now, grant)
            if len(self._cache) > MAX_CACHED:
                self._cache.popitem(last=False)
            future.set_result(grant)
            return grant
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters re-raise it, nobody logs it as lost
            raise
        finally:
            del self._loading[digest]

    def forget_key(self, key_id: str) -> None:
        """Drop a key from the cache (revoked): the next request reads the database."""
        self._drop(lambda g: g.key_id == key_id)

    def forget_plan(self, plan_id: str) -> None:
        """Drop every key on a plan (its limits changed)."""
        self._drop(lambda g: g.plan_id == plan_id)

    def _drop(self, matches: Callable[[KeyGrant], bool]) -> None:
        for digest in [d for d, (_, g) in self._cache.items() if g is not None and matches(g)]:
            del self._cache[digest]
