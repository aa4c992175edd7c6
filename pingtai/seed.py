"""`pingtai seed --demo`: a consistent demo province, loaded through the gateway's public APIs."""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx

from pingtai.demo.catalog_datasets import seed_catalog_datasets
from pingtai.demo.catalog_items import seed_catalog_items
from pingtai.demo.evaluation import seed_evaluation
from pingtai.demo.exchange_grants import seed_exchange_grants
from pingtai.demo.exchange_records import seed_exchange_records
from pingtai.demo.gateway import seed_gateway
from pingtai.demo.identity import seed_identity
from pingtai.demo.workflow import seed_workflow

Say = Callable[[str], None]

# The bootstrap platform-admin client (services/identity/oauth/settings.py); its development
# secret works outside production, where the operator gives the real one.
ADMIN_CLIENT_ID = "platform-admin"
DEV_ADMIN_CLIENT_SECRET = "pingtai-dev-admin-secret"


@dataclass(frozen=True)
class SeedStep:
    """One part's share of the demo province; runs in order, through the gateway only."""

    part: str
    description: str
    run: Callable[[httpx.AsyncClient, Say], Awaitable[int]]  # returns how many things it made


# Each service adds its step as its API lands (identity first: the others need its people).
DEMO_STEPS: tuple[SeedStep, ...] = (
    SeedStep("identity", "departments, enterprises, people and roles", seed_identity),
    SeedStep("catalog", "datasets of the data-resource catalogue", seed_catalog_datasets),
    SeedStep("catalog", "service items and one-thing bundles", seed_catalog_items),
    SeedStep("gateway", "plans and a demo developer application with its key", seed_gateway),
    SeedStep("exchange", "records of the hosted datasets", seed_exchange_records),
    SeedStep("exchange", "standing grants for the items' materials", seed_exchange_grants),
    SeedStep("workflow", "its client, and applications in every state", seed_workflow),
    SeedStep("evaluation", "the indicator system, reviews and a rectified case", seed_evaluation),
)


async def admin_token(client: httpx.AsyncClient, *, client_id: str, client_secret: str) -> str:
    """An access token for the platform-admin client (client credentials grant)."""
    response = await client.post(
        "/oauth2/token",
        data={"grant_type": "client_credentials"},
        auth=(client_id, client_secret),
    )
    if response.status_code != 200:
        raise RuntimeError(
            f"the platform-admin client could not get a token ({response.status_code}): "
            f"{response.text[:200]}"
        )
    token: str = response.json()["access_token"]
    return token


async def run_demo_seed(
    gateway: str,
    *,
    out: Say,
    client_id: str = ADMIN_CLIENT_ID,
    client_secret: str | None = None,
) -> int:
    """Run every demo step against the gateway at ``gateway``; returns the number of things made."""
    secret = client_secret or os.environ.get(
        "PINGTAI_IDENTITY_OAUTH_ADMIN_CLIENT_SECRET", DEV_ADMIN_CLIENT_SECRET
    )
    async with httpx.AsyncClient(base_url=gateway, timeout=30.0) as client:
        (await client.get("/readyz")).raise_for_status()
        token = await admin_token(client, client_id=client_id, client_secret=secret)
        client.headers["Authorization"] = f"Bearer {token}"
        made = 0
        for step in DEMO_STEPS:
            started = time.monotonic()
            out(f"  {step.part}: {step.description} ...")
            count = await step.run(client, out)
            made += count
            out(f"  {step.part}: {count} loaded in {time.monotonic() - started:.1f}s")
        out(f"demo province loaded: {made} records through the gateway")
        return made
