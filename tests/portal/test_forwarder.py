"""The portal names the anonymous visitor it calls for, with its own client-credentials token,
so the gateway counts each visitor on their own (docs/gateway.md, trusted forwarders)."""

from __future__ import annotations

import httpx

from portal.platform import Platform, visitor_address


async def test_anonymous_calls_carry_the_portals_token_and_the_visitors_address() -> None:
    seen: list[httpx.Request] = []
    grants = 0

    def answer(request: httpx.Request) -> httpx.Response:
        nonlocal grants
        if request.url.path == "/oauth2/token":
            grants += 1
            assert request.headers["Authorization"].startswith("Basic ")
            assert b"grant_type=client_credentials" in request.content
            return httpx.Response(200, json={"access_token": f"portal-{grants}", "expires_in": 300})
        seen.append(request)
        return httpx.Response(200, json={"items": []})

    api = Platform(
        "http://gateway.test", timeout=5, transport=httpx.MockTransport(answer),
        client_credentials=("portal", "secret"),
    )  # fmt: skip
    try:
        address = visitor_address.set("203.0.113.7")
        try:
            await api.get_json("/api/catalog/v1/items")
            await api.get_json("/api/catalog/v1/items")
            await api.get_json("/api/catalog/v1/items", token="persons-token")
        finally:
            visitor_address.reset(address)
        await api.get_json("/api/catalog/v1/items")  # outside a visitor's request
    finally:
        await api.aclose()
    anonymous, again, signed_in, outside = seen
    for request in (anonymous, again):
        assert request.headers["X-Pingtai-Forwarder"] == "portal-1"  # fetched once, kept
        assert request.headers["X-Pingtai-Visitor-Address"] == "203.0.113.7"
    assert signed_in.headers["Authorization"] == "Bearer persons-token"
    assert "X-Pingtai-Forwarder" not in signed_in.headers
    assert "X-Pingtai-Visitor-Address" not in outside.headers
    assert grants == 1


async def test_without_the_portals_token_calls_go_as_before() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth2/token":
            return httpx.Response(401, json={"error": "invalid_client"})
        seen.append(request)
        return httpx.Response(200, json={})

    api = Platform(
        "http://gateway.test", timeout=5, transport=httpx.MockTransport(answer),
        client_credentials=("portal", "wrong"),
    )  # fmt: skip
    address = visitor_address.set("203.0.113.7")
    try:
        await api.get_json("/api/catalog/v1/items")
    finally:
        visitor_address.reset(address)
        await api.aclose()
    assert "X-Pingtai-Forwarder" not in seen[0].headers
