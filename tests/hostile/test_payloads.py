"""SQL and script payloads in every text field of create endpoints: stored and returned
verbatim (or refused with a 422 where the field has a pattern), never executed, never a 500;
and shown HTML-escaped by the portal."""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import pytest_asyncio
from starlette.types import Receive, Scope, Send

from libs.common.identifiers import credit_code_check_char
from libs.common.migrations import migrate
from portal.app import create_app as create_portal
from portal.platform import Platform
from portal.settings import PortalSettings
from tests.catalog.items.helpers import MARKET, item_body
from tests.hostile.expect import problem
from tests.hostile.parts import Running
from tests.identity.conftest import Issuer

pytestmark = pytest.mark.asyncio(loop_scope="module")

PAYLOADS = {
    "sql-quote": "x' OR '1'='1",
    "sql-drop": "Robert'); DROP TABLE organisations; --",
    "sql-union": "' UNION SELECT secret_hash, 1 FROM oauth_clients --",
    "sql-comment": 'name"; --',
    "script": "<script>alert('pingtai')</script>",
    "html-attribute": '"><img src=x onerror=alert(1)>',
    "template": "{{7*7}} ${7*7} <%= 7*7 %>",
    "like-wildcards": "%_%\\",
    "nul": "a\x00b",
    "lone-surrogate": "a\ud800b",
    "bidi-override": "\u202egnp.exe",
}
ADMIN = {"roles": ["platform_admin"], "acr": "3"}
JSON = {"Content-Type": "application/json"}
_serial = itertools.count(1)


def credit_code() -> str:
    """A fresh, valid unified social credit code (GB 32100)."""
    first17 = f"9133010{next(_serial):010d}"
    return first17 + credit_code_check_char(first17)


def organisation() -> dict[str, Any]:
    return {"kind": "enterprise", "name": "杭州云栖科技有限公司", "name_en": "Yunqi",
            "region_code": "330100", "credit_code": credit_code()}  # fmt: skip


def dataset() -> dict[str, Any]:
    return {
        "code": f"zj-hostile-{next(_serial)}", "name": "法人基础信息", "name_en": "Legal entities",
        "description": "用于测试", "owner_org_id": MARKET, "region_code": "330000",
        "fields": [{"name": "credit_code", "type": "string", "sensitivity": "public",
                    "description": "代码"}],
        "subject_key": {"kind": "credit_code", "field": "credit_code"},
        "share_type": "unconditional", "open_type": "open", "update_frequency": "daily",
        "hosting": {"mode": "hosted"},
    }  # fmt: skip


def plan() -> dict[str, Any]:
    return {"code": f"plan-{next(_serial)}", "name": "基础版", "description": "测试",
            "requests_per_minute": 60, "requests_per_day": 1000}  # fmt: skip


def application() -> dict[str, Any]:
    return {"name": f"企业开办助手 {next(_serial)}", "description": "测试", "org_id": MARKET}


@dataclass(frozen=True)
class Create:
    """A create endpoint, a fresh valid body, where its text fields are, and where to read back."""

    part: str
    path: str
    body: Any
    fields: tuple[tuple[str | int, ...], ...]
    read: str  # the created resource's path, {} its id


CREATES = [
    Create("identity", "/v1/organisations", organisation,
           (("name",), ("name_en",), ("region_code",), ("credit_code",)), "/v1/organisations/{}"),
    Create("catalog", "/v1/datasets", dataset,
           (("code",), ("name",), ("name_en",), ("description",), ("region_code",),
            ("fields", 0, "name"), ("fields", 0, "description")), "/v1/datasets/{}"),
    Create("gateway", "/v1/plans", plan, (("code",), ("name",), ("description",)),
           "/v1/plans/{}"),
    Create("gateway", "/v1/applications", application, (("name",), ("description",)),
           "/v1/applications/{}"),
]  # fmt: skip


def _cases() -> Iterator[Any]:
    for create, payload in itertools.product(CREATES, PAYLOADS):
        for field in create.fields:
            name = ".".join(str(p) for p in field)
            yield pytest.param(
                create, field, payload, id=f"{create.part}{create.path}-{name}-{payload}"
            )


def _at(document: Any, field: tuple[str | int, ...]) -> Any:
    for step in field:
        document = document[step]
    return document


def _put(document: Any, field: tuple[str | int, ...], value: str) -> None:
    for step in field[:-1]:
        document = document[step]
    document[field[-1]] = value


@pytest.mark.parametrize(("create", "field", "payload"), _cases())
async def test_a_payload_is_stored_and_returned_verbatim_or_refused(
    parts: dict[str, Running], issuer: Issuer, create: Create, field: tuple[str | int, ...],
    payload: str,
) -> None:  # fmt: skip
    http = parts[create.part].http
    headers = issuer.headers(**ADMIN)
    body = create.body()
    _put(body, field, PAYLOADS[payload])
    # ensure_ascii: a lone surrogate travels as the JSON escape \ud800 (it has no UTF-8 form).
    response = await http.post(
        create.path, content=json.dumps(body).encode(), headers={**headers, **JSON}
    )
    if response.status_code == 422:  # a field with a pattern or a charset refuses it
        problem(response, 422)
        return
    assert response.status_code == 201, response.text
    created = response.json()
    assert _at(created, field) == PAYLOADS[payload]
    again = await http.get(create.read.format(created["id"]), headers=headers)
    assert again.status_code == 200, again.text
    assert _at(again.json(), field) == PAYLOADS[payload]
    # Nothing was executed: the part still lists what it holds.
    listed = await http.get(create.path, headers=headers)
    assert listed.status_code == 200, listed.text


class GatewayStub:
    """/api/<part>/... to the part's app in process, as the gateway routes it."""

    def __init__(self, parts: dict[str, Running]) -> None:
        self.parts = parts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        _, _, part, rest = scope["path"].split("/", 3)
        path = "/" + rest
        scope = {**scope, "path": path, "raw_path": path.encode()}
        await self.parts[part].app(scope, receive, send)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def portal(
    parts: dict[str, Running], tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[httpx.AsyncClient]:
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('portal') / 'portal.db'}"
    await asyncio.to_thread(migrate, "portal", url)
    app = create_portal(PortalSettings(database_url=url, api_url="http://gateway"))
    await app.state.platform.aclose()
    app.state.platform = Platform(
        "http://gateway", timeout=10, transport=httpx.ASGITransport(GatewayStub(parts))
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(transport=transport, base_url="http://portal") as client:
            yield client


SHOWN = {
    "script": ("<script>alert('pingtai')</script>", "&lt;script&gt;alert("),
    "html-attribute": ('"><img src=x onerror=alert(1)>', "&lt;img src=x onerror=alert(1)&gt;"),
}


@pytest.mark.parametrize("payload", SHOWN)
async def test_the_portal_shows_a_script_payload_escaped(
    parts: dict[str, Running], issuer: Issuer, portal: httpx.AsyncClient, payload: str
) -> None:
    raw, escaped = SHOWN[payload]
    catalog = parts["catalog"].http
    headers = issuer.headers(roles=["dept_admin"], org=MARKET, acr="3")
    body = item_body(f"zj-hostile-{uuid.uuid4().hex[:8]}", name=f"许可 {raw}",
                     description=f"说明 {raw}", legal_basis=raw)  # fmt: skip
    body["form"] = copy.deepcopy(body["form"])
    body["form"]["properties"]["entity_name"]["title"] = raw
    created = await catalog.post("/v1/items", json=body, headers=headers)
    assert created.status_code == 201, created.text
    item_id = created.json()["id"]
    published = await catalog.post(f"/v1/items/{item_id}/publish", headers=headers)
    assert published.status_code == 201, published.text

    page = await portal.get(f"/services/items/{item_id}")
    assert page.status_code == 200, page.text[:2000]
    assert raw not in page.text
    assert escaped in page.text
    found = await portal.get("/services", params={"q": "许可"})
    assert found.status_code == 200, found.text[:2000]
    assert raw not in found.text
    assert escaped in found.text
