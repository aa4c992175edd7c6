"""Benchmark: evaluation's indicator projection, rankings and replay (SQLite, one process).

    .venv/bin/python bench/bench_evaluation.py [--applications 20000] [--departments 100]
                                               [--batch 500] [--rankings 300]
                                               [--replay-events 200000]

Starts an embedded nats-server (JetStream, file storage in a temporary folder), then:

1. **Consume**: publishes the catalog's items (3 per department) and ``--applications``
   applications' workflow events (submitted, started, one or two task.created and
   task.completed, completed or rejected or withdrawn: about 6.5 events each, over 30 days) to
   their streams, then starts the evaluation app on a scratch SQLite database with its durable
   consumers (``events_consumer_batch = --batch``) and measures, from the start of the app
   until the workflow consumer's inbox holds every event: events/s end to end (JetStream pull,
   inbox, projection, commit, ack).
2. **Rankings**: ``--rankings`` ranking queries for one month over every department (the
   default indicator system, each indicator's contribution, serialised to JSON as the API
   does), in-process; p50/p99/max.
3. **Replay**: ``pingtai evaluation recompute``'s replay of the retained streams into an empty
   database. The workflow stream is topped up to ``--replay-events`` events first; a run smaller
   than 1,000,000 events is extrapolated linearly to 1,000,000 (said so when printed).

Targets (issue 8): consume >= 3,000 workflow events/s; ranking p99 <= 50 ms over 100
departments; replay of 1,000,000 events <= 10 minutes. Prints /proc/loadavg with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import nats
from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from libs.common.auth import Principal, Role
from libs.common.database import Database
from libs.common.events import CloudEvent, StreamLimits, ensure_stream
from libs.common.events.envelope import MSG_ID_HEADER
from libs.common.events.tables import TABLES
from libs.common.migrations import migrate
from pingtai.natsserver import NatsServer
from services.evaluation.app import create_app
from services.evaluation.index import service as index_service
from services.evaluation.indicators.consumers import rules_of
from services.evaluation.indicators.periods import parse_period
from services.evaluation.indicators.projection import Projection
from services.evaluation.indicators.replay import recompute
from services.evaluation.settings import EvaluationSettings

START = datetime(2026, 11, 1, tzinfo=UTC)
REGIONS = ["330102", "330105", "330106", "330108", "330110", "330203", "330302", "330402"]


def loadavg() -> str:
    try:
        return Path("/proc/loadavg").read_text().strip()
    except OSError:
        return "n/a"


def _event(kind: str, data: dict[str, object], when: datetime, subject: str) -> CloudEvent:
    part = kind.split(".")[0]
    return CloudEvent(
        id=uuid.uuid4().hex,
        source=f"/pingtai/{part}",
        type=f"pingtai.{kind}",
        time=when,
        subject=subject,
        data=data,
    )


def catalog(departments: list[str]) -> tuple[list[CloudEvent], list[tuple[str, str]]]:
    """Three items per department; returns the events and (item id, owner)."""
    events, items = [], []
    for n, department in enumerate(departments):
        for k in range(3):
            item = uuid.uuid4().hex
            items.append((item, department))
            snapshot = {"name": f"事项{n}-{k}", "region_code": REGIONS[n % len(REGIONS)],
                        "legal_time_limit_days": 20, "promised_time_limit_days": 5 + k,
                        "max_visits": 0}  # fmt: skip
            events.append(
                _event(
                    "catalog.item.published",
                    {
                        "item_id": item,
                        "code": f"item-{n}-{k}",
                        "owner_org_id": department,
                        "version": 1,
                        "snapshot": snapshot,
                    },
                    START - timedelta(days=1),
                    item,
                )
            )
    return events, items


def applications(
    count: int, items: list[tuple[str, str]], departments: list[str], rng: random.Random
) -> list[CloudEvent]:
    """Workflow events of ``count`` applications, about 6.5 each."""
    events = []
    for _ in range(count):
        app = uuid.uuid4().hex
        item, owner = rng.choice(items)
        submitted = START + timedelta(minutes=rng.randrange(30 * 24 * 60))
        common = {"application_id": app, "applicant_id": uuid.uuid4().hex,
                  "applicant_org_id": None, "service_code": "x", "owner_org_id": owner}  # fmt: skip
        events.append(
            _event(
                "workflow.application.submitted",
                {
                    **common,
                    "status": "submitted",
                    "kind": "item",
                    "item_id": item,
                    "item_version": 1,
                    "bundle_id": None,
                    "bundle_version": None,
                    "submitted_at": submitted.isoformat(),
                    "materials_total": 4,
                    "materials_fetched": rng.randint(0, 4),
                    "materials_pending": 0,
                },
                submitted,
                app,
            )
        )
        started = submitted + timedelta(minutes=5)
        events.append(
            _event(
                "workflow.application.started",
                {
                    **common,
                    "status": "in_progress",
                    "branches": [item],
                    "due_at": (submitted + timedelta(days=7)).isoformat(),
                    "materials_fetched": 3,
                    "materials_uploaded": 1,
                },
                started,
                app,
            )
        )
        branches = [owner] + ([rng.choice(departments)] if rng.random() < 0.5 else [])
        finished = submitted + timedelta(hours=rng.randrange(1, 24 * 12))
        for department in branches:
            task = {
                "task_id": uuid.uuid4().hex,
                "application_id": app,
                "item_id": item,
                "department_org_id": department,
                "role": "officer",
                "step": "approve",
            }
            events.append(_event("workflow.task.created", {**task, "state": "open"}, started, app))
            events.append(
                _event(
                    "workflow.task.completed",
                    {**task, "decision": "approve", "overdue": False},
                    finished,
                    app,
                )
            )
        outcome = rng.choices(["completed", "rejected", "withdrawn"], [85, 10, 5])[0]
        events.append(
            _event(
                f"workflow.application.{outcome}",
                {**common, "status": outcome, "decided_at": finished.isoformat()},
                finished,
                app,
            )
        )
    return events


async def publish(url: str, events: list[CloudEvent]) -> float:
    """Publish with many in flight, as a relay does; returns events/s."""
    client = await nats.connect(url)
    started = time.perf_counter()
    try:
        js = client.jetstream()
        for part in ("identity", "catalog", "workflow", "exchange", "evaluation"):
            await ensure_stream(js, part=part, limits=StreamLimits(duplicate_window_s=1.0))
        for start in range(0, len(events), 2000):
            await asyncio.gather(
                *(
                    js.publish(e.type, e.to_json(), headers={MSG_ID_HEADER: e.id})
                    for e in events[start : start + 2000]
                )
            )
    finally:
        await client.close()
    return len(events) / (time.perf_counter() - started)


async def consume(url: str, database_url: str, nats_url: str, expected: int, batch: int) -> float:
    """Start the app's consumers; events/s until the workflow consumer has them all."""
    settings = EvaluationSettings(
        database_url=database_url,
        nats_url=nats_url,
        events_consumer_batch=batch,
        events_ack_wait_s=120,
    )
    app = create_app(settings)
    database: Database = app.state.database
    inbox = TABLES.inbox
    started = time.perf_counter()
    async with app.router.lifespan_context(app):
        while True:
            async with database.sessionmaker() as session:
                done = (
                    await session.execute(
                        select(func.count())
                        .select_from(inbox)
                        .where(inbox.c.consumer == "evaluation-indicators-workflow")
                    )
                ).scalar_one()
            if done >= expected:
                break
            await asyncio.sleep(0.2)
        elapsed = time.perf_counter() - started
    return expected / elapsed


async def rankings(database_url: str, count: int) -> list[float]:
    """Latencies (ms) of ranking queries for one month over every department."""
    database = Database(database_url)
    principal = Principal(
        sub="bench",
        client_id="bench",
        org=None,
        roles=frozenset({Role.EVALUATOR}),
        acr=0,
        scopes=frozenset(),
        jti="bench",
        expires_at=datetime.now(UTC) + timedelta(hours=1),
    )
    period = parse_period("2026-11")
    latencies = []
    try:
        for _ in range(count):
            started = time.perf_counter()
            async with database.sessionmaker() as session:
                ranking = await index_service.ranking(
                    session=session,
                    principal=principal,
                    scope_kind="department",
                    period=period,
                    version=None,
                    region_level="city",
                )
            ranking.model_dump_json()
            latencies.append((time.perf_counter() - started) * 1000)
        print(f"    ranked {len(ranking.items)} departments")
    finally:
        await database.dispose()
    return latencies


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def main(args: argparse.Namespace) -> None:
    rng = random.Random(2026)
    departments = [uuid.uuid4().hex for _ in range(args.departments)]
    catalog_events, items = catalog(departments)
    workflow_events = applications(args.applications, items, departments, rng)
    with tempfile.TemporaryDirectory() as scratch:
        server = NatsServer(Path(scratch) / "nats")
        server.start()
        try:
            url = f"sqlite+aiosqlite:///{Path(scratch) / 'evaluation.db'}"
            await asyncio.to_thread(migrate, "services.evaluation", url)
            rate = await publish(server.url, catalog_events + workflow_events)
            print(
                f"published {len(catalog_events) + len(workflow_events):,} events ({rate:,.0f}/s)"
            )
            print(
                f"1. consume {len(workflow_events):,} workflow events "
                f"({args.applications:,} applications, {args.departments} departments), "
                f"batch {args.batch}:"
            )
            consumed = await consume(server.url, url, server.url, len(workflow_events), args.batch)
            print(
                f"    {consumed:,.0f} events/s end to end (target >= 3,000)   loadavg {loadavg()}"
            )
            # The generated events are the bench's, not the server's: drop them so the
            # collector does not walk them during the queries.
            published = len(catalog_events) + len(workflow_events)
            del workflow_events
            gc.collect()
            print(
                f"2. rankings for 2026-11 over {args.departments} departments, "
                f"{args.rankings} queries:"
            )
            latencies = await rankings(url, args.rankings)
            print(
                f"    p50 {pct(latencies, 0.5):.1f} ms, p99 {pct(latencies, 0.99):.1f} ms, "
                f"max {max(latencies):.1f} ms, mean {statistics.mean(latencies):.1f} ms "
                f"(target p99 <= 50 ms)   loadavg {loadavg()}"
            )
            extra = max(0, args.replay_events - published)
            if extra:
                top_up = applications(int(extra / 6.5) + 1, items, departments, rng)
                await publish(server.url, top_up)
            rebuilt = f"sqlite+aiosqlite:///{Path(scratch) / 'rebuilt.db'}"
            await asyncio.to_thread(migrate, "services.evaluation", rebuilt)
            database = Database(rebuilt)
            try:
                report = await recompute(
                    database,
                    nats_url=server.url,
                    projection=Projection(rules_of(EvaluationSettings())),
                    batch=2000,
                )
            finally:
                await database.dispose()
            replay_rate = report.total / report.seconds
            print(
                f"3. replay of {report.total:,} events into an empty database: "
                f"{report.seconds:.1f} s ({replay_rate:,.0f} events/s)   loadavg {loadavg()}"
            )
            if report.total < 1_000_000:
                print(
                    f"    extrapolated to 1,000,000 events: {1_000_000 / replay_rate / 60:.1f} "
                    "min (linear; measured on the run above, not a full million) "
                    "(target <= 10 min)"
                )
            else:
                print(f"    (target <= 10 min: {report.seconds / 60:.1f} min)")
        finally:
            server.kill()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--applications", type=int, default=20_000)
    parser.add_argument("--departments", type=int, default=100)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--rankings", type=int, default=300)
    parser.add_argument("--replay-events", type=int, default=200_000)
    asyncio.run(main(parser.parse_args()))
