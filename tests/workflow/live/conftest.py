"""A real workflow server (uvicorn on a free port) for streaming clients, and history rows."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import httpx
import pytest
import uvicorn
from aiohttp import web
from fastapi import FastAPI

from libs.common.auth import JwksCache, TokenVerifier
from libs.common.database import Database
from libs.common.events import EventData, new_event, outbox
from pingtai.natsserver import free_port
from services.workflow.app import create_app
from services.workflow.applications.models import Application, HistoryEntry
from services.workflow.ids import new_id, utcnow
from services.workflow.settings import WorkflowSettings
from services.workflow.tasks.models import Task
from tests.common.events.conftest import nats_server  # noqa: F401 (a fixture: a real nats-server)
from tests.conftest import migrated
from tests.workflow.conftest import ISSUER, Issuer


class StepRecorded(EventData):
    """A stand-in for the event every real step writes beside its history entry."""

    event_type: ClassVar[str] = "pingtai.workflow.test.step"

    application_id: str


@dataclass
class LiveServer:
    app: FastAPI
    url: str
    server: uvicorn.Server
    task: asyncio.Task[None]
    database: Database = field(init=False)

    def __post_init__(self) -> None:
        self.database = self.app.state.database

    async def stop(self) -> None:
        self.server.should_exit = True
        await asyncio.wait_for(self.task, timeout=15)


async def start_server(database_url: str, issuer: Issuer, **settings: Any) -> LiveServer:
    """Serve a workflow app with ``settings`` over real HTTP on 127.0.0.1."""
    app = create_app(
        WorkflowSettings(database_url=database_url, issuer=ISSUER, nats_url=None, **settings)
    )
    jwks = issuer.jwks()
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=jwks))
    app.state.token_verifier = TokenVerifier(
        issuer=ISSUER,
        audience="pingtai",
        jwks=JwksCache("http://jwks.test/jwks.json", client=httpx.AsyncClient(transport=transport)),
    )
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=5
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(200):
        if server.started:
            break
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    return LiveServer(app=app, url=f"http://127.0.0.1:{port}", server=server, task=task)


@pytest.fixture
async def migrated_url(database_url: str) -> str:
    await asyncio.to_thread(migrated, "services.workflow", database_url)
    return database_url


@pytest.fixture
async def live(migrated_url: str, issuer: Issuer) -> AsyncIterator[LiveServer]:
    server = await start_server(
        migrated_url, issuer, live_keepalive_s=0.3, live_poll_s=0.2, sla_timer_enabled=False
    )
    try:
        yield server
    finally:
        with contextlib.suppress(Exception):
            await server.stop()


async def add_application(
    database: Database,
    *,
    applicant_id: str,
    applicant_org_id: str | None = None,
    owner_org_id: str | None = None,
    task_department: str | None = None,
) -> str:
    """An application row (and a task of ``task_department``), as the engine would leave it."""
    application_id = new_id()
    async with database.sessionmaker() as session:
        session.add(
            Application(
                id=application_id,
                applicant_id=applicant_id,
                applicant_org_id=applicant_org_id,
                kind="item",
                service_code="test-service",
                service_name="测试事项",
                owner_org_id=owner_org_id,
                status="in_progress",
                form={},
            )
        )
        await session.flush()
        if task_department is not None:
            session.add(
                Task(
                    application_id=application_id,
                    item_id="item-1",
                    item_code="test-service",
                    step="review",
                    name="审核",
                    decisions=["approve"],
                    department_org_id=task_department,
                    role="officer",
                    state="open",
                    sla_days=5,
                )
            )
        await session.commit()
    return application_id


async def add_entry(
    database: Database,
    application_id: str,
    *,
    applicant_id: str,
    action: str = "task.completed",
    department_org_id: str | None = None,
    entry_id: int | None = None,
    with_event: bool = True,
) -> int:
    """A history entry, with an event in the same transaction as the real steps write them."""
    async with database.sessionmaker() as session:
        entry = HistoryEntry(
            application_id=application_id,
            applicant_id=applicant_id,
            department_org_id=department_org_id,
            actor_id="officer-1",
            actor_role="officer",
            at=utcnow(),
            action=action,
            comment="材料齐全",
            from_status="in_progress",
            to_status="in_progress",
        )
        if entry_id is not None:
            entry.id = entry_id
        session.add(entry)
        if with_event:
            await outbox.add(
                session,
                new_event(StepRecorded(application_id=application_id), subject=application_id),
            )
        await session.flush()
        new = entry.id
        await session.commit()
    return new


class EventReader:
    """Reads server-sent events off a streaming response: fields per event, comments apart."""

    def __init__(self, response: httpx.Response) -> None:
        self.lines = response.aiter_lines()
        self.comments: list[str] = []

    async def next(
        self, timeout: float = 5.0, *, skip: Callable[[dict[str, str]], bool] | None = None
    ) -> dict[str, str]:
        async with asyncio.timeout(timeout):
            while True:
                event = await self._one()
                if event and not (skip and skip(event)):
                    return event

    async def _one(self) -> dict[str, str]:
        event: dict[str, str] = {}
        async for line in self.lines:
            if line == "":
                return event
            if line.startswith(":"):
                self.comments.append(line[1:].strip())
                continue
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            event[name] = event[name] + "\n" + value if name in event else value
        raise EOFError("the stream ended")

    async def data(self, timeout: float = 5.0) -> tuple[int, dict[str, Any]]:
        """The next event that carries a history step: (id, data)."""
        event = await self.next(timeout, skip=lambda e: "data" not in e or "id" not in e)
        return int(event["id"]), json.loads(event["data"])


@dataclass
class Receiver:
    """A webhook receiver on 127.0.0.1: records each request, answers from ``statuses``."""

    url: str = ""
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append((dict(request.headers), await request.read()))
        return web.Response(status=self.statuses.pop(0) if self.statuses else 204)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    receiver = Receiver()
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    receiver.url = f"http://127.0.0.1:{port}/hook"
    try:
        yield receiver
    finally:
        await runner.cleanup()
