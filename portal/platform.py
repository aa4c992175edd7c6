"""Calls to the platform's APIs through the gateway, with the signed-in person's token."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import httpx
import structlog
from starlette.responses import Response, StreamingResponse

from libs.common.http import service_client

log = structlog.get_logger("pingtai.portal.platform")

# The address of the visitor the current request serves (set by the portal's middleware).
visitor_address: ContextVar[str | None] = ContextVar("visitor_address", default=None)
# Renew the portal's own token this long before it expires; wait this long after a failure.
_FORWARDER_MARGIN_S = 30.0
_FORWARDER_RETRY_S = 30.0


@dataclass
class ApiProblem(Exception):
    """An API answered with an error: its status and RFC 9457 problem document."""

    status: int
    title: str = ""
    detail: str = ""
    type: str = ""
    errors: list[dict[str, Any]] = field(default_factory=list)

    @property
    def shown_on_form(self) -> bool:
        """A refusal the page shows beside its form; 401 (sign in), 404 and 5xx go to the
        portal's error handling instead."""
        return 400 <= self.status < 500 and self.status not in {401, 404}

    def field_errors(self, prefix: tuple[str, ...] = ()) -> dict[str, str]:
        """Field name -> message, for the errors whose location starts with ``prefix``."""
        found: dict[str, str] = {}
        for error in self.errors:
            loc = [str(part) for part in error.get("loc", [])]
            if tuple(loc[: len(prefix)]) == prefix and len(loc) > len(prefix):
                found.setdefault(loc[len(prefix)], str(error.get("msg", "")))
        return found


class Platform:
    """The gateway's ``/api/<part>/v1`` APIs; one pooled client per portal process."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float,
        transport: httpx.AsyncBaseTransport | None = None,
        client_credentials: tuple[str, str] | None = None,
    ) -> None:
        self.http = service_client(base_url, timeout=timeout, transport=transport)
        # The portal's own client: its client-credentials token lets the gateway count each
        # anonymous visitor's calls on their own (docs/gateway.md, trusted forwarders).
        self._credentials = httpx.BasicAuth(*client_credentials) if client_credentials else None
        self._forwarder: str | None = None
        self._forwarder_until = 0.0
        self._forwarder_lock = asyncio.Lock()

    async def forwarder_token(self) -> str | None:
        """The portal's own access token (client credentials), kept until near its expiry;
        None while identity does not give one (calls then share the portal's address)."""
        if self._credentials is None:
            return None
        if time.monotonic() < self._forwarder_until:
            return self._forwarder
        async with self._forwarder_lock:
            if time.monotonic() < self._forwarder_until:
                return self._forwarder
            token, lifetime = None, _FORWARDER_RETRY_S
            try:
                answer = await self.http.post(
                    "/oauth2/token", data={"grant_type": "client_credentials"},
                    auth=self._credentials,
                )  # fmt: skip
                if answer.status_code == 200:
                    body = answer.json()
                    token = str(body["access_token"])
                    lifetime = max(1.0, float(body.get("expires_in", 300)) - _FORWARDER_MARGIN_S)
                else:
                    log.warning("forwarder_token_refused", status=answer.status_code)
            except (httpx.HTTPError, ValueError, KeyError) as exc:
                log.warning("forwarder_token_failed", error=repr(exc))
            self._forwarder, self._forwarder_until = token, time.monotonic() + lifetime
            return token

    async def aclose(self) -> None:
        """Close the pooled connections."""
        await self.http.aclose()

    async def call(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        params: Any = None,
        json: Any = None,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """The response to ``method path``; ApiProblem for any 4xx or 5xx."""
        sent = dict(headers or {})
        if token:
            sent["Authorization"] = f"Bearer {token}"
        elif (address := visitor_address.get()) is not None:
            forwarder = await self.forwarder_token()
            if forwarder is not None:
                sent["X-Pingtai-Forwarder"] = forwarder
                sent["X-Pingtai-Visitor-Address"] = address
        try:
            response = await self.http.request(
                method, path, params=params, json=json, content=content, headers=sent
            )
        except httpx.HTTPError as exc:
            raise ApiProblem(503, "Service unavailable", repr(exc)) from exc
        if response.status_code >= 400:
            raise _problem(response)
        return response

    async def get_json(self, path: str, *, token: str | None = None, params: Any = None) -> Any:
        """The JSON body of ``GET path``."""
        return (await self.call("GET", path, token=token, params=params)).json()


def _problem(response: httpx.Response) -> ApiProblem:
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    return ApiProblem(
        status=response.status_code,
        title=str(body.get("title", "")),
        detail=str(body.get("detail", "")),
        type=str(body.get("type", "")),
        errors=list(body.get("errors") or []),
    )


async def relay_events(
    http: httpx.AsyncClient, path: str, *, token: str, last_event_id: str | None
) -> Response:
    """A service's server-sent events (``path``, with the person's token) passed on as they
    come, ``Last-Event-ID`` with them; a refusal is a 404 (not theirs) or a 502."""
    headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream"}
    if last_event_id and last_event_id.isdigit():
        headers["Last-Event-ID"] = last_event_id
    upstream = http.build_request(
        "GET", path, headers=headers, timeout=httpx.Timeout(10.0, read=None)
    )
    response = await http.send(upstream, stream=True)
    if response.status_code != 200:
        await response.aclose()
        return Response(status_code=404 if response.status_code in {403, 404} else 502)
    return StreamingResponse(
        relay(response), media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )  # fmt: skip


async def relay(response: httpx.Response) -> AsyncIterator[bytes]:
    """A streamed upstream body, chunk by chunk as it arrives (events, CSV), closed at the end."""
    try:
        async for chunk in response.aiter_raw():
            yield chunk
    finally:
        await response.aclose()
