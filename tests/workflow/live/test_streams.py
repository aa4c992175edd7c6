"""Live progress over real HTTP: streams, resume with Last-Event-ID, keep-alive, authorisation."""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx
import jwt
import pytest

from tests.workflow.conftest import ISSUER, Issuer
from tests.workflow.live.conftest import (
    EventReader,
    LiveServer,
    add_application,
    add_entry,
    start_server,
)


async def test_an_applicant_follows_their_own_applications_live(
    live: LiveServer, issuer: Issuer
) -> None:
    mine = await add_application(live.database, applicant_id="alice")
    theirs = await add_application(live.database, applicant_id="bob")
    async with (
        httpx.AsyncClient(base_url=live.url, timeout=10) as client,
        client.stream("GET", "/v1/me/events", headers=issuer.headers(sub="alice")) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-store"
        reader = EventReader(response)
        first = await reader.next()
        assert first["retry"] == "3000"  # the reconnection delay, in the first event
        await add_entry(live.database, theirs, applicant_id="bob", action="task.claimed")
        entry_id = await add_entry(live.database, mine, applicant_id="alice")
        got_id, data = await reader.data()
        assert got_id == entry_id  # bob's entry was not sent to alice
        assert data["application_id"] == mine
        assert data["action"] == "task.completed"
        assert data["comment"] == "材料齐全"
        assert data["to_status"] == "in_progress"


async def test_resume_with_last_event_id_replays_what_was_missed_then_goes_live(
    live: LiveServer, issuer: Issuer
) -> None:
    application = await add_application(live.database, applicant_id="alice")
    ids = [await add_entry(live.database, application, applicant_id="alice") for _ in range(4)]
    headers = {**issuer.headers(sub="alice"), "Last-Event-ID": str(ids[0])}
    async with (
        httpx.AsyncClient(base_url=live.url, timeout=10) as client,
        client.stream("GET", f"/v1/applications/{application}/events", headers=headers) as resp,
    ):
        assert resp.status_code == 200
        reader = EventReader(resp)
        replayed = [(await reader.data())[0] for _ in range(3)]
        assert replayed == ids[1:]
        later = await add_entry(live.database, application, applicant_id="alice")
        assert (await reader.data())[0] == later
    # The same resume through the query parameter (an EventSource cannot set headers at first).
    async with (
        httpx.AsyncClient(base_url=live.url, timeout=10) as client,
        client.stream(
            "GET",
            f"/v1/applications/{application}/events?last_event_id={ids[2]}",
            headers=issuer.headers(sub="alice"),
        ) as resp,
    ):
        reader = EventReader(resp)
        assert [(await reader.data())[0] for _ in range(2)] == [ids[3], later]


async def test_entries_written_by_another_replica_arrive_by_the_database_poll(
    live: LiveServer, issuer: Issuer, migrated_url: str
) -> None:
    from libs.common.database import Database

    application = await add_application(live.database, applicant_id="alice")
    other_replica = Database(migrated_url)
    try:
        async with (
            httpx.AsyncClient(base_url=live.url, timeout=10) as client,
            client.stream("GET", "/v1/me/events", headers=issuer.headers(sub="alice")) as resp,
        ):
            reader = EventReader(resp)
            await reader.next()
            entry_id = await add_entry(
                other_replica, application, applicant_id="alice", with_event=False
            )
            assert (await reader.data(timeout=3))[0] == entry_id
    finally:
        await other_replica.dispose()


async def test_idle_streams_get_keep_alive_comments(live: LiveServer, issuer: Issuer) -> None:
    async with (
        httpx.AsyncClient(base_url=live.url, timeout=10) as client,
        client.stream("GET", "/v1/me/events", headers=issuer.headers(sub="alice")) as resp,
    ):
        reader = EventReader(resp)
        await reader.next()
        with pytest.raises(TimeoutError):
            await reader.next(timeout=1.0)
        assert len([c for c in reader.comments if c.startswith("ping")]) >= 2


async def test_officers_follow_their_department_inbox(live: LiveServer, issuer: Issuer) -> None:
    application = await add_application(
        live.database, applicant_id="alice", task_department="dept-a"
    )
    officer = issuer.headers(sub="officer-a", roles=["officer"], org="dept-a")
    async with (
        httpx.AsyncClient(base_url=live.url, timeout=10) as client,
        client.stream("GET", "/v1/inbox/events", headers=officer) as resp,
    ):
        assert resp.status_code == 200
        reader = EventReader(resp)
        await reader.next()
        await add_entry(
            live.database, application, applicant_id="alice", department_org_id="dept-b"
        )
        mine = await add_entry(
            live.database, application, applicant_id="alice", department_org_id="dept-a"
        )
        got, data = await reader.data()
        assert got == mine and data["department_org_id"] == "dept-a"


@pytest.mark.parametrize(
    ("path_kind", "who", "status"),
    [
        ("application", {"sub": "mallory"}, 404),  # another citizen: as if it did not exist
        ("application", {"sub": "o", "roles": ["officer"], "org": "dept-x"}, 404),
        ("application", {"sub": "o", "roles": ["officer"], "org": "dept-a"}, 200),  # has a task
        ("application", {"sub": "o", "roles": ["dept_admin"], "org": "dept-owner"}, 200),
        ("application", {"sub": "agent", "roles": ["enterprise_agent"], "org": "ent-1"}, 200),
        ("application", {"sub": "agent", "roles": ["enterprise_agent"], "org": "ent-2"}, 404),
        ("application", {"sub": "alice"}, 200),
        ("missing", {"sub": "alice"}, 404),
        ("inbox", {"sub": "alice"}, 403),  # a citizen has no inbox
        ("inbox", {"sub": "o", "roles": ["officer"]}, 403),  # an officer of no department
    ],
)
async def test_who_may_follow_what(
    live: LiveServer, issuer: Issuer, path_kind: str, who: dict[str, object], status: int
) -> None:
    application = await add_application(
        live.database,
        applicant_id="alice",
        applicant_org_id="ent-1",
        owner_org_id="dept-owner",
        task_department="dept-a",
    )
    path = {
        "application": f"/v1/applications/{application}/events",
        "missing": f"/v1/applications/{'0' * 32}/events",
        "inbox": "/v1/inbox/events",
    }[path_kind]
    async with (
        httpx.AsyncClient(base_url=live.url, timeout=10) as client,
        client.stream("GET", path, headers=issuer.headers(**who)) as resp,
    ):
        assert resp.status_code == status
        if status != 200:
            await resp.aread()
            assert resp.headers["content-type"].startswith("application/problem+json")


async def test_bad_requests_are_problems(live: LiveServer, issuer: Issuer) -> None:
    async with httpx.AsyncClient(base_url=live.url, timeout=10) as client:
        unauthenticated = await client.get("/v1/me/events")
        assert unauthenticated.status_code == 401
        bad_id = await client.get(
            "/v1/me/events", headers={**issuer.headers(sub="a"), "Last-Event-ID": "12abc"}
        )
        assert bad_id.status_code == 422
        assert bad_id.json()["errors"][0]["loc"] == ["header", "Last-Event-ID"]
        bad_query = await client.get("/v1/me/events?last_event_id=-1", headers=issuer.headers())
        assert bad_query.status_code == 422
        bad_path = await client.get("/v1/applications/nope/events", headers=issuer.headers())
        assert bad_path.status_code == 422


async def test_a_disconnected_client_is_forgotten(live: LiveServer, issuer: Issuer) -> None:
    hub = live.app.state.live_hub
    async with (
        httpx.AsyncClient(base_url=live.url, timeout=10) as client,
        client.stream("GET", "/v1/me/events", headers=issuer.headers(sub="alice")) as resp,
    ):
        await EventReader(resp).next()
        assert len(hub.subscribers) == 1
    for _ in range(100):
        if not hub.subscribers:
            break
        await asyncio.sleep(0.05)
    assert hub.subscribers == set()


async def test_shutdown_ends_open_streams(migrated_url: str, issuer: Issuer) -> None:
    server = await start_server(migrated_url, issuer, sla_timer_enabled=False)
    async with (
        httpx.AsyncClient(base_url=server.url, timeout=10) as client,
        client.stream("GET", "/v1/me/events", headers=issuer.headers(sub="alice")) as resp,
    ):
        reader = EventReader(resp)
        await reader.next()
        stopping = asyncio.create_task(server.stop())
        with pytest.raises((EOFError, httpx.RemoteProtocolError)):
            await reader.next(timeout=8)
        await asyncio.wait_for(stopping, timeout=10)


def _short_lived(issuer: Issuer, sub: str, seconds: int) -> dict[str, str]:
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": "pingtai", "sub": sub, "client_id": "tests",
              "roles": ["citizen"], "scope": "openid", "jti": uuid.uuid4().hex, "iat": now,
              "exp": now + seconds, "acr": "1"}  # fmt: skip
    token = jwt.encode(claims, issuer.key, algorithm="RS256",
                       headers={"kid": issuer.kid, "typ": "at+jwt"})  # fmt: skip
    return {"Authorization": f"Bearer {token}"}


async def test_a_stream_ends_when_its_access_token_expires(
    live: LiveServer, issuer: Issuer
) -> None:
    # The server keeps a stream open with keep-alive comments; only the token's expiry (2 s)
    # ends this one. The 30 s bound tells "ended by the server" from "never ends" on a busy
    # machine without timing the server.
    async with (
        asyncio.timeout(30),
        httpx.AsyncClient(base_url=live.url, timeout=10) as client,
        client.stream("GET", "/v1/me/events", headers=_short_lived(issuer, "alice", 2)) as resp,
    ):
        assert resp.status_code == 200
        async for _chunk in resp.aiter_bytes():
            pass  # read until the server ends the stream
    hub = live.app.state.live_hub
    for _ in range(100):
        if not hub.subscribers:
            break
        await asyncio.sleep(0.05)
    assert hub.subscribers == set()
