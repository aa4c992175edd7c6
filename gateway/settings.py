"""Settings of the gateway part, from ``PINGTAI_GATEWAY_*`` variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_settings import SettingsConfigDict
from yarl import URL

from libs.common.settings import DEFAULT_PORT_BASE, PORT_OFFSETS, PartSettings

# The services published under /api/<part>/, and every part the gateway forwards to.
SERVICE_PARTS: tuple[str, ...] = ("identity", "catalog", "exchange", "workflow", "evaluation")
UPSTREAM_PARTS: tuple[str, ...] = (*SERVICE_PARTS, "portal")


def default_upstream(part: str, environ: Mapping[str, str] = os.environ) -> str:
    """Where ``part`` listens on this machine: ``PINGTAI_<PART>_PORT`` if set, else 8000+offset.

    ``pingtai up --port-base N`` sets ``PINGTAI_<PART>_PORT`` for every process, so the gateway
    follows the parts wherever the supervisor puts them.
    """
    raw = environ.get(f"PINGTAI_{part.upper()}_PORT", "").strip()
    if raw:
        try:
            port = int(raw)
        except ValueError:
            raise ValueError(f"PINGTAI_{part.upper()}_PORT is not a port number: {raw!r}") from None
    else:
        port = DEFAULT_PORT_BASE + PORT_OFFSETS[part]
    return f"http://127.0.0.1:{port}"


def normalise_upstream(part: str, value: str) -> str:
    """Check an upstream base URL (http(s), a host, no query) and drop its trailing slash."""
    url = URL(value.strip())
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError(f"the {part} upstream must be an http(s) URL with a host, not {value!r}")
    if url.query_string or url.fragment:
        raise ValueError(f"the {part} upstream must not carry a query or fragment: {value!r}")
    return str(url).rstrip("/")


AuthMode = Literal["anonymous", "token", "key", "key_and_token"]


class RoutePolicy(BaseModel):
    """What the edge asks of a request on one route, from ``PINGTAI_GATEWAY_ROUTE_POLICIES``.

    Every field left out keeps the route's default (``anonymous`` auth, the part's CORS origins,
    the gateway-wide limits).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    # anonymous: no credential needed (a token or key sent must still be valid); token: a bearer
    # access token; key: an X-API-Key; key_and_token: both (a client-credentials token).
    auth: AuthMode = "anonymous"
    cors_origins: tuple[str, ...] | None = None
    # Requests per minute per IP without credentials, per token subject with a token; None: the
    # gateway-wide setting. API keys are limited by their plan.
    anonymous_per_minute: int | None = Field(default=None, ge=0)
    token_per_minute: int | None = Field(default=None, ge=0)
    max_body_bytes: int | None = Field(default=None, gt=0)


class GatewaySettings(PartSettings):
    """The gateway part's settings."""

    part: ClassVar[str] = "gateway"

    model_config = SettingsConfigDict(
        env_prefix="PINGTAI_GATEWAY_", extra="ignore", populate_by_name=True
    )

    # Where each part is. After validation every part of UPSTREAM_PARTS has an entry, chosen by:
    # PINGTAI_GATEWAY_<PART>_URL, then this map (PINGTAI_GATEWAY_UPSTREAMS as JSON), then
    # http://127.0.0.1:$PINGTAI_<PART>_PORT, then http://127.0.0.1:<8000 + the part's offset>.
    upstreams: dict[str, str] = Field(
        default_factory=dict,
        description='Base URL per part, e.g. {"identity": "http://identity:8001"}.',
    )
    identity_url: str | None = None
    catalog_url: str | None = None
    exchange_url: str | None = None
    workflow_url: str | None = None
    evaluation_url: str | None = None
    portal_url: str | None = None

    # nginx's semantics: connect is the TCP (and TLS) handshake; read is the longest silence
    # allowed, first while waiting for the response's head (then 504), then between two chunks
    # of a streamed body (so a server-sent-event stream must send a heartbeat more often).
    upstream_connect_timeout_s: float = Field(default=5.0, gt=0)
    upstream_read_timeout_s: float = Field(default=60.0, gt=0)
    # Pooled connections per upstream, and how long an idle one is kept. Under uvicorn's own
    # keep-alive (5 s) so the gateway never reuses a connection the part is closing.
    upstream_pool_size: int = Field(default=100, gt=0)
    upstream_keepalive_s: float = Field(default=4.0, gt=0)
    # Per-part read timeouts overriding upstream_read_timeout_s, e.g. {"exchange": 120}.
    upstream_read_timeouts_s: dict[str, float] = Field(default_factory=dict)
    # Extra attempts for idempotent requests without a body when the connection fails before
    # any answer (a pooled connection the part closed, a part restarting).
    upstream_retries: int = Field(default=1, ge=0, le=3)
    # Circuit breaker per part: this many failures in a row open it; it answers 503 at once for
    # breaker_open_s, then lets one probe through (half-open); a success closes it again.
    breaker_failures: int = Field(default=5, ge=1)
    breaker_open_s: float = Field(default=5.0, gt=0)

    # Header limits (431 beyond them); the body limit is max_body_bytes (413).
    max_header_bytes: int = Field(default=16 * 1024, gt=0)
    max_header_count: int = Field(default=100, gt=0)

    # Per-route edge policies keyed by path prefix, e.g.
    # {"/api/exchange/v1/open": {"auth": "anonymous"}, "/api/exchange": {"auth": "token"}}.
    # A prefix under an existing route adds a more specific route to the same part.
    route_policies: dict[str, RoutePolicy] = Field(default_factory=dict)

    # Rate limits without an API key (a key's come from its plan): per client IP, per token
    # subject; requests per minute, 0 turns the limit off. Off for tokens by default: the
    # platform's own services call each other through the gateway with their tokens, and a
    # third party's system is limited by its key's plan; a route may set its own.
    anonymous_per_minute: int = Field(default=600, ge=0)
    # Clients trusted to name the visitor they call for (X-Pingtai-Visitor-Address, with their
    # client-credentials token in X-Pingtai-Forwarder): anonymous limits then count per visitor.
    # The portal calls the APIs for every anonymous visitor from its own address.
    trusted_forwarders: list[str] = Field(default_factory=lambda: ["portal"])
    token_per_minute: int = Field(default=0, ge=0)
    # Counters shared by every replica live in a NATS JetStream counter stream; each replica
    # leases slices of at most this many requests so most requests never leave the process.
    limits_max_lease: int = Field(default=50, ge=1, le=10_000)
    limits_stream_replicas: int = Field(default=1, ge=1, le=5)
    limits_timeout_s: float = Field(default=0.5, gt=0)

    # API keys: verified keys are cached this long (a revocation reaches every replica at once
    # through NATS; without NATS, within this time); last use and usage are written in batches.
    api_key_cache_s: float = Field(default=30.0, ge=0)
    usage_flush_s: float = Field(default=5.0, gt=0)

    # The access log of forwarded requests: "all" (one line per request at INFO, the default),
    # "errors" (only answers of 400 and above, and those slower than access_log_slow_ms), "off".
    # A line costs about 15 µs of the gateway's CPU here (docs/gateway.md, "Observability").
    access_log: Literal["all", "errors", "off"] = "all"
    access_log_slow_ms: float = Field(default=1000.0, ge=0)

    # Worker processes of `python -m gateway` (each a full gateway: its own pools, key cache and
    # limit leases; the limits hold across them through NATS, as across replicas). 1: one
    # process, as every part; in Kubernetes the replicas are the unit of scale.
    workers: int = Field(default=1, ge=1, le=64)

    # The merged OpenAPI document: each part's is fetched at most this often.
    openapi_cache_s: float = Field(default=30.0, ge=0)

    @model_validator(mode="after")
    def _resolve_upstreams(self) -> GatewaySettings:
        unknown_timeouts = sorted(set(self.upstream_read_timeouts_s) - set(UPSTREAM_PARTS))
        if unknown_timeouts:
            raise ValueError(f"unknown part(s) in upstream_read_timeouts_s: {unknown_timeouts}")
        for prefix in self.route_policies:
            if prefix and (not prefix.startswith("/") or prefix.endswith("/")):
                raise ValueError(
                    f"a route policy's prefix starts with '/' and has no trailing '/': {prefix!r}"
                )
        unknown = sorted(set(self.upstreams) - set(UPSTREAM_PARTS))
        if unknown:
            raise ValueError(
                f"unknown part(s) in upstreams: {', '.join(unknown)}; "
                f"known: {', '.join(UPSTREAM_PARTS)}"
            )
        resolved: dict[str, str] = {}
        for part in UPSTREAM_PARTS:
            explicit: str | None = getattr(self, f"{part}_url")
            value = explicit or self.upstreams.get(part) or default_upstream(part)
            resolved[part] = normalise_upstream(part, value)
        self.upstreams = resolved
        if self.auth_jwks_url == f"{self.gateway_url}/.well-known/jwks.json":
            # Not through itself: the gateway verifies tokens with identity's keys directly.
            self.auth_jwks_url = f"{resolved['identity']}/.well-known/jwks.json"
        return self

    def read_timeout_s(self, part: str) -> float:
        """The read timeout for ``part``'s upstream."""
        return self.upstream_read_timeouts_s.get(part, self.upstream_read_timeout_s)
