"""Federated datasets: queries forwarded to a department's endpoint (a real HTTP server started
here), signed both ways; an altered, unsigned, misdirected or replayed answer is refused, and the
department refuses a request id it has seen."""

from __future__ import annotations

import asyncio
import json
import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from http_message_signatures import InvalidSignature
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from libs.common.errors import PingtaiError
from libs.common.subjects import subject_refs_for
from services.exchange.access.models import OrganisationSubject
from services.exchange.datasets import get_dataset
from services.exchange.federation import FederationClient, protocol
from services.exchange.ledger import LedgerEntry
from services.exchange.records import RecordSource
from services.identity.identifiers import make_credit_code
from tests.exchange.conftest import Issuer
from tests.exchange.data.conftest import ENTERPRISES, OTHER, OWNER, definition, publish

SECRET = b"department-a-shared-secret-0123456789"
CODES = [make_credit_code("9", "1", "330100", f"MA3{i}XL0E") for i in range(3)]
HELD = {CODES[0]: {"credit_code": CODES[0], "entity_name": "联邦企业", "employees": 7}}


@dataclass
class Department:
    """A department's endpoint; ``mode`` says how it (mis)behaves next."""

    url: str = ""
    mode: str = "honest"
    seen: list[dict[str, Any]] = field(default_factory=list)
    raw: list[tuple[list[tuple[bytes, bytes]], bytes]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    ids: protocol.SeenRequestIds = field(default_factory=protocol.SeenRequestIds)
    recorded: tuple[bytes, dict[str, str]] | None = None


def department_app(department: Department) -> Starlette:
    async def query(request: Request) -> Response:
        body = await request.body()
        try:
            protocol.verify_request(
                request.method, str(request.url), request.headers, body,
                key_id=OWNER, secret=SECRET, seen=department.ids,
            )  # fmt: skip
        except InvalidSignature as error:
            department.refused.append(type(error).__name__)
            return Response(str(error), status_code=401)
        asked = json.loads(body)
        department.seen.append({"headers": dict(request.headers), "body": asked})
        department.raw.append((list(request.headers.raw), body))
        if department.mode == "replay" and department.recorded is not None:
            # An answer recorded on the wire for an earlier request, sent again unchanged.
            recorded_body, recorded_headers = department.recorded
            return Response(recorded_body, headers=recorded_headers)
        if department.mode == "slow":
            await asyncio.sleep(2)
        records = [
            {"subject_key": key, "data": HELD[key]} for key in asked["subject_keys"] if key in HELD
        ]
        if department.mode == "extra":  # subjects and fields nobody asked for
            records.append({"subject_key": CODES[2], "data": {"entity_name": "不该有"}})
        answer = json.dumps({"records": records}, ensure_ascii=False).encode()
        headers = {
            "Content-Type": "application/json",
            protocol.ID_HEADER: request.headers[protocol.ID_HEADER],
            protocol.REQUEST_HASH_HEADER: protocol.request_hash(request.headers),
        }
        if department.mode == "body-hash":  # binds the body only, not the request (its id)
            headers[protocol.REQUEST_HASH_HEADER] = request.headers["Content-Digest"]
        if department.mode == "other-request":
            headers[protocol.REQUEST_HASH_HEADER] = "sha-256=:" + "A" * 43 + "=:"
        secret = b"not-the-agreed-secret" if department.mode == "wrong-key" else SECRET
        signed = protocol.sign_response(
            status_code=200, headers=headers, body=answer, key_id=OWNER, secret=secret
        )
        if department.mode == "unsigned":
            signed = headers
        if department.mode == "tampered":  # altered after signing, e.g. by a middlebox
            answer = answer.replace("联邦企业".encode(), "篡改企业".encode())
        if department.mode == "error":
            return Response("down", status_code=500)
        if department.mode == "replay":
            department.recorded = (answer, signed)
        return Response(answer, headers=signed)

    return Starlette(routes=[Route("/query", query, methods=["POST"])])


@pytest.fixture
async def department() -> AsyncIterator[Department]:
    """The department's endpoint, served by uvicorn on a free port of 127.0.0.1."""
    state = Department()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    state.url = f"http://127.0.0.1:{port}/query"
    server = uvicorn.Server(
        uvicorn.Config(department_app(state), log_level="warning", lifespan="off")
    )
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield state
    finally:
        server.should_exit = True
        await task
        sock.close()


@pytest.fixture
async def source() -> AsyncIterator[RecordSource]:
    async with httpx.AsyncClient(timeout=httpx.Timeout(1.0), trust_env=False) as http:
        federation = FederationClient(
            http=http, secrets={OWNER: SECRET}, max_response_bytes=64 * 1024
        )
        yield RecordSource(federation=federation)


async def _fetch(app: FastAPI, source: RecordSource, url: str, keys: list[str]) -> Any:
    body = definition(ENTERPRISES, hosting={"mode": "federated", "endpoint_url": url})
    dataset_id = await publish(app, body)
    async with app.state.database.sessionmaker() as session:
        dataset = await get_dataset(session, dataset_id)
        assert dataset is not None
        return await source.fetch(
            dataset, keys, reader=session, fields=["credit_code", "entity_name"],
            request_id="req-42", client_id="client-of-dept-b",
        )  # fmt: skip


async def test_a_federated_query_is_signed_and_its_answer_checked(
    data_app: FastAPI, source: RecordSource, department: Department
) -> None:
    found = await _fetch(data_app, source, department.url, [CODES[0], CODES[1]])
    assert found == {CODES[0]: {"credit_code": CODES[0], "entity_name": "联邦企业"}}
    seen = department.seen[0]
    assert seen["headers"]["x-road-client"] == "client-of-dept-b"
    # A message id of its own (random), the caller's request id beside it for tracing only.
    assert len(seen["headers"]["x-road-id"]) == 32 and seen["headers"]["x-road-id"] != "req-42"
    assert seen["headers"]["x-request-id"] == "req-42"
    assert seen["headers"]["content-digest"].startswith("sha-256=:")
    assert 'tag="pingtai-federation-request"' in seen["headers"]["signature-input"]
    assert seen["body"]["fields"] == ["credit_code", "entity_name"]


async def test_the_department_gets_only_what_was_asked_for_through(
    data_app: FastAPI, source: RecordSource, department: Department
) -> None:
    department.mode = "extra"
    found = await _fetch(data_app, source, department.url, [CODES[0]])
    assert set(found) == {CODES[0]}
    assert "employees" not in found[CODES[0]]


@pytest.mark.parametrize(
    ("mode", "status", "code"),
    [
        ("tampered", 502, "federation-response-refused"),
        ("unsigned", 502, "federation-response-refused"),
        ("wrong-key", 502, "federation-response-refused"),
        ("other-request", 502, "federation-response-refused"),
        ("body-hash", 502, "federation-response-refused"),
        ("error", 502, "federation-error"),
        ("slow", 504, "federation-timeout"),
    ],
)
async def test_answers_that_cannot_be_trusted_are_refused(
    data_app: FastAPI,
    source: RecordSource,
    department: Department,
    mode: str,
    status: int,
    code: str,
) -> None:
    department.mode = mode
    with pytest.raises(PingtaiError) as refused:
        await _fetch(data_app, source, department.url, [CODES[0]])
    assert (refused.value.status, refused.value.code) == (status, code)


async def test_a_request_signed_with_another_key_is_refused_by_the_department(
    department: Department,
) -> None:
    body = b'{"subject_keys":[]}'
    async with httpx.AsyncClient(trust_env=False) as http:
        request = http.build_request(
            "POST", department.url, content=body,
            headers={"Content-Type": "application/json", protocol.CLIENT_HEADER: "x",
                     protocol.ID_HEADER: "1"},
        )  # fmt: skip
        protocol.sign_request(request, key_id=OWNER, secret=b"guessed-secret", body=body)
        response = await http.send(request)
    assert response.status_code == 401
    assert department.seen == []


async def test_an_endpoint_that_is_down_or_unkeyed_is_a_problem(
    data_app: FastAPI, source: RecordSource
) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    closed = f"http://127.0.0.1:{sock.getsockname()[1]}/query"
    sock.close()
    with pytest.raises(PingtaiError) as down:
        await _fetch(data_app, source, closed, [CODES[0]])
    assert (down.value.status, down.value.code) == (502, "federation-unreachable")
    # The app's own source has no key for this department.
    app_source: RecordSource = data_app.state.record_source
    with pytest.raises(PingtaiError) as unkeyed:
        await _fetch(data_app, app_source, closed, [CODES[0]])
    assert unkeyed.value.code == "federation-not-configured"


async def _grant_and_read_twice(
    app: FastAPI, api: httpx.AsyncClient, issuer: Issuer, url: str
) -> tuple[httpx.Response, httpx.Response]:
    """A federated dataset granted to OTHER's system, read twice through the exchange's API
    with the same caller-chosen request id (the exchange's own message ids still differ)."""
    dataset_id = await publish(
        app, definition(ENTERPRISES, hosting={"mode": "federated", "endpoint_url": url})
    )
    system = issuer.headers(sub="client-of-b", roles=[], org=OTHER, scope="", acr="")
    asked = await api.post(
        "/v1/grants",
        json={"dataset_id": dataset_id, "fields": ["credit_code", "entity_name"],
              "purpose": "核验企业", "valid_until": "2027-06-30T00:00:00Z"},
        headers=system,
    )  # fmt: skip
    assert asked.status_code == 201 and asked.json()["status"] == "granted", asked.text
    reads = []
    for _ in range(2):
        reads.append(
            await api.get(
                f"/v1/datasets/{dataset_id}/records/{CODES[0]}",
                params={"purpose": "核验企业", "basis": "statute:《条例》第三条"},
                headers={**system, "X-Request-ID": "req-chosen-by-the-caller"},
            )
        )
    return reads[0], reads[1]


async def test_an_answer_replayed_for_another_request_is_refused_and_recorded(
    data_app: FastAPI,
    api: httpx.AsyncClient,
    issuer: Issuer,
    source: RecordSource,
    department: Department,
) -> None:
    data_app.state.record_source = source  # keyed for the department started here
    department.mode = "replay"
    first, replayed = await _grant_and_read_twice(data_app, api, issuer, department.url)
    assert first.status_code == 200, first.text
    assert first.json()["record"] == {"credit_code": CODES[0], "entity_name": "联邦企业"}
    # The same body and the same caller's request id, but the answer is bound to the first
    # forward's signed request: refused, nothing of it returned.
    assert replayed.status_code == 502, replayed.text
    assert replayed.headers["content-type"].startswith("application/problem+json")
    assert replayed.json()["type"].endswith("/federation-response-refused")
    ids = [seen["headers"]["x-road-id"] for seen in department.seen]
    assert len(ids) == 2 and ids[0] != ids[1]
    async with data_app.state.database.sessionmaker() as session:
        entries = list((await session.execute(select(LedgerEntry).order_by(LedgerEntry.position)))
                       .scalars())  # fmt: skip
    assert [(e.outcome, e.reason, e.actor_org_id) for e in entries] == [
        ("granted", None, OTHER),
        ("failed", "source-failed: federation-response-refused", OTHER),
    ]


@pytest.mark.parametrize("mode", ["tampered", "error"])
async def test_a_read_the_source_did_not_deliver_is_recorded_as_failed_and_shown_so(
    data_app: FastAPI,
    api: httpx.AsyncClient,
    issuer: Issuer,
    source: RecordSource,
    department: Department,
    mode: str,
) -> None:
    # Allowed by the rules, but nothing was delivered (an answer refused, a source down): the
    # ledger says "failed", not "granted", and so does the enterprise's "who used my data".
    data_app.state.record_source = source
    refs = subject_refs_for(data_app.state.settings.secret_key)
    async with data_app.state.database.sessionmaker() as session:
        session.add(OrganisationSubject(
            org_id="org-federal-co", kind="enterprise", name="联邦企业", status="active",
            subject_ref=refs.enterprise(CODES[0]),
        ))  # fmt: skip
        await session.commit()
    department.mode = mode
    first, second = await _grant_and_read_twice(data_app, api, issuer, department.url)
    assert (first.status_code, second.status_code) == (502, 502)
    code = first.json()["type"].rsplit("/", 1)[1]
    assert code == ("federation-response-refused" if mode == "tampered" else "federation-error")
    async with data_app.state.database.sessionmaker() as session:
        entries = list((await session.execute(select(LedgerEntry).order_by(LedgerEntry.position)))
                       .scalars())  # fmt: skip
    assert [(e.outcome, e.reason) for e in entries] == [("failed", f"source-failed: {code}")] * 2
    agent = issuer.headers(sub="agent-li", roles=["citizen", "enterprise_agent"],
                           org="org-federal-co", acr="2")  # fmt: skip
    tracker = await api.get("/v1/me/accesses", headers=agent)
    assert tracker.status_code == 200, tracker.text
    assert [(i["outcome"], i["reason"], i["organisation_id"]) for i in tracker.json()["items"]] == [
        ("failed", f"source-failed: {code}", OTHER)
    ] * 2


async def test_the_department_refuses_a_request_id_it_has_seen(
    data_app: FastAPI, source: RecordSource, department: Department
) -> None:
    await _fetch(data_app, source, department.url, [CODES[0]])
    [(raw_headers, body)] = department.raw
    # The exchange's signed request, captured and sent again unchanged within its lifetime.
    headers = [(k.decode(), v.decode()) for k, v in raw_headers
               if k.lower() not in {b"host", b"content-length"}]  # fmt: skip
    async with httpx.AsyncClient(trust_env=False) as http:
        again = await http.post(department.url, content=body, headers=headers)
    assert again.status_code == 401
    assert department.refused == ["ReplayedRequest"]
    assert len(department.seen) == 1
    # The exchange's next forward has an id of its own and is served.
    found = await _fetch(data_app, source, department.url, [CODES[0]])
    assert set(found) == {CODES[0]}
    assert len(department.seen) == 2


def test_request_ids_are_remembered_for_the_window_only() -> None:
    now = [1000.0]
    ids = protocol.SeenRequestIds(clock=lambda: now[0], max_entries=2)
    assert protocol.REPLAY_WINDOW == protocol.SIGNATURE_LIFETIME + timedelta(seconds=5)
    ids.remember(OWNER, "one")
    ids.remember(OTHER, "one")  # another department's id space
    with pytest.raises(protocol.ReplayedRequest):
        ids.remember(OWNER, "one")
    with pytest.raises(protocol.ReplayedRequest):  # full: refused, never forgotten early
        ids.remember(OWNER, "two")
    now[0] += protocol.REPLAY_WINDOW.total_seconds() + 1
    # Past the window the signature's age check refuses such a request; the id may go.
    ids.remember(OWNER, "one")
    ids.remember(OWNER, "two")


def test_a_request_id_is_refused_again_by_default() -> None:
    """Without a memory of its own, ``verify_request`` uses this process's: replay protection
    cannot be left out by forgetting an argument."""
    body = b'{"subject_keys":[]}'
    request = httpx.Request(
        "POST", "http://127.0.0.1/query", content=body,
        headers={"Content-Type": "application/json", protocol.CLIENT_HEADER: "x",
                 protocol.ID_HEADER: uuid.uuid4().hex},
    )  # fmt: skip
    protocol.sign_request(request, key_id=OWNER, secret=SECRET, body=body)

    def verify() -> None:
        protocol.verify_request(
            "POST", str(request.url), request.headers, body, key_id=OWNER, secret=SECRET
        )

    verify()
    with pytest.raises(protocol.ReplayedRequest):
        verify()
