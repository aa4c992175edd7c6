"""Benchmark: bundle applications submitted (4 materials fetched, 4 branches) and officer actions.

    .venv/bin/python bench/bench_workflow.py [--rate 100] [--seconds 10] [--actions 2000]
                                             [--stub-exchange] [--log-level WARNING|INFO]
                                             [--database-url postgresql+asyncpg://...]
                                             [--profile /tmp/workflow]  # py-spy, per phase

Starts two uvicorn processes as ``pingtai serve`` runs them (one worker each, uvloop,
httptools, JSON logs at ``--log-level`` to files): the real exchange and workflow. Exchange is
seeded through its models with the demo province as ``pingtai seed --demo`` makes it
(pingtai/demo): the four hosted datasets keyed by the demo enterprises and people
(法人基础信息, 纳税人登记信息, 企业年度报告信息, 基本医疗保险参保信息) with their demo records,
identity's read copy (each demo person's and enterprise's subject reference, as identity's
events carry it), and a grant for each department below. Workflow's read copy holds a bundle of
four items of four demo departments (market, tax, hrss, healthcare), each needing one material
from one of those datasets. The applicants are the five demo enterprise agents, each applying
for their own enterprise (three materials keyed by its credit code, one by the agent's own
resident id), so exchange's applicant check passes and every material is really read. A small
aiohttp server in this process serves the issuer's JWKS and plays identity's token endpoint for
workflow's client. Workflow calls exchange over HTTP (no gateway); NATS is not started (events
wait in workflow's outbox, written in the same transactions as with NATS).

1. Bundle submissions at a fixed ``--rate`` for ``--seconds`` (open loop from a separate
   process; each latency counts from when the request was due): the form is checked, four
   records are fetched from exchange concurrently (four batch queries with the application as
   basis, four applicant checks, four ledger appends), and the application, its materials,
   four branches, four tasks, their SLA clocks, history and events are written. The bench
   fails unless every material of every submission was fetched (it counts them in workflow's
   database and prints fetched, asked-for-upload and pending counts). Target: >= 100/s,
   p99 <= 150 ms.
2. Officer actions: ``accept`` on the open tasks, as fast as they go from 32 connections in a
   separate process (each action locks its application, completes the task conditionally,
   fires the template and opens the next task). Target: >= 300/s.

Both databases are scratch ones (SQLite files in a temporary folder; with ``--database-url``
or ``PINGTAI_TEST_POSTGRES_URL``, two scratch PostgreSQL databases, dropped at the end).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from sqlalchemy import func, insert, select
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_exchange import _postgres_admin
from loadgen import settle_heap

from libs.common.database import Database
from libs.common.events import new_event
from libs.common.migrations import migrate
from libs.common.subjects import SubjectRefs, normalise_subject_key
from pingtai.demo.catalog_datasets import DATASETS
from pingtai.demo.exchange_records import ENTERPRISES, RECORDS
from pingtai.demo.identity import PEOPLE, DemoPerson
from pingtai.natsserver import free_port
from services.exchange.access.models import Grant, OrganisationSubject, PersonSubject
from services.exchange.datasets.models import ExchangeDataset
from services.exchange.records.models import HostedRecord
from services.workflow.catalogue.events import BundlePublished, ItemPublished
from services.workflow.catalogue.service import apply_catalog_event
from services.workflow.models import Application, ApplicationMaterial, Task

ISSUER = "https://bench.pingtai.test"
FORM = {
    "type": "object",
    "properties": {
        "credit_code": {"type": "string", "pattern": "^[0-9A-Z]{18}$"},
        "entity_name": {"type": "string", "maxLength": 200},
        "resident_id": {"type": "string", "pattern": "^[0-9]{17}[0-9X]$"},
        "phone": {"type": "string", "pattern": "^1[0-9]{10}$"},
    },
    "required": ["credit_code", "entity_name", "resident_id", "phone"],
}
TEMPLATE = {
    "start": "submitted",
    "states": [{"key": "submitted", "name": "已提交"}, {"key": "accepted", "name": "已受理"},
               {"key": "approved", "name": "已办结", "end": True},
               {"key": "rejected", "name": "不予许可", "end": True}],
    "actions": [
        {"key": "accept", "name": "受理", "from_states": ["submitted"],
         "to_states": ["accepted"], "role": "officer", "sla_days": 1},
        {"key": "approve", "name": "办结", "from_states": ["accepted"],
         "to_states": ["approved"], "role": "officer", "sla_days": 3},
        {"key": "reject", "name": "不予许可", "from_states": ["accepted"],
         "to_states": ["rejected"], "role": "officer", "sla_days": 3},
    ],
}  # fmt: skip
# The bundle's items: (department, dataset code, material key and name, the form field that keys
# the dataset, the fields asked), sourced from the demo province's hosted datasets.
ITEMS = [
    ("market", "zj-legal-entity", "business_licence", "营业执照", "credit_code",
     ["entity_name", "legal_representative", "registered_address"]),
    ("tax", "zj-tax-registration", "tax_registration", "税务登记信息", "credit_code",
     ["taxpayer_name", "taxpayer_type", "status"]),
    ("hrss", "zj-enterprise-annual-report", "annual_report", "企业年报", "credit_code",
     ["report_year", "operating_status", "employees"]),
    ("healthcare", "zj-medical-insurance", "medical_insurance", "经办人医保参保信息",
     "resident_id", ["insured_type", "status"]),
]  # fmt: skip
DEPARTMENTS = [f"org-{department}" for department, *_ in ITEMS]
SECRET_KEY = "bench-secret-key-for-subject-references"
# The demo enterprise agents (pingtai.demo.identity), each applying for their enterprise.
AGENTS: list[tuple[DemoPerson, str]] = [
    (person, org_key) for person in PEOPLE for org_key, role in person.roles
    if role == "enterprise_agent" and org_key is not None
]  # fmt: skip
CREDIT_CODES = {org.key: org.credit_code for org in ENTERPRISES}
NAMES = {org.key: org.name for org in ENTERPRISES}


def _person_id(person: DemoPerson) -> str:
    return f"user-{person.phone}"


def _loadavg() -> str:
    try:
        return Path("/proc/loadavg").read_text().strip()
    except OSError:
        return "unknown"


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def seed_read_copy(url: str) -> str:
    """Four items of four departments (one demo-dataset material each) and their bundle."""
    database = Database(url)
    bundle_id = uuid.uuid4().hex
    items = []
    try:
        async with database.sessionmaker() as session, session.begin():
            for n, (department, code, key, name, field, fields) in enumerate(ITEMS):
                item_id = uuid.uuid4().hex
                snapshot = {
                    "item_id": item_id, "code": f"bench-item-{n}", "name": f"事项 {n}",
                    "owner_org_id": f"org-{department}", "applicant_types": ["enterprise"],
                    "min_assurance_level": 2, "promised_time_limit_days": 5,
                    "legal_time_limit_days": 20, "form": FORM, "template": TEMPLATE,
                    "materials": [{"key": key, "name": name, "source": "dataset",
                                   "dataset": {"dataset_id": code, "applicant_field": field,
                                               "fields": fields}}],
                }  # fmt: skip
                items.append(snapshot)
                await apply_catalog_event(session, new_event(ItemPublished(
                    item_id=item_id, code=snapshot["code"], owner_org_id=f"org-{department}",
                    version=1, snapshot=snapshot), subject=item_id))  # fmt: skip
            bundle = {
                "bundle_id": bundle_id, "code": "bench-bundle", "name": "一件事",
                "owner_org_id": None,
                "items": [{"item_id": i["item_id"], "version": 1, "code": i["code"],
                           "name": i["name"], "owner_org_id": i["owner_org_id"]} for i in items],
                "merged_form": FORM, "field_sources": {},
                "materials": [{**i["materials"][0], "item_ids": [i["item_id"]]} for i in items],
            }  # fmt: skip
            await apply_catalog_event(session, new_event(BundlePublished(
                bundle_id=bundle_id, code="bench-bundle", owner_org_id=None, version=1,
                snapshot=bundle), subject=bundle_id))  # fmt: skip
    finally:
        await database.dispose()
    return bundle_id


async def seed_exchange(url: str) -> None:
    """The demo province's hosted datasets and records, identity's read copy of its people
    and enterprises, and each bundle item's department's grant, through exchange's models."""
    database = Database(url)
    now = datetime.now(UTC)
    refs = SubjectRefs(SECRET_KEY)
    described = {d.code: d for d in DATASETS}
    try:
        async with database.sessionmaker() as session:
            for code in dict.fromkeys(code for _, code, *_ in ITEMS):
                body = described[code].body
                kind, subject_field = body["subject_key"]["kind"], body["subject_key"]["field"]
                session.add(ExchangeDataset(
                    id=code, code=code, version=1, owner_org_id=f"org-{described[code].owner}",
                    status="published", name=body["name"], name_en=body["name_en"],
                    description=body["description"], region_code=body["region_code"],
                    field_definitions=body["fields"], subject_key_kind=kind,
                    subject_key_field=body["subject_key"]["field"],
                    share_type=body["share_type"], open_type=body["open_type"],
                    not_open_reason=body.get("not_open_reason"),
                    update_frequency=body["update_frequency"], mode="hosted", endpoint_url=None,
                    published_at=now, retired_at=None, retired_version=None,
                ))  # fmt: skip
                await session.flush()
                await session.execute(insert(HostedRecord), [
                    {"dataset_id": code, "version": 1,
                     "subject_key": normalise_subject_key(kind, record[subject_field]),
                     "data": json.dumps(record, ensure_ascii=False, sort_keys=True,
                                        separators=(",", ":"))}
                    for record in RECORDS[code]()
                ])  # fmt: skip
            for department, code, _key, _name, _field, fields in ITEMS:
                session.add(Grant(
                    dataset_id=code, requester_org_id=f"org-{department}",
                    owner_org_id=f"org-{described[code].owner}", status="granted",
                    fields=fields, unmasked_fields=fields, statutes=[], purpose="bench",
                    valid_from=now, valid_until=now + timedelta(days=1), requested_by="bench",
                    decided_by="bench", decided_at=now,
                ))  # fmt: skip
            for person in PEOPLE:  # as identity's person.registered events carry them
                session.add(PersonSubject(person_id=_person_id(person),
                                          subject_ref=refs.person(person.resident_id)))  # fmt: skip
            for org in ENTERPRISES:
                session.add(OrganisationSubject(
                    org_id=f"org-{org.key}", kind="enterprise", name=org.name, status="active",
                    subject_ref=refs.enterprise(org.credit_code)))  # fmt: skip
            await session.commit()
    finally:
        await database.dispose()


async def material_counts(url: str) -> tuple[int, dict[str, int]]:
    """How many applications workflow holds, and their materials by state."""
    database = Database(url)
    try:
        async with database.sessionmaker() as session:
            applications = await session.scalar(select(func.count()).select_from(Application))
            rows = await session.execute(
                select(ApplicationMaterial.state, func.count()).group_by(ApplicationMaterial.state)
            )
            return int(applications or 0), dict(rows.tuples().all())
    finally:
        await database.dispose()


def _token(key: Any, **claims: Any) -> str:
    now = int(time.time())
    body = {"iss": ISSUER, "aud": "pingtai", "client_id": "bench", "jti": uuid.uuid4().hex,
            "iat": now, "exp": now + 3600, **claims}  # fmt: skip
    return jwt.encode(body, key, algorithm="RS256", headers={"kid": "bench", "typ": "at+jwt"})


def _submissions(base: str, bodies: list[tuple[str, str]], rate: float, queue: Any) -> None:
    """Load generator (own process): one submission per (token, body) at ``rate``, open loop."""

    async def run() -> tuple[list[float], list[str], float]:
        latencies: list[float] = []
        errors: list[str] = []
        connector = aiohttp.TCPConnector(limit=256)
        async with aiohttp.ClientSession(base, connector=connector) as http:

            async def one(token: str, body: str, due: float) -> None:
                headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
                async with http.post("/v1/applications", data=body, headers=headers) as answer:
                    text = await answer.text()
                    if answer.status != 201:
                        errors.append(f"{answer.status}: {text[:200]}")
                    elif (answered := json.loads(text))["status"] != "in_progress":
                        reasons = {m["last_error"] for m in answered["materials"]}
                        errors.append(f"{answered['status']}: {sorted(map(str, reasons))}")
                latencies.append(time.perf_counter() - due)

            settle_heap()  # bench/loadgen.py: no collection pauses inside the loop
            tasks = []
            start = time.perf_counter() + 0.1
            for i, (token, body) in enumerate(bodies):
                due = start + i / rate
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(one(token, body, due)))
            await asyncio.gather(*tasks)
            return latencies, errors, time.perf_counter() - start

    queue.put(asyncio.run(run()))


def _actions(base: str, work: list[tuple[str, str]], queue: Any) -> None:
    """Load generator (own process): ``accept`` on each (token, task id), 32 at a time."""

    async def run() -> tuple[list[float], list[str], float]:
        latencies: list[float] = []
        errors: list[str] = []
        pending = list(work)
        async with aiohttp.ClientSession(base) as http:

            async def worker() -> None:
                while pending:
                    token, task_id = pending.pop()
                    began = time.perf_counter()
                    async with http.post(
                        f"/v1/tasks/{task_id}/actions", json={"decision": "accept"},
                        headers={"Authorization": f"Bearer {token}"},
                    ) as answer:  # fmt: skip
                        text = await answer.text()
                        if answer.status != 200:
                            errors.append(f"{answer.status}: {text[:200]}")
                    latencies.append(time.perf_counter() - began)

            start = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(32)))
            return latencies, errors, time.perf_counter() - start

    queue.put(asyncio.run(run()))


def _cpu(servers: list[subprocess.Popen[bytes]]) -> list[float]:
    """CPU seconds (user + system) each server process used so far."""
    ticks = os.sysconf("SC_CLK_TCK")
    used = []
    for server in servers:
        fields = Path(f"/proc/{server.pid}/stat").read_text().rsplit(")", 1)[1].split()
        used.append((int(fields[11]) + int(fields[12])) / ticks)
    return used


def _print_cpu(ports: dict[str, int], used: list[float], count: int) -> None:
    """CPU per operation in each server: what a free core would sustain, whatever the load."""
    parts = ", ".join(
        f"{part} {seconds / max(count, 1) * 1000:.1f} ms ({max(count, 1) / seconds:.0f}/s "
        "per free core)" if seconds else f"{part} 0 ms"
        for part, seconds in zip(ports, used, strict=True)
    )  # fmt: skip
    print(f"  CPU per operation: {parts}")


def _server_errors(folder: Path) -> None:
    """The servers' first logged errors (what a 500 was)."""
    for log in sorted(folder.glob("*.log")):
        lines = [line for line in log.read_text(errors="replace").splitlines()
                 if '"level": "error"' in line]  # fmt: skip
        for line in lines[:2]:
            record = json.loads(line)
            print(f"  {log.stem}: {record.get('event')}: {record.get('exception', '')[-1200:]}")


def _py_spy() -> str:
    """The py-spy command: the venv's, or one on PATH (``pip install py-spy``)."""
    for candidate in (Path(sys.executable).parent / "py-spy", shutil.which("py-spy")):
        if candidate and Path(candidate).exists():
            return str(candidate)
    raise SystemExit("--profile needs py-spy (pip install py-spy, or put it on PATH)")


def _profile(prefix: str, phase: str, pid: int) -> subprocess.Popen[bytes] | None:
    """Sample workflow's process during one phase: collapsed stacks to ``<prefix>-<phase>.txt``
    (stopped by ``_stop_profile``; its overhead inflates that phase's CPU figures a little)."""
    if not prefix:
        return None
    return subprocess.Popen(
        [_py_spy(), "record", "--format", "raw", "--rate", "250", "--nonblocking",
         "--pid", str(pid), "--output", f"{prefix}-{phase}.txt"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def _stop_profile(spy: subprocess.Popen[bytes] | None) -> None:
    if spy is not None:
        spy.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
        spy.wait(timeout=60)


def _serve(module: str, port: int, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "uvicorn", f"{module}:create_app", "--factory",
         "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
         "--loop", "uvloop", "--http", "httptools", "--no-access-log", "--no-server-header"],
        env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip


async def _ready(base: str) -> None:
    async with aiohttp.ClientSession(base) as http:
        for _ in range(2400):  # up to 2 minutes: a loaded machine starts a part slowly
            try:
                async with http.get("/healthz") as answer:
                    if answer.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    raise SystemExit(f"{base} did not start")


async def run(
    args: argparse.Namespace, *, folder: Path, urls: dict[str, str], backend: str
) -> None:
    if args.stub_exchange:  # workflow alone: no exchange process
        urls = {"workflow": urls["workflow"]}
    for part, url in urls.items():
        await asyncio.to_thread(migrate, f"services.{part}", url)
    total = int(args.rate * args.seconds)
    if not args.stub_exchange:
        await seed_exchange(urls["exchange"])
    bundle_id = await seed_read_copy(urls["workflow"])

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
    jwks = {"keys": [{**jwk, "kid": "bench", "use": "sig", "alg": "RS256"}]}
    workflow_token = _token(key, sub="client-workflow", roles=[], org="org-data",
                            scope="exchange:application-basis")  # fmt: skip
    helper = web.Application()
    helper.router.add_get("/jwks.json", lambda _r: web.json_response(jwks))
    helper.router.add_post("/oauth2/token", lambda _r: web.json_response(
        {"access_token": workflow_token, "token_type": "Bearer", "expires_in": 3600}))  # fmt: skip
    position = 0

    async def stub_batch(request: web.Request) -> web.Response:
        nonlocal position
        body = await request.json()
        items = []
        for subject in body["subjects"]:
            position += 1
            items.append({"subject_key": subject["subject_key"], "outcome": "read",
                          "record": {"name": "张*", "status": "active"}, "masked_fields": ["name"],
                          "reason": None, "ledger_position": position})  # fmt: skip
        return web.json_response({"dataset_id": request.match_info["dataset_id"],
                                  "fields": ["name", "status"], "items": items})  # fmt: skip

    helper.router.add_post("/v1/datasets/{dataset_id}/records:batch", stub_batch)
    runner = web.AppRunner(helper)
    await runner.setup()
    helper_port = free_port()
    await web.TCPSite(runner, "127.0.0.1", helper_port).start()
    helper_url = f"http://127.0.0.1:{helper_port}"

    ports = {part: free_port() for part in urls}
    env = {**os.environ, "PINGTAI_ENV": "development", "PINGTAI_LOG_LEVEL": args.log_level,
           # As `pingtai serve` runs a part (libs.common.serve): its start-up heap frozen.
           "PINGTAI_GC_FREEZE": os.environ.get("PINGTAI_GC_FREEZE", "true"),
           "PINGTAI_VAR_DIR": str(folder), "PINGTAI_ISSUER": ISSUER,
           "PINGTAI_SECRET_KEY": SECRET_KEY,
           "PINGTAI_EXCHANGE_DATABASE_URL": urls.get("exchange", ""),
           "PINGTAI_EXCHANGE_AUTH_JWKS_URL": f"{helper_url}/jwks.json",
           "PINGTAI_WORKFLOW_DATABASE_URL": urls["workflow"],
           "PINGTAI_WORKFLOW_AUTH_JWKS_URL": f"{helper_url}/jwks.json",
           "PINGTAI_WORKFLOW_EXCHANGE_URL": helper_url if args.stub_exchange
           else f"http://127.0.0.1:{ports.get('exchange')}",
           "PINGTAI_WORKFLOW_TOKEN_URL": f"{helper_url}/oauth2/token",
           "PINGTAI_WORKFLOW_CLIENT_SECRET": "bench",
           # On a loaded machine a fetch may take seconds; it is measured, not cut off.
           "PINGTAI_WORKFLOW_EXCHANGE_TIMEOUT_S": "30",
           "PINGTAI_WORKFLOW_SLA_TIMER_ENABLED": "false"}  # fmt: skip
    env.pop("PINGTAI_NATS_URL", None)
    servers = [_serve(f"services.{part}.app", port, env, folder / f"{part}.log")
               for part, port in ports.items()]  # fmt: skip
    base = f"http://127.0.0.1:{ports['workflow']}"
    context = multiprocessing.get_context("spawn")
    try:
        for port in ports.values():
            await _ready(f"http://127.0.0.1:{port}")
        agents = [
            (_token(key, sub=_person_id(person), roles=["enterprise_agent"], org=f"org-{org}",
                    acr=str(person.acr)),
             {"bundle_id": bundle_id, "form": {
                 "credit_code": CREDIT_CODES[org], "entity_name": NAMES[org],
                 "resident_id": person.resident_id, "phone": person.phone}})
            for person, org in AGENTS
        ]  # fmt: skip
        bodies = [(agents[n % len(agents)][0], json.dumps(agents[n % len(agents)][1]))
                  for n in range(total + 50)]  # fmt: skip
        exchange = helper_url if args.stub_exchange else f"http://127.0.0.1:{ports['exchange']}"
        async with aiohttp.ClientSession(exchange) as http:  # exchange's keys, fetched once
            for _ in range(0 if args.stub_exchange else 100):
                async with http.get(
                    "/v1/datasets", headers={"Authorization": f"Bearer {workflow_token}"}
                ) as answer:  # any answer but a 503: the verifier has its keys
                    if answer.status != 503:
                        break
                await asyncio.sleep(0.1)
        async with aiohttp.ClientSession(base) as http:  # the verifier's keys, fetched once
            for _ in range(100):
                async with http.get("/v1/applications", headers={
                        "Authorization": f"Bearer {bodies[0][0]}"}) as answer:  # fmt: skip
                    if answer.status == 200:
                        break
                await asyncio.sleep(0.1)
        # Warm up (connections, the token, the caches) with 50 submissions, not counted.
        queue = context.Queue()
        warm = context.Process(target=_submissions, args=(base, bodies[:50], 10.0, queue))
        warm.start()
        _, warm_errors, _ = await asyncio.to_thread(queue.get)
        warm.join()
        if warm_errors:
            raise SystemExit(f"warm-up failed: {warm_errors[:3]}")
        against = "a stub in the bench process" if args.stub_exchange else "the real exchange"
        print(f"materials fetched from {against}")
        print(f"exchange and workflow: uvicorn (uvloop, httptools), 1 worker each, {backend}; "
              f"{os.cpu_count()} CPUs; loadavg before: {_loadavg()}")  # fmt: skip

        generator = context.Process(target=_submissions, args=(base, bodies[50:], args.rate, queue))
        spy = _profile(args.profile, "submissions", servers[-1].pid)
        cpu = _cpu(servers)
        generator.start()
        latencies, errors, elapsed = await asyncio.to_thread(queue.get)
        used = [after - before for before, after in zip(cpu, _cpu(servers), strict=True)]
        _stop_profile(spy)
        generator.join()
        ms = [v * 1000 for v in latencies]
        print(f"bundle submissions at {args.rate:.0f}/s for {args.seconds:.0f}s, open loop: "
              f"{len(ms)} in {elapsed:.1f}s ({len(ms) / elapsed:.0f}/s), {len(errors)} errors; "
              f"p50 {_percentile(ms, 0.5):.1f} ms, p90 {_percentile(ms, 0.9):.1f} ms, "
              f"p99 {_percentile(ms, 0.99):.1f} ms, max {max(ms):.1f} ms "
              f"(target >= 100/s, p99 <= 150 ms)")  # fmt: skip
        _print_cpu(ports, used, len(ms))
        if errors:
            print(f"  first errors: {errors[:3]}")
            _server_errors(folder)
        print(f"loadavg after submissions: {_loadavg()}")
        applications, states = await material_counts(urls["workflow"])
        fetched = states.get("fetched", 0)
        print(f"  materials of {applications} applications: {fetched} fetched, "
              f"{states.get('requested', 0)} asked for upload, {states.get('uploaded', 0)} "
              f"uploaded, {states.get('pending_fetch', 0)} pending fetch")  # fmt: skip
        # Checked again at the end (the actions are measured either way).
        unfetched = fetched != 4 * applications or len(states) != 1

        database = Database(urls["workflow"])
        async with database.sessionmaker() as session:
            rows = (await session.execute(
                select(Task.id, Task.department_org_id).where(Task.state == "open")
                .limit(args.actions))).all()  # fmt: skip
        tokens = {d: _token(key, sub=f"officer-{d}", roles=["officer"], org=d, acr="3")
                  for d in DEPARTMENTS}  # fmt: skip
        work = [(tokens[department], task_id) for task_id, department in rows]
        actor = context.Process(target=_actions, args=(base, work, queue))
        spy = _profile(args.profile, "actions", servers[-1].pid)
        cpu = _cpu(servers)
        actor.start()
        latencies, errors, elapsed = await asyncio.to_thread(queue.get)
        used = [after - before for before, after in zip(cpu, _cpu(servers), strict=True)]
        _stop_profile(spy)
        actor.join()
        ms = [v * 1000 for v in latencies]
        print(f"officer actions (accept), 32 connections: {len(ms)} in {elapsed:.1f}s "
              f"({len(ms) / elapsed:.0f}/s), {len(errors)} errors; p50 {_percentile(ms, 0.5):.1f} "
              f"ms, p99 {_percentile(ms, 0.99):.1f} ms (target >= 300/s)")  # fmt: skip
        _print_cpu(ports, used, len(ms))
        if errors:
            print(f"  first errors: {errors[:3]}")
        print(f"loadavg after actions: {_loadavg()}")
        async with database.sessionmaker() as session:
            applications = await session.scalar(select(func.count()).select_from(Application))
            started = await session.scalar(select(func.count()).select_from(Application)
                                           .where(Application.status == "in_progress"))  # fmt: skip
        await database.dispose()
        print(f"workflow holds {applications} applications, {started} in progress")
        if unfetched:
            raise SystemExit(f"not every material was fetched from exchange: {states}")
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        await runner.cleanup()


async def main(args: argparse.Namespace) -> None:
    folder = Path(tempfile.mkdtemp(prefix="bench-workflow-"))
    database_url = args.database_url or os.environ.get("PINGTAI_TEST_POSTGRES_URL", "")
    scratch: list[str] = []
    if database_url and not args.sqlite:
        urls = {}
        for part in ("exchange", "workflow"):
            name = f"pingtai_bench_{part}_{uuid.uuid4().hex[:8]}"
            await _postgres_admin(database_url, f'CREATE DATABASE "{name}"')
            scratch.append(name)
            urls[part] = make_url(database_url).set(database=name).render_as_string(
                hide_password=False)  # fmt: skip
        backend = "PostgreSQL (asyncpg)"
    else:
        urls = {part: f"sqlite+aiosqlite:///{folder / f'{part}.db'}"
                for part in ("exchange", "workflow")}  # fmt: skip
        backend = "SQLite (WAL)"
    try:
        await run(args, folder=folder, urls=urls, backend=backend)
    except BaseException:
        for log in folder.glob("*.log"):
            print(
                f"--- {log.name}: {log.read_text()[-int(os.environ.get('BENCH_LOG_TAIL', 1500)) :]}"
            )
        raise
    finally:
        for name in scratch:
            await _postgres_admin(database_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--actions", type=int, default=2000)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--log-level", default="WARNING", help="the servers' log level")
    parser.add_argument(
        "--stub-exchange", action="store_true",
        help="answer exchange's batch queries from a stub in this process (workflow alone)",
    )  # fmt: skip
    parser.add_argument(
        "--profile", default="", metavar="PREFIX",
        help="sample workflow with py-spy during each phase: <PREFIX>-submissions.txt and "
        "<PREFIX>-actions.txt, collapsed stacks (e.g. /tmp/workflow)",
    )  # fmt: skip
    parser.add_argument("--sqlite", action="store_true", help="SQLite even if PostgreSQL is set")
    asyncio.run(main(parser.parse_args()))
