"""Workflow's own access token (client credentials), fetched from identity and cached."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import httpx
import structlog

log = structlog.get_logger("pingtai.workflow.tokens")

# A token is renewed this long before it expires, so none expires in flight.
RENEW_BEFORE_S = 30.0


class TokenUnavailable(Exception):
    """Identity could not give workflow a token (down, or the client is not registered)."""


class ClientCredentialsToken:
    """One cached client-credentials access token, renewed shortly before it expires.

    Concurrent callers share one request to the token endpoint. ``secret`` is asked for each
    time a token is fetched, so a secret written after start-up (the demo seed) is picked up.
    """

    def __init__(
        self,
        *,
        http: httpx.AsyncClient,
        token_url: str,
        client_id: str,
        secret: Callable[[], str | None],
        scope: str | None = None,
    ) -> None:
        self._http = http
        self._token_url = token_url
        self._client_id = client_id
        self._secret = secret
        self._scope = scope
        self._token: str | None = None
        self._renew_at = 0.0
        self._lock = asyncio.Lock()

    async def get(self) -> str:
        """A valid access token."""
        if self._token is not None and time.monotonic() < self._renew_at:
            return self._token
        async with self._lock:
            if self._token is not None and time.monotonic() < self._renew_at:
                return self._token
            return await self._fetch()

    def forget(self) -> None:
        """Drop the cached token (exchange refused it): the next call fetches a new one."""
        self._token = None

    async def _fetch(self) -> str:
        secret = self._secret()
        if not secret:
            raise TokenUnavailable(f"no secret for the client {self._client_id}")
        data = {"grant_type": "client_credentials"}
        if self._scope:
            data["scope"] = self._scope
        try:
            response = await self._http.post(
                self._token_url, data=data, auth=(self._client_id, secret)
            )
        except httpx.HTTPError as exc:
            raise TokenUnavailable(f"the token endpoint is unreachable: {exc!r}") from exc
        if response.status_code != 200:
            raise TokenUnavailable(
                f"the token endpoint answered {response.status_code}: {response.text[:200]}"
            )
        body = response.json()
        token: str = body["access_token"]
        lifetime = float(body.get("expires_in", 300))
        self._token = token
        self._renew_at = time.monotonic() + max(lifetime - RENEW_BEFORE_S, lifetime / 2)
        log.info("workflow_token_fetched", client_id=self._client_id, expires_in=lifetime)
        return token
