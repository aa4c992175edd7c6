"""The app's record source: a pooled HTTP client for federated endpoints, made at start-up."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI

from services.exchange.federation import FederationClient
from services.exchange.records.sources import RecordSource
from services.exchange.settings import ExchangeSettings


@asynccontextmanager
async def records_lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Put ``RecordSource`` on ``app.state.record_source``; close its HTTP client at the end."""
    settings: ExchangeSettings = app.state.settings
    timeout = httpx.Timeout(settings.federation_timeout_s)
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=20)
    # No redirects: the signed target URI is the one the catalogue registered.
    async with httpx.AsyncClient(
        timeout=timeout, limits=limits, follow_redirects=False, trust_env=False
    ) as http:
        federation = FederationClient(
            http=http,
            secrets={
                org: secret.get_secret_value().encode()
                for org, secret in settings.federation_secrets.items()
            },
            max_response_bytes=settings.federation_max_response_bytes,
        )
        app.state.record_source = RecordSource(federation=federation, database=app.state.database)
        yield
