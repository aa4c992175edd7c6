"""The edge check of every forwarded request: headers, credentials, route policy, limits.

The forwarder (gateway/forwarding.py) runs it after the request id, the gateway-wide body limit
and CORS, before the proxy, and answers its refusals (with the request id, logged and measured like
any answer). Order: header limits (431), body limit of the
route (413), the API key (401), the bearer token (401, or 503 while no signing key is known), what
the route and the key's plan require (401/403), then the rate limits and quota (429). Services
verify the token again (defence in depth); the gateway only stops what it can tell is wrong.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any

import structlog
from prometheus_client import Counter
from starlette.types import ASGIApp, Scope

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
from gateway.exchange import Exchange
from gateway.routes import Route
from gateway.settings import GatewaySettings
from gateway.usage.recorder import UsageRecorder
from libs.common.auth import AuthenticationRequired, InvalidToken, Principal, TokenVerifier
from libs.common.errors import Forbidden, PayloadTooLarge, PingtaiError, problem_response

log = structlog.get_logger("pingtai.gateway.edge")

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


def problem_for(exc: PingtaiError) -> ASGIApp:
    """The problem document answering ``exc``, with its headers."""
    return problem_response(
        exc.status, code=exc.code, title=exc.title, detail=exc.detail, headers=exc.headers,
        **exc.extra,
    )  # fmt: skip


class EdgeGuard:
    """Checks a forwarded request against its route's policy before the proxy forwards it.

    Not a middleware: the forwarder calls ``admit`` with the request's ``Exchange`` (its head read
    once) and answers a refusal itself; the grant, the principal and the ``RateLimit`` fields are
    left on the exchange, and ``count`` measures the answer.
    """

    def __init__(
        self,
        *,
        settings: GatewaySettings,
        verifier: Callable[[], TokenVerifier],
        keys: KeyDirectory,
        limiter: Limiter,
        usage: UsageRecorder,
    ) -> None:
        self.settings = settings
        self.verifier = verifier
        self.keys = keys
        self.limiter = limiter
        self.usage = usage
        # Children of GATEWAY_REQUESTS by labels: labels() costs more than the increment.
        self._counters: dict[tuple[str, str, int], Any] = {}

    async def admit(self, scope: Scope, exchange: Exchange) -> None:
        """Let the request through, or raise the PingtaiError to answer (431, 413, 401, 403,
        429); the RateLimit fields of the limits counted are added to ``exchange.headers``."""
        route = exchange.route
        decisions: list[Decision] = []
        try:
            self._check_size(route, exchange)
            await self._identify(route, exchange)
            await self._limit(scope, route, exchange, decisions)
        finally:
            exchange.headers += ratelimit_headers(decisions)
        _pass_identity(scope, exchange.grant)

    def count(self, exchange: Exchange) -> None:
        """Measure the answer: per route, application and status; usage of the key."""
        grant = exchange.grant
        status = exchange.status
        labels = (exchange.route.path, grant.application_id if grant else "-", status)
        counter = self._counters.get(labels)
        if counter is None:
            counter = GATEWAY_REQUESTS.labels(labels[0], labels[1], str(status))
            self._counters[labels] = counter
        counter.inc()
        if grant is not None:
            self.usage.record(grant.key_id, grant.application_id, status)

    def _check_size(self, route: Route, exchange: Exchange) -> None:
        settings = self.settings
        if exchange.header_count > settings.max_header_count:
            raise HeadersTooLarge(f"More than {settings.max_header_count} header fields.")
        if exchange.header_bytes > settings.max_header_bytes:
            raise HeadersTooLarge(f"The header fields exceed {settings.max_header_bytes} bytes.")
        limit = route.policy.max_body_bytes
        length = exchange.content_length
        if limit is not None and length is not None and length > limit:
            # A streamed body is held to the same limit by the forwarder's receive.
            raise PayloadTooLarge(f"The request body is larger than {limit} bytes.")

    async def _identify(self, route: Route, exchange: Exchange) -> None:
        api_key = exchange.api_key
        authorization = exchange.authorization
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
        exchange.grant = grant
        exchange.principal = principal

    async def _limit(
        self, scope: Scope, route: Route, exchange: Exchange, decisions: list[Decision]
    ) -> None:
        """Count the request under each limit that applies (into ``decisions``); 429 over one."""
        policy = route.policy
        grant = exchange.grant
        principal = exchange.principal
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
            visitor = await self._visitor_address(exchange)
            name = ip_counter(visitor or (str(client[0]) if client else "-"))
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

    async def _visitor_address(self, exchange: Exchange) -> str | None:
        """The address of the visitor a trusted forwarder calls for: the portal calls for every
        anonymous visitor from its own address, so its client-credentials token (a client named
        in ``trusted_forwarders``) lets the anonymous limit count each visitor on their own.
        From anyone else, or with a bad token or address, the header is ignored."""
        if exchange.forwarder is None or exchange.visitor_address is None:
            return None
        try:
            forwarder = await self.verifier().verify(exchange.forwarder)
            address = str(ipaddress.ip_address(exchange.visitor_address))
        except (PingtaiError, ValueError) as exc:
            log.warning("forwarder_refused", reason=type(exc).__name__)
            return None
        if forwarder.acr != 0 or forwarder.client_id not in self.settings.trusted_forwarders:
            log.warning("forwarder_not_trusted", client_id=forwarder.client_id)
            return None
        return address


# The key stays at the edge; the part learns which application called, from the gateway alone.
# So does a forwarder's token and the visitor's address it vouched for.
_EDGE_HEADERS = frozenset({
    b"x-api-key", b"x-pingtai-application", b"x-pingtai-forwarder", b"x-pingtai-visitor-address",
})  # fmt: skip


def _pass_identity(scope: Scope, grant: KeyGrant | None) -> None:
    headers: list[tuple[bytes, bytes]] = scope["headers"]
    if grant is None and not any(name in _EDGE_HEADERS for name, _ in headers):
        return
    kept = [(n, v) for n, v in headers if n not in _EDGE_HEADERS]
    if grant is not None:
        kept.append((b"x-pingtai-application", grant.application_id.encode()))
    scope["headers"] = kept
