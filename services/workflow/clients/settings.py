"""Settings of workflow's calls to identity and exchange, and of uploads, mixed into
``WorkflowSettings`` (``PINGTAI_WORKFLOW_*``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, SecretStr


class ApplicationsSettings(BaseModel):
    """Where exchange and the token endpoint are, workflow's client, and the upload limits."""

    # Exchange's API; empty: "<gateway_url>/api/exchange" (DESIGN: parts call through the gateway).
    exchange_url: str = ""
    # Identity's token endpoint; empty: "<issuer>/oauth2/token".
    token_url: str = ""
    # Workflow's own confidential client (client credentials), holding exchange's
    # "exchange:application-basis" scope. An empty secret is read from ``client_secret_file``.
    client_id: str = "workflow"
    client_secret: SecretStr = SecretStr("")
    # Empty: "<var_dir>/secrets/workflow-client.secret", which `pingtai seed --demo` writes.
    client_secret_file: str = ""
    # The HTTP client for exchange's queries: aiohttp (pooled, cheap per request) or httpx
    # (kept to compare; bench/bench_workflow.py measures both).
    exchange_http_client: Literal["aiohttp", "httpx"] = "aiohttp"
    exchange_timeout_s: float = Field(default=5.0, gt=0, le=120)
    # Materials not fetched because exchange was away are retried this often (per replica).
    fetch_retry_interval_s: float = Field(default=10.0, gt=0, le=3600)
    fetch_retry_batch: int = Field(default=50, ge=1, le=1000)
    # Attempts at fetching one material (each a read in exchange's ledger) before the
    # applicant is asked to upload it instead (about 100 s at the default interval).
    fetch_max_attempts: int = Field(default=10, ge=1, le=1000)

    # Uploads: the largest file accepted and the types accepted when the item does not say.
    # At most the part's max_body_bytes (10 MiB by default), which every request is held to.
    upload_max_bytes: int = Field(default=10 * 1024 * 1024, ge=1)
    upload_content_types: list[str] = Field(
        default_factory=lambda: ["application/pdf", "image/jpeg", "image/png"]
    )
    # The most an application's uploaded files may take together (replaced files are deleted).
    upload_max_bytes_per_application: int = Field(default=50 * 1024 * 1024, ge=1)
    # A slow body is cut off with a 408: it must keep up this rate after a grace period
    # (the upload holds no database connection meanwhile, but it holds a worker's socket).
    upload_min_rate_bytes_s: int = Field(default=8 * 1024, ge=1)
    upload_grace_s: float = Field(default=10.0, gt=0, le=3600)
    # Empty: "<var_dir>/workflow-uploads".
    uploads_dir: str = ""
