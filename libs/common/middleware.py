"""The ASGI middleware of every part: request id, body limit, access log, metrics
(``RequestContextMiddleware``); and a part's hottest routes answered before FastAPI's
exception layer and router (``FrontRoutes``)."""

from __future__ import annotations

import random
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import structlog
from starlette._utils import is_async_callable
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from libs.common.context import reset_request_id, set_request_id
from libs.common.errors import problem_response
from libs.common.telemetry import HTTP_IN_FLIGHT, HTTP_LATENCY, HTTP_REQUESTS

REQUEST_ID_HEADER = "x-request-id"
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_VALID_PREFIX = re.compile(r"^(/[A-Za-z0-9._-]+){1,4}$")
_QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})

access_log = structlog.get_logger("pingtai.access")


def incoming_request_id(scope: Scope) -> str:
    """The caller's ``X-Request-ID`` when it is well-formed, else a new one."""
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            candidate: str = value.decode("latin-1")
            if _VALID_REQUEST_ID.match(candidate):
                return candidate
            break
    return new_request_id()


# uuid4's version (4) and variant (RFC 4122) bits, set as ``uuid.UUID(version=4)`` sets them.
_UUID4_CLEAR = ~((0xC000 << 48) | (0xF000 << 64))
_UUID4_SET = (0x8000 << 48) | (4 << 76)


def new_request_id() -> str:
    """A new request id, in the form ``uuid.uuid4().hex`` writes (0.5 µs instead of 3.3, once
    per request that comes without one). From ``random``, not the OS: a request id names a
    request in logs and traces and guards nothing (any caller may choose its own), as the
    trace and span ids OpenTelemetry makes the same way."""
    value = random.getrandbits(128) & _UUID4_CLEAR | _UUID4_SET
    return f"{value:032x}"


def with_forwarded_prefix(scope: Scope) -> Scope:
    """The scope with the gateway's ``X-Forwarded-Prefix`` (e.g. ``/api/identity``) as its
    root path, so a part's docs and OpenAPI ``servers`` name the URLs clients really call."""
    for name, value in scope.get("headers", ()):
        if name == b"x-forwarded-prefix":
            prefix = value.decode("latin-1")
            if _VALID_PREFIX.match(prefix):
                return {**scope, "root_path": scope.get("root_path", "") + prefix}
            break
    return scope


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class RequestMetrics:
    """A part's HTTP series: requests by route and status, latency by route, in flight.

    ``labels()`` costs more than the update (a lock, a tuple, a lookup in the metric's
    children), so each label set's series is looked up once and kept.
    """

    def __init__(self, part: str) -> None:
        self.part = part
        self.in_flight = HTTP_IN_FLIGHT.labels(part)
        self._requests: dict[tuple[str, str, int], Any] = {}
        self._latency: dict[tuple[str, str], Any] = {}

    def record(self, method: str, route: str, status: int, elapsed: float) -> None:
        """Count one answered request and observe how long it took."""
        counter = self._requests.get((method, route, status))
        if counter is None:
            counter = HTTP_REQUESTS.labels(self.part, method, route, str(status))
            self._requests[(method, route, status)] = counter
        counter.inc()
        latency = self._latency.get((method, route))
        if latency is None:
            latency = HTTP_LATENCY.labels(self.part, method, route)
            self._latency[(method, route)] = latency
        latency.observe(elapsed)


class RequestContextMiddleware:
    """Give each request an id, refuse oversized bodies, then log and measure it once."""

    def __init__(
        self, app: ASGIApp, *, part: str, max_body_bytes: int, forwarded_prefix: bool = True
    ) -> None:
        self.app = app
        self.part = part
        self.max_body_bytes = max_body_bytes
        self.forwarded_prefix = forwarded_prefix
        self.metrics = RequestMetrics(part)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.forwarded_prefix:
            scope = with_forwarded_prefix(scope)
        request_id = incoming_request_id(scope)
        token = set_request_id(request_id)
        started = time.perf_counter()
        status = 500
        in_flight = self.metrics.in_flight
        in_flight.inc()

        started_response = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, started_response
            if message["type"] == "http.response.start":
                started_response = True
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode("latin-1")))
                message = {**message, "headers": headers}
            await send(message)

        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    # An HTTPException, because FastAPI turns any other error raised while it
                    # reads the body into a 400; its handler renders this one as a 413 problem.
                    raise HTTPException(
                        413, f"The request body is larger than {self.max_body_bytes} bytes."
                    )
            return message

        try:
            length = _content_length(scope)
            if length is not None and length > self.max_body_bytes:
                response = problem_response(
                    413,
                    code="payload-too-large",
                    detail=f"The request body is larger than {self.max_body_bytes} bytes.",
                )
                await response(scope, receive, send_with_id)
            else:
                await self.app(scope, limited_receive, send_with_id)
        except Exception:
            if started_response:
                raise
            # The last resort: a problem document with the request id, never a stack trace.
            access_log.exception("unhandled_error", path=scope.get("path", ""))
            await problem_response(
                500,
                code="internal-error",
                detail="Something went wrong on our side. Quote the request id when you report it.",
            )(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            in_flight.dec()
            route = _route_template(scope)
            method = scope.get("method", "")
            self.metrics.record(method, route, status, elapsed)
            path = scope.get("path", "")
            log = access_log.debug if path in _QUIET_PATHS else access_log.info
            log(
                "request",
                method=method,
                path=path,
                route=route,
                status=status,
                duration_ms=round(elapsed * 1000, 2),
                client=(scope.get("client") or ("", 0))[0],
            )
            reset_request_id(token)


def _allowing(send: Send, methods: set[str]) -> Send:
    """``send`` with ``methods`` added to a 405 answer's ``Allow`` header."""

    async def send_allowing(message: Message) -> None:
        if message["type"] == "http.response.start" and message["status"] == 405:
            headers = [(k, v) for k, v in message.get("headers", ()) if k.lower() != b"allow"]
            given = next((v for k, v in message.get("headers", ()) if k.lower() == b"allow"), b"")
            named = {m.strip() for m in given.decode("latin-1").split(",") if m.strip()}
            allow = ", ".join(sorted(named | methods)).encode("latin-1")
            message = {**message, "headers": [*headers, (b"allow", allow)]}
        await send(message)

    return send_allowing


def _route_template(scope: Scope) -> str:
    route: Any = scope.get("route")
    path = getattr(route, "path", None)
    # Unmatched paths share one label so a scan of random URLs cannot blow up the metric.
    return path if isinstance(path, str) else "<unmatched>"


class FrontRoutes:
    """Answer ``routes`` (a part's hottest requests) here, pass every other request on.

    Installed innermost of the part's own middleware, so a request it answers has had
    everything ``RequestContextMiddleware`` gives (request id, body limit, access log,
    metrics, the last-resort 500 problem). What it skips is what FastAPI and Starlette put
    between that and an endpoint: the exception middleware, the exit stack for uploaded files,
    the router's walk over every route and the per-route wrappers, about 25 µs of CPU per
    request. An endpoint takes a ``Request`` and returns a ``Response``, as a Starlette
    route's; the exceptions it raises are rendered by the app's exception handlers (the
    status handlers first for an ``HTTPException``, then by class along the exception's MRO,
    as Starlette's exception middleware does), and anything without a handler is left to
    ``RequestContextMiddleware``'s 500 problem, as from the router.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        routes: Sequence[Route],
        exception_handlers: Mapping[Any, Callable[[Request, Any], Any]],
        router: Any = None,
    ) -> None:
        self.app = app
        self.routes = tuple(routes)
        self.router = router
        # The handlers Starlette's ExceptionMiddleware holds: all but 500/Exception, which
        # only its ServerErrorMiddleware would use (ours answers those first).
        self._status_handlers: dict[int, Callable[[Request, Any], Any]] = {}
        self._class_handlers: dict[type[BaseException], Callable[[Request, Any], Any]] = {}
        for key, handler in exception_handlers.items():
            if key in (500, Exception):
                continue
            if isinstance(key, int):
                self._status_handlers[key] = handler
            else:
                self._class_handlers[key] = handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            partial: Route | None = None
            for route in self.routes:
                match, child_scope = route.matches(scope)
                if match is Match.FULL:
                    scope.update(child_scope)
                    scope["route"] = route
                    if self.router is not None:
                        scope.setdefault("router", self.router)
                    await self._answer(route.endpoint, scope, receive, send)
                    return
                if match is Match.PARTIAL and partial is None:
                    partial = route
            if partial is not None:
                elsewhere = self._router_match(scope)
                if elsewhere is Match.NONE:  # only the front route has this path: 405 here
                    methods = ", ".join(sorted(partial.methods or ()))

                    async def not_allowed(_: Request) -> Response:
                        raise HTTPException(405, headers={"Allow": methods})

                    await self._answer(not_allowed, scope, receive, send)
                    return
                if elsewhere is Match.PARTIAL:  # the router's 405 names the front's methods too
                    send = _allowing(send, partial.methods or set())
        await self.app(scope, receive, send)

    def _router_match(self, scope: Scope) -> Match:
        """How the router's routes match a request a front route matched by path only."""
        best = Match.NONE
        for route in getattr(self.router, "routes", ()):
            match, _ = route.matches(scope)
            if match is Match.FULL:
                return match
            if match is Match.PARTIAL:
                best = match
        return best

    async def _answer(
        self,
        endpoint: Callable[[Request], Awaitable[Response]],
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> None:
        request = Request(scope, receive, send)
        try:
            response: Response | None = await endpoint(request)
        except Exception as error:
            handler = self._handler_for(error)
            if handler is None:
                raise
            if is_async_callable(handler):
                response = await handler(request, error)
            else:
                response = await run_in_threadpool(handler, request, error)
            error.__traceback__ = None  # as Starlette's: a reused exception keeps no frames
        if response is not None:  # a handler may answer by itself (Starlette allows None)
            await response(scope, receive, send)

    def _handler_for(self, error: Exception) -> Callable[[Request, Any], Any] | None:
        if isinstance(error, HTTPException):
            handler = self._status_handlers.get(error.status_code)
            if handler is not None:
                return handler
        for cls in type(error).__mro__:
            handler = self._class_handlers.get(cls)
            if handler is not None:
                return handler
        return None
