"""The whole path on a real NATS server: the SLA timer's overdue event goes through the outbox,
the relay and workflow's stream to the webhook fan-out; a signed delivery reaches the receiver."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import httpx
from standardwebhooks import Webhook as Verifier

from libs.common.auth import JwksCache, TokenVerifier
from pingtai.natsserver import NatsServer
from services.workflow.app import create_app
from services.workflow.ids import utcnow
from services.workflow.settings import WorkflowSettings
from services.workflow.sla import start_clock
from tests.workflow.conftest import ISSUER, Issuer
from tests.workflow.live.conftest import Receiver, add_application
from tests.workflow.live.test_webhooks import DEPT_ADMIN


async def test_an_overdue_task_reaches_its_department_s_webhook(
    migrated_url: str, issuer: Issuer, nats_server: NatsServer, receiver: Receiver
) -> None:
    settings = WorkflowSettings(
        database_url=migrated_url, issuer=ISSUER, nats_url=nats_server.url,
        sla_timer_poll_s=0.2, webhooks_poll_s=0.2, events_relay_poll_s=0.2,
    )  # fmt: skip
    app = create_app(settings)
    jwks = issuer.jwks()
    app.state.token_verifier = TokenVerifier(
        issuer=ISSUER,
        audience="pingtai",
        jwks=JwksCache(
            "http://jwks.test/jwks.json",
            client=httpx.AsyncClient(
                transport=httpx.MockTransport(lambda r: httpx.Response(200, json=jwks))
            ),
        ),
    )
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://wf") as client,
    ):
        created = await client.post(
            "/v1/webhooks",
            json={"url": receiver.url, "event_types": ["pingtai.workflow.sla.overdue"]},
            headers=issuer.headers(**DEPT_ADMIN),
        )
        assert created.status_code == 201, created.text
        secret = created.json()["secret"]
        application_id = await add_application(
            app.state.database, applicant_id="alice", task_department="dept-a"
        )
        async with app.state.database.sessionmaker() as session:
            await start_clock(
                session, kind="task", ref_id="task-1", application_id=application_id,
                department_org_id="dept-a", due_at=utcnow() + timedelta(seconds=0.3),
            )  # fmt: skip
            await session.commit()
        for _ in range(200):
            if receiver.requests:
                break
            await asyncio.sleep(0.05)
        assert len(receiver.requests) == 1, "no delivery within 10 s"
        headers, body = receiver.requests[0]
        payload = Verifier(secret).verify(body, headers)
        assert payload["type"] == "pingtai.workflow.sla.overdue"
        assert payload["data"]["ref_id"] == "task-1"
        log = await client.get(
            f"/v1/webhooks/{created.json()['id']}/deliveries",
            headers=issuer.headers(**DEPT_ADMIN),
        )
        for _ in range(50):  # the result is recorded just after the receiver answered
            if log.json()["items"][0]["status"] == "delivered":
                break
            await asyncio.sleep(0.05)
            log = await client.get(
                f"/v1/webhooks/{created.json()['id']}/deliveries",
                headers=issuer.headers(**DEPT_ADMIN),
            )
        assert log.json()["items"][0]["status"] == "delivered"
        assert json.loads(body)["event_id"] == log.json()["items"][0]["event_id"]
    await asyncio.sleep(0.2)
    assert len(receiver.requests) == 1
