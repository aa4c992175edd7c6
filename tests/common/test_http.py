"""Outgoing clients: one TLS context per process, made for the first https:// call, verifying."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from libs.common import http
from libs.common.auth.jwks import JwksCache
from tests.common.tls_server import make_certificates, serving


@pytest.fixture
def fresh_context(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No shared TLS context yet (the process may have made one in another test), no proxy."""
    monkeypatch.setattr(http, "_tls", None)
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("all_proxy", raising=False)
    yield


async def test_plain_http_calls_make_no_tls_context(fresh_context: None) -> None:
    async with serving() as port, http.service_client(f"http://127.0.0.1:{port}") as client:
        answer = await client.get("/")
        transport = client._transport
    assert answer.text == "ok"
    assert isinstance(transport, http.LazyTLSTransport)
    assert transport._tls is None and transport._plain is not None
    assert http._tls is None


async def test_https_refuses_a_server_no_trusted_ca_signed(
    fresh_context: None, tmp_path: Path
) -> None:
    _ca, server = make_certificates(tmp_path)
    async with serving(server) as port, http.service_client(f"https://127.0.0.1:{port}") as c:
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await c.get("/")


async def test_https_verifies_and_every_client_shares_one_context(
    fresh_context: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca, server = make_certificates(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(ca))  # httpx's way to name the CAs to trust
    async with serving(server) as port:
        url = f"https://127.0.0.1:{port}"
        async with http.service_client(url) as one, http.service_client(url) as two:
            assert (await one.get("/")).text == "ok"
            assert (await two.get("/")).text == "ok"
        keys = JwksCache(f"{url}/jwks")
        try:
            transport = keys._client._transport
            assert isinstance(transport, http.LazyTLSTransport)
            assert (await keys._client.get(f"{url}/jwks")).text == "ok"
        finally:
            await keys.aclose()
    context = http._tls
    assert context is not None
    assert context.cert_store_stats()["x509_ca"] == 1  # the test's CA, once
    # The name checked is the URL's: the certificate names 127.0.0.1, not localhost.
    async with serving(server) as port, http.service_client(f"https://localhost:{port}") as c:
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await c.get("/")
    assert http._tls is context


async def test_the_plain_transport_never_trusts_a_tls_server(
    fresh_context: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca, server = make_certificates(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(ca))
    plain = http.LazyTLSTransport().for_scheme("http")
    async with serving(server) as port, httpx.AsyncClient(transport=plain) as client:
        # Were an https:// request ever routed to it, its context (no CA) would refuse.
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await client.get(f"https://127.0.0.1:{port}/")


def test_a_proxy_in_the_environment_keeps_httpx_transports(
    fresh_context: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert "transport" in http.client_options()
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    options = http.client_options()
    assert options == {"verify": http.tls_context()}
    client = http.service_client("https://issuer.example")
    assert not isinstance(client._transport, http.LazyTLSTransport)
    assert any(t is not None for t in client._mounts.values())  # the proxy's transport
