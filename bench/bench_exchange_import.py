"""Benchmark: bulk import of hosted records into the exchange (NDJSON and CSV), records/s.

    .venv/bin/python bench/bench_exchange_import.py [--rows 100000] [--batch 2000]
                                                    [--database-url postgresql+asyncpg://...]

Runs the exchange app in this process under uvicorn on a free 127.0.0.1 port, on a scratch SQLite
file (or, with ``--database-url``, a scratch database created on that PostgreSQL server and
dropped at the end), with a dataset of six fields keyed by resident identity numbers. It streams
``--rows`` generated records over HTTP (64 KiB chunks) and times, from the first byte sent to the
summary received:

1. NDJSON, every row new (inserts: a current row and a first version each);
2. the same NDJSON again (every row unchanged: compared, nothing written);
3. CSV, every row changed (updates: a new version each).

Each row is parsed, checked against the field schema (types, the GB 11643 check character),
normalised and upserted in batches of ``--batch`` rows per transaction. Target (issue 6):
>= 20,000 records/s on SQLite. The machine's load average is printed with the figures, and the
process's CPU per record (server and client share the process; the client's part is small:
it sends prepared bytes), which a busy machine moves less than the rate.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import uvicorn
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from libs.common.auth import JwksCache, TokenVerifier
from libs.common.events import new_event
from libs.common.migrations import migrate
from services.catalog.datasets.events import DatasetPublished
from services.exchange.app import create_app
from services.exchange.datasets.consumers import follow_catalogue
from services.exchange.settings import ExchangeSettings
from services.identity.identifiers import make_resident_id
from tests.identity.conftest import ISSUER, Issuer

OWNER = "b" * 32
FIELDS = [
    ("id_number", "string", "personal"),
    ("name", "string", "personal"),
    ("birth_date", "date", "sensitive"),
    ("household_size", "integer", "internal"),
    ("income", "number", "sensitive"),
    ("registered_at", "datetime", "internal"),
]
CHUNK = 64 * 1024


def _definition() -> dict[str, Any]:
    return {
        "code": "bench-population", "owner_org_id": OWNER, "name": "人口基础信息（压测）",
        "name_en": None, "description": "", "region_code": "330100",
        "fields": [{"name": n, "type": t, "sensitivity": s, "description": ""}
                   for n, t, s in FIELDS],
        "subject_key": {"kind": "resident_id", "field": "id_number"},
        "share_type": "conditional", "open_type": "not_open", "not_open_reason": "个人信息",
        "update_frequency": "daily", "hosting": {"mode": "hosted", "endpoint_url": None},
    }  # fmt: skip


def _people(count: int) -> list[dict[str, Any]]:
    people = []
    born = date(1950, 1, 1)
    for index in range(count):
        day, sequence = divmod(index, 900)
        birth = born + timedelta(days=day)
        people.append({
            "id_number": make_resident_id("330106", birth, sequence + 100),
            "name": f"居民{index}", "birth_date": birth.isoformat(),
            "household_size": 1 + index % 6, "income": round(3000 + index * 0.37, 2),
            "registered_at": "2020-05-01T09:30:00+08:00",
        })  # fmt: skip
    return people


def _ndjson(people: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(p, ensure_ascii=False) + "\n" for p in people).encode()


def _csv(people: list[dict[str, Any]]) -> bytes:
    names = [n for n, _, _ in FIELDS]
    lines = [",".join(names)]
    lines += [",".join(str(p[n]) for n in names) for p in people]
    return ("\r\n".join(lines) + "\r\n").encode()


async def _chunks(body: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(body), CHUNK):
        yield body[start : start + CHUNK]


async def _scratch_postgres(url: str) -> str:
    base = make_url(url)
    name = f"pingtai_bench_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(host=base.host, port=base.port or 5432, user=base.username,
                                  password=base.password, database=base.database)  # fmt: skip
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return base.set(database=name).render_as_string(hide_password=False)


async def _drop_postgres(url: str, scratch: str) -> None:
    base = make_url(url)
    admin = await asyncpg.connect(host=base.host, port=base.port or 5432, user=base.username,
                                  password=base.password, database=base.database)  # fmt: skip
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{make_url(scratch).database}" WITH (FORCE)')
    finally:
        await admin.close()


async def run(rows: int, batch: int, database_url: str) -> None:
    await asyncio.to_thread(migrate, "services.exchange", database_url)
    issuer = Issuer(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    settings = ExchangeSettings(
        database_url=database_url, issuer=ISSUER, nats_url=None, log_level="WARNING",
        import_batch_rows=batch, max_body_bytes=1 << 31,
    )  # fmt: skip
    app = create_app(settings)
    jwks = issuer.jwks()
    app.state.token_verifier = TokenVerifier(
        issuer=ISSUER, audience="pingtai",
        jwks=JwksCache("http://jwks/jwks.json", client=httpx.AsyncClient(
            transport=httpx.MockTransport(lambda r: httpx.Response(200, json=jwks)))),
    )  # fmt: skip
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.05)
    dataset_id = uuid.uuid4().hex
    definition = _definition()
    event = new_event(
        DatasetPublished(dataset_id=dataset_id, code=definition["code"], owner_org_id=OWNER,
                         version=1, published_at=time.time(), definition=definition,  # type: ignore[arg-type]
                         published_by="bench"),
        subject=dataset_id,
    )  # fmt: skip
    async with app.state.database.sessionmaker() as session:
        await follow_catalogue(session, event)
        await session.commit()

    people = _people(rows)
    changed = [{**p, "household_size": p["household_size"] + 1} for p in people]
    stages = [
        ("NDJSON, all new", "application/x-ndjson", _ndjson(people), "inserted"),
        ("NDJSON, all unchanged", "application/x-ndjson", _ndjson(people), "unchanged"),
        ("CSV, all changed", "text/csv", _csv(changed), "updated"),
    ]
    headers = issuer.headers(roles=["dept_admin"], org=OWNER)
    url = f"http://127.0.0.1:{port}/v1/datasets/{dataset_id}/records"
    print(f"exchange import: {rows:,} rows per stage, batches of {batch}, "
          f"{make_url(database_url).get_backend_name()}")  # fmt: skip
    async with httpx.AsyncClient(timeout=600, trust_env=False) as client:
        for label, media_type, body, counter in stages:
            started, cpu_started = time.perf_counter(), time.process_time()
            response = await client.post(
                url, content=_chunks(body), headers={**headers, "Content-Type": media_type}
            )
            elapsed = time.perf_counter() - started
            cpu = time.process_time() - cpu_started
            summary = response.json()
            assert response.status_code == 200, summary
            assert summary[counter] == rows and summary["rejected"] == 0, summary
            print(f"  {label:<24} {rows / elapsed:>10,.0f} records/s  "
                  f"({elapsed:.2f} s, {len(body) / elapsed / 1e6:.1f} MB/s, "
                  f"{cpu / rows * 1e6:.1f} µs of CPU a record)")  # fmt: skip
    print(f"  load average: {Path('/proc/loadavg').read_text().strip()}")
    server.should_exit = True
    await serving


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--database-url", default=None, help="a PostgreSQL server to use")
    args = parser.parse_args()
    os.environ.pop("PINGTAI_EXCHANGE_DATABASE_URL", None)
    with tempfile.TemporaryDirectory() as folder:
        os.environ["PINGTAI_VAR_DIR"] = folder
        if args.database_url:
            scratch = asyncio.run(_scratch_postgres(args.database_url))
            try:
                asyncio.run(run(args.rows, args.batch, scratch))
            finally:
                asyncio.run(_drop_postgres(args.database_url, scratch))
        else:
            url = f"sqlite+aiosqlite:///{Path(folder) / 'exchange.db'}"
            asyncio.run(run(args.rows, args.batch, url))


if __name__ == "__main__":
    main()
