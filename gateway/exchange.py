"""One forwarded request's state, read from its head once and shared by the edge and the proxy."""

from __future__ import annotations

import random
import re
from typing import TYPE_CHECKING

from starlette.types import Message, Scope, Send

if TYPE_CHECKING:
    from gateway.edge.keys import KeyGrant
    from gateway.routes import Route
    from libs.common.auth import Principal

# The same rule as every part's RequestContextMiddleware: a caller's id is kept when it is this.
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
TRACE_FIELDS = frozenset({"traceparent", "tracestate", "baggage"})

# The request fields the gateway looks at, and what it calls them; the rest it only forwards.
_READ: dict[bytes, str] = {
    b"content-length": "content-length",
    b"transfer-encoding": "transfer-encoding",
    b"x-api-key": "x-api-key",
    b"authorization": "authorization",
    b"x-request-id": "x-request-id",
    b"x-pingtai-forwarder": "x-pingtai-forwarder",
    b"x-pingtai-visitor-address": "x-pingtai-visitor-address",
    **{name.encode(): name for name in TRACE_FIELDS},
}


class Exchange:
    """A forwarded request: what its head says, who it is, and how it was answered.

    Built once per request by the forwarder, from one pass over the header fields (ASGI servers
    hand them over lower-cased). ``send`` passes the answer on with ``headers`` added to its head
    (``X-Request-ID``, then the ``RateLimit`` fields of the edge) and notes its status.
    """

    __slots__ = (
        "route",
        "request_id",
        "status",
        "started",
        "headers",
        "grant",
        "principal",
        "api_key",
        "authorization",
        "forwarder",
        "visitor_address",
        "content_length",
        "has_body",
        "header_count",
        "header_bytes",
        "trace_carrier",
        "_send",
    )

    def __init__(self, scope: Scope, route: Route, send: Send) -> None:
        self.route = route
        self.status = 500
        self.started = False
        self.grant: KeyGrant | None = None
        self.principal: Principal | None = None
        self.api_key: str | None = None
        self.authorization: str | None = None
        # A trusted forwarder's token (the portal's own client) and the visitor it calls for.
        self.forwarder: str | None = None
        self.visitor_address: str | None = None
        self.content_length: int | None = None
        self.trace_carrier: dict[str, str] | None = None
        self._send = send
        request_id: str | None = None
        chunked = False
        size = 0
        fields: list[tuple[bytes, bytes]] = scope["headers"]
        for name, value in fields:
            size += len(name) + len(value)
            kind = _READ.get(name)
            if kind is None:
                continue
            if kind == "content-length":
                self.content_length = int(value) if value.isdigit() else None
            elif kind == "transfer-encoding":
                chunked = True
            elif kind == "x-api-key":
                self.api_key = value.decode("latin-1").strip()
            elif kind == "authorization":
                self.authorization = value.decode("latin-1")
            elif kind == "x-pingtai-forwarder":
                self.forwarder = value.decode("latin-1").strip()
            elif kind == "x-pingtai-visitor-address":
                self.visitor_address = value.decode("latin-1").strip()
            elif kind == "x-request-id":
                if request_id is None:
                    request_id = value.decode("latin-1")
            else:
                if self.trace_carrier is None:
                    self.trace_carrier = {}
                self.trace_carrier[kind] = value.decode("latin-1")
        if request_id is None or not _VALID_REQUEST_ID.match(request_id):
            request_id = f"{random.getrandbits(128):032x}"
        self.request_id: str = request_id
        self.header_count = len(fields)
        self.header_bytes = size
        self.has_body = chunked or bool(self.content_length)
        self.headers: list[tuple[bytes, bytes]] = [(b"x-request-id", request_id.encode())]

    async def send(self, message: Message) -> None:
        """Pass ``message`` on; the head gets ``headers`` and its status is kept."""
        if message["type"] == "http.response.start":
            self.started = True
            self.status = message["status"]
            message = {**message, "headers": [*message.get("headers", ()), *self.headers]}
        await self._send(message)
