"""Settings of the gateway part, from ``PINGTAI_GATEWAY_*`` variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import ClassVar

from pydantic import Field, model_validator
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

    @model_validator(mode="after")
    def _resolve_upstreams(self) -> GatewaySettings:
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
        return self
