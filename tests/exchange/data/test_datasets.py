"""The exchange's copy follows the catalogue's events; who sees which dataset."""

from __future__ import annotations

import uuid

import httpx
from fastapi import FastAPI

from services.exchange.datasets import get_dataset
from tests.exchange.conftest import Issuer
from tests.exchange.data.conftest import (
    ENTERPRISES,
    OTHER,
    OWNER,
    PEOPLE,
    definition,
    deliver,
    publish,
    published_event,
    retired_event,
)


async def _copy(app: FastAPI, dataset_id: str):  # type: ignore[no-untyped-def]
    async with app.state.database.sessionmaker() as session:
        return await get_dataset(session, dataset_id)


async def test_a_published_version_is_copied_with_what_the_exchange_needs(
    data_app: FastAPI,
) -> None:
    dataset_id = await publish(data_app, PEOPLE)
    copy = await _copy(data_app, dataset_id)
    assert copy is not None
    assert (copy.version, copy.owner_org_id, copy.status) == (1, OWNER, "published")
    assert (copy.subject_key_kind, copy.subject_key_field) == ("resident_id", "id_number")
    assert (copy.share_type, copy.open_type, copy.mode) == ("conditional", "not_open", "hosted")
    assert copy.not_open_reason == "涉及个人信息"
    assert [(f.name, f.type, f.sensitivity) for f in copy.fields][:2] == [
        ("id_number", "string", "personal"),
        ("name", "string", "personal"),
    ]


async def test_redelivery_and_older_versions_never_regress_the_copy(data_app: FastAPI) -> None:
    dataset_id = uuid.uuid4().hex
    v2 = definition(PEOPLE, name="人口基础信息（第二版）")
    second = published_event(dataset_id, v2, version=2)
    await deliver(data_app, second)
    await deliver(data_app, published_event(dataset_id, PEOPLE, version=1))  # late
    await deliver(data_app, second)  # again
    copy = await _copy(data_app, dataset_id)
    assert copy is not None and (copy.version, copy.name) == (2, "人口基础信息（第二版）")
    v3 = definition(PEOPLE, share_type="unconditional")
    await deliver(data_app, published_event(dataset_id, v3, version=3))
    copy = await _copy(data_app, dataset_id)
    assert copy is not None and (copy.version, copy.share_type) == (3, "unconditional")


async def test_a_retirement_stands_even_when_a_version_arrives_after_it(
    data_app: FastAPI,
) -> None:
    dataset_id = uuid.uuid4().hex
    await deliver(data_app, published_event(dataset_id, PEOPLE, version=1))
    await deliver(data_app, retired_event(dataset_id, PEOPLE, last_version=2))
    await deliver(data_app, published_event(dataset_id, PEOPLE, version=2))  # overtaken
    copy = await _copy(data_app, dataset_id)
    assert copy is not None and (copy.version, copy.status) == (2, "retired")


async def test_a_retirement_before_any_version_is_retried_later(data_app: FastAPI) -> None:
    dataset_id = uuid.uuid4().hex
    try:
        await deliver(data_app, retired_event(dataset_id, PEOPLE, last_version=1))
    except RuntimeError:
        pass
    else:  # pragma: no cover
        raise AssertionError("an early retirement must raise so the bus delivers it again")
    assert await _copy(data_app, dataset_id) is None


async def test_signed_in_callers_see_every_dataset_anonymous_ones_only_open(
    data_app: FastAPI, api: httpx.AsyncClient, issuer: Issuer
) -> None:
    people = await publish(data_app, PEOPLE)
    companies = await publish(data_app, ENTERPRISES)
    officer = issuer.headers(roles=["officer"], org=OTHER)

    listed = (await api.get("/v1/datasets", headers=officer)).json()["items"]
    assert {d["id"] for d in listed} == {people, companies}
    anonymous = (await api.get("/v1/datasets")).json()["items"]
    assert [d["id"] for d in anonymous] == [companies]

    shown = await api.get(f"/v1/datasets/{people}", headers=officer)
    assert shown.status_code == 200, shown.text
    assert shown.json()["subject_key"] == {"kind": "resident_id", "field": "id_number"}
    hidden = await api.get(f"/v1/datasets/{people}")
    unknown = await api.get(f"/v1/datasets/{uuid.uuid4().hex}")
    assert hidden.status_code == unknown.status_code == 404
    assert hidden.json()["type"] == unknown.json()["type"]
    assert (await api.get(f"/v1/datasets/{companies}")).status_code == 200


async def test_a_federated_endpoint_is_shown_only_to_its_department(
    data_app: FastAPI, api: httpx.AsyncClient, issuer: Issuer
) -> None:
    body = definition(
        ENTERPRISES, hosting={"mode": "federated", "endpoint_url": "https://dept.example/q"}
    )
    dataset_id = await publish(data_app, body)
    own = await api.get(
        f"/v1/datasets/{dataset_id}", headers=issuer.headers(roles=["officer"], org=OWNER)
    )
    other = await api.get(
        f"/v1/datasets/{dataset_id}", headers=issuer.headers(roles=["officer"], org=OTHER)
    )
    assert own.json()["endpoint_url"] == "https://dept.example/q"
    assert other.json()["endpoint_url"] is None
    assert other.json()["mode"] == "federated"


async def test_bad_ids_are_problems(api: httpx.AsyncClient) -> None:
    response = await api.get("/v1/datasets/not%20an%20id")
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
