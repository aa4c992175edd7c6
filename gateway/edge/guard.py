"""The edge check of every forwarded request: headers, credentials, route policy, limits.

It runs inside RequestContextMiddleware (so its refusals carry the request id and are logged and
measured like any answer) and before the proxy. Order: header limits (431), body limit of the
route (413), the API key (401), the bearer token (401, or 503 while no signing key is known), what
the route and the key's plan require (401/403), then the rate limits and quota (429). Services
verify the token again (defence in depth); the gateway only stops what it can tell is wrong.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog
from prometheus_client import Counter
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.edge.keys import ApiKeyRequired, KeyDirectory, KeyGrant
from gateway.edge.limits import Decision, Limit, Limiter
from gateway.edge.policies import (
    day_limit,
    ip_counter,
    key_counter,
    minute_limit,
    ratelimit_headers,
    subject_counter,
)
from gateway.routes import Route
from gateway.settings import GatewaySettings
from gateway.usage.recorder import UsageRecorder
from libs.common.auth import AuthenticationRequired, InvalidToken, Principal, TokenVerifier
from libs.common.errors import Forbidden, PayloadTooLarge, PingtaiError, problem_response

GATEWAY_REQUESTS = Counter(
    "pingtai_gateway_requests_total",
    "Requests the gateway answered or forwarded, by route, application and status.",
    ["route", "app", "status"],
)


class TooManyRequests(PingtaiError):
    """Over a rate limit or a daily quota."""

    status = 429
    code = "rate-limited"
    title = "Too many requests"


class HeadersTooLarge(PingtaiError):
    status = 431
    code = "request-header-fields-too-large"
    title = "Request header fields too large"


def _problem(exc: PingtaiError) -> ASGIApp:
    return problem_response(
        exc.status, code=exc.code, title=exc.title, detail=exc.detail, headers=exc.headers,
        **exc.extra,
    )  # fmt: skip


class EdgeGuard:
    """Checks a forwarded request against its route's policy before ``app`` forwards it."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        settings: GatewaySettings,
        verifier: Callable[[], TokenVerifier],
        keys: KeyDirectory,
        limiter: Limiter,
        usage: UsageRecorder,
    ) -> None:
        self.app = app
        self.settings = settings
        self.verifier = verifier
        self.keys = keys
        self.limiter = limiter
        self.usage = usage
        # Children of GATEWAY_REQUESTS by labels: labels() costs more than the increment.
        self._counters: dict[tuple[str, str, int], Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route: Route = scope["route"]
        grant: KeyGrant | None = None
        status = 500
        decisions: list[Decision] = []
        try:
            receive = self._check_size(scope, route, receive)
            grant, principal = await self._identify(scope, route)
            await self._limit(scope, route, grant, principal, decisions)
        except PingtaiError as exc:
            status = exc.status
            extra = ratelimit_headers(decisions)
            await _problem(exc)(scope, receive, _adding(send, extra))
            self._count(route, grant, status)
            return

        extra = ratelimit_headers(decisions)
        _pass_identity(scope, grant)

        async def send_counted(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                if extra:
                    message = {**message, "headers": [*message.get("headers", ()), *extra]}
            await send(message)

        try:
            await self.app(scope, receive, send_counted)
        finally:
            self._count(route, grant, status)

    def _count(self, route: Route, grant: KeyGrant | None, status: int) -> None:
        labels = (route.path, grant.application_id if grant else "-", status)
        counter = self._counters.get(labels)
        if counter is None:
            counter = GATEWAY_REQUESTS.labels(labels[0], labels[1], str(status))
            self._counters[labels] = counter
        counter.inc()
        if grant is not None:
            self.usage.record(grant.key_id, grant.application_id, status)

    def _check_size(self, scope: Scope, route: Route, receive: Receive) -> Receive:
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        settings = self.settings
        if len(headers) > settings.max_header_count:
            raise HeadersTooLarge(f"More than {settings.max_header_count} header fields.")
        if sum(len(n) + len(v) for n, v in headers) > settings.max_header_bytes:
            raise HeadersTooLarge(f"The header fields exceed {settings.max_header_bytes} bytes.")
        limit = route.policy.max_body_bytes
        if limit is None or limit >= settings.max_body_bytes:
            return receive  # RequestContextMiddleware holds the gateway-wide limit
        detail = f"The request body is larger than {limit} bytes."
        for name, value in headers:
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                raise PayloadTooLarge(detail)
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
                raise HTTPException(413, detail)
            return message

        return limited

    async def _identify(
        self, scope: Scope, route: Route
    ) -> tuple[KeyGrant | None, Principal | None]:
        api_key: str | None = None
        authorization: str | None = None
        for name, value in scope["headers"]:
            if name == b"x-api-key":
                api_key = value.decode("latin-1").strip()
            elif name == b"authorization":
                authorization = value.decode("latin-1")
        grant = await self.keys.verify(api_key) if api_key is not None else None
        principal: Principal | None = None
        if authorization is not None:
            scheme, _, token = authorization.strip().partition(" ")
            if scheme.lower() == "bearer":
                if not token.strip():
                    raise InvalidToken("The Authorization header carries no token.")
                principal = await self.verifier().verify(token.strip())
            # Other schemes (Basic at /oauth2/token) are for the part to judge.
        auth = route.policy.auth
        if auth in ("key", "key_and_token") and grant is None:
            raise ApiKeyRequired()
        needs_token = auth in ("token", "key_and_token") or (
            grant is not None and grant.requires_token
        )
        if needs_token and principal is None:
            raise AuthenticationRequired()
        if grant is not None and principal is not None and grant.requires_token:
            if principal.acr != 0:
                raise Forbidden("This key's plan needs a client-credentials token, not a person's.")
            if grant.client_id is not None and principal.client_id != grant.client_id:
                raise Forbidden("The token's client is not the one this key's application names.")
        if grant is not None:
            structlog.contextvars.bind_contextvars(
                app=grant.application_id, key=grant.key_id, org=grant.org_id
            )
        if principal is not None:
            structlog.contextvars.bind_contextvars(client=principal.client_id, sub=principal.sub)
        return grant, principal

    async def _limit(
        self,
        scope: Scope,
        route: Route,
        grant: KeyGrant | None,
        principal: Principal | None,
        decisions: list[Decision],
    ) -> None:
        """Count the request under each limit that applies (into ``decisions``); 429 over one."""
        policy = route.policy
        limits: list[Limit]
        if grant is not None:
            name = key_counter(grant.key_id)
            limits = [minute_limit(grant.per_minute), day_limit(grant.per_day)]
        elif principal is not None:
            name = subject_counter(principal.sub)
            per_minute = policy.token_per_minute
            if per_minute is None:
                per_minute = self.settings.token_per_minute
            limits = [minute_limit(per_minute)] if per_minute else []
        else:
            client = scope.get("client")
            name = ip_counter(str(client[0]) if client else "-")
            per_minute = policy.anonymous_per_minute
            if per_minute is None:
                per_minute = self.settings.anonymous_per_minute
            limits = [minute_limit(per_minute)] if per_minute else []
        for limit in limits:
            decision = await self.limiter.hit(name, limit)
            decisions.append(decision)
            if not decision.allowed:
                what = "daily quota" if limit.policy == "day" else "rate limit"
                error = TooManyRequests(
                    f"Over the {what} of {limit.quantity} requests per "
                    f"{'day' if limit.policy == 'day' else 'minute'}; "
                    f"try again in {decision.reset_s} s.",
                    limit=limit.policy,
                )
                error.headers = {"Retry-After": str(decision.reset_s)}
                if limit.policy == "day":
                    error.code = "quota-exceeded"
                raise error


# The key stays at the edge; the part learns which application called, from the gateway alone.
_EDGE_HEADERS = frozenset({b"x-api-key", b"x-pingtai-application"})


def _pass_identity(scope: Scope, grant: KeyGrant | None) -> None:
    headers: list[tuple[bytes, bytes]] = scope["headers"]
    if grant is None and not any(name in _EDGE_HEADERS for name, _ in headers):
        return
    kept = [(n, v) for n, v in headers if n not in _EDGE_HEADERS]
    if grant is not None:
        kept.append((b"x-pingtai-application", grant.application_id.encode()))
    scope["headers"] = kept


def _adding(send: Send, extra: list[tuple[bytes, bytes]]) -> Send:
    if not extra:
        return send

    async def send_with(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", ()), *extra]}
        await send(message)

    return send_with
