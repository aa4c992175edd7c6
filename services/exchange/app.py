"""The exchange part's app."""

from __future__ import annotations

from fastapi import FastAPI

from libs.common.app import create_service_app
from libs.common.events import EventBus
from services.exchange.access import SUBSCRIPTIONS as access_subscriptions
from services.exchange.access.cache import GrantCache, cache_broadcasts
from services.exchange.access.fetch import record_fetch_route
from services.exchange.datasets.consumers import catalogue_datasets
from services.exchange.ledger import ledger_lifespan
from services.exchange.records.setup import records_lifespan
from services.exchange.router import router
from services.exchange.settings import ExchangeSettings


def create_app(settings: ExchangeSettings | None = None) -> FastAPI:
    """Build the exchange app from ``settings`` (read from the environment when omitted)."""
    settings = settings or ExchangeSettings()
    events = EventBus(settings, subscriptions=[catalogue_datasets, *access_subscriptions])
    app = create_service_app(
        settings,
        title="Pingtai Exchange",
        description=(
            "Exchange: data shared between departments under grants and consent, "
            "the access ledger, open data."
        ),
        routers=[router],
        lifespans=[ledger_lifespan, records_lifespan],
        events=events,
        # The single-record fetch, answered before FastAPI's exception layer and router (the
        # documented operation answers the same way; services/exchange/access/fetch.py).
        front_routes=[record_fetch_route()],
    )
    # Grants and datasets held in memory for record queries; every process forgets a changed
    # one when its event arrives (docs/exchange.md, "Caching").
    cache = GrantCache(settings.access_grant_cache_ttl_s, app.state.database)
    app.state.grant_cache = cache
    app.state.event_bus = events
    for broadcast in cache_broadcasts(cache):
        events.add_broadcast(broadcast)
    return app
