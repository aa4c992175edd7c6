"""The gateway part's app."""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.routing import BaseRoute

from gateway.applications.events import ApiKeyRevoked
from gateway.applications.keys import KeyHasher
from gateway.developers.openapi import OpenApiAggregator
from gateway.developers.router import portal_router
from gateway.dispatcher import dispatch_first
from gateway.edge.counters import CounterStore, MemoryCounters, NatsCounters
from gateway.edge.guard import EdgeGuard
from gateway.edge.keys import KeyDirectory
from gateway.edge.limits import Limiter
from gateway.edge.policies import DAY_S, MINUTE_S
from gateway.forwarding import Forwarder
from gateway.plans.events import PlanChanged
from gateway.proxy import Proxy, UpstreamPool
from gateway.router import router
from gateway.routes import RouteTable, default_routes, with_policies
from gateway.settings import GatewaySettings
from gateway.usage.recorder import UsageRecorder
from libs.common.app import create_service_app
from libs.common.auth import token_verifier
from libs.common.events import Broadcast, CloudEvent, EventBus


def _key_events(keys: KeyDirectory, replay_s: float) -> Broadcast:
    """Every replica drops a revoked key, or the keys of a changed plan, from its cache."""

    async def forget(event: CloudEvent) -> None:
        if event.type == ApiKeyRevoked.event_type:
            keys.forget_key(event.data_as(ApiKeyRevoked).key_id)
        elif event.type == PlanChanged.event_type:
            keys.forget_plan(event.data_as(PlanChanged).plan_id)

    return Broadcast(
        name="gateway-key-cache",
        subjects=[ApiKeyRevoked.event_type, PlanChanged.event_type],
        handler=forget,
        replay_s=replay_s,
    )


def create_app(
    settings: GatewaySettings | None = None, *, configure_process: bool = True
) -> FastAPI:
    """Build the gateway app from ``settings`` (read from the environment when omitted)."""
    settings = settings or GatewaySettings()
    table = RouteTable(with_policies(default_routes(), settings.route_policies))
    pool = UpstreamPool(settings, sorted(table.targets))
    events = EventBus(settings)

    def sessionmaker() -> async_sessionmaker[AsyncSession]:
        return app.state.database.sessionmaker  # type: ignore[no-any-return]

    usage = UsageRecorder(sessionmaker=sessionmaker, flush_s=settings.usage_flush_s)
    app = create_service_app(
        settings,
        title="Pingtai Gateway",
        description=(
            "Gateway: the one public entrance. Routes /api/<part>/... to each service and / to "
            "the portal; API keys, plans, quotas and usage for developers (开发者)."
        ),
        routers=[router],
        lifespans=[pool.lifespan, usage.lifespan],
        behind_gateway=False,
        readiness_checks=pool.readiness_checks(),
        configure_process=configure_process,
        events=events,
    )
    keys = KeyDirectory(
        hasher=KeyHasher(settings.secret_key),
        sessionmaker=sessionmaker,
        env=settings.env,
        cache_s=settings.api_key_cache_s,
    )
    events.add_broadcast(_key_events(keys, replay_s=settings.api_key_cache_s))
    store: CounterStore = (
        NatsCounters(
            lambda: events.link,
            windows=(MINUTE_S, DAY_S),
            replicas=settings.limits_stream_replicas,
            timeout_s=settings.limits_timeout_s,
        )
        if settings.nats_url
        else MemoryCounters()
    )
    limiter = Limiter(store, max_lease=settings.limits_max_lease)

    guard = EdgeGuard(
        settings=settings,
        verifier=lambda: token_verifier(app),
        keys=keys,
        limiter=limiter,
        usage=usage,
    )
    forwarder = Forwarder(
        Proxy(pool),
        guard,
        part=settings.part,
        max_body_bytes=settings.max_body_bytes,
        cors_origins=settings.cors_origins,
        access_log=settings.access_log,
        access_log_slow_ms=settings.access_log_slow_ms,
    )

    # The merged document replaces FastAPI's own at /openapi.json (which /docs reads).
    app.router.routes[:] = [r for r in app.router.routes if not _is_openapi_route(r)]
    app.include_router(portal_router)
    dispatch_first(app, table=table, forward=forwarder)
    app.state.routes = table
    app.state.upstreams = pool
    app.state.keys = keys
    app.state.limiter = limiter
    app.state.usage = usage
    app.state.openapi = OpenApiAggregator(pool, table, cache_s=settings.openapi_cache_s)
    return app


def _is_openapi_route(route: BaseRoute) -> bool:
    return getattr(route, "path", None) == "/openapi.json"
