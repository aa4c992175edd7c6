"""Settings of the exchange part, from ``PINGTAI_EXCHANGE_*`` variables."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from libs.common.settings import PartSettings


class ExchangeSettings(PartSettings):
    """The exchange part's settings."""

    part: ClassVar[str] = "exchange"

    model_config = SettingsConfigDict(
        env_prefix="PINGTAI_EXCHANGE_", extra="ignore", populate_by_name=True
    )
    access_grant_cache_ttl_s: float = Field(default=2.0, ge=0, le=60)  # docs/exchange.md
    # Datasets and records (docs/exchange-data.md).
    import_batch_rows: int = Field(default=2000, ge=1, le=20_000)
    import_max_reported_errors: int = Field(default=100, ge=0, le=10_000)
    federation_secrets: dict[str, SecretStr] = Field(default_factory=dict)  # org id -> secret
    federation_timeout_s: float = Field(default=5.0, gt=0, le=120)
    federation_max_response_bytes: int = Field(default=10 * 1024 * 1024, gt=0)

    # The access ledger (services/exchange/ledger, docs/exchange-ledger.md).
    ledger_signing_key_file: Path | None = None  # Ed25519 PEM; required in production
    ledger_public_key_files: list[Path] = Field(default_factory=list)  # former keys, still trusted
    ledger_checkpoint_every: int = Field(default=1000, ge=1)
    ledger_checkpoint_interval_s: float = Field(default=60.0, gt=0)
    ledger_max_batch: int = Field(default=1000, ge=1, le=10_000)
    ledger_max_pending: int = Field(default=50_000, ge=1)
    ledger_access_events: bool = True
    # Commit delay with siblings: the writer waits up to this long for queries on their way
    # when at least ``ledger_commit_siblings`` are (0: commit at once, always).
    ledger_commit_delay_s: float = Field(default=0.001, ge=0, le=0.1)
    ledger_commit_siblings: int = Field(default=1, ge=1)
    ledger_anomaly_window_s: float = Field(default=300.0, gt=0)
    ledger_anomaly_threshold: int = Field(default=1000, ge=1)
    ledger_anomaly_baseline_factor: float = Field(default=10.0, ge=0)
