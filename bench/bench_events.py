"""Benchmark: outbox -> JetStream -> consumer on SQLite, against raw nats-py publishing.

    .venv/bin/python bench/bench_events.py [--events 20000] [--repeat 3]

Starts its own nats-server on free ports and two SQLite files in a temporary folder: one for a
publishing part (its outbox) and one for a consuming part (its inbox and a projection table).
It measures, in order, each stage on a fresh server and fresh databases:

1. the ceiling: raw nats-py JetStream publishes on this machine, one at a time and many in flight;
2. end to end, a per-event handler (one INSERT per event): a backlog of committed events drained
   by one relay and one consumer (both in this process) until the consumer's transaction holding
   the last one commits; each end-to-end stage runs ``--repeat`` times and reports the median;
3. the same with a batch handler (one INSERT for the whole fetched batch);
4. live: a writer commits one change and its event per transaction while the relay and the
   consumer (batch handler) run.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, ClassVar

import nats
import structlog
from pydantic_settings import SettingsConfigDict
from sqlalchemy import Column, Integer, String, Table, insert
from sqlalchemy.ext.asyncio import AsyncSession

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from libs.common.database import Database, new_metadata
from libs.common.events import (
    CloudEvent,
    EventBus,
    EventData,
    Subscription,
    define_event_tables,
    new_event,
    outbox,
)
from libs.common.settings import PartSettings
from pingtai.natsserver import NatsServer

AGGREGATES = 1000
CONSUMER_BATCH = 250  # PINGTAI_<PART>_EVENTS_CONSUMER_BATCH (default 100)

publisher_metadata = new_metadata()
define_event_tables(publisher_metadata)
orders = Table(
    "orders",
    publisher_metadata,
    Column("id", Integer, primary_key=True),
    Column("customer", String(64), nullable=False),
)
consumer_metadata = new_metadata()
define_event_tables(consumer_metadata)
projection = Table(
    "order_projection",
    consumer_metadata,
    Column("id", Integer, primary_key=True),
    Column("order_id", String(64), nullable=False),
    Column("amount", Integer, nullable=False),
)


class ShopSettings(PartSettings):
    part: ClassVar[str] = "shop"
    model_config = SettingsConfigDict(env_prefix="PINGTAI_SHOP_", extra="ignore")


class BillingSettings(PartSettings):
    part: ClassVar[str] = "billing"
    model_config = SettingsConfigDict(env_prefix="PINGTAI_BILLING_", extra="ignore")


class OrderPlaced(EventData):
    event_type: ClassVar[str] = "pingtai.shop.order.placed"

    order_id: str
    customer: str
    amount: int
    note: str


def say(message: str) -> None:
    print(message, flush=True)


async def project_order(session: AsyncSession, event: CloudEvent) -> None:
    """A per-event handler: one row per order."""
    order = event.data_as(OrderPlaced)
    await session.execute(insert(projection).values(order_id=order.order_id, amount=order.amount))


async def project_orders(session: AsyncSession, events: Sequence[CloudEvent]) -> None:
    """A batch handler: the rows of all orders in one statement."""
    orders_placed = [e.data_as(OrderPlaced) for e in events]
    await session.execute(
        insert(projection), [{"order_id": o.order_id, "amount": o.amount} for o in orders_placed]
    )


def order_event(n: int) -> CloudEvent:
    customer = f"c{n % AGGREGATES}"
    data = OrderPlaced(order_id=str(n), customer=customer, amount=n % 997, note="x" * 120)
    return new_event(data, subject=customer)


async def fill_outbox(database: Database, *, start: int, count: int, per_transaction: int) -> None:
    """Commit ``count`` orders, each with its event, ``per_transaction`` to a transaction."""
    for first in range(start, start + count, per_transaction):
        numbers = range(first, min(first + per_transaction, start + count))
        async with database.sessionmaker() as session, session.begin():
            await session.execute(
                insert(orders), [{"id": n, "customer": f"c{n % AGGREGATES}"} for n in numbers]
            )
            await outbox.add_all(session, [order_event(n) for n in numbers])


async def raw_ceiling(url: str, *, count: int) -> tuple[float, float]:
    """Raw nats-py JetStream publishes (one at a time, many in flight), same size and headers."""
    client = await nats.connect(url)
    js = client.jetstream()
    await js.add_stream(name="BENCH_RAW", subjects=["bench.raw.>"], duplicate_window=120)
    body = order_event(0).to_json()
    headers = {"traceparent": "00-" + "1" * 32 + "-" + "2" * 16 + "-01"}
    sync_count = max(1000, count // 5)
    started = time.perf_counter()
    for n in range(sync_count):
        await js.publish("bench.raw.sync", body, headers={**headers, "Nats-Msg-Id": f"s{n}"})
    sync_rate = sync_count / (time.perf_counter() - started)
    started = time.perf_counter()
    futures = [
        await js.publish_async("bench.raw.async", body, headers={**headers, "Nats-Msg-Id": f"a{n}"})
        for n in range(count)
    ]
    await asyncio.gather(*futures)
    async_rate = count / (time.perf_counter() - started)
    await client.close()
    return sync_rate, async_rate


@asynccontextmanager
async def fresh_stage(
    root: Path, name: str
) -> AsyncIterator[tuple[NatsServer, Database, Database]]:
    """A nats-server and the two parts' databases, for one stage only."""
    folder = root / name
    server = NatsServer(folder / "nats")
    server.start()
    shop_db = Database(f"sqlite+aiosqlite:///{folder / 'shop.db'}")
    billing_db = Database(f"sqlite+aiosqlite:///{folder / 'billing.db'}")
    async with shop_db.engine.begin() as connection:
        await connection.run_sync(publisher_metadata.create_all)
    async with billing_db.engine.begin() as connection:
        await connection.run_sync(consumer_metadata.create_all)
    try:
        yield server, shop_db, billing_db
    finally:
        await shop_db.dispose()
        await billing_db.dispose()
        server.stop()


async def drain(
    *,
    server: NatsServer,
    shop_db: Database,
    billing_db: Database,
    subscription: Subscription,
    expected: int,
    label: str,
    writer: Callable[[], Coroutine[Any, Any, None]] | None = None,
) -> float:
    """Run one relay and one consumer until ``expected`` events are applied; events per second."""
    shop = EventBus(ShopSettings(nats_url=server.url))
    billing = EventBus(
        BillingSettings(nats_url=server.url, events_consumer_batch=CONSUMER_BATCH),
        subscriptions=[subscription],
    )
    async with shop.running(shop_db), billing.running(billing_db):
        runner = billing.consumers[subscription.durable]
        # Wait for the connections before the clock starts.
        for _ in range(200):
            if shop.connected and billing.connected:
                break
            await asyncio.sleep(0.05)
        started = time.perf_counter()
        writing = asyncio.create_task(writer()) if writer is not None else None
        last_report = started
        deadline = started + 300
        while runner.counts["applied"] < expected and time.perf_counter() < deadline:
            await asyncio.sleep(0.02)
            now = time.perf_counter()
            if now - last_report >= 1.0:
                done = runner.counts["applied"]
                rate = done / (now - started)
                say(f"    {label}: {done:>7,}/{expected:,} applied ({rate:,.0f}/s)")
                last_report = now
        elapsed = time.perf_counter() - started
        if writing is not None:
            await writing
        done = runner.counts["applied"]
        if done < expected:
            raise SystemExit(f"{label}: only {done} of {expected} events applied in 300 s")
        assert shop.relay is not None
        say(
            f"    {label}: {done:,} events in {elapsed:.2f} s "
            f"({shop.relay.stats.rounds} relay rounds)"
        )
        return expected / elapsed


async def backlog_stage(root: Path, *, name: str, events: int, subscription: Subscription) -> float:
    """Commit a backlog of ``events``, then drain it end to end; events per second."""
    async with fresh_stage(root, name) as (server, shop_db, billing_db):
        say(f"    committing a backlog of {events:,} orders with their events ...")
        await fill_outbox(shop_db, start=0, count=events, per_transaction=500)
        say("    draining: outbox -> relay -> JetStream -> consumer -> SQLite ...")
        return await drain(
            server=server,
            shop_db=shop_db,
            billing_db=billing_db,
            subscription=subscription,
            expected=events,
            label=name,
        )


async def live_stage(root: Path, *, events: int, subscription: Subscription) -> float:
    """Commit one change per transaction while the relay and the consumer run."""
    async with fresh_stage(root, "live") as (server, shop_db, billing_db):

        async def writer() -> None:
            await fill_outbox(shop_db, start=0, count=events, per_transaction=1)

        return await drain(
            server=server,
            shop_db=shop_db,
            billing_db=billing_db,
            subscription=subscription,
            expected=events,
            label="live",
            writer=writer,
        )


async def repeated(
    root: Path, *, name: str, events: int, subscription: Subscription, repeat: int
) -> list[float]:
    """Run a backlog stage ``repeat`` times on fresh servers; the rates, sorted."""
    rates = []
    for n in range(repeat):
        rates.append(
            await backlog_stage(
                root, name=f"{name}-{n + 1}", events=events, subscription=subscription
            )
        )
    return sorted(rates)


def spread(rates: list[float]) -> str:
    """The median and the range of a stage's runs."""
    return f"{statistics.median(rates):>9,.0f} /s  (runs {rates[0]:,.0f}–{rates[-1]:,.0f})"


async def main(events: int, repeat: int) -> None:
    # Progress lines only: the parts' own logs (connections, retries) would drown them.
    logging.disable(logging.WARNING)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    per_event = Subscription(
        durable="billing-orders", subjects=["pingtai.shop.order.placed"], handler=project_order
    )
    batched = Subscription(
        durable="billing-orders",
        subjects=["pingtai.shop.order.placed"],
        batch_handler=project_orders,
    )
    with tempfile.TemporaryDirectory(prefix="pingtai-bench-events-") as folder:
        root = Path(folder)
        say(f"1/4 raw nats-py JetStream publish ({events:,} in flight; fewer one at a time) ...")
        async with fresh_stage(root, "raw") as (server, _, _):
            sync_rate, async_rate = await raw_ceiling(server.url, count=events)
        say(f"    one at a time: {sync_rate:,.0f}/s; many in flight: {async_rate:,.0f}/s")
        say(f"2/4 end to end, per-event handler (one INSERT per event), {repeat} runs ...")
        per_event_rates = await repeated(
            root, name="per-event", events=events, subscription=per_event, repeat=repeat
        )
        say(f"3/4 end to end, batch handler (one INSERT per fetched batch), {repeat} runs ...")
        batch_rates = await repeated(
            root, name="batched", events=events, subscription=batched, repeat=repeat
        )
        live_count = max(1000, events // 10)
        say(
            f"4/4 live: {live_count:,} changes, one per transaction, relay and consumer running ..."
        )
        live_rate = await live_stage(root, events=live_count, subscription=batched)

    target = 5000
    say("")
    say(
        f"results: SQLite, 1 relay + 1 consumer in one process, {events:,} events of "
        f"~{len(order_event(0).to_json())} B over {AGGREGATES:,} aggregates, consumer batch "
        f"{CONSUMER_BATCH}, median of {repeat} runs"
    )
    say(f"  raw JetStream publish, one at a time      {sync_rate:>9,.0f} /s")
    say(f"  raw JetStream publish, many in flight     {async_rate:>9,.0f} /s  (the ceiling)")
    for label, rates in (("per-event handler", per_event_rates), ("batch handler", batch_rates)):
        median = statistics.median(rates)
        verdict = "meets" if median >= target else "BELOW"
        say(f"  outbox -> consumer, {label:<18}    {spread(rates)}")
        say(f"      {median / async_rate:.0%} of the ceiling; {verdict} the {target:,}/s target")
    say(f"  live, one commit per change              {live_rate:>9,.0f} /s  (the writer's rate)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=20_000, help="events per end-to-end run")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each end-to-end stage")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.events, arguments.repeat))
