"""Benchmark: evaluation's indicator projection, rankings and replay (SQLite, one process).

    .venv/bin/python bench/bench_evaluation.py [--applications 20000] [--departments 100]
                                               [--batch 500] [--rankings 300]
                                               [--replay-events 200000]
                                               [--replay-limit-s 1200] [--replay-only]

Starts an embedded nats-server (JetStream, file storage in a temporary folder), then:

1. **Consume**: publishes the catalog's items (3 per department) and ``--applications``
   applications' workflow events (submitted, started, one or two task.created and
   task.completed, completed or rejected or withdrawn: about 6.5 events each, over 30 days) to
   their streams, then starts the evaluation app on a scratch SQLite database with its durable
   consumers (``events_consumer_batch = --batch``) and measures, from the start of the app
   until the workflow consumer's inbox holds every event: events/s end to end (JetStream pull,
   inbox, projection, commit, ack), and this process's CPU per event (the app is in process;
   nats-server is not counted).
2. **Rankings**: ``--rankings`` ranking queries for one month over every department (the
   default indicator system, each indicator's contribution, the API's JSON), in-process:
   computed from the daily rows each time (what a read costs when nothing is stored, e.g.
   the first read after a batch changed a day of the period), then read as the API reads
   them (the first read stores the ranking, the others read the stored row); p50/p99/max and
   CPU per ranking for both.
3. **Replay**: ``pingtai evaluation recompute``'s replay of the retained streams into an empty
   database. The workflow stream is topped up to ``--replay-events`` events first (generated
   and published in chunks, so 1,000,000 fit in memory); progress every 50,000 events; the
   replay stops after ``--replay-limit-s`` seconds. A run smaller than 1,000,000 events is
   extrapolated linearly to 1,000,000 (said so when printed).

Targets (issue 8): consume >= 3,000 workflow events/s; ranking p99 <= 50 ms over 100
departments; replay of 1,000,000 events <= 10 minutes. Prints /proc/loadavg with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import nats
import nats.js.errors

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from libs.common.auth import Principal, Role
from libs.common.database import Database
from libs.common.events import CloudEvent, StreamLimits, ensure_stream, stream_name
from libs.common.events.envelope import MSG_ID_HEADER
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


RawEvent = tuple[str, bytes, str]
E = TypeVar("E", CloudEvent, RawEvent)


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


def _raw_event(kind: str, data: dict[str, object], when: datetime, subject: str) -> RawEvent:
    """(subject, the CloudEvent's JSON, its id), written without building the model: the
    top-up of a million events would otherwise cost more than the replay it feeds."""
    event_id = uuid.uuid4().hex
    envelope = {"specversion": "1.0", "id": event_id, "source": f"/pingtai/{kind.split('.')[0]}",
                "type": f"pingtai.{kind}", "datacontenttype": "application/json",
                "time": when.isoformat(), "subject": subject, "data": data}  # fmt: skip
    return f"pingtai.{kind}", json.dumps(envelope, separators=(",", ":")).encode(), event_id


def applications(
    count: int,
    items: list[tuple[str, str]],
    departments: list[str],
    rng: random.Random,
    make: Callable[[str, dict[str, object], datetime, str], E] = _event,  # type: ignore[assignment]
) -> list[E]:
    """Workflow events of ``count`` applications, about 6.5 each (made by ``make``)."""
    _event = make
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
                    # A loaded machine answers many in flight slowly: wait, do not fail.
                    js.publish(e.type, e.to_json(), timeout=60, headers={MSG_ID_HEADER: e.id})
                    for e in events[start : start + 2000]
                )
            )
    finally:
        await client.close()
    return len(events) / (time.perf_counter() - started)


async def publish_raw(url: str, events: list[RawEvent]) -> None:
    """Publish on core NATS (JetStream stores what its subjects receive; no ack awaited per
    message, one flush per chunk): cheap enough to top a stream up to a million events."""
    client = await nats.connect(url)
    try:
        for subject, body, event_id in events:
            await client.publish(subject, body, headers={MSG_ID_HEADER: event_id})
        await client.flush(timeout=120)
    finally:
        await client.close()


async def stored_events(url: str, part: str) -> int:
    """How many events ``part``'s stream holds."""
    client = await nats.connect(url)
    try:
        info = await client.jetstream().stream_info(stream_name(part))
        return int(info.state.messages)
    finally:
        await client.close()


async def consume(
    url: str, database_url: str, nats_url: str, expected: int, batch: int
) -> tuple[float, float]:
    """Start the app's consumers; events/s until the workflow consumer has them all, and this
    process's CPU seconds meanwhile."""
    settings = EvaluationSettings(
        database_url=database_url,
        nats_url=nats_url,
        events_consumer_batch=batch,
        events_ack_wait_s=120,
    )
    app = create_app(settings)
    started = time.perf_counter()
    cpu = time.process_time()
    client = await nats.connect(nats_url)
    js = client.jetstream()
    try:
        async with app.router.lifespan_context(app):
            # Done when the workflow consumer has acknowledged every event (it acknowledges
            # after its commit). Asking JetStream costs this process far less than counting
            # the inbox would, so the CPU measured is the app's.
            while True:
                await asyncio.sleep(0.2)
                try:
                    info = await js.consumer_info(
                        stream_name("workflow"), "evaluation-indicators-workflow"
                    )
                except nats.js.errors.NotFoundError:
                    continue  # not created yet
                if (
                    info.delivered.consumer_seq >= expected
                    and not info.num_pending
                    and not info.num_ack_pending
                ):
                    break
            elapsed = time.perf_counter() - started
            cpu = time.process_time() - cpu
    finally:
        await client.close()
    return expected / elapsed, cpu


async def rankings(database_url: str, count: int) -> dict[str, tuple[list[float], float]]:
    """Latencies (ms) and CPU seconds of ranking queries for one month over every department:
    computed each time, and read as the API reads them (stored by the first)."""
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
    found: dict[str, tuple[list[float], float]] = {}
    try:
        async with database.sessionmaker() as session:
            chosen = await index_service.system(session=session, version=None)
        latencies = []
        cpu = time.process_time()
        for _ in range(count):
            started = time.perf_counter()
            async with database.sessionmaker() as session:
                computed = await index_service.compute_ranking(
                    session=session, scope_kind="department", period=period, chosen=chosen,
                    region_level="city",
                )  # fmt: skip
            computed.model_dump_json()
            latencies.append((time.perf_counter() - started) * 1000)
        found["computed"] = (latencies, time.process_time() - cpu)
        print(f"    ranked {len(computed.items)} departments")
        latencies = []
        cpu = time.process_time()
        for _ in range(count):
            started = time.perf_counter()
            async with database.sessionmaker() as session, session.begin():
                body = await index_service.ranking(
                    session=session, engine=database.engine, principal=principal,
                    scope_kind="department",
                    period=period, version=None, region_level="city", keep=256,
                )  # fmt: skip
            latencies.append((time.perf_counter() - started) * 1000)
        found["read"] = (latencies, time.process_time() - cpu)
        if body != computed.model_dump_json():
            raise SystemExit("the stored ranking differs from the computed one")
    finally:
        await database.dispose()
    return found


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def main(args: argparse.Namespace) -> None:
    rng = random.Random(2026)
    departments = [uuid.uuid4().hex for _ in range(args.departments)]
    catalog_events, items = catalog(departments)
    workflow_events = (
        [] if args.replay_only else applications(args.applications, items, departments, rng)
    )
    with tempfile.TemporaryDirectory() as scratch:
        server = NatsServer(Path(scratch) / "nats")
        server.start()
        try:
            url = f"sqlite+aiosqlite:///{Path(scratch) / 'evaluation.db'}"
            await asyncio.to_thread(migrate, "services.evaluation", url)
            if args.replay_only:
                await publish(server.url, catalog_events)
                published = len(catalog_events)
            else:
                rate = await publish(server.url, catalog_events + workflow_events)
                published = len(catalog_events) + len(workflow_events)
                print(f"published {published:,} events ({rate:,.0f}/s)")
                print(
                    f"1. consume {len(workflow_events):,} workflow events "
                    f"({args.applications:,} applications, {args.departments} departments), "
                    f"batch {args.batch}:"
                )
                consumed, cpu = await consume(
                    server.url, url, server.url, len(workflow_events), args.batch
                )
                print(
                    f"    {consumed:,.0f} events/s end to end (target >= 3,000), "
                    f"CPU {cpu / len(workflow_events) * 1e6:.0f} us per event   loadavg {loadavg()}"
                )
                # The generated events are the bench's, not the server's: drop them so the
                # collector does not walk them during the queries.
                del workflow_events
                gc.collect()
                print(
                    f"2. rankings for 2026-11 over {args.departments} departments, "
                    f"{args.rankings} queries:"
                )
                for label, (latencies, cpu) in (await rankings(url, args.rankings)).items():
                    print(
                        f"    {label:>8}: p50 {pct(latencies, 0.5):.2f} ms, "
                        f"p99 {pct(latencies, 0.99):.2f} ms, max {max(latencies):.1f} ms, "
                        f"mean {statistics.mean(latencies):.2f} ms, "
                        f"CPU {cpu / len(latencies) * 1000:.2f} ms per ranking "
                        f"(target p99 <= 50 ms)   loadavg {loadavg()}"
                    )
            extra = max(0, args.replay_events - published)
            topped = 0
            while topped < extra:
                # In chunks: a million events' objects at once would not fit comfortably.
                chunk = applications(
                    min(20_000, int((extra - topped) / 6.5) + 1), items, departments, rng,
                    make=_raw_event,
                )  # fmt: skip
                await publish_raw(server.url, chunk)
                topped += len(chunk)
                del chunk
                print(
                    f"    published {published + topped:,} events   loadavg {loadavg()}", flush=True
                )
            held = await stored_events(server.url, "workflow")
            print(f"    the workflow stream holds {held:,} events")
            rebuilt = f"sqlite+aiosqlite:///{Path(scratch) / 'rebuilt.db'}"
            await asyncio.to_thread(migrate, "services.evaluation", rebuilt)
            database = Database(rebuilt)
            total = published + topped
            started = time.perf_counter()
            cpu = time.process_time()
            shown = [0]

            def progress(durable: str, applied: int) -> None:
                if applied - shown[0] >= 50_000 or applied < shown[0]:
                    shown[0] = applied
                    elapsed = time.perf_counter() - started
                    used = (time.process_time() - cpu) / applied * 1e6
                    print(
                        f"    {durable}: {applied:,} events applied, {elapsed:.0f} s "
                        f"({applied / elapsed:,.0f}/s), CPU {used:.0f} us per event so far   "
                        f"loadavg {loadavg()}",
                        flush=True,
                    )

            print(f"3. replay of {total:,} events into an empty database:", flush=True)
            try:
                async with asyncio.timeout(args.replay_limit_s):
                    report = await recompute(
                        database,
                        nats_url=server.url,
                        projection=Projection(rules_of(EvaluationSettings())),
                        batch=2000,
                        progress=progress,
                    )
            except TimeoutError:
                print(
                    f"    stopped at the limit of {args.replay_limit_s:.0f} s with "
                    f"{shown[0]:,} events applied (at least): the target is missed"
                )
                return
            finally:
                await database.dispose()
            cpu = time.process_time() - cpu
            replay_rate = report.total / report.seconds
            print(
                f"    {report.total:,} events in {report.seconds:.1f} s "
                f"({replay_rate:,.0f} events/s), CPU {cpu / report.total * 1e6:.0f} us per "
                f"event   loadavg {loadavg()}"
            )
            if report.total < 1_000_000:
                print(
                    f"    extrapolated to 1,000,000 events: {1_000_000 / replay_rate / 60:.1f} "
                    "min (linear; measured on the run above, not a full million) "
                    "(target <= 10 min)"
                )
            else:
                print(f"    measured: {report.seconds / 60:.1f} min (target <= 10 min)")
        finally:
            server.kill()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--applications", type=int, default=20_000)
    parser.add_argument("--departments", type=int, default=100)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--rankings", type=int, default=300)
    parser.add_argument("--replay-events", type=int, default=200_000)
    parser.add_argument("--replay-limit-s", type=float, default=1200.0)
    parser.add_argument(
        "--replay-only", action="store_true", help="skip the consumption and the rankings"
    )
    asyncio.run(main(parser.parse_args()))
