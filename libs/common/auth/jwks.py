"""The issuer's signing keys, fetched from its JWKS and cached in the process."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Collection
from typing import Any

import httpx
import structlog
from jwt import PyJWK
from jwt.exceptions import PyJWTError

from libs.common.http import client_options

log = structlog.get_logger("pingtai.auth")

# Asymmetric only: a symmetric algorithm would let anyone holding the public key forge tokens.
ALLOWED_ALGORITHMS: frozenset[str] = frozenset({"RS256", "ES256"})


class JwksFetchError(Exception):
    """The JWKS could not be fetched or held no usable key."""


class JwksCache:
    """Keys by ``kid``: fetched once, refreshed after ``max_age_s``, refetched for an unknown kid.

    Fetches are never closer together than ``refetch_floor_s``, so a flood of tokens with made-up
    ``kid``s, or an issuer that is down, costs the issuer one request per floor, not one per token.
    A failed fetch keeps the keys already held.
    """

    def __init__(
        self,
        url: str,
        *,
        client: httpx.AsyncClient | None = None,
        refetch_floor_s: float = 30.0,
        max_age_s: float = 600.0,
        timeout_s: float = 5.0,
        algorithms: Collection[str] = ALLOWED_ALGORITHMS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self.refetch_floor_s = refetch_floor_s
        self.max_age_s = max_age_s
        self._algorithms = frozenset(algorithms)
        self._own_client = client is None
        self._client = client or httpx.AsyncClient(
            timeout=timeout_s, follow_redirects=False, **client_options()
        )
        self._clock = clock
        self._keys: dict[str, PyJWK] = {}
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None
        self._completed = 0  # fetches finished, failed or not: waiters skip a fetch made for them
        self._lock = asyncio.Lock()
        self._background: asyncio.Task[None] | None = None
        self.fetches = 0

    @property
    def has_keys(self) -> bool:
        """Whether any key is held."""
        return bool(self._keys)

    @property
    def kids(self) -> frozenset[str]:
        """The ``kid`` of every key held."""
        return frozenset(self._keys)

    def retry_after_s(self) -> float:
        """Seconds until the floor allows the next fetch."""
        if self._attempted_at is None:
            return 0.0
        return max(0.0, self._attempted_at + self.refetch_floor_s - self._clock())

    def cached(self, kid: str) -> PyJWK | None:
        """The key ``kid`` if held; starts a background refresh when the keys are old."""
        if self._fetched_at is not None and self._clock() - self._fetched_at >= self.max_age_s:
            self._refresh_in_background()
        return self._keys.get(kid)

    async def get(self, kid: str) -> PyJWK | None:
        """The key ``kid``, fetching the JWKS first if it is unknown and the floor allows."""
        key = self.cached(kid)
        if key is None and self.retry_after_s() == 0.0:
            await self.refresh()
            key = self._keys.get(kid)
        return key

    async def refresh(self) -> None:
        """Fetch the JWKS unless another fetch is running or the floor forbids one."""
        completed = self._completed
        async with self._lock:
            # Whoever held the lock meanwhile fetched for us too.
            if self._completed != completed or self.retry_after_s() > 0.0:
                return
            self._attempted_at = self._clock()
            self.fetches += 1
            try:
                keys = await self._fetch()
            except JwksFetchError as exc:
                log.warning("jwks_fetch_failed", url=self.url, error=str(exc), keys=len(self._keys))
                return
            finally:
                self._completed += 1
            removed = self._keys.keys() - keys.keys()
            added = keys.keys() - self._keys.keys()
            if added or removed:
                log.info("jwks_changed", added=sorted(added), removed=sorted(removed))
            self._keys = keys
            self._fetched_at = self._attempted_at

    async def aclose(self) -> None:
        """Stop a background refresh and close the HTTP client if it is ours."""
        if self._background is not None:
            self._background.cancel()
            await asyncio.gather(self._background, return_exceptions=True)
            self._background = None
        if self._own_client:
            await self._client.aclose()

    async def wait_background_refresh(self) -> None:
        """Wait for a background refresh, if one is running (for tests and shutdown)."""
        if self._background is not None:
            await asyncio.gather(self._background, return_exceptions=True)

    def _refresh_in_background(self) -> None:
        if (self._background is not None and not self._background.done()) or (
            self.retry_after_s() > 0.0
        ):
            return
        # Requests keep using the old keys meanwhile: they stay valid until the issuer drops them.
        self._background = asyncio.get_running_loop().create_task(self.refresh())

    async def _fetch(self) -> dict[str, PyJWK]:
        try:
            response = await self._client.get(self.url, headers={"Accept": "application/json"})
        except httpx.HTTPError as exc:
            raise JwksFetchError(f"{type(exc).__name__}: {exc}") from exc
        if response.status_code != 200:
            raise JwksFetchError(f"HTTP {response.status_code}")
        try:
            document: Any = response.json()
        except ValueError as exc:
            raise JwksFetchError("not JSON") from exc
        entries = document.get("keys") if isinstance(document, dict) else None
        if not isinstance(entries, list):
            raise JwksFetchError("no 'keys' list")
        keys: dict[str, PyJWK] = {}
        for entry in entries:
            key = self._usable_key(entry)
            if key is not None:
                keys[entry["kid"]] = key
        if not keys:
            # An empty set is more likely a broken issuer than a real one: keep what we have.
            raise JwksFetchError("no usable signing key")
        return keys

    def _usable_key(self, entry: object) -> PyJWK | None:
        """A signing key with a kid and an allowed algorithm, or None (skipped, logged)."""
        if not isinstance(entry, dict):
            return None
        kid = entry.get("kid")
        if not isinstance(kid, str) or not kid or entry.get("use", "sig") != "sig":
            return None
        try:
            key = PyJWK(entry)
        except PyJWTError as exc:
            log.warning("jwks_key_skipped", kid=kid, error=str(exc))
            return None
        if key.algorithm_name not in self._algorithms:
            log.warning("jwks_key_skipped", kid=kid, error=f"algorithm {key.algorithm_name}")
            return None
        return key
