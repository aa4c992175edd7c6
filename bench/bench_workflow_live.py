"""Benchmark: live progress, from a committed history step to the applicant's SSE stream.

    .venv/bin/python bench/bench_workflow_live.py [--streams 200] [--steps 2000] [--rate 200]
                                                  [--other-replica] [--database-url URL]

Migrates a scratch SQLite database (or ``--database-url``), serves the workflow app with uvicorn
on 127.0.0.1 in this process, opens ``--streams`` streams (``GET /v1/me/events``, one applicant
each, aiohttp client), then commits ``--steps`` history entries at ``--rate`` per second, each
for a random applicant, each with an event in the same transaction as real steps do, and
measures the delay from each commit to its arrival on the stream (p50/p90/p99/max) and whether
every entry arrived exactly once.

With ``--other-replica`` the entries are written through a second engine without waking the
hub, as another replica would: they arrive by the database poll (``LIVE_POLL_S``, 1 s).
Client, server and writer share one event loop and two cores with the rest of the machine:
figures are an upper bound on the delay, not a capacity.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, ClassVar

import aiohttp
import httpx
import jwt
import uvicorn
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from libs.common.auth import JwksCache, TokenVerifier
from libs.common.database import Database
from libs.common.events import EventData, new_event, outbox
from libs.common.migrations import migrate
from pingtai.natsserver import free_port
from services.workflow.app import create_app
from services.workflow.applications.models import Application, HistoryEntry
from services.workflow.ids import new_id, utcnow
from services.workflow.settings import WorkflowSettings

ISSUER = "http://bench.invalid"


class BenchStep(EventData):
    event_type: ClassVar[str] = "pingtai.workflow.bench.step"

    application_id: str


def token(key: Any, sub: str) -> str:
    now = int(time.time())
    claims = {
        "iss": ISSUER, "aud": "pingtai", "sub": sub, "client_id": "bench", "roles": ["citizen"],
        "scope": "openid", "jti": uuid.uuid4().hex, "iat": now, "exp": now + 3600, "acr": "1",
    }  # fmt: skip
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": "bench", "typ": "at+jwt"})


async def follow(
    session: aiohttp.ClientSession, url: str, bearer: str, received: dict[int, float],
    ready: asyncio.Event,
) -> None:  # fmt: skip
    async with session.get(url, headers={"Authorization": f"Bearer {bearer}"}) as response:
        assert response.status == 200, response.status
        ready.set()
        event_id: int | None = None
        async for raw in response.content:
            line = raw.decode().rstrip("\r\n")
            if line.startswith("id: "):
                event_id = int(line[4:])
            elif line == "" and event_id is not None:
                if event_id in received:
                    raise AssertionError(f"entry {event_id} arrived twice")
                received[event_id] = time.perf_counter()
                event_id = None


async def main(args: argparse.Namespace) -> None:
    folder = Path(tempfile.mkdtemp(prefix="bench-live-"))
    url = args.database_url or f"sqlite+aiosqlite:///{folder / 'workflow.db'}"
    await asyncio.to_thread(migrate, "services.workflow", url)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
    jwks = {"keys": [{**jwk, "kid": "bench", "use": "sig", "alg": "RS256"}]}
    os.environ["PINGTAI_VAR_DIR"] = str(folder)
    app = create_app(
        WorkflowSettings(
            database_url=url,
            issuer=ISSUER,
            nats_url=None,
            log_level="WARNING",
            sla_timer_enabled=False,
            webhooks_deliverer_enabled=False,
        )  # fmt: skip
    )
    app.state.token_verifier = TokenVerifier(
        issuer=ISSUER,
        audience="pingtai",
        jwks=JwksCache(
            "http://jwks.invalid",
            client=httpx.AsyncClient(
                transport=httpx.MockTransport(lambda r: httpx.Response(200, json=jwks))
            ),
        ),
    )
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    serving = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    database: Database = app.state.database
    writer = Database(url) if args.other_replica else database

    applicants = [f"applicant-{n}" for n in range(args.streams)]
    applications: dict[str, str] = {}
    async with database.sessionmaker() as session:
        for applicant in applicants:
            applications[applicant] = new_id()
            session.add(
                Application(
                    id=applications[applicant],
                    applicant_id=applicant,
                    kind="item",
                    service_code="bench",
                    service_name="bench",
                    status="in_progress",
                    form={},
                )  # fmt: skip
            )
        await session.commit()

    received: dict[int, float] = {}
    committed: dict[int, float] = {}
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as client:
        readies = [asyncio.Event() for _ in applicants]
        streams = [
            asyncio.create_task(
                follow(client, f"http://127.0.0.1:{port}/v1/me/events", token(key, a), received, r)
            )
            for a, r in zip(applicants, readies, strict=True)
        ]
        await asyncio.gather(*(r.wait() for r in readies))
        started = time.perf_counter()
        for n in range(args.steps):
            due = started + n / args.rate
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            applicant = applicants[n % len(applicants)]
            async with writer.sessionmaker() as session:
                entry = HistoryEntry(
                    application_id=applications[applicant], applicant_id=applicant,
                    actor_id="bench", actor_role="officer", at=utcnow(), action="bench.step",
                )  # fmt: skip
                session.add(entry)
                if not args.other_replica:
                    await outbox.add(
                        session,
                        new_event(BenchStep(application_id=entry.application_id), subject=None),
                    )
                await session.flush()
                entry_id = entry.id
                await session.commit()
            committed[entry_id] = time.perf_counter()
        written = time.perf_counter() - started
        deadline = time.perf_counter() + 10
        while len(received) < len(committed) and time.perf_counter() < deadline:
            await asyncio.sleep(0.05)
        for task in streams:
            task.cancel()
        await asyncio.gather(*streams, return_exceptions=True)
    server.should_exit = True
    await serving
    if writer is not database:
        await writer.dispose()

    delays = sorted((received[i] - committed[i]) * 1000 for i in committed if i in received)
    missing = len(committed) - len(delays)

    def pct(p: float) -> float:
        return delays[min(len(delays) - 1, int(p * len(delays)))]

    with open("/proc/loadavg") as loadavg:
        load = loadavg.read().strip()
    backend = url.split(":", 1)[0]
    path = "poll (other replica)" if args.other_replica else "in-process wake"
    print(f"live progress, {backend}, {args.streams} streams, {args.steps} steps, {path}")
    print(f"  written at {len(committed) / written:.0f} steps/s (asked {args.rate}/s)")
    print(
        f"  commit -> stream delay ms: p50 {pct(0.5):.1f}  p90 {pct(0.9):.1f}  "
        f"p99 {pct(0.99):.1f}  max {delays[-1]:.1f}  (mean {statistics.mean(delays):.1f})"
    )
    print(f"  missing: {missing}; duplicates: 0 (a duplicate aborts the run)")
    print(f"  /proc/loadavg: {load}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--other-replica", action="store_true")
    parser.add_argument("--database-url", default="")
    asyncio.run(main(parser.parse_args()))
