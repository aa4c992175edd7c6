"""What libs.common costs per request: a sample part built with ``create_service_app``.

The app runs in this process and is called straight through ASGI (no HTTP server, no client
library: both would cost more than what is measured), one request after another, on SQLite
(a file, WAL) or, with ``--database-url``, PostgreSQL. For each endpoint it prints the
requests per second and the process's CPU time per request (``time.process_time``, which
counts every thread, so work sent to driver threads is included):

- ``GET /healthz``: the middleware, no database;
- ``GET /v1/plain``: a FastAPI route returning JSON, no database;
- ``GET /v1/session``: a route taking ``SessionDep`` and running no SQL;
- ``GET /v1/one``: one ``SELECT`` by primary key through the ORM session;
- ``GET /v1/direct``: the same ``SELECT``, prebuilt, as a ``DirectRead`` (no session);
- ``POST /v1/write``: one ``UPDATE`` and its commit (the SQLite write queue included).

The access log is written as deployed (JSON lines at INFO) to /dev/null.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fastapi import APIRouter, FastAPI, Request
from sqlalchemy import String, bindparam, select, text, update
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from libs.common.app import create_service_app
from libs.common.database import DirectRead, SessionDep, create_engine, new_metadata
from libs.common.settings import PartSettings


class Base(DeclarativeBase):
    metadata = new_metadata()


class Thing(Base):
    __tablename__ = "thing"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    hits: Mapped[int]


router = APIRouter(prefix="/v1")


@router.get("/plain")
async def plain() -> dict[str, str]:
    return {"hello": "world"}


@router.get("/session")
async def with_session(session: SessionDep) -> dict[str, str]:
    return {"hello": "world"}


@router.get("/one")
async def one(session: SessionDep) -> dict[str, Any]:
    found = await session.scalar(select(Thing.name).where(Thing.id == 7))
    return {"name": found}


_NAME_OF = DirectRead(select(Thing.name).where(Thing.id == bindparam("id")))


@router.get("/direct")
async def direct(request: Request) -> dict[str, Any]:
    rows = await _NAME_OF.rows(request.app.state.database.engine, {"id": 7})
    return {"name": rows[0][0]}


@router.post("/write")
async def write(session: SessionDep) -> dict[str, str]:
    await session.execute(update(Thing).where(Thing.id == 7).values(hits=Thing.hits + 1))
    return {"done": "yes"}


class BenchSettings(PartSettings):
    part = "bench"


async def _call(app: FastAPI, method: str, path: str) -> int:
    status = 0

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "headers": [(b"host", b"bench"), (b"accept", b"*/*")],
        "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 8000),
    }  # fmt: skip
    await app(scope, receive, send)
    return status


async def measure(app: FastAPI, method: str, path: str, count: int) -> tuple[float, float]:
    """Requests per second and CPU microseconds per request over ``count`` calls."""
    for _ in range(200):
        assert await _call(app, method, path) == 200, path
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(count):
        await _call(app, method, path)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return count / wall, cpu / count * 1e6


async def main(args: argparse.Namespace) -> None:
    folder = Path(tempfile.mkdtemp(prefix="bench-common-"))
    url = args.database_url or f"sqlite+aiosqlite:///{folder / 'bench.db'}"
    engine = create_engine(url)
    async with engine.begin() as connection:
        await connection.run_sync(Base.metadata.drop_all)
        await connection.run_sync(Base.metadata.create_all)
        await connection.execute(text("INSERT INTO thing (id, name, hits) VALUES (7, 'seven', 0)"))
    await engine.dispose()
    os.environ.update({"PINGTAI_ENV": "development", "PINGTAI_VAR_DIR": str(folder)})
    settings = BenchSettings(database_url=url, log_level="INFO")
    app = create_service_app(
        settings, title="Bench", description="libs.common per request", routers=[router]
    )
    sys.stdout.flush()
    # The access log as deployed (one JSON line per request), to /dev/null.
    devnull = open(os.devnull, "w")
    handlers = __import__("logging").getLogger().handlers
    for handler in handlers:
        handler.setStream(devnull)
    results: dict[str, list[tuple[float, float]]] = {}
    async with app.router.lifespan_context(app):
        for _ in range(args.repeat):
            for method, path in (("GET", "/healthz"), ("GET", "/v1/plain"),
                                 ("GET", "/v1/session"), ("GET", "/v1/one"),
                                 ("GET", "/v1/direct"),
                                 ("POST", "/v1/write")):  # fmt: skip
                results.setdefault(f"{method} {path}", []).append(
                    await measure(app, method, path, args.requests)
                )
    rows = {
        name: {
            "per_second": round(statistics.median(r for r, _ in runs)),
            "cpu_us": round(statistics.median(c for _, c in runs)),
        }
        for name, runs in results.items()
    }
    backend = "PostgreSQL" if args.database_url else "SQLite"
    load = Path("/proc/loadavg").read_text().split()[:3]
    print(f"libs.common per request, in process, {backend}, median of {args.repeat} runs of "
          f"{args.requests}; loadavg {' '.join(load)}")  # fmt: skip
    for name, row in rows.items():
        print(f"  {name:<18} {row['per_second']:>7}/s  {row['cpu_us']:>6} µs CPU")
    if args.json:
        print(json.dumps(rows))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--json", action="store_true")
    asyncio.run(main(parser.parse_args()))
