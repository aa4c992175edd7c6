"""Benchmark: single-record queries through the exchange (grant check, masking, ledger append).

    .venv/bin/python bench/bench_exchange.py [--subjects 10000] [--rate 1000] [--seconds 10]
                                             [--wrk-seconds 8] [--log-level INFO|WARNING]
                                             [--database-url postgresql+asyncpg://...]

Writes a scratch database (a SQLite file in a temporary folder; with ``--database-url`` or
``PINGTAI_TEST_POSTGRES_URL`` a scratch PostgreSQL database, dropped at the end), migrates it,
and fills it through the models: a conditional population dataset with ``--subjects`` hosted
records, a person for each (as identity's events would have told the exchange), and a grant of
six of its fields (public, internal, sensitive and personal ones) to a consuming department.
A JWKS endpoint in this process serves the test issuer's key. It starts ``uvicorn
services.exchange.app:create_app`` on a free 127.0.0.1 port as ``pingtai serve`` runs it (one
worker, uvloop, httptools, JSON logs at ``--log-level`` to a file), then:

1. GET /v1/datasets/{id}/records/{key}?purpose=...&basis=application:... at a fixed ``--rate``,
   naming the applicant who owns the subject (``X-Applicant-Id``, as workflow's client does)
   (open loop: each request's latency counts from when it was due, so a stall is not hidden),
   from a load generator in a separate process (uvloop, httptools, 64 keep-alive connections);
   prints the rate reached, p50/p90/p99/max and the server's CPU per query;
2. the same requests as fast as they go with wrk (-t2 -c32) when installed, for the ceiling;
3. checks the ledger holds one entry per request answered.

Each request: token check (cached after the first), the dataset's read copy, the grant (cached
per organisation and dataset), the hosted record, masking, and a ledger append that returns once
its group commit is durable. Target (issue 6): >= 1,000/s with p99 <= 20 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg  # type: ignore[import-untyped]
import httptools
import jwt
import uvloop
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from sqlalchemy import func, insert, select
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from loadgen import settle_heap  # bench/loadgen.py

from libs.common.database import Database
from libs.common.events.tables import TABLES
from libs.common.identifiers import normalise_resident_id
from libs.common.migrations import migrate
from libs.common.subjects import subject_refs_for
from pingtai.natsserver import NatsServer, free_port
from services.exchange.access.models import Grant, PersonSubject
from services.exchange.datasets.models import ExchangeDataset
from services.exchange.ledger import LedgerEntry
from services.exchange.ledger.events import AccessesRecorded
from services.exchange.records.models import HostedRecord
from services.identity.identifiers import make_resident_id

ISSUER = "https://bench.pingtai.test"
# py-spy is not a project dependency: $PY_SPY, or on the PATH, or beside this Python.
PY_SPY = (
    os.environ.get("PY_SPY")
    or shutil.which("py-spy")
    or str(Path(sys.executable).parent / "py-spy")
)
DATASET = "bench-population"
OWNER = "org-police"
CONSUMER = "org-hrss"
# The exchange's secret key in the bench (subject references are derived from it).
SECRET_KEY = "bench-exchange-secret-key"
FIELDS = [
    ("resident_id", "string", "personal"),
    ("name", "string", "personal"),
    ("phone", "string", "sensitive"),
    ("birth_date", "date", "sensitive"),
    ("region", "string", "public"),
    ("status", "string", "internal"),
    ("household_address", "string", "personal"),
]
GRANTED = ["name", "phone", "birth_date", "region", "status", "household_address"]


def applicant_of(index: int) -> str:
    """The person whose record is the ``index``-th subject key (an application's applicant)."""
    return f"bench-person-{index}"


def subject_keys(count: int) -> list[str]:
    """``count`` valid resident ids."""
    keys = []
    for n in range(count):
        born = date(1950, 1, 1) + timedelta(days=(n * 7) % 20000)
        keys.append(normalise_resident_id(make_resident_id("330106", born, 100 + n % 899)))
    return list(dict.fromkeys(keys))


async def seed(url: str, keys: list[str]) -> None:
    """The dataset, its records, a person for each and the consumer's grant, straight through
    the models."""
    database = Database(url)
    now = datetime.now(UTC)
    try:
        async with database.sessionmaker() as session:
            session.add(ExchangeDataset(
                id=DATASET, code=DATASET, version=1, owner_org_id=OWNER, status="published",
                name="人口基础信息", name_en=None, description="", region_code="330100",
                field_definitions=[{"name": n, "type": t, "sensitivity": s, "description": ""}
                                   for n, t, s in FIELDS],
                subject_key_kind="resident_id", subject_key_field="resident_id",
                share_type="conditional", open_type="not_open", not_open_reason="个人信息",
                update_frequency="daily", mode="hosted", endpoint_url=None, published_at=now,
                retired_at=None, retired_version=None,
            ))  # fmt: skip
            session.add(Grant(
                dataset_id=DATASET, requester_org_id=CONSUMER, owner_org_id=OWNER,
                status="granted", fields=GRANTED, unmasked_fields=["name"], statutes=[],
                purpose="bench", valid_from=now, valid_until=now + timedelta(days=1),
                requested_by="bench", decided_by="bench", decided_at=now,
            ))  # fmt: skip
            await session.flush()
            rng = random.Random(5)
            rows = [
                {"dataset_id": DATASET, "subject_key": key, "version": 1, "data": json.dumps(
                    {"resident_id": key, "name": rng.choice("张王李赵刘陈") + "小明",
                     "phone": f"138{rng.randrange(10**8):08d}", "birth_date": "1988-03-12",
                     "region": "330106", "status": "active",
                     "household_address": "浙江省杭州市西湖区文三路 90 号"},
                    ensure_ascii=False, sort_keys=True, separators=(",", ":"))}
                for key in keys
            ]  # fmt: skip
            refs = subject_refs_for(SECRET_KEY)
            people = [
                {"person_id": applicant_of(n), "subject_ref": refs.person(key), "updated_at": now}
                for n, key in enumerate(keys)
            ]
            for start in range(0, len(rows), 2000):
                await session.execute(insert(HostedRecord), rows[start : start + 2000])
                await session.execute(insert(PersonSubject), people[start : start + 2000])
            await session.commit()
    finally:
        await database.dispose()


async def _sent(url: str) -> int:
    """How many outbox events the relay published (marked sent)."""
    database = Database(url)
    try:
        async with database.sessionmaker() as session:
            sent = await session.scalar(
                select(func.count())
                .select_from(TABLES.outbox)
                .where(TABLES.outbox.c.sent_at.is_not(None))
            )
            return int(sent or 0)
    finally:
        await database.dispose()


async def ledger_count(url: str) -> tuple[int, int]:
    """The ledger's entries, and its group commits (one ``access.batch_recorded`` event each,
    or more for a batch over ``MAX_ENTRIES_PER_EVENT``)."""
    database = Database(url)
    try:
        async with database.sessionmaker() as session:
            entries = await session.scalar(select(func.count()).select_from(LedgerEntry))
            commits = await session.scalar(
                select(func.count())
                .select_from(TABLES.outbox)
                .where(TABLES.outbox.c.subject == AccessesRecorded.event_type)
            )
            return int(entries or 0), int(commits or 0)
    finally:
        await database.dispose()


class _Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection of the load generator; httptools parses answers.

    Much cheaper per request than aiohttp's client (which cost the generator about as much CPU
    as the server, on a machine with two cores), so the generator keeps its schedule.
    """

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.answer: asyncio.Future[int] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def on_message_complete(self) -> None:
        if self.answer is not None and not self.answer.done():
            self.answer.set_result(self.parser.get_status_code())

    def connection_lost(self, exc: Exception | None) -> None:
        if self.answer is not None and not self.answer.done():
            self.answer.set_exception(ConnectionError("the server closed the connection"))

    async def send(self, request: bytes) -> int:
        assert self.transport is not None
        self.answer = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return await self.answer


def _fixed_rate(base: str, queries: list[tuple[str, str]], token: str, rate: float,
                seconds: float, queue: Any) -> None:  # fmt: skip
    """The load generator (its own process): ``rate`` queries a second, open loop, over 64
    keep-alive connections (a request due while all are busy waits for one: that wait counts)."""
    host, port = base.removeprefix("http://").split(":")
    requests = [
        f"GET {p} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {token}\r\n"
        f"X-Applicant-Id: {applicant}\r\n\r\n".encode()
        for p, applicant in queries
    ]  # fmt: skip

    async def run() -> tuple[list[float], int, float]:
        loop = asyncio.get_running_loop()
        idle: asyncio.Queue[_Connection] = asyncio.Queue()
        for _ in range(64):
            _, connection = await loop.create_connection(_Connection, host, int(port))
            idle.put_nowait(connection)
        latencies: list[float] = []
        errors = 0

        async def one(i: int, due: float) -> None:
            nonlocal errors
            connection = await idle.get()
            try:
                errors += await connection.send(requests[i % len(requests)]) != 200
                idle.put_nowait(connection)
            except ConnectionError:
                errors += 1
            latencies.append(time.perf_counter() - due)

        settle_heap()  # bench/loadgen.py: no collection pauses inside the loop
        tasks = []
        start = time.perf_counter() + 0.1
        for i in range(int(rate * seconds)):
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i, due)))
        await asyncio.gather(*tasks)
        return latencies, errors, time.perf_counter() - start

    queue.put(uvloop.run(run()))


def _profile(pid: int, output: str, seconds: float) -> subprocess.Popen[bytes]:
    """py-spy sampling the server for ``seconds`` into ``output`` (collapsed stacks)."""
    return subprocess.Popen(
        [PY_SPY, "record", "--format", "raw", "--rate", "200", "--nonblocking",
         "--pid", str(pid), "--duration", str(max(1, int(seconds))), "--output", output],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def _per_commit(before: tuple[int, int], after: tuple[int, int]) -> str:
    """Entries and group commits between two ``ledger_count``s: a query's CPU in the open
    loop depends on how many entries share a commit's fixed cost."""
    entries, commits = after[0] - before[0], after[1] - before[1]
    return f"{entries} entries in {commits} group commits ({entries / max(1, commits):.1f} each)"


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _loadavg() -> str:
    try:
        return Path("/proc/loadavg").read_text().strip()
    except OSError:
        return "unknown"


async def _postgres_admin(url: str, statement: str) -> None:
    base = make_url(url)
    admin = await asyncpg.connect(
        host=base.host, port=base.port or 5432, user=base.username,
        password=base.password, database=base.database,
    )  # fmt: skip
    try:
        await admin.execute(statement)
    finally:
        await admin.close()


async def main(args: argparse.Namespace) -> None:
    folder = Path(tempfile.mkdtemp(prefix="bench-exchange-"))
    scratch: str | None = None
    database_url = args.database_url or os.environ.get("PINGTAI_TEST_POSTGRES_URL", "")
    if database_url and not args.sqlite:
        scratch = f"pingtai_bench_{uuid.uuid4().hex[:12]}"
        await _postgres_admin(database_url, f'CREATE DATABASE "{scratch}"')
        url = make_url(database_url).set(database=scratch).render_as_string(hide_password=False)
        backend = "PostgreSQL (asyncpg)"
    else:
        url = f"sqlite+aiosqlite:///{folder / 'exchange.db'}"
        backend = "SQLite (WAL)"
    try:
        await run(args, folder=folder, url=url, backend=backend)
    finally:
        if scratch is not None:
            await _postgres_admin(database_url, f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')
        shutil.rmtree(folder, ignore_errors=True)


async def run(args: argparse.Namespace, *, folder: Path, url: str, backend: str) -> None:
    await asyncio.to_thread(migrate, "services.exchange", url)
    keys = subject_keys(args.subjects)
    started = time.perf_counter()
    await seed(url, keys)
    print(
        f"seeded {len(keys)} hosted records and one grant in {time.perf_counter() - started:.1f}s"
    )

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
    jwks = {"keys": [{**jwk, "kid": "bench", "use": "sig", "alg": "RS256"}]}

    async def serve_jwks(_request: web.Request) -> web.Response:
        return web.json_response(jwks)

    jwks_app = web.Application()
    jwks_app.router.add_get("/jwks.json", serve_jwks)
    jwks_runner = web.AppRunner(jwks_app)
    await jwks_runner.setup()
    jwks_port = free_port()
    await web.TCPSite(jwks_runner, "127.0.0.1", jwks_port).start()
    now = int(time.time())
    token = jwt.encode(
        {"iss": ISSUER, "aud": "pingtai", "sub": "workflow", "client_id": "workflow",
         "roles": [], "org": CONSUMER, "scope": "exchange:application-basis",
         "jti": uuid.uuid4().hex, "iat": now, "exp": now + 3600},
        key, algorithm="RS256", headers={"kid": "bench", "typ": "at+jwt"},
    )  # fmt: skip

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        # As `pingtai serve` runs a part (libs.common.serve): its start-up heap frozen.
        "PINGTAI_GC_FREEZE": os.environ.get("PINGTAI_GC_FREEZE", "true"),
        "PINGTAI_ENV": "development",
        "PINGTAI_LOG_LEVEL": args.log_level,
        "PINGTAI_VAR_DIR": str(folder),
        "PINGTAI_ISSUER": ISSUER,
        "PINGTAI_SECRET_KEY": SECRET_KEY,
        "PINGTAI_EXCHANGE_DATABASE_URL": url,
        "PINGTAI_EXCHANGE_AUTH_JWKS_URL": f"http://127.0.0.1:{jwks_port}/jwks.json",
    }
    env.pop("PINGTAI_NATS_URL", None)
    nats: NatsServer | None = None
    if args.nats:  # the outbox relay publishes each batch's event (its cost is in the figure)
        nats = NatsServer(folder / "nats")
        nats.start()
        env["PINGTAI_NATS_URL"] = nats.url
    log = (folder / "exchange.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "services.exchange.app:create_app", "--factory",
         "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
         "--loop", "uvloop", "--http", "httptools", "--no-access-log", "--no-server-header"],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    rng = random.Random(11)
    chosen = rng.sample(range(len(keys)), min(len(keys), 5000))
    queries = [
        (f"/v1/datasets/{DATASET}/records/{keys[i]}?purpose=bench&basis=application:app-{n}",
         applicant_of(i))
        for n, i in enumerate(chosen)
    ]  # fmt: skip
    context = multiprocessing.get_context("spawn")
    answered = 0
    try:
        headers = {"Authorization": f"Bearer {token}"}
        async with aiohttp.ClientSession(base, headers=headers) as http:
            for _ in range(400):
                try:
                    async with http.get("/healthz") as answer:
                        if answer.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.05)
            for path, applicant in queries[:100]:  # warm up: keys, connections, grant cache
                async with http.get(path, headers={"X-Applicant-Id": applicant}) as answer:
                    body = await answer.read()
                    if answer.status != 200:
                        raise SystemExit(f"warm-up query answered {answer.status}: {body[:300]!r}")
                    answered += 1
            sample = json.loads(body)
        print(f"exchange at {base}: uvicorn (uvloop, httptools), 1 worker, {backend}, JSON logs "
              f"at {args.log_level} to a file; {os.cpu_count()} CPUs")  # fmt: skip
        print(f"an answer: masked {sample['masked_fields']}, ledger position "
              f"{sample['ledger_position']}")  # fmt: skip
        print(f"loadavg before: {_loadavg()}")

        if args.seconds > 0:
            ledger_before = await ledger_count(url)
            cpu_before = _cpu_seconds(server.pid)
            profiler = _profile(server.pid, args.profile, args.seconds) if args.profile else None
            queue = context.Queue()
            generator = context.Process(
                target=_fixed_rate, args=(base, queries, token, args.rate, args.seconds, queue)
            )
            generator.start()
            latencies, errors, elapsed = queue.get()
            generator.join()
            if profiler is not None:
                profiler.wait(timeout=60)
                print(f"py-spy profile of the server in the open loop (collapsed): {args.profile}")
            if server.poll() is not None:
                tail = (folder / "exchange.log").read_text(errors="replace")[-3000:]
                raise SystemExit(f"the exchange exited ({server.returncode}):\n{tail}")
            answered += len(latencies) - errors
            cpu_ms = (_cpu_seconds(server.pid) - cpu_before) * 1000 / max(1, len(latencies))
            ms = [v * 1000 for v in latencies]
            print(
                f"single-record queries at {args.rate:.0f}/s for {args.seconds:.0f}s, open loop, "
                f"separate process: {len(ms)} requests in {elapsed:.1f}s "
                f"({len(ms) / elapsed:.0f}/s), {errors} errors; p50 {_percentile(ms, 0.5):.1f} ms, "
                f"p90 {_percentile(ms, 0.9):.1f} ms, p99 {_percentile(ms, 0.99):.1f} ms, "
                f"max {max(ms):.1f} ms (target >= 1,000/s with p99 <= 20 ms); the server used "
                f"{cpu_ms:.2f} ms of CPU per query (one core's ceiling {1000 / cpu_ms:.0f}/s)"
            )
            ledger_after = await ledger_count(url)
            print(f"ledger during the open loop: {_per_commit(ledger_before, ledger_after)}")
            print(f"loadavg after the open loop: {_loadavg()}")

        if shutil.which("wrk") and args.wrk_seconds > 0:
            script = folder / "paths.lua"
            script.write_text(
                "paths = {" + ",".join(f'"{p}"' for p, _ in queries) + "}\n"
                "applicants = {" + ",".join(f'"{a}"' for _, a in queries) + "}\n"
                "i = 0\nrequest = function()\n  i = i % #paths + 1\n"
                f'  return wrk.format("GET", paths[i], {{["Authorization"] = "Bearer {token}", '
                '["X-Applicant-Id"] = applicants[i]})\nend\n'
                "done = function(summary, latency, requests)\n"
                "  io.write(string.format('p99_us %d\\n', latency:percentile(99)))\nend\n"
            )
            ledger_before = await ledger_count(url)
            cpu_before = _cpu_seconds(server.pid)
            profiler = None
            if args.profile and args.seconds <= 0:
                profiler = _profile(server.pid, args.profile, args.wrk_seconds)
            output = subprocess.run(
                ["wrk", "-t2", "-c32", f"-d{int(args.wrk_seconds)}s", "-s", str(script), base],
                capture_output=True, text=True, check=True,
            ).stdout  # fmt: skip
            if profiler is not None:
                profiler.wait(timeout=60)
                print(f"py-spy profile of the server under wrk (collapsed stacks): {args.profile}")
            lines = output.splitlines()
            rate_line = next(line for line in lines if "Requests/sec" in line)
            total = next(line for line in lines if "requests in" in line)
            p99 = next(line for line in lines if line.startswith("p99_us"))
            non_2xx = [line.strip() for line in lines if "Non-2xx" in line]
            requests = int(total.split()[0])
            answered += requests - (int(non_2xx[0].split()[-1]) if non_2xx else 0)
            cpu_ms = (_cpu_seconds(server.pid) - cpu_before) * 1000 / max(1, requests)
            print(f"as fast as they go, wrk -t2 -c32 for {args.wrk_seconds:.0f}s: "
                  f"{rate_line.split()[-1]}/s, p99 {int(p99.split()[1]) / 1000:.1f} ms "
                  f"{non_2xx or ''}; server CPU {cpu_ms:.2f} ms per query "
                  f"(one core's ceiling {1000 / cpu_ms:.0f}/s)")  # fmt: skip
            ledger_after = await ledger_count(url)
            print(f"ledger under wrk: {_per_commit(ledger_before, ledger_after)}")
            print(f"loadavg after wrk: {_loadavg()}")
    finally:
        server.terminate()
        server.wait(timeout=30)
        await jwks_runner.cleanup()
        if nats is not None:
            nats.stop()
    log.close()
    for line in (folder / "exchange.log").read_text(errors="replace").splitlines():
        found = re.search(r"ledger closed[^\"]*", line)
        if found:  # how many group commits waited for queries on their way
            print(f"server: {found.group()}")
    if nats is not None:
        print(f"outbox: {await _sent(url)} events published by the relay")
    recorded, commits = await ledger_count(url)
    print(f"ledger: {recorded} entries for {answered} answered queries"
          f"{'' if recorded >= answered else ' - MISSING ENTRIES'}, in about {commits} group "
          f"commits ({recorded / max(1, commits):.1f} entries each)")  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--wrk-seconds", type=float, default=8.0)
    parser.add_argument("--database-url", default="", help="a postgresql+asyncpg:// server")
    parser.add_argument("--sqlite", action="store_true", help="SQLite even if PG is configured")
    parser.add_argument(
        "--nats", action="store_true",
        help="start a nats-server so the outbox relay publishes (else events stay in the outbox)",
    )  # fmt: skip
    parser.add_argument(
        "--profile",
        default="",
        help="py-spy the server into this file (collapsed stacks): the open loop, else wrk",
    )
    parser.add_argument(
        "--log-level", default="INFO",
        help="the server's PINGTAI_LOG_LEVEL: INFO logs a JSON line per request (as deployed)",
    )  # fmt: skip
    args = parser.parse_args()
    if args.profile and not (shutil.which(PY_SPY) or Path(PY_SPY).is_file()):
        parser.error(f"--profile needs py-spy (pip install py-spy, or set PY_SPY): no {PY_SPY}")
    asyncio.run(main(args))
