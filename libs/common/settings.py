"""Settings: one pydantic-settings class per part, all read from ``PINGTAI_*`` variables."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Re-exported: the parts read the ports from here.
from libs.common.ports import DEFAULT_PORT_BASE as DEFAULT_PORT_BASE
from libs.common.ports import PORT_OFFSETS as PORT_OFFSETS

Environment = Literal["development", "test", "production"]

PLACEHOLDER_SECRET = "change-me-in-production"


def _shared(name: str) -> AliasChoices:
    """Read a setting shared by every part from ``PINGTAI_<NAME>`` whatever the part's prefix."""
    # Only the prefixed name: an alias replaces env_prefix, so a bare ``name`` would read ENV,
    # SECRET_KEY, ... of whatever else runs beside us. populate_by_name keeps ``Settings(env=...)``.
    return AliasChoices(f"PINGTAI_{name.upper()}")


class PartSettings(BaseSettings):
    """Settings every part has; a part subclasses it with ``env_prefix="PINGTAI_<PART>_"``."""

    part: ClassVar[str] = ""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    # Shared by every part (PINGTAI_ENV, PINGTAI_NATS_URL, ...).
    env: Environment = Field(default="development", validation_alias=_shared("env"))
    var_dir: Path = Field(default=Path("var"), validation_alias=_shared("var_dir"))
    nats_url: str | None = Field(default=None, validation_alias=_shared("nats_url"))
    # Whether the NATS server's JetStream store is encrypted (`pingtai up`'s own is, and says so):
    # the parts' streams are declared for the block size it gives (libs/common/events/streams.py).
    nats_store_cipher: Literal["chachapoly", "aes", "none"] = Field(
        default="none", validation_alias=_shared("nats_store_cipher")
    )
    log_level: str = Field(default="INFO", validation_alias=_shared("log_level"))
    log_format: Literal["json", "console"] = Field(
        default="json", validation_alias=_shared("log_format")
    )
    secret_key: str = Field(default=PLACEHOLDER_SECRET, validation_alias=_shared("secret_key"))
    # Where parts call each other: the gateway ("<gateway_url>/api/<part>"), as DESIGN asks.
    gateway_url: str = Field(
        default=f"http://127.0.0.1:{DEFAULT_PORT_BASE}", validation_alias=_shared("gateway_url")
    )
    # The OpenID issuer: the gateway's public URL; tokens carry it in "iss". Empty: gateway_url.
    issuer: str = Field(default="", validation_alias=_shared("issuer"))
    # The "aud" of access tokens for the platform's APIs.
    audience: str = Field(default="pingtai", validation_alias=_shared("audience"))
    # After start-up, collect once and freeze what start-up built out of the garbage collector's
    # generations (gc.freeze): full collections then scan what requests made, not every module,
    # route and model (a 60-70 ms pause each otherwise). ``serve`` turns it on for a part's
    # server process (PINGTAI_GC_FREEZE); in-process apps (tests) leave it off.
    gc_freeze: bool = Field(default=False, validation_alias=_shared("gc_freeze"))

    # The part's own (PINGTAI_<PART>_HOST, PINGTAI_<PART>_PORT, ...).
    host: str = "127.0.0.1"
    port: int = Field(default=0, ge=0, le=65535)
    database_url: str = ""
    database_echo: bool = False
    max_body_bytes: int = Field(default=10 * 1024 * 1024, gt=0)
    cors_origins: list[str] = Field(default_factory=list)
    # Proxies whose X-Forwarded-* headers are believed (uvicorn's forwarded_allow_ips): the
    # gateway's address; "*" inside a cluster where NetworkPolicies admit only the gateway.
    forwarded_allow_ips: str = "127.0.0.1"
    # Worker processes of `pingtai serve <part>` / `python -m <part>`, each a whole copy of the
    # part on the one port (uvicorn's workers). 1: the part is this process. In Kubernetes the
    # replicas are the unit of scale; workers use a machine's cores without a cluster.
    workers: int = Field(default=1, ge=1, le=64)

    # Events (libs.common.events): the part's JetStream stream, its outbox relay and consumers.
    events_max_age_s: float = Field(default=7 * 24 * 3600, gt=0)
    events_max_bytes: int = Field(default=-1, ge=-1, description="-1: no limit on size")
    events_replicas: int = Field(default=1, ge=1, le=5)
    events_storage: Literal["file", "memory"] = "file"
    events_duplicate_window_s: float = Field(default=120.0, gt=0)
    events_outbox_retention_s: float = Field(default=24 * 3600, ge=0)
    # Must outlive any redelivery of an event, so at least the stream's max age.
    events_inbox_retention_s: float = Field(default=7 * 24 * 3600, ge=0)
    events_relay_batch: int = Field(default=500, ge=1, le=5000)
    events_relay_poll_s: float = Field(default=5.0, gt=0)
    # Commits closer together than this share one relay round (0: a round per commit).
    events_relay_coalesce_s: float = Field(default=0.01, ge=0, le=1)
    events_publish_timeout_s: float = Field(default=5.0, gt=0)
    events_consumer_batch: int = Field(default=100, ge=1, le=1000)
    events_ack_wait_s: float = Field(default=30.0, gt=0)
    events_max_deliveries: int = Field(default=5, ge=1)
    events_retry_delay_s: float = Field(default=1.0, ge=0)

    # Access-token verification (libs.common.auth): the issuer's keys, cached in the process.
    # Empty: "<gateway_url>/.well-known/jwks.json".
    auth_jwks_url: str = ""
    auth_jwks_refetch_floor_s: float = Field(default=30.0, ge=0)
    auth_jwks_max_age_s: float = Field(default=600.0, gt=0)
    auth_jwks_timeout_s: float = Field(default=5.0, gt=0)
    auth_leeway_s: float = Field(default=30.0, ge=0, le=300)
    auth_verified_cache_size: int = Field(default=10_000, ge=0, description="0: no cache")
    # Revoked access tokens (identity's events) learnt at start-up and after a reconnection: at
    # least the longest access-token lifetime (300 s) plus the leeway. 0: only new revocations.
    auth_revocation_replay_s: float = Field(default=600.0, ge=0)

    @model_validator(mode="after")
    def _defaults_from_part(self) -> PartSettings:
        if not self.port:
            self.port = DEFAULT_PORT_BASE + PORT_OFFSETS.get(self.part, 0)
        self.gateway_url = self.gateway_url.rstrip("/")
        self.issuer = (self.issuer or self.gateway_url).rstrip("/")
        self.auth_jwks_url = self.auth_jwks_url or f"{self.gateway_url}/.well-known/jwks.json"
        if not self.database_url:
            self.database_url = f"sqlite+aiosqlite:///{self.var_dir / f'{self.part}.db'}"
        if self.env == "production" and self.secret_key == PLACEHOLDER_SECRET:
            raise ValueError("PINGTAI_SECRET_KEY must be set to a real secret in production")
        return self

    @property
    def service_name(self) -> str:
        """The name this part reports in logs, traces and metrics."""
        return f"pingtai-{self.part}"
