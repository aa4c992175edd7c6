"""Webhook deliveries to https:// URLs: verified through the process's one TLS context, made
at the first of them, on the connection pinned to the checked address."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from libs.common import http
from services.workflow.webhooks import urls as webhook_urls
from tests.common.tls_server import make_certificates, serving


@pytest.fixture
def hooks_example(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every webhook host resolves to 127.0.0.1; no shared TLS context made yet."""
    monkeypatch.setattr(http, "_tls", None)
    monkeypatch.setattr(webhook_urls, "resolve", _to_loopback)


async def test_a_webhook_client_makes_no_tls_context_until_an_https_delivery(
    hooks_example: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca, server = make_certificates(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(ca))
    async with webhook_urls.pinned_client(timeout_s=5, check=False) as client:
        async with serving() as port:
            assert (await client.post(f"http://hooks.example:{port}/", content=b"{}")).text == "ok"
        assert http._tls is None
        async with serving(server) as port:
            sent = await client.post(f"https://hooks.example:{port}/", content=b"{}")
        assert sent.text == "ok"
        assert http._tls is not None
    # A second deliverer's client shares the context.
    async with webhook_urls.pinned_client(timeout_s=5, check=False) as client:
        async with serving(server) as port:
            assert (await client.post(f"https://hooks.example:{port}/")).text == "ok"
        pool: Any = client._transport.for_scheme("https")._pool
        assert pool._ssl_context is http._tls


async def test_a_webhook_to_a_server_no_trusted_ca_signed_is_refused(
    hooks_example: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca, server = make_certificates(tmp_path)
    async with webhook_urls.pinned_client(timeout_s=5, check=False) as client:
        async with serving(server) as port:
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await client.post(f"https://hooks.example:{port}/", content=b"{}")
    # Trusting the CA, a name the certificate does not carry is still refused.
    monkeypatch.setattr(http, "_tls", None)
    monkeypatch.setenv("SSL_CERT_FILE", str(ca))
    async with webhook_urls.pinned_client(timeout_s=5, check=False) as client:
        async with serving(server) as port:
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await client.post(f"https://other.example:{port}/", content=b"{}")


async def _to_loopback(host: str, port: int, *, check: bool) -> list[str]:
    return ["127.0.0.1"]
