"""Webhooks: subscriptions, fan-out of workflow's events, signed deliveries a real receiver
verifies, retries on the schedule, the delivery log, and what is refused."""

from __future__ import annotations

import asyncio
import json
import socket
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from standardwebhooks import Webhook as Verifier

from libs.common.database import Database
from libs.common.events import CloudEvent
from libs.common.events.tables import TABLES
from services.workflow.ids import utcnow
from services.workflow.sla import start_clock
from services.workflow.sla.timer import SlaTimer
from services.workflow.webhooks import urls as webhook_urls
from services.workflow.webhooks.consumers import record_deliveries
from services.workflow.webhooks.deliverer import WebhookDeliverer
from services.workflow.webhooks.models import WebhookDelivery
from tests.workflow.conftest import Issuer
from tests.workflow.live.conftest import Receiver, add_application

DEPT_ADMIN = {"sub": "admin-a", "roles": ["dept_admin"], "org": "dept-a"}


@pytest.fixture(autouse=True)
def _no_background_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tests drive the timer and the deliverers themselves."""
    monkeypatch.setenv("PINGTAI_WORKFLOW_SLA_TIMER_ENABLED", "false")
    monkeypatch.setenv("PINGTAI_WORKFLOW_WEBHOOKS_DELIVERER_ENABLED", "false")


async def subscribe(
    client: httpx.AsyncClient, issuer: Issuer, url: str, types: list[str], **who: Any
) -> dict[str, Any]:
    response = await client.post(
        "/v1/webhooks",
        json={"url": url, "event_types": types},
        headers=issuer.headers(**(who or DEPT_ADMIN)),
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def overdue_event(app: FastAPI, *, task_department: str, applicant_org: str) -> CloudEvent:
    """A real pingtai.workflow.sla.overdue event about a task, as the timer writes it."""
    database: Database = app.state.database
    application_id = await add_application(
        database, applicant_id="alice", applicant_org_id=applicant_org,
        owner_org_id="dept-owner", task_department=task_department,
    )  # fmt: skip
    async with database.sessionmaker() as session:
        from services.workflow.tasks.models import Task

        task_id = (
            await session.execute(select(Task.id).where(Task.application_id == application_id))
        ).scalar_one()
        await start_clock(
            session, kind="task", ref_id=task_id, application_id=application_id,
            department_org_id=task_department, due_at=utcnow() - timedelta(seconds=1),
        )  # fmt: skip
        await session.commit()
    assert await SlaTimer(database).tick() == 1
    async with database.sessionmaker() as session:
        payload = (
            await session.execute(
                select(TABLES.outbox.c.payload)
                .where(TABLES.outbox.c.subject == "pingtai.workflow.sla.overdue")
                .order_by(TABLES.outbox.c.position.desc())
                .limit(1)
            )
        ).scalar_one()
    return CloudEvent.from_json(payload)


async def fan_out(app: FastAPI, event: CloudEvent) -> None:
    async with app.state.database.sessionmaker() as session:
        await record_deliveries(session, event)
        await session.commit()


def deliverer(app: FastAPI, **options: Any) -> WebhookDeliverer:
    return WebhookDeliverer(
        app.state.database,
        part_secret=app.state.settings.secret_key,
        retry_schedule_s=options.pop("retry_schedule_s", [0.0, 0.0]),
        timeout_s=options.pop("timeout_s", 5.0),
        **options,
    )


async def test_a_department_subscribes_and_a_signed_delivery_arrives(
    workflow_app: FastAPI, client: httpx.AsyncClient, issuer: Issuer, receiver: Receiver
) -> None:
    created = await subscribe(client, issuer, receiver.url, ["pingtai.workflow.sla.*"])
    assert created["secret"].startswith("whsec_") and created["owner_org_id"] == "dept-a"
    # The enterprise that applied, and departments the event is not about, subscribe too.
    enterprise = await subscribe(
        client, issuer, receiver.url, ["pingtai.workflow.sla.overdue"],
        sub="agent", roles=["enterprise_agent"], org="ent-1",
    )  # fmt: skip
    await subscribe(client, issuer, receiver.url, ["pingtai.workflow.*"], sub="b",
                    roles=["dept_admin"], org="dept-b")  # fmt: skip
    await subscribe(client, issuer, receiver.url, ["pingtai.workflow.application.*"])

    event = await overdue_event(workflow_app, task_department="dept-a", applicant_org="ent-1")
    await fan_out(workflow_app, event)
    await fan_out(workflow_app, event)  # a redelivered event records nothing twice
    worker = deliverer(workflow_app)
    try:
        assert await worker.deliver_due() == 2
        assert await worker.deliver_due() == 0
    finally:
        await worker.close()

    assert len(receiver.requests) == 2
    secrets = {created["secret"], enterprise["secret"]}
    verified = []
    for headers, body in receiver.requests:
        assert headers["Content-Type"] == "application/json"
        assert headers["webhook-signature"].startswith("v1,")
        matching = [s for s in secrets if _verifies(s, headers, body)]
        assert len(matching) == 1  # signed with its own subscription's secret, and only that
        verified.append(json.loads(body))
    for payload in verified:
        assert payload["type"] == "pingtai.workflow.sla.overdue"
        assert payload["event_id"] == event.id
        assert payload["data"]["department_org_id"] == "dept-a"
    # A tampered body does not verify.
    headers, body = receiver.requests[0]
    assert not any(_verifies(s, headers, body.replace(b"dept-a", b"dept-x")) for s in secrets)

    log = await client.get(
        f"/v1/webhooks/{created['id']}/deliveries", headers=issuer.headers(**DEPT_ADMIN)
    )
    assert log.status_code == 200, log.text
    [delivery] = log.json()["items"]
    assert delivery["status"] == "delivered" and delivery["attempts"] == 1
    assert delivery["attempt_log"][0]["status_code"] == 204
    assert delivery["event_type"] == "pingtai.workflow.sla.overdue"
    ids = {h["webhook-id"] for h, _ in receiver.requests}
    assert delivery["id"] in ids


def _verifies(secret: str, headers: dict[str, str], body: bytes) -> bool:
    try:
        Verifier(secret).verify(body, headers)
    except Exception:
        return False
    return True


async def test_failures_are_retried_on_the_schedule_then_given_up(
    workflow_app: FastAPI, client: httpx.AsyncClient, issuer: Issuer, receiver: Receiver
) -> None:
    retried = await subscribe(client, issuer, receiver.url, ["pingtai.workflow.sla.*"])
    event = await overdue_event(workflow_app, task_department="dept-a", applicant_org="ent-1")
    receiver.statuses = [500, 503, 200]
    await fan_out(workflow_app, event)
    worker = deliverer(workflow_app, retry_schedule_s=[0.2, 0.2])
    try:
        assert await worker.deliver_due() == 1
        assert await worker.deliver_due() == 0  # the retry waits its delay
        await asyncio.sleep(0.25)
        assert await worker.deliver_due() == 1
        await asyncio.sleep(0.25)
        assert await worker.deliver_due() == 1
    finally:
        await worker.close()
    ids = {h["webhook-id"] for h, _ in receiver.requests}
    assert len(receiver.requests) == 3 and len(ids) == 1  # the same webhook-id every time
    log = (
        await client.get(
            f"/v1/webhooks/{retried['id']}/deliveries", headers=issuer.headers(**DEPT_ADMIN)
        )
    ).json()["items"][0]
    assert log["status"] == "delivered" and log["attempts"] == 3
    assert [a["status_code"] for a in log["attempt_log"]] == [500, 503, 200]
    assert "500" in log["attempt_log"][0]["error"]

    # Always failing: given up after the first attempt and one per scheduled retry.
    receiver.statuses = [500] * 10
    second = await overdue_event(workflow_app, task_department="dept-a", applicant_org="ent-1")
    await fan_out(workflow_app, second)
    worker = deliverer(workflow_app, retry_schedule_s=[0.0, 0.0])
    try:
        for _ in range(5):
            await worker.deliver_due()
    finally:
        await worker.close()
    failed = await client.get(
        f"/v1/webhooks/{retried['id']}/deliveries?status=failed",
        headers=issuer.headers(**DEPT_ADMIN),
    )
    [given_up] = failed.json()["items"]
    assert given_up["attempts"] == 3 and given_up["next_attempt_at"] is None


async def test_a_delivery_claimed_by_a_replica_that_died_is_sent_after_its_claim_expires(
    workflow_app: FastAPI, client: httpx.AsyncClient, issuer: Issuer, receiver: Receiver
) -> None:
    await subscribe(client, issuer, receiver.url, ["pingtai.workflow.sla.overdue"])
    await fan_out(
        workflow_app,
        await overdue_event(workflow_app, task_department="dept-a", applicant_org="ent-1"),
    )
    dead = deliverer(workflow_app)
    claimed = await dead._claim()  # claimed and committed, then the process died
    await dead.close()
    assert len(claimed) == 1
    alive = deliverer(workflow_app)
    try:
        assert await alive.deliver_due() == 0  # the claim still holds
        alive.now = lambda: utcnow() + timedelta(minutes=2)
        assert await alive.deliver_due() == 1
    finally:
        await alive.close()
    assert len(receiver.requests) == 1
    assert receiver.requests[0][0]["webhook-id"] == claimed[0][0].id


async def test_two_replicas_send_each_delivery_once(
    workflow_app: FastAPI, client: httpx.AsyncClient, issuer: Issuer, receiver: Receiver,
    database_url: str,
) -> None:  # fmt: skip
    await subscribe(client, issuer, receiver.url, ["pingtai.workflow.sla.overdue"])
    for _ in range(5):
        await fan_out(
            workflow_app,
            await overdue_event(workflow_app, task_department="dept-a", applicant_org="ent-1"),
        )
    replica_db = Database(database_url)
    workers = [
        deliverer(workflow_app, batch=2),
        WebhookDeliverer(
            replica_db, part_secret=workflow_app.state.settings.secret_key,
            retry_schedule_s=[0.0], batch=2,
        ),
    ]  # fmt: skip
    try:
        for _ in range(4):
            await asyncio.gather(*(w.deliver_due() for w in workers))
    finally:
        for w in workers:
            await w.close()
        await replica_db.dispose()
    ids = [h["webhook-id"] for h, _ in receiver.requests]
    assert len(ids) == 5 and len(set(ids)) == 5


async def test_subscriptions_belong_to_their_organisation(
    client: httpx.AsyncClient, issuer: Issuer, receiver: Receiver
) -> None:
    mine = await subscribe(client, issuer, receiver.url, ["pingtai.workflow.task.*"])
    other = issuer.headers(sub="b", roles=["dept_admin"], org="dept-b")
    listed = await client.get("/v1/webhooks", headers=issuer.headers(**DEPT_ADMIN))
    assert [w["id"] for w in listed.json()["items"]] == [mine["id"]]
    assert "secret" not in listed.json()["items"][0]
    assert (await client.get("/v1/webhooks", headers=other)).json()["items"] == []
    for method, path in [
        ("GET", f"/v1/webhooks/{mine['id']}"),
        ("GET", f"/v1/webhooks/{mine['id']}/deliveries"),
        ("DELETE", f"/v1/webhooks/{mine['id']}"),
    ]:
        assert (await client.request(method, path, headers=other)).status_code == 404
    admin = issuer.headers(sub="root", roles=["platform_admin"], org="platform")
    assert (await client.get(f"/v1/webhooks/{mine['id']}", headers=admin)).status_code == 200
    citizen = await client.post(
        "/v1/webhooks",
        json={"url": receiver.url, "event_types": ["pingtai.workflow.*"]},
        headers=issuer.headers(sub="alice"),
    )
    assert citizen.status_code == 403
    assert (await client.get("/v1/webhooks")).status_code == 401
    deleted = await client.delete(
        f"/v1/webhooks/{mine['id']}", headers=issuer.headers(**DEPT_ADMIN)
    )
    assert deleted.status_code == 204
    gone = await client.get(f"/v1/webhooks/{mine['id']}", headers=issuer.headers(**DEPT_ADMIN))
    assert gone.status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "ftp://example.org/hook"}, "url"),
        ({"url": "https://user:pw@example.org/hook"}, "url"),
        ({"url": "https:///nohost"}, "url"),
        ({"url": "https://example.org:99999/"}, "url"),
        ({"event_types": []}, "event_types"),
        ({"event_types": ["pingtai.exchange.grant.created"]}, "event_types"),
        ({"event_types": ["pingtai.workflow.sla.*.x"]}, "event_types"),
        ({"url": 5}, "url"),
        ({"secret": "mine"}, "secret"),
    ],
)
async def test_bad_subscriptions_are_422_problems(
    client: httpx.AsyncClient, issuer: Issuer, body: dict[str, Any], field: str
) -> None:
    response = await client.post(
        "/v1/webhooks",
        json={"url": "https://example.org/hook", "event_types": ["pingtai.workflow.*"], **body},
        headers=issuer.headers(**DEPT_ADMIN),
    )
    assert response.status_code == 422, response.text
    locations = [e["loc"] for e in response.json()["errors"]]
    assert any(field in loc for loc in locations), locations


async def test_bad_cursors_and_statuses_are_4xx(
    client: httpx.AsyncClient, issuer: Issuer, receiver: Receiver
) -> None:
    mine = await subscribe(client, issuer, receiver.url, ["pingtai.workflow.task.*"])
    headers = issuer.headers(**DEPT_ADMIN)
    for path in [
        f"/v1/webhooks/{mine['id']}/deliveries?cursor=bm9wZQ",
        f"/v1/webhooks/{mine['id']}/deliveries?cursor=WzEsMl0",  # [1,2]
        f"/v1/webhooks/{mine['id']}/deliveries?status=lost",
        "/v1/webhooks?cursor=WzEsMl0",
        "/v1/webhooks/not-an-id",
    ]:
        response = await client.get(path, headers=headers)
        assert 400 <= response.status_code < 500, (path, response.text)


async def test_at_most_so_many_webhooks_per_organisation(
    workflow_app: FastAPI, client: httpx.AsyncClient, issuer: Issuer
) -> None:
    workflow_app.state.settings.webhooks_max_per_org = 2
    for _ in range(2):
        await subscribe(client, issuer, "https://example.org/hook", ["pingtai.workflow.*"])
    third = await client.post(
        "/v1/webhooks",
        json={"url": "https://example.org/hook", "event_types": ["pingtai.workflow.*"]},
        headers=issuer.headers(**DEPT_ADMIN),
    )
    assert third.status_code == 409


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.1/hook",
        "http://169.254.169.254/latest/meta-data",  # cloud metadata
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://0.0.0.0/hook",
        "http://[2002:7f00:1::]/hook",  # 6to4 of 127.0.0.1
        "http://[2002:a01:203::1]/hook",  # 6to4 of 10.1.2.3
        "http://[64:ff9b::7f00:1]/hook",  # NAT64 of 127.0.0.1
        "http://[64:ff9b::a9fe:a9fe]/hook",  # NAT64 of 169.254.169.254
        "http://[2001:0:4136:e378:8000:63bf:f5fe:fefe]/hook",  # Teredo
        "http://[::127.0.0.1]/hook",  # IPv4-compatible
    ],
)
async def test_private_destinations_are_refused_when_checked(url: str) -> None:
    webhook_urls.check_form(url)
    with pytest.raises(webhook_urls.RefusedUrl, match="non-public"):
        await webhook_urls.check_destination(url)


async def test_public_addresses_pass_the_check() -> None:
    await webhook_urls.check_destination("https://8.8.8.8/hook")
    await webhook_urls.check_destination("https://[64:ff9b::808:808]/hook")  # NAT64 of 8.8.8.8
    await webhook_urls.check_destination("https://[2606:4700:4700::1111]/hook")


async def test_a_name_rebound_to_a_private_address_after_the_check_is_not_reached(
    workflow_app: FastAPI,
    client: httpx.AsyncClient,
    issuer: Issuer,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """DNS rebinding: the name answers a public address first, then 127.0.0.1. The deliverer
    resolves once and connects to the address it checked, so the receiver is never reached."""
    port = int(receiver.url.rsplit(":", 1)[1].split("/")[0])
    await subscribe(client, issuer, f"http://rebind.example:{port}/hook", ["pingtai.workflow.*"])
    answers = iter(["93.184.216.34", "127.0.0.1", "127.0.0.1", "127.0.0.1"])
    loop = asyncio.get_running_loop()
    real = loop.getaddrinfo

    async def rebinding(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "rebind.example":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (next(answers), port))]
        return await real(host, *args, **kwargs)

    monkeypatch.setattr(loop, "getaddrinfo", rebinding)
    # Whatever else resolves the name (a second lookup to connect) meets the private answer.
    real_sync = socket.getaddrinfo

    def rebound(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host in ("rebind.example", b"rebind.example"):
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]
        return real_sync(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebound)
    await fan_out(workflow_app, await overdue_event(
        workflow_app, task_department="dept-a", applicant_org="ent-1"))  # fmt: skip
    worker = deliverer(workflow_app, check_addresses=True, timeout_s=2.0)
    try:
        await worker.deliver_due()
    finally:
        await worker.close()
    assert receiver.requests == []
    # The first answer (public) was connected to, unreachable here, and nothing else was.
    async with workflow_app.state.database.sessionmaker() as session:
        [row] = (await session.execute(select(WebhookDelivery))).scalars().all()
    assert row.status == "pending" and row.attempts == 1
    assert "127.0.0.1" not in (row.attempt_log[0]["error"] or "")


async def test_the_pinned_client_keeps_the_host_header(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = int(receiver.url.rsplit(":", 1)[1].split("/")[0])
    loop = asyncio.get_running_loop()
    real = loop.getaddrinfo

    async def local(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "hooks.example":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]
        return await real(host, *args, **kwargs)

    monkeypatch.setattr(loop, "getaddrinfo", local)
    async with webhook_urls.pinned_client(timeout_s=5, check=False) as http:
        sent = await http.post(f"http://hooks.example:{port}/hook", content=b"{}")
    assert sent.status_code == 204
    [(headers, _body)] = receiver.requests
    assert headers["Host"] == f"hooks.example:{port}"
    async with webhook_urls.pinned_client(timeout_s=5, check=True) as http:
        with pytest.raises(webhook_urls.RefusedUrl, match="non-public"):
            await http.post(f"http://hooks.example:{port}/hook", content=b"{}")
    assert len(receiver.requests) == 1


async def test_only_those_who_subscribe_read_delete_or_see_deliveries(
    client: httpx.AsyncClient, issuer: Issuer, receiver: Receiver
) -> None:
    mine = await subscribe(client, issuer, receiver.url, ["pingtai.workflow.task.*"])
    officer = issuer.headers(sub="clerk", roles=["officer"], org="dept-a")
    citizen = issuer.headers(sub="cit", roles=["citizen"], org="dept-a")
    for who in (officer, citizen):
        for method, path in [
            ("GET", "/v1/webhooks"),
            ("GET", f"/v1/webhooks/{mine['id']}"),
            ("GET", f"/v1/webhooks/{mine['id']}/deliveries"),
            ("DELETE", f"/v1/webhooks/{mine['id']}"),
        ]:
            answer = await client.request(method, path, headers=who)
            assert answer.status_code == 403, (method, path, answer.text)
    kept = await client.get(f"/v1/webhooks/{mine['id']}", headers=issuer.headers(**DEPT_ADMIN))
    assert kept.status_code == 200


async def test_in_production_a_private_url_is_a_422_unless_allowed(
    workflow_app: FastAPI, client: httpx.AsyncClient, issuer: Issuer, receiver: Receiver
) -> None:
    settings = workflow_app.state.settings
    settings.env = "production"
    try:
        refused = await client.post(
            "/v1/webhooks",
            json={"url": receiver.url, "event_types": ["pingtai.workflow.*"]},
            headers=issuer.headers(**DEPT_ADMIN),
        )
        assert refused.status_code == 422
        assert "non-public" in refused.json()["errors"][0]["msg"]
        settings.webhooks_allow_private_addresses = True
        await subscribe(client, issuer, receiver.url, ["pingtai.workflow.*"])
    finally:
        settings.env = "test"
        settings.webhooks_allow_private_addresses = False
