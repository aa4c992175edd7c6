"""Workflow's exchange client over aiohttp, against a real HTTP server on a local port."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import httpx
import pytest
from aiohttp import web

from pingtai.natsserver import free_port
from services.workflow.applications.models import ApplicationMaterial
from services.workflow.clients.exchange import Applicant, ExchangeClient, RecordRequest
from services.workflow.clients.tokens import ClientCredentialsToken
from services.workflow.clients.transport import AiohttpPoster, ExchangeUnreachable, HttpxPoster
from services.workflow.materials import service as materials_service


class Exchange:
    """A batch endpoint that records what it was sent; it closes connections when told."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.close_connections = False

    async def batch(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.calls.append({"body": body, "headers": dict(request.headers),
                           "dataset_id": request.match_info["dataset_id"]})  # fmt: skip
        if request.match_info["dataset_id"].startswith("federated"):
            kind = "federation-not-configured" if self.close_connections is False else "x"
            problem = {"type": f"https://pingtai.dev/problems/{kind}", "status": 502}
            return web.json_response(problem, status=502)
        if request.headers.get("Authorization") != "Bearer wf-token":
            return web.json_response({"status": 401}, status=401)
        items = [{"subject_key": s["subject_key"], "outcome": "read", "record": {"name": "张*"},
                  "masked_fields": ["name"], "ledger_position": len(self.calls)}
                 for s in body["subjects"]]  # fmt: skip
        headers = {"Connection": "close"} if self.close_connections else {}
        return web.json_response({"items": items}, headers=headers)


@pytest.fixture
async def exchange() -> AsyncIterator[tuple[Exchange, str]]:
    fake = Exchange()
    app = web.Application()
    app.router.add_post("/v1/datasets/{dataset_id}/records:batch", fake.batch)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield fake, f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def _token() -> ClientCredentialsToken:
    answer = httpx.Response(200, json={"access_token": "wf-token", "expires_in": 300})
    http = httpx.AsyncClient(transport=httpx.MockTransport(lambda _request: answer))
    return ClientCredentialsToken(
        http=http, token_url="http://identity/oauth2/token", client_id="workflow",
        secret=lambda: "s3cret",
    )  # fmt: skip


APPLICANT = Applicant("person-zhang", "org-yunqi")


def _requests() -> list[RecordRequest]:
    return [
        RecordRequest(dataset_id=f"ds-{n}", subject_key="330106198803121234",
                      fields=("name",), on_behalf_of=f"org-{n}")
        for n in range(4)
    ]  # fmt: skip


async def test_four_materials_are_asked_concurrently_over_aiohttp(
    exchange: tuple[Exchange, str],
) -> None:
    fake, url = exchange
    poster = AiohttpPoster(url, timeout_s=5)
    client = ExchangeClient(http=poster, token=_token())
    try:
        results = await client.fetch(
            _requests(), application_id="app-1", purpose="开办企业", applicant=APPLICANT
        )
        assert [r.outcome for r in results] == ["read"] * 4
        assert results[0].record == {"name": "张*"} and results[0].masked_fields == ["name"]
        assert {c["dataset_id"] for c in fake.calls} == {f"ds-{n}" for n in range(4)}
        assert {c["headers"]["X-On-Behalf-Of"] for c in fake.calls} == {
            f"org-{n}" for n in range(4)}  # fmt: skip
        assert {c["body"]["basis"] for c in fake.calls} == {"application:app-1"}
        # Exchange checks each subject against the applicant and the enterprise applied for.
        assert {(c["headers"]["X-Applicant-Id"], c["headers"]["X-Applicant-Org-Id"])
                for c in fake.calls} == {("person-zhang", "org-yunqi")}  # fmt: skip
        # The server closing each connection after answering: the next calls open new ones.
        fake.close_connections = True
        for _ in range(3):
            again = await client.fetch(
                _requests(), application_id="app-2", purpose="开办企业", applicant=APPLICANT
            )
            assert [r.outcome for r in again] == ["read"] * 4
    finally:
        await poster.close()


async def test_an_unreachable_exchange_leaves_the_materials_to_be_fetched_later() -> None:
    poster = AiohttpPoster(f"http://127.0.0.1:{free_port()}", timeout_s=2)
    client = ExchangeClient(http=poster, token=_token())
    try:
        results = await asyncio.wait_for(
            client.fetch(
                _requests(), application_id="app-3", purpose="开办企业", applicant=APPLICANT
            ),
            timeout=10,
        )
    finally:
        await poster.close()
    assert [r.outcome for r in results] == ["unavailable"] * 4
    assert "ClientConnectorError" in (results[0].reason or "")


async def test_a_department_with_no_system_connected_is_asked_of_the_applicant(
    exchange: tuple[Exchange, str],
) -> None:
    fake, url = exchange
    poster = AiohttpPoster(url, timeout_s=5)
    client = ExchangeClient(http=poster, token=_token())
    federated = [RecordRequest(dataset_id="federated-population", subject_key="x",
                               fields=(), on_behalf_of="org-police")]  # fmt: skip
    try:
        [not_connected] = await client.fetch(
            federated, application_id="a", purpose="p", applicant=APPLICANT
        )
        fake.close_connections = True  # any other 502: the department's system failed
        [failed] = await client.fetch(
            federated, application_id="a", purpose="p", applicant=APPLICANT
        )
    finally:
        await poster.close()
    assert not_connected.outcome == "refused"  # final: asked as an upload
    assert "federation-not-configured" in (not_connected.reason or "")
    assert failed.outcome == "unavailable"  # retried later


def _mocked(handler: Any) -> ExchangeClient:
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler), base_url="http://exchange")
    return ExchangeClient(http=HttpxPoster(http), token=_token())


async def test_answers_are_matched_by_position_whatever_key_exchange_answers_with() -> None:
    def normalising(request: httpx.Request) -> httpx.Response:
        subjects = json.loads(request.content)["subjects"]
        return httpx.Response(200, json={"items": [
            {"subject_key": s["subject_key"].strip().upper(), "outcome": "read",
             "record": {"n": i}, "ledger_position": i + 1}
            for i, s in enumerate(subjects)
        ]})  # fmt: skip

    asked = [RecordRequest(dataset_id="ds", subject_key=key, fields=(), on_behalf_of=None)
             for key in ("ab123 ", "３３０１０６１９８８０３１２１２３x")]  # fmt: skip
    results = await _mocked(normalising).fetch(asked, application_id="a", purpose="p",
                                               applicant=APPLICANT)  # fmt: skip
    assert [(r.outcome, r.record) for r in results] == [("read", {"n": 0}), ("read", {"n": 1})]


async def test_a_material_never_fetched_is_asked_of_the_applicant_after_the_cap() -> None:
    client = _mocked(lambda _request: httpx.Response(503, json={"title": "busy"}))
    row = ApplicationMaterial(application_id="a", key="m", name="m", source="dataset",
                              state="pending_fetch", dataset_id="ds", subject_key="k",
                              wanted_fields=[], fetch_attempts=0)  # fmt: skip
    for attempt in range(1, 4):
        await materials_service.fetch(
            client, application_id="a", applicant=APPLICANT, purpose="p", materials=[row],
            default_types=["application/pdf"], max_bytes=1024, max_attempts=3,
        )  # fmt: skip
        assert row.fetch_attempts == attempt
        assert row.state == ("requested" if attempt == 3 else "pending_fetch")
    assert (row.last_error or "").startswith("not fetched after 3 attempts")
    assert row.allowed_types == ["application/pdf"] and row.max_bytes == 1024


class _FailingFirst:
    """Stands in for aiohttp's session: the first POSTs fail with ``error``, then the real one."""

    def __init__(self, real: Any, error: Exception, failures: int = 1) -> None:
        self.real, self.error, self.failures, self.attempts = real, error, failures, 0
        self.closed = False

    def post(self, url: str, **kwargs: Any) -> Any:
        self.attempts += 1
        if self.attempts <= self.failures:
            raise self.error
        return self.real.post(url, **kwargs)

    async def close(self) -> None:
        await self.real.close()


def _unwritable(url: str) -> aiohttp.ClientOSError:
    # What aiohttp raises when a reused keep-alive connection was closed by the server.
    return aiohttp.ClientOSError(32, f"Can not write request body for {url}")


async def test_a_body_not_written_to_a_reused_connection_is_sent_once_more(
    exchange: tuple[Exchange, str],
) -> None:
    fake, url = exchange
    poster = AiohttpPoster(url, timeout_s=5)
    session = _FailingFirst(poster._client(), _unwritable(url))
    poster._session = session  # type: ignore[assignment]
    try:
        answer = await poster.post(
            "/v1/datasets/legal/records:batch", {"subjects": [{"subject_key": "k1"}]},
            {"Authorization": "Bearer wf-token"},
        )  # fmt: skip
    finally:
        await poster.close()
    assert answer.status == 200
    assert answer.body["items"][0]["subject_key"] == "k1"
    assert session.attempts == 2
    assert len(fake.calls) == 1  # exchange served it once


async def test_a_body_not_written_twice_and_other_connection_errors_are_not_retried(
    exchange: tuple[Exchange, str],
) -> None:
    fake, url = exchange
    for error, failures, attempts in (
        (_unwritable(url), 2, 2),  # one retry only
        # Reset while the answer was awaited: exchange may have served (and recorded) it.
        (aiohttp.ClientOSError(104, "Connection reset by peer"), 1, 1),
        (aiohttp.ServerDisconnectedError(), 1, 1),
    ):
        poster = AiohttpPoster(url, timeout_s=5)
        session = _FailingFirst(poster._client(), error, failures)
        poster._session = session  # type: ignore[assignment]
        try:
            with pytest.raises(ExchangeUnreachable):
                await poster.post(
                    "/v1/datasets/legal/records:batch", {"subjects": [{"subject_key": "k1"}]},
                    {"Authorization": "Bearer wf-token"},
                )  # fmt: skip
        finally:
            await poster.close()
        assert session.attempts == attempts
    assert fake.calls == []
