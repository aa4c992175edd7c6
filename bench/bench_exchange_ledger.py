"""Benchmark: the exchange's access ledger — append (group commit) and verification.

    .venv/bin/python bench/bench_exchange_ledger.py [--seconds 5] [--appenders 64]
        [--rate 1000] [--verify-entries 200000] [--postgres-url URL] [--verify-only]

On a scratch SQLite file (and on a scratch PostgreSQL database when ``--postgres-url`` or
PINGTAI_TEST_POSTGRES_URL is given; dropped at the end), migrated, in this one process:

1. saturation: ``--appenders`` tasks each appending one entry after another for ``--seconds``;
   appends/s, latency p50/p99/max, entries per committed batch;
2. fixed rate: ``--rate`` appends/s, each due at its scheduled time (open loop: a stall is not
   hidden), for ``--seconds``; latency p50/p99/max from the scheduled time;
   both with the ledger's events in the outbox (one ``access.batch_recorded`` per committed
   batch) and without them;
3. verification of a ``--verify-entries`` chain (the same code as ``pingtai audit verify``):
   entries/s, best and median of three runs (``--verify-only``: this alone, the chain filled
   by ``append_many``).

Targets (issue 6): single-record fetches >= 1,000/s with p99 <= 20 ms, each appending one
entry (the ledger's share must leave room for the rest of the request); verification >=
200,000 entries/s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from loadgen import settle_heap  # bench/loadgen.py

from libs.common.database import Database
from libs.common.migrations import migrate
from services.exchange.ledger import AccessRecord, Ledger, LedgerConfig
from services.exchange.ledger.anomaly import AnomalyDetector
from services.exchange.ledger.signing import (
    CheckpointSigner,
    VerificationKeys,
    derive_development_key,
)
from services.exchange.ledger.verification import verify_ledger

SIGNER = CheckpointSigner(derive_development_key("bench"))


def access(n: int) -> AccessRecord:
    return AccessRecord(
        actor=f"person-{n % 997}",
        client_id=f"client-{n % 17}",
        actor_org_id=f"org-{n % 17}",
        dataset_id=f"ds-{n % 40}",
        owner_org_id=f"org-{n % 8}",
        subject_ref=f"{n:064x}",
        fields=("name", "address", "birth_date"),
        purpose="开办企业 one-thing application",
        basis_kind="application",
        basis_ref=f"APP-2026-{n:08d}",
        outcome="granted" if n % 10 else "refused",
        reason=None if n % 10 else "no-grant",
        request_id=uuid.uuid4().hex,
    )


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0


def latency_line(latencies: list[float]) -> str:
    ms = [x * 1000 for x in latencies]
    return (
        f"p50 {percentile(ms, 0.50):.2f} ms, p99 {percentile(ms, 0.99):.2f} ms, "
        f"max {max(ms):.2f} ms"
    )


async def start_ledger(database: Database, *, events: bool) -> Ledger:
    ledger = Ledger(
        database,
        signer=SIGNER,
        config=LedgerConfig(access_events=events),
        anomaly=AnomalyDetector(window_s=300, threshold=100_000),
    )
    await ledger.start()
    return ledger


async def saturation(database: Database, *, seconds: float, appenders: int, events: bool) -> None:
    ledger = await start_ledger(database, events=events)
    settle_heap()  # as a served part freezes its start-up heap (bench/loadgen.py)
    latencies: list[float] = []
    counter = iter(range(10**9))
    deadline = time.perf_counter() + seconds
    batches_before = ledger.batches

    async def appender() -> None:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            await ledger.append(access(next(counter)))
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(appender() for _ in range(appenders)))
    elapsed = time.perf_counter() - started
    batches = ledger.batches - batches_before
    await ledger.close()
    print(
        f"  saturation, {appenders} appenders, events {'on' if events else 'off'}: "
        f"{len(latencies) / elapsed:,.0f} appends/s, {latency_line(latencies)}, "
        f"{len(latencies) / max(batches, 1):.1f} entries per commit"
    )


async def fixed_rate(database: Database, *, seconds: float, rate: float, events: bool) -> None:
    ledger = await start_ledger(database, events=events)
    settle_heap()  # as a served part freezes its start-up heap (bench/loadgen.py)
    latencies: list[float] = []
    total = int(seconds * rate)
    start = time.perf_counter() + 0.05
    tasks: list[asyncio.Task[None]] = []

    async def one(n: int, due: float) -> None:
        await ledger.append(access(n))
        latencies.append(time.perf_counter() - due)

    for n in range(total):
        due = start + n / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(n, due)))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    await ledger.close()
    print(
        f"  fixed rate {rate:,.0f}/s, events {'on' if events else 'off'}: "
        f"{total / elapsed:,.0f} appends/s achieved, {latency_line(latencies)}"
    )


async def verification(database: Database, *, entries: int) -> None:
    ledger = Ledger(database, signer=SIGNER, config=LedgerConfig(access_events=False))
    await ledger.start()
    filled_at = time.perf_counter()
    have = 0
    async with database.engine.connect() as conn:
        from sqlalchemy import text

        have = (await conn.execute(text("SELECT count(*) FROM exchange_ledger_entry"))).scalar_one()
    for first in range(have, entries, 5000):
        await ledger.append_many([access(n) for n in range(first, min(first + 5000, entries))])
    await ledger.close()
    filled = time.perf_counter() - filled_at
    keys = VerificationKeys([SIGNER.public_key])
    rates: list[float] = []
    total = 0
    for _ in range(3):
        report = await verify_ledger(database.engine, keys)
        assert report.valid, report.problem
        rates.append(report.entries_per_s)
        total = report.entries
    print(
        f"  verification of {total:,} entries: best {max(rates):,.0f}/s, "
        f"median {statistics.median(rates):,.0f}/s "
        f"(filled the rest in {filled:.1f} s by append_many)"
    )


async def run_backend(url: str, args: argparse.Namespace) -> None:
    await asyncio.to_thread(migrate, "services.exchange", url)
    database = Database(url)
    try:
        for events in (True, False) if not args.verify_only else ():
            await saturation(
                database, seconds=args.seconds, appenders=args.appenders, events=events
            )
        for events in (True, False) if not args.verify_only else ():
            await fixed_rate(database, seconds=args.seconds, rate=args.rate, events=events)
        await verification(database, entries=args.verify_entries)
    finally:
        await database.dispose()


async def postgres_scratch(base_url: str) -> tuple[str, Any]:
    base = make_url(base_url)
    name = f"pingtai_bench_{uuid.uuid4().hex[:10]}"
    connect = {
        "host": base.host,
        "port": base.port or 5432,
        "user": base.username,
        "password": base.password,
        "database": base.database,
    }
    admin = await asyncpg.connect(**connect)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()

    async def drop() -> None:
        admin = await asyncpg.connect(**connect)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()

    return base.set(database=name).render_as_string(hide_password=False), drop


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--appenders", type=int, default=64)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--verify-entries", type=int, default=200_000)
    parser.add_argument("--postgres-url", default=os.environ.get("PINGTAI_TEST_POSTGRES_URL", ""))
    parser.add_argument("--verify-only", action="store_true", help="skip the appends (1 and 2)")
    args = parser.parse_args()
    print(f"load average before: {Path('/proc/loadavg').read_text().strip()}")
    with tempfile.TemporaryDirectory() as folder:
        print("SQLite (WAL, synchronous=NORMAL):")
        await run_backend(f"sqlite+aiosqlite:///{folder}/exchange.db", args)
    if args.postgres_url:
        url, drop = await postgres_scratch(args.postgres_url)
        try:
            print("PostgreSQL:")
            await run_backend(url, args)
        finally:
            await drop()
    print(f"load average after: {Path('/proc/loadavg').read_text().strip()}")


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(main())
