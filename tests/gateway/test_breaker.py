"""Protection: the circuit breaker per upstream, and retries of idempotent requests only."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp

from gateway.app import create_app
from gateway.edge.breaker import BreakerState, CircuitBreaker
from gateway.settings import GatewaySettings
from pingtai.natsserver import free_port
from tests.common.auth.conftest import FakeClock
from tests.conftest import migrated
from tests.gateway.conftest import FakePart, StartPlatform, serve
from tests.gateway.test_keys import call


def test_the_breaker_opens_after_failures_and_lets_one_probe_through() -> None:
    clock = FakeClock(100.0)
    breaker = CircuitBreaker("catalog", failures=3, open_s=5, clock=clock)
    for _ in range(2):
        assert breaker.allow()
        breaker.failed()
    assert breaker.state is BreakerState.CLOSED
    breaker.succeeded()  # a success in between starts the count again
    for _ in range(3):
        assert breaker.allow()
        breaker.failed()
    assert breaker.state is BreakerState.OPEN  # type: ignore[comparison-overlap]
    assert not breaker.allow()
    assert breaker.retry_after_s() == 5
    clock.advance(5)
    assert breaker.allow()  # the probe
    assert breaker.state is BreakerState.HALF_OPEN
    assert not breaker.allow()  # only one at a time
    breaker.failed()
    assert breaker.state is BreakerState.OPEN and not breaker.allow()
    clock.advance(5)
    assert breaker.allow()
    breaker.released()  # the probe's client left: another may probe
    assert breaker.allow()
    breaker.succeeded()
    assert breaker.state is BreakerState.CLOSED and breaker.allow()


async def test_an_upstream_killed_mid_test_gives_fast_503s_and_traffic_resumes(
    platform: StartPlatform, client: aiohttp.ClientSession
) -> None:
    port = free_port()
    part = FakePart("catalog")
    async with platform(breaker_failures=3, breaker_open_s=1.0) as p:
        p.app.state.upstreams.urls["catalog"] = f"http://127.0.0.1:{port}"
        url = f"{p.url}/api/catalog/v1/items"
        async with serve(part.app(), port=port):
            for _ in range(3):
                response, _ = await call(client, "GET", url)
                assert response.status == 200
        # Killed: the first failures are 502s, then the breaker answers at once.
        statuses = [(await call(client, "GET", url))[0].status for _ in range(3)]
        assert statuses == [502, 502, 502]
        started = time.perf_counter()
        for _ in range(20):
            response, problem = await call(client, "GET", url)
            assert response.status == 503
            assert problem["type"].endswith("/upstream-circuit-open")
            assert problem["upstream"] == "catalog"
            assert response.headers["Retry-After"] == "1"
        assert (time.perf_counter() - started) / 20 < 0.05  # fast: no connection attempted
        # Back on the same port: after open_s one probe goes through and closes the breaker.
        async with serve(part.app(), port=port):
            await asyncio.sleep(1.05)
            for _ in range(5):
                response, echo = await call(client, "GET", url)
                assert response.status == 200
                assert echo["path"] == "/v1/items"


class FlakyServer:
    """Closes the first connection without answering, then answers every request with 200."""

    def __init__(self) -> None:
        self.connections = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        first = self.connections == 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                if first:
                    return  # dropped before any answer
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                if length:
                    await reader.readexactly(length)
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    @asynccontextmanager
    async def running(self) -> AsyncIterator[str]:
        server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            server.close()
            await server.wait_closed()


async def _gateway_in_front_of(upstream: str, tmp_path: Path) -> AsyncIterator[str]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}"
    await asyncio.to_thread(migrated, "gateway", url)
    settings = GatewaySettings(database_url=url, upstreams={"catalog": upstream})
    async with serve(create_app(settings, configure_process=False)) as gateway:
        yield gateway


async def test_idempotent_requests_are_retried_others_are_not(
    client: aiohttp.ClientSession, tmp_path: Path
) -> None:
    flaky = FlakyServer()
    async with flaky.running() as upstream:
        async with asynccontextmanager(_gateway_in_front_of)(upstream, tmp_path) as gateway:
            response, body = await call(client, "GET", f"{gateway}/api/catalog/x")
            assert (response.status, body) == (200, b"ok")
            assert flaky.connections == 2
    flaky = FlakyServer()
    async with flaky.running() as upstream:
        async with asynccontextmanager(_gateway_in_front_of)(upstream, tmp_path) as gateway:
            # A body that came whole in one message is replayable.
            response, body = await call(client, "PUT", f"{gateway}/api/catalog/x", data=b"{}")
            assert (response.status, body) == (200, b"ok")
            assert flaky.connections == 2
    flaky = FlakyServer()
    async with flaky.running() as upstream:
        async with asynccontextmanager(_gateway_in_front_of)(upstream, tmp_path) as gateway:
            response, problem = await call(client, "POST", f"{gateway}/api/catalog/x")
            assert response.status == 502
            assert problem["type"].endswith("/upstream-unavailable")
            assert flaky.connections == 1
