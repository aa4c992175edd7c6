"""What must hold after every fault, each read from its source and compared.

- **Applications**: workflow's own lists (as each applicant) hold exactly the accepted
  applications, every one final; nothing was created twice by a retried submission.
- **Indicators**: evaluation's counters (platform and each department) equal a recount from
  workflow (submitted, finished, completed) and from exchange's ledger (reads provided and
  refused).
- **The ledger** verifies (`pingtai audit verify`).
- **Events, exactly once in effect**: every part's outbox is sent, each event is in its stream
  once (no duplicate stored, none missing), no consumer dead-lettered anything, and evaluation's
  inbox holds every workflow and exchange event it subscribes to.

The checks poll (bounded) until the consumers have caught up, then compare exactly.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import nats
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from pingtai.seed import ADMIN_CLIENT_ID, DEV_ADMIN_CLIENT_SECRET, admin_token
from tests.faults.platform import FaultPlatform
from tests.faults.traffic import AGENTS, DEPARTMENTS, People

SETTLE_TIMEOUT_S = 90.0
PARTS_WITH_EVENTS = ("identity", "catalog", "exchange", "workflow", "evaluation")
# Evaluation's durable consumers of workflow's and exchange's streams, and what they take.
CONSUMED = {
    "evaluation-indicators-workflow": ("workflow", ("application", "task", "sla")),
    "evaluation-indicators-exchange": ("exchange", ("access", "records")),
}


@dataclass
class Findings:
    """The figures compared after a fault, for the report."""

    applications: Counter[str] = field(default_factory=Counter)
    indicators: dict[str, int] = field(default_factory=dict)
    ledger: dict[str, Any] = field(default_factory=dict)
    events: dict[str, dict[str, int]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def summary(self) -> str:
        published = sum(e["stream"] for e in self.events.values())
        return (
            f"workflow {dict(self.applications)}; evaluation {self.indicators}; ledger "
            f"{self.ledger.get('entries')} entries valid={self.ledger.get('valid')}; "
            f"{published} events in the streams, duplicates "
            f"{sum(e['duplicates'] for e in self.events.values())}, missing "
            f"{sum(e['missing'] for e in self.events.values())}, dead letters "
            f"{sum(e['dead_letters'] for e in self.events.values())}"
        )


# -- workflow: the applications as their applicants see them --------------------------------------


async def workflow_applications(people: People) -> dict[str, str]:
    """Every application of the demo enterprises, id -> status, from workflow's lists."""
    found: dict[str, str] = {}
    async with httpx.AsyncClient(base_url=people.gateway, timeout=30.0) as client:
        for agent in AGENTS:
            cursor: str | None = None
            for _ in range(1000):  # bounded: 200 a page
                params: dict[str, Any] = {"limit": 200, **({"cursor": cursor} if cursor else {})}
                page = await client.get("/api/workflow/v1/applications", params=params,
                                        headers=people.headers(agent))  # fmt: skip
                assert page.status_code == 200, page.text
                body = page.json()
                found.update({a["id"]: a["status"] for a in body["items"]})
                cursor = body["next_cursor"]
                if not cursor:
                    break
    return found


# -- evaluation: the indicators' counters ---------------------------------------------------------


def _period() -> dict[str, str]:
    """Yesterday to tomorrow in evaluation's time zone: all this run did, whatever the hour."""
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date()
    return {"from": str(today - timedelta(days=1)), "to": str(today + timedelta(days=1))}


async def _admin(client: httpx.AsyncClient) -> None:
    client.headers["Authorization"] = "Bearer " + await admin_token(
        client, client_id=ADMIN_CLIENT_ID, client_secret=DEV_ADMIN_CLIENT_SECRET
    )


async def evaluation_counters(gateway: str, scopes: list[str]) -> dict[str, dict[str, int]]:
    async with httpx.AsyncClient(base_url=gateway, timeout=30.0) as client:
        await _admin(client)
        counters = {}
        for scope in scopes:
            answer = await client.get("/api/evaluation/v1/indicators/values",
                                      params={"scope": scope, **_period()})  # fmt: skip
            assert answer.status_code == 200, answer.text
            counters[scope] = answer.json()["counters"]
        return counters


# -- exchange: the ledger -------------------------------------------------------------------------


async def ledger_verification(gateway: str) -> dict[str, Any]:
    """The auditor's endpoint: the exchange recomputes its chain and checkpoints."""
    async with httpx.AsyncClient(base_url=gateway, timeout=60.0) as client:
        await _admin(client)
        answer = await client.get("/api/exchange/v1/ledger/verification")
        assert answer.status_code == 200, answer.text
        report: dict[str, Any] = answer.json()
        return report


def audit_verify(platform: FaultPlatform) -> dict[str, Any]:
    """`pingtai audit verify --json` on the exchange's database, as an operator runs it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PINGTAI_")}
    env["PINGTAI_VAR_DIR"] = str(platform.var_dir)
    if "exchange" in platform.postgres:
        env["PINGTAI_EXCHANGE_DATABASE_URL"] = platform.postgres["exchange"]
    done = subprocess.run(
        [sys.executable, "-m", "pingtai", "audit", "verify", "--json", "--no-progress"],
        cwd=platform.workdir, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, f"the ledger does not verify:\n{done.stdout}\n{done.stderr}"
    report: dict[str, Any] = json.loads(done.stdout)
    return report


# -- events ---------------------------------------------------------------------------------------


async def stream_events(nats_url: str, part: str) -> list[tuple[str, str]]:
    """(subject, event id) of every message in a part's stream, in order."""
    client = await nats.connect(nats_url, name="pingtai-fault-suite")
    try:
        js = client.jetstream()
        stream = f"PINGTAI_{part.upper()}"
        try:
            await js.stream_info(stream)
        except NotFoundError:
            return []
        name = f"fault-suite-{uuid.uuid4().hex[:12]}"
        info = await js.add_consumer(
            stream,
            ConsumerConfig(
                name=name, deliver_policy=DeliverPolicy.ALL, ack_policy=AckPolicy.NONE,
                inactive_threshold=60.0, mem_storage=True,
            ),
        )  # fmt: skip
        remaining = int(info.num_pending or 0)
        events: list[tuple[str, str]] = []
        subscription = await js.pull_subscribe_bind(durable=name, stream=stream)
        try:
            while remaining > 0:
                msgs = await subscription.fetch(min(500, remaining), timeout=10)
                events += [(m.subject, json.loads(m.data)["id"]) for m in msgs]
                remaining -= len(msgs)
        finally:
            await subscription.unsubscribe()
            await js.delete_consumer(stream, name)
        return events
    finally:
        await client.close()


async def outbox_and_letters(platform: FaultPlatform, part: str) -> tuple[set[str], int, int]:
    """(every event id the part's outbox recorded, how many are unsent, dead letters)."""
    outbox = await platform.rows(part, "SELECT event_id, sent_at FROM pingtai_event_outbox")
    [(letters,)] = await platform.rows(part, "SELECT count(*) FROM pingtai_event_dead_letter")
    return {row[0] for row in outbox}, sum(row[1] is None for row in outbox), int(letters)


async def evaluation_inbox(platform: FaultPlatform, consumer: str) -> set[str]:
    assert consumer.replace("-", "").isalnum()  # a name of ours, written into the query
    rows = await platform.rows(
        "evaluation", f"SELECT event_id FROM pingtai_event_inbox WHERE consumer = '{consumer}'"
    )
    return {row[0] for row in rows}


async def event_findings(platform: FaultPlatform) -> tuple[dict[str, dict[str, int]], list[str]]:
    figures: dict[str, dict[str, int]] = {}
    problems: list[str] = []
    streams: dict[str, list[tuple[str, str]]] = {}
    for part in PARTS_WITH_EVENTS:
        outbox, unsent, letters = await outbox_and_letters(platform, part)
        events = [e for e in await stream_events(platform.nats.url, part)
                  if ".deadletter." not in e[0]]  # fmt: skip
        streams[part] = events
        ids = [event_id for _, event_id in events]
        duplicates = len(ids) - len(set(ids))
        missing = len(outbox - set(ids))
        strangers = len(set(ids) - outbox)  # in the stream, in no outbox
        figures[part] = {"outbox": len(outbox), "unsent": unsent, "stream": len(ids),
                         "duplicates": duplicates, "missing": missing,
                         "strangers": strangers, "dead_letters": letters}  # fmt: skip
        if unsent or duplicates or missing or strangers or letters:
            problems.append(f"{part}: {figures[part]}")
    for consumer, (part, aggregates) in CONSUMED.items():
        wanted = {i for s, i in streams[part] if s.split(".")[2] in aggregates}
        unapplied = wanted - await evaluation_inbox(platform, consumer)
        figures[part]["unapplied_by_evaluation"] = len(unapplied)
        if unapplied:
            problems.append(f"{consumer} has not applied {len(unapplied)} of {len(wanted)}")
    return figures, problems


# -- all of it ------------------------------------------------------------------------------------


async def _compare(platform: FaultPlatform, people: People, accepted: set[str]) -> Findings:
    findings = Findings()
    applications = await workflow_applications(people)
    findings.applications = Counter(applications.values())
    if set(applications) != accepted:
        findings.problems.append(
            f"workflow holds {len(applications)} applications, {len(accepted)} were accepted: "
            f"unknown {sorted(set(applications) - accepted)[:5]}, "
            f"missing {sorted(accepted - set(applications))[:5]}"
        )
    completed = findings.applications["completed"]
    if completed != len(accepted):
        findings.problems.append(f"not final in workflow: {findings.applications}")

    departments = [f"department:{people.orgs[key]}" for key in DEPARTMENTS]
    counters = await evaluation_counters(people.gateway, ["platform", *departments])
    platform_counters = counters["platform"]
    findings.indicators = {k: platform_counters[k] for k in (
        "submitted", "finished", "completed", "exchange_provided", "exchange_refused",
        "open_data_reads", "exchange_failed")}  # fmt: skip
    expected = {"submitted": len(applications), "finished": completed, "completed": completed}
    for scope, values in counters.items():
        for key, want in expected.items():
            if values[key] != want:
                findings.problems.append(f"evaluation {scope} {key} {values[key]} != {want}")

    findings.ledger = await ledger_verification(people.gateway)
    if not findings.ledger["valid"]:
        findings.problems.append(f"ledger: {findings.ledger['problem']}")
    reads = sum(platform_counters[k] for k in ("exchange_provided", "exchange_refused",
                                                "open_data_reads", "exchange_failed"))  # fmt: skip
    if reads != findings.ledger["entries"]:
        findings.problems.append(
            f"evaluation counts {reads} exchange reads, the ledger {findings.ledger['entries']}"
        )

    findings.events, problems = await event_findings(platform)
    findings.problems += problems
    return findings


async def settle_and_compare(
    platform: FaultPlatform, people: People, accepted: set[str]
) -> Findings:
    """Compare until everything agrees or SETTLE_TIMEOUT_S passes; the last findings."""
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    await people.refresh()
    while True:
        findings = await _compare(platform, people, accepted)
        if not findings.problems or time.monotonic() > deadline:
            break
        await asyncio.sleep(1.0)
    # The operator's command too, on the database itself, once the platform is quiet.
    audited = await asyncio.to_thread(audit_verify, platform)
    if (audited["valid"], audited["entries"]) != (True, findings.ledger["entries"]):
        findings.problems.append(f"pingtai audit verify: {audited}")
    return findings
