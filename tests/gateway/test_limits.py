"""Rate limits and quotas: the leasing limiter, and limits held across two gateway processes."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.edge.counters import CountersUnavailable, MemoryCounters
from gateway.edge.limits import Limit, Limiter
from pingtai.natsserver import NatsServer, free_port
from tests.common.auth.conftest import ISSUER, FakeClock
from tests.conftest import migrated
from tests.gateway.conftest import FakePart, serve
from tests.gateway.test_keys import ADMIN, AGENT, call

PER_MINUTE = Limit("minute", 20, 60)


async def test_the_limiter_admits_exactly_the_limit_then_refuses_until_the_window_ends() -> None:
    clock = FakeClock(6_000.0)  # the start of a minute
    limiter = Limiter(MemoryCounters(clock), max_lease=50, clock=clock)
    decisions = [await limiter.hit("key.a", PER_MINUTE) for _ in range(25)]
    assert [d.allowed for d in decisions] == [True] * 20 + [False] * 5
    assert decisions[19].remaining == 0
    assert decisions[20].reset_s == 60
    assert (await limiter.hit("key.b", PER_MINUTE)).allowed  # counted per name
    clock.advance(45)
    assert (await limiter.hit("key.a", PER_MINUTE)).reset_s == 15
    clock.advance(15)
    assert (await limiter.hit("key.a", PER_MINUTE)).allowed  # a new window


class SharedCounters(MemoryCounters):
    """One store seen by several limiters (as replicas see NATS), counting round trips."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(clock)
        self.round_trips = 0
        self.down = False

    async def add(self, window_s: int, name: str, amount: int) -> int:
        if self.down:
            raise CountersUnavailable("down")
        self.round_trips += 1
        return await super().add(window_s, name, amount)


async def test_replicas_leasing_from_one_counter_never_admit_more_than_the_limit() -> None:
    clock = FakeClock(6_000.0)
    shared = SharedCounters(clock)
    replicas = [Limiter(shared, max_lease=50, clock=clock) for _ in range(3)]
    limit = Limit("minute", 1_000, 60)
    admitted = 0
    for n in range(1_500):
        admitted += (await replicas[n % 3].hit("key.a", limit)).allowed
        await asyncio.sleep(0)  # let background leases land
    assert 1_000 - 3 * 3 <= admitted <= 1_000
    # Leases, not a round trip per request.
    assert shared.round_trips < 150


async def test_while_the_shared_counters_are_down_each_replica_counts_alone() -> None:
    clock = FakeClock(6_000.0)
    shared = SharedCounters(clock)
    shared.down = True
    limiter = Limiter(shared, clock=clock)
    decisions = [await limiter.hit("key.a", PER_MINUTE) for _ in range(21)]
    assert [d.allowed for d in decisions].count(True) == 20
    assert limiter.degraded


# --- two gateway processes sharing NATS ------------------------------------------------------


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    server = NatsServer(tmp_path / "nats")
    server.start()
    try:
        yield server
    finally:
        server.kill()


@asynccontextmanager
async def gateway_process(env: dict[str, str], port: int, log: Path) -> AsyncIterator[str]:
    """``python -m gateway`` on ``port``; yields its URL once it answers /healthz."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "gateway"],
            env={**os.environ, **env, "PINGTAI_GATEWAY_PORT": str(port)},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:
            deadline = time.monotonic() + 20
            while True:
                try:
                    async with session.get(f"{url}/readyz") as response:
                        body = await response.json()
                        if body["checks"].get("nats", {}).get("ok"):
                            break
                except aiohttp.ClientError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the gateway did not start: {log.read_text()[-2000:]}")
                await asyncio.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@asynccontextmanager
async def gateway_env(
    tmp_path: Path, nats: NatsServer, **settings: Any
) -> AsyncIterator[dict[str, str]]:
    """Fake identity and catalog running, and the environment of a gateway in front of them."""
    identity, catalog = FakePart("identity"), FakePart("catalog")
    async with serve(identity.app()) as identity_url, serve(catalog.app()) as catalog_url:
        database_url = f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}"
        await asyncio.to_thread(migrated, "gateway", database_url)
        yield {
            "PINGTAI_ENV": "test",
            "PINGTAI_NATS_URL": nats.url,
            "PINGTAI_ISSUER": ISSUER,
            "PINGTAI_LOG_LEVEL": "WARNING",
            "PINGTAI_GATEWAY_DATABASE_URL": database_url,
            "PINGTAI_GATEWAY_UPSTREAMS": json.dumps(
                {"identity": identity_url, "catalog": catalog_url}
            ),
            **{f"PINGTAI_GATEWAY_{k.upper()}": v for k, v in settings.items()},
        }


@asynccontextmanager
async def two_gateways(
    tmp_path: Path, nats: NatsServer, **settings: Any
) -> AsyncIterator[tuple[str, str]]:
    async with (
        gateway_env(tmp_path, nats, **settings) as env,
        gateway_process(env, free_port(), tmp_path / "gateway-a.log") as a,
        gateway_process(env, free_port(), tmp_path / "gateway-b.log") as b,
    ):
        yield a, b


async def _wait_for_room_in_the_minute(seconds: float = 15) -> None:
    """Start a per-minute test well inside one minute, so its window does not roll over."""
    into = time.time() % 60
    if into > 60 - seconds:
        await asyncio.sleep(60 - into + 0.2)


async def _hammer(
    client: aiohttp.ClientSession, urls: tuple[str, str], path: str, n: int, **kwargs: Any
) -> list[aiohttp.ClientResponse]:
    """``n`` requests alternating between the two gateways, a few at a time."""
    responses: list[aiohttp.ClientResponse] = []

    async def one(i: int) -> None:
        async with client.get(f"{urls[i % 2]}{path}", **kwargs) as response:
            await response.read()
            responses.append(response)

    for start in range(0, n, 8):
        await asyncio.gather(*(one(i) for i in range(start, min(n, start + 8))))
    return responses


async def test_key_rate_limit_and_quota_hold_across_two_gateway_processes(
    tmp_path: Path, nats_server: NatsServer, client: aiohttp.ClientSession
) -> None:
    async with two_gateways(tmp_path, nats_server) as (a, b):
        plans = {}
        for code, per_minute, per_day in (("minute", 20, 100_000), ("daily", 10_000, 15)):
            response, plan = await call(
                client,
                "POST",
                f"{a}/v1/plans",
                headers=ADMIN,
                json={
                    "code": code,
                    "name": code,
                    "requests_per_minute": per_minute,
                    "requests_per_day": per_day,
                },
            )
            assert response.status == 201, plan
            plans[code] = plan["id"]
        _, application = await call(
            client, "POST", f"{b}/v1/applications", headers=AGENT, json={"name": "limits"}
        )
        keys = {}
        for code, plan_id in plans.items():
            _, issued = await call(
                client,
                "POST",
                f"{a}/v1/applications/{application['id']}/keys",
                headers=AGENT,
                json={"plan_id": plan_id},
            )
            keys[code] = issued["key"]

        await _wait_for_room_in_the_minute()
        responses = await _hammer(
            client, (a, b), "/api/catalog/v1/x", 60, headers={"X-API-Key": keys["minute"]}
        )
        admitted = [r for r in responses if r.status == 200]
        refused = [r for r in responses if r.status == 429]
        assert len(admitted) + len(refused) == 60
        # Never more than the limit across both; fewer only by a slice left unspent.
        assert 16 <= len(admitted) <= 20
        assert {r.url.port for r in admitted} == {r.url.port for r in responses}  # both served
        retry_after = int(refused[0].headers["Retry-After"])
        # Retry-After is the seconds left in the clock's current minute (the window), rounded
        # up, at least 1: where in the minute the test ran decides it, so it is compared with
        # the clock read now, after the answer (the rest of the burst took a few seconds).
        left = 60 - time.time() % 60
        assert 1 <= retry_after <= 60 and left <= retry_after <= left + 10, (retry_after, left)
        assert refused[0].headers["RateLimit"].startswith('"minute";r=0;t=')
        assert refused[0].headers["Content-Type"] == "application/problem+json"

        responses = await _hammer(
            client, (a, b), "/api/catalog/v1/x", 30, headers={"X-API-Key": keys["daily"]}
        )
        admitted = [r for r in responses if r.status == 200]
        assert 12 <= len(admitted) <= 15
        response, problem = await call(
            client, "GET", f"{b}/api/catalog/v1/x", headers={"X-API-Key": keys["daily"]}
        )
        assert response.status == 429
        assert problem["type"].endswith("/quota-exceeded")
        assert int(response.headers["Retry-After"]) > 60  # until the next UTC day


async def test_anonymous_limit_per_ip_holds_across_two_gateway_processes(
    tmp_path: Path, nats_server: NatsServer, client: aiohttp.ClientSession
) -> None:
    async with two_gateways(tmp_path, nats_server, anonymous_per_minute="10") as (a, b):
        await _wait_for_room_in_the_minute()
        responses = await _hammer(client, (a, b), "/api/identity/v1/x", 30)
        admitted = [r for r in responses if r.status == 200]
        assert 8 <= len(admitted) <= 10
        problem = [r for r in responses if r.status == 429][0]
        assert "Retry-After" in problem.headers


def _worker_processes(supervisor: int) -> list[int]:
    """The uvicorn worker processes (multiprocessing spawns) under ``supervisor``."""
    children = Path(f"/proc/{supervisor}/task/{supervisor}/children").read_text().split()
    return [
        int(pid) for pid in children if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
    ]


async def test_workers_of_one_gateway_share_the_limits(
    tmp_path: Path, nats_server: NatsServer, client: aiohttp.ClientSession
) -> None:
    """PINGTAI_GATEWAY_WORKERS=2: two worker processes answer on one port, and the anonymous
    limit holds across them as across replicas."""
    async with (
        gateway_env(tmp_path, nats_server, anonymous_per_minute="10", workers="2") as env,
        gateway_process(env, free_port(), tmp_path / "gateway.log") as url,
    ):
        supervisor = next(
            pid
            for pid in map(int, filter(str.isdigit, os.listdir("/proc")))
            if _is_gateway_on(pid, url)
        )
        assert len(_worker_processes(supervisor)) == 2
        await _wait_for_room_in_the_minute()
        responses = await _hammer(client, (url, url), "/api/identity/v1/x", 30)
        admitted = [r for r in responses if r.status == 200]
        assert 8 <= len(admitted) <= 10
        assert {r.status for r in responses} == {200, 429}


def _is_gateway_on(pid: int, url: str) -> bool:
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    port = url.rsplit(":", 1)[1].encode()
    return cmdline.endswith(b"-m\0gateway\0") and b"PINGTAI_GATEWAY_PORT=" + port in environ
