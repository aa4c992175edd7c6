"""The route table and the header and path rules of the proxy, without a network."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.proxy import request_headers, response_headers, upstream_path
from gateway.routes import GATEWAY, RouteTable, default_routes

TABLE = RouteTable(default_routes())


@pytest.mark.parametrize(
    ("path", "target", "label"),
    [
        ("/healthz", GATEWAY, "/healthz"),
        ("/readyz", GATEWAY, "/readyz"),
        ("/metrics", GATEWAY, "/metrics"),
        ("/openapi.json", GATEWAY, "/openapi.json"),
        ("/docs", GATEWAY, "/docs"),
        ("/v1/keys", GATEWAY, "/v1/*"),
        ("/api/identity", "identity", "/api/identity/*"),
        ("/api/identity/healthz", "identity", "/api/identity/*"),
        ("/api/evaluation/v1/reviews", "evaluation", "/api/evaluation/*"),
        ("/api/identityx/v1", None, "/api/*"),
        ("/api/portal/x", None, "/api/*"),
        ("/api", None, "/api/*"),
        ("/.well-known/jwks.json", "identity", "/.well-known/*"),
        ("/oauth2/token", "identity", "/oauth2/*"),
        ("/oauth2x", "portal", "/*"),
        ("/", "portal", "/*"),
        ("/healthz/deeper", "portal", "/*"),
        ("/applications/42", "portal", "/*"),
    ],
)
def test_routes(path: str, target: str | None, label: str) -> None:
    route = TABLE.match(path)
    assert route.target == target
    assert route.path == label


def test_the_table_forwards_to_every_part() -> None:
    assert TABLE.targets == {"identity", "catalog", "exchange", "workflow", "evaluation", "portal"}


def _scope(path: str, raw_path: bytes | None, query: bytes = b"", **extra: Any) -> dict[str, Any]:
    return {
        "type": "http",
        "path": path,
        "raw_path": raw_path,
        "query_string": query,
        "headers": [],
        **extra,
    }


@pytest.mark.parametrize(
    ("path", "raw_path", "query", "expected"),
    [
        ("/api/catalog/v1/items", b"/api/catalog/v1/items", b"", "/v1/items"),
        ("/api/catalog", b"/api/catalog", b"a=1", "/?a=1"),
        ("/api/catalog/", b"/api/catalog/", b"", "/"),
        ("/api/catalog/a b/c/d", b"/api/catalog/a%20b/c%2Fd", b"", "/a%20b/c%2Fd"),
        # A client that percent-encodes the prefix itself still reaches the part.
        ("/api/catalog/x y", b"/api/%63atalog/x%20y", b"", "/x%20y"),
        ("/api/catalog/x", None, b"q=%20", "/x?q=%20"),
    ],
)
def test_upstream_path(path: str, raw_path: bytes | None, query: bytes, expected: str) -> None:
    route = TABLE.match(path)
    assert upstream_path(_scope(path, raw_path, query), route) == expected


def test_openid_paths_are_not_stripped() -> None:
    route = TABLE.match("/.well-known/openid-configuration")
    scope = _scope("/.well-known/openid-configuration", b"/.well-known/openid-configuration")
    assert upstream_path(scope, route) == "/.well-known/openid-configuration"


def test_request_headers() -> None:
    scope = _scope(
        "/api/identity/x",
        b"/api/identity/x",
        headers=[
            (b"host", b"gov.example"),
            (b"connection", b"keep-alive, X-Private"),
            (b"x-private", b"1"),
            (b"keep-alive", b"timeout=5"),
            (b"proxy-authorization", b"Basic x"),
            (b"proxy-connection", b"keep-alive"),
            (b"te", b"trailers"),
            (b"trailer", b"x-checksum"),
            (b"transfer-encoding", b"chunked"),
            (b"upgrade", b"h2c"),
            (b"expect", b"100-continue"),
            (b"x-request-id", b"from-client"),
            (b"x-forwarded-for", b"198.51.100.1"),
            (b"x-forwarded-host", b"spoofed"),
            (b"accept", b"application/json"),
            (b"cookie", b"a=1"),
            (b"cookie", b"b=2"),
        ],
        client=("203.0.113.7", 51000),
        scheme="https",
    )
    headers = request_headers(scope, TABLE.match("/api/identity/x"), "req-1")
    assert headers == [
        ("accept", "application/json"),
        ("cookie", "a=1"),
        ("cookie", "b=2"),
        ("x-forwarded-for", "198.51.100.1, 203.0.113.7"),
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "gov.example"),
        ("x-forwarded-prefix", "/api/identity"),
        ("x-request-id", "req-1"),
    ]


def test_response_headers() -> None:
    raw = [
        ("Content-Type", "text/plain"),
        ("Connection", "close, X-Internal"),
        ("X-Internal", "1"),
        ("Transfer-Encoding", "chunked"),
        ("Keep-Alive", "timeout=5"),
        ("Proxy-Authenticate", "Basic"),
        ("Upgrade", "h2c"),
        ("Trailer", "x-checksum"),
        ("Date", "Mon, 01 Jan 2026 00:00:00 GMT"),
        ("Server", "uvicorn"),
        ("X-Request-ID", "abc"),
        ("Set-Cookie", "a=1"),
        ("Set-Cookie", "b=2"),
        ("Content-Length", "2"),
    ]
    assert response_headers(raw) == [
        (b"content-type", b"text/plain"),
        (b"set-cookie", b"a=1"),
        (b"set-cookie", b"b=2"),
        (b"content-length", b"2"),
    ]


def test_request_headers_carry_the_gateways_trace_fields() -> None:
    """The gateway's traceparent replaces the client's; a field it does not set passes."""
    scope = _scope(
        "/api/identity/x",
        b"/api/identity/x",
        headers=[
            (b"traceparent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
            (b"baggage", b"tenant=a"),
            (b"connection", b"x-secret"),
            (b"x-secret", b"1"),
        ],
    )
    gateway_trace = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-01"}
    headers = request_headers(scope, TABLE.match("/api/identity/x"), None, gateway_trace)
    assert [v for n, v in headers if n == "traceparent"] == [gateway_trace["traceparent"]]
    assert ("baggage", "tenant=a") in headers
    assert not [n for n, _ in headers if n in ("connection", "x-secret")]
