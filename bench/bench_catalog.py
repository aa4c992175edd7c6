"""Benchmark: the catalog's public search and item reads, one uvicorn server (SQLite).

    .venv/bin/python bench/bench_catalog.py [--items 10000] [--datasets 2000] [--rate 200]
                                            [--seconds 10] [--read-seconds 8]
                                            [--log-level INFO|WARNING] [--workers 1]
                                            [--skip-search]

Writes a scratch SQLite database in a temporary folder (migrated, then filled directly through
the models: ``--items`` published service items with their versions, ``--datasets`` published
datasets, with what publishing stores beside each version: its public body and search terms),
starts ``uvicorn services.catalog.app:create_app`` on a free 127.0.0.1 port as ``pingtai serve``
runs it (uvloop, httptools, JSON logs at ``--log-level``, INFO by default: one line per request;
``--workers`` processes, as ``PINGTAI_CATALOG_WORKERS``), then:

1. keyword search with filters at a fixed ``--rate`` (open loop: each request is due at its
   scheduled time and its latency counts from then, so a stall is not hidden), from a load
   generator in a separate process, at most 64 requests in flight; prints p50/p90/p99/max;
2. item reads (GET /v1/items/{id}, anonymous, the published version) as fast as they go: wrk
   (2 connections... 32) when installed, else aiohttp in a separate process; prints requests/s.

Targets (issue 5): search p99 <= 20 ms at 200 requests/s; item reads >= 2,000/s.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import insert

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from loadgen import settle_heap  # bench/loadgen.py

from libs.common.database import Database
from libs.common.migrations import migrate
from pingtai.natsserver import free_port
from services.catalog.datasets.models import Dataset, DatasetVersion
from services.catalog.items.models import ServiceItem, ServiceItemTerm, ServiceItemVersion
from services.catalog.items.service import normalise, public_body, terms_of

WORDS = "食品 经营 许可 登记 社保 医保 户籍 出生 退休 企业 个体 税务 发票 婚姻".split()
REGIONS = ["330000", "330100", "330102", "330105", "330106", "330108", "330110", "330200",
           "330203", "330300", "330302", "330400", "330402"]  # fmt: skip
KINDS = ["administrative_licence", "administrative_confirmation", "public_service",
         "administrative_payment", "other"]  # fmt: skip
ORGS = [uuid.UUID(int=n).hex for n in range(1, 41)]


def _snapshot(item_id: str, code: str, n: int, rng: random.Random) -> dict[str, Any]:
    name = "".join(rng.sample(WORDS, 3)) + f"（{n}）"
    applicant = rng.choice([["individual"], ["enterprise"], ["individual", "enterprise"]])
    return {
        "item_id": item_id, "code": code, "owner_org_id": rng.choice(ORGS), "name": name,
        "name_en": None, "description": "申请人在线提交，" + "、".join(rng.sample(WORDS, 4)),
        "description_en": None, "kind": rng.choice(KINDS), "applicant_types": applicant,
        "min_assurance_level": 2, "legal_time_limit_days": 20, "promised_time_limit_days": 5,
        "max_visits": rng.choice([0, 0, 1]), "fee": {"amount_fen": 0, "description": ""},
        "legal_basis": "《浙江省保障“最多跑一次”改革规定》", "region_code": rng.choice(REGIONS),
        "form": {"type": "object", "properties": {"resident_id": {"type": "string"},
                                                  "name": {"type": "string"}}},
        "materials": [],
        "template": {"start": "submitted",
                     "states": [{"key": "submitted", "name": "已提交", "end": False},
                                {"key": "done", "name": "办结", "end": True}],
                     "actions": [{"key": "approve", "name": "审批", "from_states": ["submitted"],
                                  "to_states": ["done"], "role": "officer",
                                  "department": "owner", "sla_days": 5, "supplement": False}]},
    }  # fmt: skip


async def seed(url: str, *, items: int, datasets: int) -> list[str]:
    """Fill the scratch database; returns the item ids."""
    rng = random.Random(42)
    database = Database(url)
    ids: list[str] = []
    try:
        async with database.sessionmaker() as session:
            for n in range(datasets):
                dataset_id = uuid.uuid4().hex
                fields = [{"name": "resident_id", "type": "string", "description": "",
                           "sensitivity": "personal"}]  # fmt: skip
                owner = rng.choice(ORGS)
                session.add(Dataset(
                    id=dataset_id, code=f"bench-ds-{n:05d}", owner_org_id=owner,
                    status="published", published_version=1, has_unpublished_changes=False,
                    name=f"数据集{n}", description="", region_code="330100", fields=fields,
                    subject_kind="resident_id", subject_field="resident_id",
                    share_type="conditional", open_type="not_open", not_open_reason="隐私",
                    update_frequency="daily", hosting="hosted",
                ))  # fmt: skip
                session.add(DatasetVersion(
                    dataset_id=dataset_id, version=1, code=f"bench-ds-{n:05d}",
                    owner_org_id=owner, name=f"数据集{n}", share_type="conditional",
                    open_type="not_open", subject_kind="resident_id",
                    definition={"fields": fields},
                ))  # fmt: skip
            await session.commit()
            terms: list[dict[str, Any]] = []
            for n in range(items):
                item_id = uuid.uuid4().hex
                code = f"bench-item-{n:06d}"
                snap = _snapshot(item_id, code, n, rng)
                definition = {k: v for k, v in snap.items()
                              if k not in ("item_id", "code", "owner_org_id")}  # fmt: skip
                session.add(ServiceItem(
                    id=item_id, code=code, owner_org_id=snap["owner_org_id"],
                    status="published", published_version=1, has_unpublished_changes=False,
                    name=snap["name"], definition=definition,
                ))  # fmt: skip
                version = ServiceItemVersion(
                    item_id=item_id, version=1, listed=True, code=code,
                    owner_org_id=snap["owner_org_id"], name=snap["name"],
                    name_search=normalise(snap["name"]),
                    text_search=normalise(f"{snap['name']} {snap['description']}"),
                    kind=snap["kind"], region_code=snap["region_code"],
                    for_individuals="individual" in snap["applicant_types"],
                    for_enterprises="enterprise" in snap["applicant_types"],
                    max_visits=snap["max_visits"], snapshot=snap, published_at=datetime.now(UTC),
                )  # fmt: skip
                # What publishing stores beside the version: its public body and search terms.
                version.public_body = public_body(version)
                session.add(version)
                terms.extend(
                    {c.key: getattr(t, c.key) for c in ServiceItemTerm.__table__.columns}
                    for t in terms_of(version)
                )
                ids.append(item_id)
                if n % 2000 == 1999:
                    await session.flush()
                    await session.execute(insert(ServiceItemTerm), terms)
                    terms.clear()
                    await session.commit()
            await session.flush()
            if terms:
                await session.execute(insert(ServiceItemTerm), terms)
            await session.commit()
    finally:
        await database.dispose()
    return ids


def search_params(rng: random.Random) -> dict[str, str]:
    """A realistic search: a keyword and one or two filters."""
    params = {"q": rng.choice(WORDS), "limit": "20"}
    extra = rng.sample(
        [("region_code", rng.choice(["330100", "330000", "330106"])),
         ("applicant_type", rng.choice(["individual", "enterprise"])),
         ("online_only", "true"), ("kind", rng.choice(KINDS)),
         ("owner_org_id", rng.choice(ORGS))],
        2,
    )  # fmt: skip
    params.update(extra)
    return params


def _fixed_rate(base: str, rate: float, seconds: float, queue: Any) -> None:
    """The load generator (its own process): ``rate`` searches a second, open loop."""

    async def run() -> tuple[list[float], int]:
        rng = random.Random(7)
        latencies: list[float] = []
        errors = 0
        gate = asyncio.Semaphore(64)
        connector = aiohttp.TCPConnector(limit=64)
        async with aiohttp.ClientSession(base, connector=connector) as http:

            async def one(due: float) -> None:
                nonlocal errors
                async with gate:
                    async with http.get("/v1/items", params=search_params(rng)) as answer:
                        await answer.read()
                        if answer.status != 200:
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
                tasks.append(asyncio.create_task(one(due)))
            await asyncio.gather(*tasks)
        return latencies, errors

    queue.put(asyncio.run(run()))


def _closed_loop(base: str, paths: list[str], seconds: float, queue: Any) -> None:
    async def run() -> tuple[int, int]:
        done = errors = 0
        deadline = time.perf_counter() + seconds
        async with aiohttp.ClientSession(base, connector=aiohttp.TCPConnector(limit=32)) as http:

            async def worker(k: int) -> None:
                nonlocal done, errors
                i = k
                while time.perf_counter() < deadline:
                    async with http.get(paths[i % len(paths)]) as answer:
                        await answer.read()
                        errors += answer.status != 200
                    done += 1
                    i += 32

            await asyncio.gather(*(worker(k) for k in range(32)))
        return done, errors

    queue.put(asyncio.run(run()))


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time so far of process ``pid`` and its live children (its workers)."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if stat.parent.name == str(pid) or fields[1] == str(pid):
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def main(args: argparse.Namespace) -> None:
    folder = Path(tempfile.mkdtemp(prefix="bench-catalog-"))
    url = f"sqlite+aiosqlite:///{folder / 'catalog.db'}"
    await asyncio.to_thread(migrate, "services.catalog", url)
    started = time.perf_counter()
    ids = await seed(url, items=args.items, datasets=args.datasets)
    print(f"seeded {args.items} published items and {args.datasets} datasets "
          f"in {time.perf_counter() - started:.1f}s")  # fmt: skip
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "PINGTAI_ENV": "development",
        "PINGTAI_LOG_LEVEL": args.log_level,
        "PINGTAI_VAR_DIR": str(folder),
        "PINGTAI_CATALOG_DATABASE_URL": url,
    }
    log = (folder / "catalog.log").open("wb")
    # As `pingtai serve` runs a part: uvloop and httptools, no uvicorn access log, our own JSON
    # log lines (one per request at INFO) written to a file.
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "services.catalog.app:create_app", "--factory",
         "--host", "127.0.0.1", "--port", str(port), "--workers", str(args.workers),
         "--loop", "uvloop", "--http", "httptools", "--no-access-log",
         "--no-server-header"],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    context = multiprocessing.get_context("spawn")
    try:
        async with aiohttp.ClientSession(base) as http:
            for _ in range(400):
                try:
                    async with http.get("/healthz") as answer:
                        if answer.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.05)
            # Warm up: caches, the first connections.
            rng = random.Random(1)
            for _ in range(50):
                async with http.get("/v1/items", params=search_params(rng)) as answer:
                    await answer.read()
        print(f"catalog at {base}: uvicorn (uvloop, httptools), {args.workers} worker(s), SQLite, "
              f"JSON logs at {args.log_level} to a file; {os.cpu_count()} CPUs")  # fmt: skip
        if not args.skip_search:
            await _search(base, args, context, server.pid)
        await _reads(base, ids, folder, args, context, server.pid)
    finally:
        server.terminate()
        server.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)


async def _search(base: str, args: argparse.Namespace, context: Any, pid: int) -> None:
    print(f"loadavg before the search: {_loadavg()}")
    queue = context.Queue()
    cpu = _cpu_seconds(pid)
    generator = context.Process(target=_fixed_rate, args=(base, args.rate, args.seconds, queue))
    generator.start()
    latencies, errors = queue.get()
    generator.join()
    cpu = _cpu_seconds(pid) - cpu
    ms = [v * 1000 for v in latencies]
    print(
        f"search (keyword + 2 filters, 20 per page) at {args.rate:.0f}/s for "
        f"{args.seconds:.0f}s, open loop, separate process: {len(ms)} requests, "
        f"{errors} errors; p50 {_percentile(ms, 0.5):.1f} ms, p90 {_percentile(ms, 0.9):.1f} "
        f"ms, p99 {_percentile(ms, 0.99):.1f} ms, max {max(ms):.1f} ms "
        f"(target p99 <= 20 ms); server CPU {cpu / len(ms) * 1e6:.0f} µs a search; "
        f"loadavg {_loadavg()}"
    )


async def _reads(
    base: str, ids: list[str], folder: Path, args: argparse.Namespace, context: Any, pid: int
) -> None:
    print(f"loadavg before the reads: {_loadavg()}")
    paths = [f"/v1/items/{i}" for i in random.Random(3).sample(ids, 1000)]
    if shutil.which("wrk"):
        script = folder / "paths.lua"
        script.write_text(
            "paths = {" + ",".join(f'"{p}"' for p in paths) + "}\n"
            "i = 0\nrequest = function()\n  i = i % #paths + 1\n"
            "  return wrk.format('GET', paths[i])\nend\n"
        )
        cpu = _cpu_seconds(pid)
        output = subprocess.run(
            ["wrk", "-t2", "-c32", f"-d{int(args.read_seconds)}s", "-s", str(script), base],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        cpu = _cpu_seconds(pid) - cpu
        rate_line = next(line for line in output.splitlines() if "Requests/sec" in line)
        done = int(next(line for line in output.splitlines() if "requests in" in line).split()[0])
        errors_line = [line for line in output.splitlines() if "Non-2xx" in line]
        print(f"item reads (GET /v1/items/{{id}}, 1,000 ids), wrk -t2 -c32: "
              f"{rate_line.split()[-1]}/s {errors_line or ''} (target >= 2,000/s); "
              f"server CPU {cpu / done * 1e6:.0f} µs a read; loadavg {_loadavg()}")  # fmt: skip
    else:
        queue = context.Queue()
        reader = context.Process(target=_closed_loop, args=(base, paths, args.read_seconds, queue))
        reader.start()
        done, errors = queue.get()
        reader.join()
        per_second = done / args.read_seconds
        print(f"item reads (aiohttp, separate process, 32 in flight): "
              f"{per_second:.0f}/s, {errors} errors (target >= 2,000/s)")  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--datasets", type=int, default=2_000)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--read-seconds", type=float, default=8.0)
    parser.add_argument("--workers", type=int, default=1, help="server worker processes")
    parser.add_argument("--skip-search", action="store_true", help="measure only item reads")
    parser.add_argument(
        "--log-level", default="INFO",
        help="the server's PINGTAI_LOG_LEVEL: INFO logs a JSON line per request (as deployed); "
        "WARNING leaves the access log out",
    )  # fmt: skip
    asyncio.run(main(parser.parse_args()))
