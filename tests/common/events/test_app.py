"""A part's app with an event bus: NATS down degrades readiness and never fails start-up."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import nats

from libs.common.app import create_service_app
from libs.common.database import Database
from libs.common.events import EventBus, StreamLimits, ensure_stream, stream_name
from libs.common.events.streams import MAX_MSGS_PER_SUBJECT
from pingtai.natsserver import NatsServer
from tests.common.events.harness import (
    PART,
    commit_changes,
    create_schema,
    eventually,
    ledger_settings,
)


async def test_the_part_starts_without_nats_and_reports_degraded_until_it_comes(
    database_url: str, tmp_path: Path
) -> None:
    schema = Database(database_url)
    await create_schema(schema)
    server = NatsServer(tmp_path / "nats")  # not started yet
    settings = ledger_settings(nats_url=server.url, database_url=database_url)
    app = create_service_app(
        settings,
        title="Ledger",
        description="A test part.",
        configure_process=False,
        events=EventBus(settings),
    )
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://ledger")
    try:
        async with app.router.lifespan_context(app), client:
            await commit_changes(schema, count=3)
            live = await client.get("/healthz")
            degraded = await client.get("/readyz")

            server.start()

            async def ready_and_published() -> bool:
                body = (await client.get("/readyz")).json()
                return (
                    body["status"] == "ready"
                    and "holds 0 event" in body["checks"]["nats"]["detail"]
                )

            await eventually(ready_and_published, timeout=20, what="the part to be ready")
            final = (await client.get("/readyz")).json()
    finally:
        server.stop()
        await schema.dispose()

    assert live.status_code == 200
    assert degraded.status_code == 200
    body: dict[str, Any] = degraded.json()
    assert body["status"] == "degraded"
    assert body["checks"]["nats"]["ok"] is False
    assert body["checks"]["nats"]["critical"] is False
    assert "NATS is down" in body["checks"]["nats"]["detail"]
    assert "the outbox holds 3 event(s)" in body["checks"]["nats"]["detail"]
    assert final["checks"]["nats"]["detail"] == "connected; the outbox holds 0 event(s)"


async def test_the_stream_is_declared_idempotently_with_the_operator_limits(
    nats_server: NatsServer,
) -> None:
    client = await nats.connect(nats_server.url)
    js = client.jetstream()
    try:
        await ensure_stream(js, part=PART, limits=StreamLimits())
        await ensure_stream(js, part=PART, limits=StreamLimits())
        settings = ledger_settings(
            events_max_age_s=3600,
            events_max_bytes=10_000_000,
            events_duplicate_window_s=30,
        )
        await ensure_stream(js, part=PART, limits=StreamLimits.from_settings(settings))
        info = await js.stream_info(stream_name(PART))
    finally:
        await client.close()

    assert info.config.subjects == ["pingtai.ledger.>"]
    assert info.config.max_age == 3600
    assert info.config.max_bytes == 10_000_000
    assert info.config.duplicate_window == 30
    assert info.config.num_replicas == 1
    assert info.config.storage == "file"


async def test_the_stream_writes_four_megabyte_blocks_and_keeps_every_event(
    nats_server: NatsServer,
) -> None:
    """The per-subject limit buys nats-server's 4 MB blocks (8 MB without it), which bound what
    the file store holds in memory for a busy stream; no event is dropped for it."""
    client = await nats.connect(nats_server.url)
    js = client.jetstream()
    body = b"x" * 1000
    count = 10_000  # ~10 MB: more than two blocks
    try:
        await ensure_stream(js, part=PART, limits=StreamLimits())
        for n in range(count):
            await js.publish(f"pingtai.ledger.entry.e{n % 3}", body)
        info = await js.stream_info(stream_name(PART))
    finally:
        await client.close()

    assert info.config.max_msgs_per_subject == MAX_MSGS_PER_SUBJECT
    assert info.state.messages == count and info.state.first_seq == 1
    blocks = sorted(nats_server.store_dir.rglob(f"streams/{stream_name(PART)}/msgs/*.blk"))
    sizes = [block.stat().st_size for block in blocks]
    assert len(sizes) >= 3
    assert max(sizes) <= 4 * 1024 * 1024 < 8 * 1024 * 1024


def test_stream_limits_come_from_the_part_settings(monkeypatch: Any) -> None:
    monkeypatch.setenv("PINGTAI_LEDGER_EVENTS_MAX_AGE_S", "86400")
    monkeypatch.setenv("PINGTAI_LEDGER_EVENTS_REPLICAS", "3")
    monkeypatch.setenv("PINGTAI_LEDGER_EVENTS_STORAGE", "memory")

    limits = StreamLimits.from_settings(ledger_settings())

    assert limits.max_age_s == 86400
    assert limits.replicas == 3
    assert limits.file_storage is False
