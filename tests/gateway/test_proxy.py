"""The gateway forwarding to real servers: paths, bodies, streams, headers, tracing, failures."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import httpx
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from gateway.app import create_app
from gateway.settings import UPSTREAM_PARTS, GatewaySettings
from tests.gateway.conftest import GZIPPED, StartPlatform

PROBLEM = "application/problem+json"


def header_values(echo: dict[str, Any], name: str) -> list[str]:
    """Every value of header ``name`` that reached the fake part."""
    return [v for k, v in echo["headers"] if k == name]


async def get_json(
    client: aiohttp.ClientSession, url: str, **kwargs: Any
) -> tuple[aiohttp.ClientResponse, dict[str, Any]]:
    method = kwargs.pop("method", "GET")
    async with client.request(method, url, **kwargs) as response:
        return response, await response.json(content_type=None)


async def test_api_prefix_is_stripped_and_query_kept(
    platform: StartPlatform, client: aiohttp.ClientSession
) -> None:
    async with platform() as p:
        response, echo = await get_json(
            client, f"{p.url}/api/catalog/v1/items/a%2Fb?b=2&a=1&q=%20x&q=y"
        )
    assert response.status == 200
    assert response.headers["x-upstream"] == "catalog"
    assert echo["part"] == "catalog"
    assert echo["raw_path"] == "/v1/items/a%2Fb"
    assert echo["query"] == "b=2&a=1&q=%20x&q=y"
    assert header_values(echo, "x-forwarded-prefix") == ["/api/catalog"]


async def test_a_part_s_health_is_reachable_through_its_prefix(
    platform: StartPlatform, client: aiohttp.ClientSession
) -> None:
    async with platform() as p:
        _, echo = await get_json(client, f"{p.url}/api/identity/healthz")
        _, root = await get_json(client, f"{p.url}/api/identity")
    assert (echo["part"], echo["path"]) == ("identity", "/healthz")
    assert (root["part"], root["path"]) == ("identity", "/")


async def test_methods_and_bodies_are_forwarded(
    platform: StartPlatform, client: aiohttp.ClientSession
) -> None:
    body = b'{"name": "\xe5\xb9\xb3\xe5\x8f\xb0"}'
    async with platform() as p:
        for method in ("POST", "PUT", "PATCH", "DELETE"):
            response, echo = await get_json(
                client,
                f"{p.url}/api/catalog/v1/things/1",
                method=method,
                data=body,
                headers={"content-type": "application/json"},
            )
            assert response.status == 200
            assert echo["method"] == method
            assert echo["body_size"] == len(body)
            assert echo["body_sha256"] == hashlib.sha256(body).hexdigest()
            assert header_values(echo, "content-type") == ["application/json"]


async def test_a_large_upload_is_streamed_through(
    platform: StartPlatform, client: aiohttp.ClientSession
) -> None:
    block = os.urandom(64 * 1024)
    blocks = 80  # 5 MiB
    expected = hashlib.sha256(block * blocks).hexdigest()

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(blocks):
            yield block

    async with platform() as p:
        # Chunked (no Content-Length) ...
        upload = f"{p.url}/api/identity/upload"
        _, chunked = await get_json(client, upload, method="POST", data=chunks())
        # ... and with a Content-Length.
        _, sized = await get_json(client, upload, method="PUT", data=block * blocks)
    for echo in (chunked, sized):
        assert echo["body_size"] == len(block) * blocks
        assert echo["body_sha256"] == expected


async def test_server_sent_events_arrive_before_the_stream_ends(
    platform: StartPlatform, client: aiohttp.ClientSession
) -> None:
    async with platform() as p:
        identity = p.parts["identity"]
        async with client.get(f"{p.url}/api/identity/events") as response:
            assert response.status == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            first = await asyncio.wait_for(response.content.readuntil(b"\n\n"), 5)
            assert first == b"data: first\n\n"
            assert not identity.stream_finished
            identity.release_stream.set()
            rest = await asyncio.wait_for(response.content.read(), 5)
        assert rest == b"data: second\n\n"
        assert identity.stream_finished


async def test_a_client_leaving_a_stream_stops_the_upstream_stream(
    platform: StartPlatform, client: aiohttp.ClientSession
) -> None:
    async with platform() as p:
        async with client.get(f"{p.url}/api/identity/endless") as response:
            assert await asyncio.wait_for(response.content.readuntil(b"\n\n"), 5)
            response.close()
        await asyncio.wait_for(p.parts["identity"].endless_closed.wait(), 5)


async def test_hop_by_hop_request_headers_are_dropped(
    platform: StartPlatform, client: aiohttp.ClientSession
) -> None:
    headers = {
        "Connection": "keep-alive, X-Private-Hop",
        "X-Private-Hop": "secret",
        "Keep-Alive": "timeout=5",
        "Proxy-Authorization": "Basic Zm9vOmJhcg==",
        "TE": "trailers",
        "X-End-To-End": "kept",
        "Authorization": "Basic dXNlcjpwYXNz",  # a bearer token would be verified at the edge
    }
    async with platform() as p:
        _, echo = await get_json(client, f"{p.url}/api/identity/x", headers=headers)
    names = {k for k, _ in echo["headers"]}
    assert not names & {"x-private-hop", "keep-alive", "proxy-authorization", "te"}
    assert "x-private-hop" not in ",".join(header_values(echo, "connection")).lower()
    assert header_values(echo, "x-end-to-end") == ["kept"]
    assert header_values(echo, "authorization") == ["Basic dXNlcjpwYXNz"]


async def test_hop_by_hop_response_headers_are_dropped(
    platform: StartPlatform, client: aiohttp.ClientSession
) -> None:
    async with platform() as p:
        async with client.get(f"{p.parts['identity'].url}/hop") as direct:
            assert direct.headers["x-private-hop"] == "secret"  # the part really sends them
        async with client.get(f"{p.url}/api/identity/hop") as response:
            assert await response.read() == b"ok"
            headers = response.headers
    assert "x-private-hop" not in headers
    assert "keep-alive" not in headers
    assert "proxy-authenticate" not in headers
    assert headers["x-end-to-end"] == "kept"
    assert len(headers.getall("date")) == 1
    assert len(headers.getall("x-request-id")) == 1


async def test_forwarded_headers_are_set(
    platform: StartPlatform, client: aiohttp.ClientSession
) -> None:
    async with platform() as p:
        _, plain = await get_json(client, f"{p.url}/api/identity/x")
        _, behind = await get_json(
            client, f"{p.url}/api/identity/x", headers={"X-Forwarded-For": "203.0.113.9"}
        )
    host = p.url.removeprefix("http://")
    assert header_values(plain, "x-forwarded-for") == ["127.0.0.1"]
    assert header_values(plain, "x-forwarded-proto") == ["http"]
    assert header_values(plain, "x-forwarded-host") == [host]
    # The test client is on 127.0.0.1, a trusted proxy: its X-Forwarded-For names the client.
    assert header_values(behind, "x-forwarded-for") == ["203.0.113.9"]


async def test_the_request_id_travels_both_ways(
    platform: StartPlatform, client: aiohttp.ClientSession
) -> None:
    async with platform() as p:
        given, given_echo = await get_json(
            client, f"{p.url}/api/identity/x", headers={"X-Request-ID": "req-123"}
        )
        made, made_echo = await get_json(client, f"{p.url}/api/identity/x")
    assert header_values(given_echo, "x-request-id") == ["req-123"]
    assert given.headers.getall("x-request-id") == ["req-123"]
    made_id = made.headers["x-request-id"]
    assert len(made_id) == 32
    assert header_values(made_echo, "x-request-id") == [made_id]


async def test_traceparent_arrives_with_the_gateway_span_as_parent(
    platform: StartPlatform,
    client: aiohttp.ClientSession,
    finished_spans: InMemorySpanExporter,
) -> None:
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    caller_span = "00f067aa0ba902b7"
    async with platform() as p:
        _, continued = await get_json(
            client,
            f"{p.url}/api/catalog/v1/items",
            headers={"traceparent": f"00-{trace_id}-{caller_span}-01"},
        )
        _, fresh = await get_json(client, f"{p.url}/api/catalog/v1/items")

    version, got_trace, parent, flags = header_values(continued, "traceparent")[0].split("-")
    assert (version, got_trace, flags) == ("00", trace_id, "01")
    assert parent != caller_span
    gateway_spans = {
        format(s.context.span_id, "016x"): s
        for s in finished_spans.get_finished_spans()
        if s.kind is SpanKind.SERVER and s.attributes and s.attributes.get("pingtai.upstream")
    }
    assert parent in gateway_spans
    gateway_span = gateway_spans[parent]
    assert gateway_span.name == "GET /api/catalog/*"
    assert format(gateway_span.context.trace_id, "032x") == trace_id
    assert gateway_span.parent is not None
    assert format(gateway_span.parent.span_id, "016x") == caller_span

    _, fresh_trace, fresh_parent, _ = header_values(fresh, "traceparent")[0].split("-")
    assert fresh_parent in gateway_spans
    assert format(gateway_spans[fresh_parent].context.trace_id, "032x") == fresh_trace
    assert gateway_spans[fresh_parent].parent is None


async def test_openid_paths_go_to_identity_unchanged(
    platform: StartPlatform, client: aiohttp.ClientSession
) -> None:
    async with platform() as p:
        _, discovery = await get_json(client, f"{p.url}/.well-known/openid-configuration")
        _, token = await get_json(
            client, f"{p.url}/oauth2/token", method="POST", data={"grant_type": "x"}
        )
    assert (discovery["part"], discovery["path"]) == (
        "identity",
        "/.well-known/openid-configuration",
    )
    assert (token["part"], token["path"], token["method"]) == ("identity", "/oauth2/token", "POST")
    assert token["body_size"] == len(b"grant_type=x")


async def test_everything_else_goes_to_the_portal(
    platform: StartPlatform, client: aiohttp.ClientSession
) -> None:
    async with platform() as p:
        _, root = await get_json(client, f"{p.url}/")
        _, page = await get_json(client, f"{p.url}/applications/42?tab=history")
        _, lookalike = await get_json(client, f"{p.url}/apiary")
    assert (root["part"], root["path"]) == ("portal", "/")
    assert (page["part"], page["path"], page["query"]) == (
        "portal",
        "/applications/42",
        "tab=history",
    )
    assert (lookalike["part"], lookalike["path"]) == ("portal", "/apiary")
    assert header_values(root, "x-forwarded-prefix") == []


async def test_the_gateway_serves_its_own_endpoints(
    platform: StartPlatform, client: aiohttp.ClientSession
) -> None:
    async with platform() as p:
        _, health = await get_json(client, f"{p.url}/healthz")
        _, openapi = await get_json(client, f"{p.url}/openapi.json")
        ready, readiness = await get_json(client, f"{p.url}/readyz")
    assert health == {"status": "ok", "part": "gateway"}
    assert openapi["info"]["title"] == "Pingtai platform API"
    # Parts start in any order: an absent one degrades the gateway, it does not unready it.
    assert ready.status == 200
    assert readiness["status"] == "degraded"
    assert readiness["checks"]["database"]["ok"]
    assert readiness["checks"]["upstream:identity"]["ok"]
    assert not readiness["checks"]["upstream:exchange"]["ok"]
    assert not readiness["checks"]["upstream:exchange"]["critical"]


async def test_an_unknown_api_is_a_404_problem(
    platform: StartPlatform, client: aiohttp.ClientSession
) -> None:
    async with platform() as p:
        for path in ("/api/foo/v1/x", "/api", "/api/"):
            response, problem = await get_json(client, f"{p.url}{path}")
            assert response.status == 404
            assert response.headers["content-type"] == PROBLEM
            assert problem["status"] == 404
            assert problem["request_id"] == response.headers["x-request-id"]


async def test_a_part_that_is_down_is_a_502_problem(
    platform: StartPlatform, client: aiohttp.ClientSession
) -> None:
    async with platform() as p:
        response, problem = await get_json(client, f"{p.url}/api/exchange/v1/datasets")
    assert response.status == 502
    assert response.headers["content-type"] == PROBLEM
    assert problem["type"].endswith("/upstream-unavailable")
    assert problem["upstream"] == "exchange"
    assert problem["request_id"] == response.headers["x-request-id"]


async def test_a_slow_part_is_a_504_problem(
    platform: StartPlatform, client: aiohttp.ClientSession
) -> None:
    async with platform(upstream_read_timeout_s=0.3) as p:
        response, problem = await get_json(client, f"{p.url}/api/identity/slow")
    assert response.status == 504
    assert response.headers["content-type"] == PROBLEM
    assert problem["type"].endswith("/upstream-timeout")
    assert problem["request_id"] == response.headers["x-request-id"]


async def test_a_body_over_the_limit_is_a_413_problem(
    platform: StartPlatform, client: aiohttp.ClientSession
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b"x" * 1000

    async with platform(max_body_bytes=4000) as p:
        response, problem = await get_json(
            client, f"{p.url}/api/identity/upload", method="POST", data=chunks()
        )
    assert response.status == 413
    assert response.headers["content-type"] == PROBLEM
    assert problem["request_id"] == response.headers["x-request-id"]


async def test_responses_pass_through_as_sent(
    platform: StartPlatform, client: aiohttp.ClientSession
) -> None:
    async with platform() as p:
        async with client.get(f"{p.url}/api/identity/redirect", allow_redirects=False) as moved:
            assert moved.status == 302
            assert moved.headers["location"] == "/elsewhere"
        async with client.get(f"{p.url}/api/identity/gzip") as zipped:
            assert zipped.headers["content-encoding"] == "gzip"
            assert await zipped.read() == GZIPPED
        async with client.get(f"{p.url}/api/identity/cookies") as cookies:
            assert len(cookies.headers.getall("set-cookie")) == 2
        async with client.head(f"{p.url}/api/identity/x") as head:
            assert head.status == 200
            assert await head.read() == b""


async def raw_request(url: str, head: bytes) -> tuple[int, bytes]:
    """Send ``head`` (a request line and fields, bytes as they are) and read the answer."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(head + b"Host: gateway\r\nConnection: close\r\n\r\n")
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
    status = int(answer.split(b" ", 2)[1])
    return status, answer.partition(b"\r\n\r\n")[2]


async def test_header_values_pass_as_utf_8_and_anything_else_is_a_400(
    platform: StartPlatform, client: aiohttp.ClientSession
) -> None:
    async with platform() as p:
        utf8 = "平台".encode()
        status, body = await raw_request(
            p.url, b"GET /api/identity/x HTTP/1.1\r\nX-Name: " + utf8 + b"\r\n"
        )
        assert status == 200
        echo = json.loads(body)
        assert header_values(echo, "x-name") == [utf8.decode("latin-1")]  # the same bytes
        status, body = await raw_request(
            p.url, b"GET /api/identity/x HTTP/1.1\r\nX-Name: caf\xe9\r\n"
        )
        assert status == 400
        assert json.loads(body)["type"].endswith("/bad-request")
        assert p.parts["identity"].hits == 1


async def test_a_response_field_that_is_not_ascii_is_left_out(
    platform: StartPlatform, client: aiohttp.ClientSession
) -> None:
    async with platform() as p:
        async with client.get(f"{p.parts['identity'].url}/obs-text") as direct:
            assert (b"x-name", b"caf\xe9") in direct.raw_headers  # the part really sends it
        async with client.get(f"{p.url}/api/identity/obs-text") as response:
            assert response.status == 200
            assert await response.read() == b"ok"
            assert response.headers["x-plain"] == "kept"
            assert "x-name" not in response.headers


@pytest.mark.parametrize(
    "path", ["/api/identity/v1/../x", "/api/catalog/%2e%2e/x", "/api/identity/./x"]
)
async def test_a_path_with_dot_segments_is_a_400(
    platform: StartPlatform, client: aiohttp.ClientSession, path: str
) -> None:
    async with platform() as p:
        status, body = await raw_request(p.url, f"GET {path} HTTP/1.1\r\n".encode())
        assert status == 400
        assert json.loads(body)["type"].endswith("/bad-request")
        status, _ = await raw_request(p.url, b"GET /api/identity/.well/x.. HTTP/1.1\r\n")
        assert status == 200  # dots inside a segment are ordinary
        assert p.parts["identity"].hits + p.parts["catalog"].hits == 1


async def test_forwarded_requests_are_measured_by_route(
    platform: StartPlatform, client: aiohttp.ClientSession
) -> None:
    async with platform() as p:
        await get_json(client, f"{p.url}/api/identity/v1/users/1")
        async with client.get(f"{p.url}/metrics") as response:
            metrics = await response.text()
    assert 'part="gateway",route="/api/identity/*",status="200"' in metrics


async def test_the_app_is_usable_in_process(tmp_path: Any) -> None:
    settings = GatewaySettings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}")
    app = create_app(settings, configure_process=False)
    assert set(app.state.upstreams.urls) == set(UPSTREAM_PARTS)
    transport = httpx.ASGITransport(app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://gateway") as http,
    ):
        assert app.state.upstreams.started
        missing = await http.get("/api/nope/v1")
        health = await http.get("/healthz")
    assert not app.state.upstreams.started
    assert missing.status_code == 404
    assert missing.headers["content-type"] == PROBLEM
    assert health.json()["part"] == "gateway"
