"""`pingtai seed --demo`: a consistent demo province, loaded through the gateway's public APIs."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx

Say = Callable[[str], None]


@dataclass(frozen=True)
class SeedStep:
    """One part's share of the demo province; runs in order, through the gateway only."""

    part: str
    description: str
    run: Callable[[httpx.AsyncClient, Say], Awaitable[int]]  # returns how many things it made


# Each service adds its step here as its API lands (identity first: the others need its people).
DEMO_STEPS: tuple[SeedStep, ...] = ()


async def run_demo_seed(gateway: str, *, out: Say) -> int:
    """Run every demo step against the gateway at ``gateway``; returns the number of things made."""
    async with httpx.AsyncClient(base_url=gateway, timeout=30.0) as client:
        response = await client.get("/readyz")
        response.raise_for_status()
        if not DEMO_STEPS:
            out("demo province: no service offers demo data yet, so there is nothing to load")
            return 0
        made = 0
        for step in DEMO_STEPS:
            started = time.monotonic()
            count = await step.run(client, out)
            made += count
            took = time.monotonic() - started
            out(f"  {step.part:<11} {step.description}: {count} ({took:.1f}s)")
        out(f"demo province loaded: {made} records through the gateway")
        return made
