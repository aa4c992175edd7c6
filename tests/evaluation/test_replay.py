"""Replay equals live: events through a real NATS server into the running consumers, then the
indicators rebuilt from the retained streams into an empty database are identical."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import nats
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from libs.common.database import Database
from libs.common.events import CloudEvent, StreamLimits, ensure_stream
from libs.common.events.envelope import MSG_ID_HEADER
from libs.common.migrations import migrate
from pingtai.natsserver import NatsServer
from services.evaluation import cli
from services.evaluation.app import create_app
from services.evaluation.index.models import StoredRanking
from services.evaluation.indicators.projection import Projection
from services.evaluation.indicators.replay import compare, recompute
from services.evaluation.settings import EvaluationSettings
from tests.evaluation import scenario
from tests.evaluation.conftest import ISSUER
from tests.evaluation.helpers import RULES, database_of, rows, stored_ranking

PARTS = ("identity", "catalog", "workflow", "exchange", "evaluation")


async def publish(url: str, events: Sequence[CloudEvent]) -> None:
    """Publish events as the parts' relays do (one stream per part, Nats-Msg-Id = event id)."""
    client = await nats.connect(url)
    try:
        js = client.jetstream()
        for part in PARTS:
            await ensure_stream(js, part=part, limits=StreamLimits())
        for event in events:
            await js.publish(event.type, event.to_json(), headers={MSG_ID_HEADER: event.id})
    finally:
        await client.close()


@pytest.fixture
async def live_app(database_url: str, nats_server: NatsServer) -> AsyncIterator[FastAPI]:
    await asyncio.to_thread(migrate, "services.evaluation", database_url)
    settings = EvaluationSettings(
        database_url=database_url, issuer=ISSUER, nats_url=nats_server.url,
        events_consumer_batch=7,
    )  # fmt: skip
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        yield app


async def _settled(database: Database, expected: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """The live rows once they match ``expected`` (or after 30 s, whatever they are)."""
    found: list[tuple[Any, ...]] = []
    for _ in range(300):
        found = await rows(database)
        if found == expected:
            break
        await asyncio.sleep(0.1)
    return found


async def test_replay_equals_live(
    live_app: FastAPI, nats_server: NatsServer, database_url: str, tmp_path: Path
) -> None:
    events = scenario.all_events()
    # The reference: the same events projected directly, in order.
    reference = Database(f"sqlite+aiosqlite:///{tmp_path / 'reference.db'}")
    rebuilt = Database(f"sqlite+aiosqlite:///{tmp_path / 'rebuilt.db'}")
    try:
        await asyncio.to_thread(migrate, "services.evaluation", reference.url)
        async with reference.sessionmaker() as session, session.begin():
            await Projection(RULES)(session, events)
        expected = await rows(reference)
        # Live: the streams in a shuffled order of publication (order across aggregates is not
        # guaranteed), some events published twice (a relay that died after JetStream's ack).
        shuffled = list(events)
        random.Random(7).shuffle(shuffled)
        await publish(nats_server.url, shuffled + shuffled[:10])
        live_rows = await _settled(database_of(live_app), expected)
        assert live_rows == expected
        # Replay into an empty database.
        await asyncio.to_thread(migrate, "services.evaluation", rebuilt.url)
        report = await recompute(rebuilt, nats_url=nats_server.url, projection=Projection(RULES))
        assert report.total == len(events)  # JetStream dropped the ten repeats
        identical, live_count, rebuilt_count, differences = await compare(
            database_of(live_app), rebuilt
        )
        assert identical, differences
        assert live_count == rebuilt_count == len(expected)
        # The rankings too: read from each (and so stored in each), they are the same.
        live_ranking = await stored_ranking(database_of(live_app))
        assert live_ranking == await stored_ranking(rebuilt)
        assert len(json.loads(live_ranking)["items"]) == 3
        # Recomputing again (in place) changes nothing, and forgets the stored rankings.
        await recompute(rebuilt, nats_url=nats_server.url, projection=Projection(RULES))
        assert await rows(rebuilt) == expected
        async with rebuilt.sessionmaker() as session:
            assert (await session.execute(select(StoredRanking))).first() is None
        assert await stored_ranking(rebuilt) == live_ranking
    finally:
        await reference.dispose()
        await rebuilt.dispose()


def test_recompute_shows_its_progress(capsys: pytest.CaptureFixture[str]) -> None:
    show = cli._progress()
    for applied in (2_000, 98_000, 100_000, 102_000, 250_000):
        show("evaluation-indicators-workflow", applied)
    show("evaluation-indicators-exchange", 100_000)
    assert capsys.readouterr().out.splitlines() == [
        "  evaluation-indicators-workflow: 100,000 event(s) applied so far",
        "  evaluation-indicators-workflow: 250,000 event(s) applied so far",
        "  evaluation-indicators-exchange: 100,000 event(s) applied so far",
    ]
