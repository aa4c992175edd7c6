"""The demo province's applications (办件): in every state, submitted and decided through the API.

First the ``workflow`` client is registered in identity (client credentials, exchange's
``exchange:application-basis`` scope) and its secret written where the workflow part reads it
(``<var_dir>/secrets/workflow-client.secret``, development only). Then demo citizens and
enterprise agents sign in (authorization code with PKCE through the portal's client, as a browser
would) and apply, and demo officers act, so that applications exist as drafts, awaiting
uploads, in progress, waiting for a supplement, completed, rejected and withdrawn. Each
submission carries an Idempotency-Key, so running the seed again changes nothing (and a run
that stopped half-way is resumed: uploads and decisions already made are not made again).

Deadlines are honest: nothing is backdated. The first step of every application (受理, accept)
is due at the end of the next working day, so the demo's open tasks come near their deadline
(a reminder) the next working day and pass it (``pingtai.workflow.sla.overdue``) the one after;
the inbox's ``due_before`` finds them.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from pingtai.demo.identity import DEMO_PASSWORD, ORGANISATIONS, PEOPLE, DemoPerson

Say = Callable[[str], None]

WORKFLOW_CLIENT_ID = "workflow"
PORTAL_CLIENT_ID = "portal"
DEV_PORTAL_CLIENT_SECRET = "pingtai-dev-portal-secret"  # identity's documented dev default
_INPUT = re.compile(r'<input type="hidden" name="(?P<name>[a-z_]+)" value="(?P<value>[^"]*)">')
_ACTION = re.compile(r'<form method="post" action="(?P<action>[^"]+)"')
PDF = b"%PDF-1.4\n% demo material\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def _person(phone_suffix: int) -> DemoPerson:
    return next(p for p in PEOPLE if p.phone.endswith(f"{phone_suffix:04d}"))


def _var_dir() -> Path:
    return Path(os.environ.get("PINGTAI_VAR_DIR", "var"))


async def _expect(response: httpx.Response, *ok: int) -> httpx.Response:
    if response.status_code not in ok:
        raise RuntimeError(
            f"{response.request.method} {response.request.url.path} answered "
            f"{response.status_code}: {response.text[:300]}"
        )
    return response


async def _org_ids(client: httpx.AsyncClient) -> dict[str, str]:
    ids = {}
    for org in ORGANISATIONS:
        found = await client.get("/api/identity/v1/organisations", params={"name": org.name})
        matches = [o["id"] for o in (await _expect(found, 200)).json()["items"]
                   if o["name"] == org.name]  # fmt: skip
        if matches:
            ids[org.key] = matches[0]
    return ids


async def ensure_workflow_client(client: httpx.AsyncClient, org_id: str | None) -> Path:
    """Register (or give a new secret to) workflow's client; write the secret for the part."""
    created = await client.post(
        "/api/identity/v1/clients",
        json={
            "client_id": WORKFLOW_CLIENT_ID, "name": "Workflow 办件系统",
            "client_type": "confidential", "grant_types": ["client_credentials"],
            "scopes": ["exchange:application-basis"], "org_id": org_id,
        },
    )  # fmt: skip
    await _expect(created, 201, 409)
    if created.status_code == 409:
        created = await _expect(
            await client.post(f"/api/identity/v1/clients/{WORKFLOW_CLIENT_ID}/secret"), 200
        )
    secret = created.json()["client_secret"]
    path = _var_dir() / "secrets" / "workflow-client.secret"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(secret)
    return path


def _form_of(html: str) -> tuple[str, dict[str, str]]:
    action = _ACTION.search(html)
    if action is None:
        raise RuntimeError(f"no form on the sign-in page: {html[:200]}")
    return unescape(action["action"]), {m["name"]: unescape(m["value"])
                                        for m in _INPUT.finditer(html)}  # fmt: skip


async def sign_in(gateway: str, person: DemoPerson, org_id: str | None) -> str:
    """An access token for a demo person (authorization code + PKCE via the portal's client)."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    redirect_uri = f"{gateway.rstrip('/')}/auth/callback"
    secret = os.environ.get("PINGTAI_IDENTITY_OAUTH_PORTAL_CLIENT_SECRET", DEV_PORTAL_CLIENT_SECRET)
    async with httpx.AsyncClient(base_url=gateway, timeout=30.0) as browser:
        page = await _expect(await browser.get("/oauth2/authorize", params={
            "response_type": "code", "client_id": PORTAL_CLIENT_ID, "redirect_uri": redirect_uri,
            "scope": "openid", "state": secrets.token_urlsafe(8),
            "code_challenge": challenge.decode().rstrip("="), "code_challenge_method": "S256",
        }), 200)  # fmt: skip
        action, fields = _form_of(page.text)
        answer = await browser.post(
            str(page.url.join(action)),
            data={**fields, "username": person.phone, "password": DEMO_PASSWORD},
        )
        if answer.status_code == 200 and "/authorize/organisation" in answer.text:
            action, fields = _form_of(answer.text)
            answer = await browser.post(str(answer.url.join(action)),
                                        data={**fields, "org": org_id or ""})  # fmt: skip
        await _expect(answer, 302, 303)
        code = parse_qs(urlsplit(answer.headers["location"]).query)["code"][0]
        token = await _expect(await browser.post(
            "/oauth2/token", auth=(PORTAL_CLIENT_ID, secret),
            data={"grant_type": "authorization_code", "code": code,
                  "redirect_uri": redirect_uri, "code_verifier": verifier},
        ), 200)  # fmt: skip
        access: str = token.json()["access_token"]
        return access


def _value(name: str, schema: dict[str, Any], person: DemoPerson, credit_code: str) -> Any:
    known = {
        "resident_id": person.resident_id, "name": person.name, "phone": person.phone,
        "credit_code": credit_code, "entity_name": "杭州云栖科技有限公司",
        "spouse_resident_id": person.resident_id, "bank_account": "6222020200112233445",
        "retirement_date": "2026-12-31", "birth_certificate_no": "Q330100123",
        "child_name": "张小宝", "address": "浙江省杭州市西湖区文三路 90 号",
        "business_scope": "软件开发；信息技术咨询服务", "reason": "本人申请",
    }  # fmt: skip
    if name in known:
        return known[name]
    return {"integer": 10, "number": 100.0}.get(str(schema.get("type")), "演示")


async def _offering(client: httpx.AsyncClient, kind: str, code: str) -> dict[str, Any]:
    found = (await _expect(await client.get(f"/api/catalog/v1/{kind}", params={"code": code}),
                           200)).json()["items"]  # fmt: skip
    if not found:
        raise RuntimeError(f"catalog has no {kind} {code}: run the catalog step first")
    body: dict[str, Any] = (await _expect(
        await client.get(f"/api/catalog/v1/{kind}/{found[0]['id']}"), 200)).json()  # fmt: skip
    return body


@dataclass(frozen=True)
class Scenario:
    key: str
    applicant: int  # phone suffix of the demo person
    kind: str  # items | bundles
    code: str
    enterprise: str | None = None  # organisation key an agent applies for
    draft: bool = False
    upload: bool = True  # upload what is asked
    # (phone suffix of the officer, organisation key, decision, comment), in order
    steps: tuple[tuple[int, str, str, str], ...] = ()
    withdraw: bool = False


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("draft", 2, "items", "zj-police-006", draft=True),
    Scenario("awaiting-materials", 3, "items", "zj-police-003", upload=False),
    Scenario("in-progress-birth", 1, "bundles", "zj-bundle-birth"),
    Scenario("in-progress-business", 31, "bundles", "zj-bundle-open-business", enterprise="yunqi"),
    Scenario("accepted", 3, "items", "zj-police-004", steps=((13, "police", "accept", "受理"),)),
    Scenario("supplement", 2, "items", "zj-police-005", steps=(
        (13, "police", "accept", "受理"),
        (13, "police", "request_supplement", "请补充现居住地址的不动产权证明"))),
    Scenario("completed", 2, "items", "zj-police-006", steps=(
        (13, "police", "accept", "受理"), (14, "police", "approve", "准予办理"))),
    Scenario("rejected", 1, "items", "zj-market-005", steps=(
        (11, "market", "accept", "受理"), (12, "market", "reject", "经营范围不符合规定"))),
    Scenario("withdrawn", 1, "items", "zj-civil-003", withdraw=True),
)  # fmt: skip


async def _run(
    gateway: str,
    scenario: Scenario,
    orgs: dict[str, str],
    tokens: dict[tuple[int, str | None], str],
) -> str:
    async def token(suffix: int, org_key: str | None) -> str:
        if (suffix, org_key) not in tokens:
            tokens[(suffix, org_key)] = await sign_in(
                gateway, _person(suffix), orgs.get(org_key) if org_key else None
            )
        return tokens[(suffix, org_key)]

    person = _person(scenario.applicant)
    async with httpx.AsyncClient(base_url=gateway, timeout=30.0) as http:
        headers = {
            "Authorization": f"Bearer {await token(scenario.applicant, scenario.enterprise)}"
        }
        offering = await _offering(http, scenario.kind, scenario.code)
        schema = offering.get("merged_form") or offering["form"]
        credit = next((o.credit_code for o in ORGANISATIONS if o.key == scenario.enterprise), "")
        form = {n: _value(n, s, person, credit) for n, s in schema.get("properties", {}).items()}
        target = {"bundle_id" if scenario.kind == "bundles" else "item_id": offering["id"]}
        body = {**target, "form": form, "draft": scenario.draft}
        for attempt in range(30):  # workflow's read copy follows catalog's events
            answer = await http.post("/api/workflow/v1/applications", json=body, headers={
                **headers, "Idempotency-Key": f"demo-{scenario.key}"})  # fmt: skip
            if answer.status_code != 503:
                break
            await asyncio.sleep(min(0.5 * (attempt + 1), 3.0))
        # A replay (the seed run again, or resumed after a failure) goes on from where the
        # application stands: what is uploaded and decided is not done twice.
        application = (await _expect(answer, 201)).json()
        path = f"/api/workflow/v1/applications/{application['id']}"
        if scenario.upload and application["status"] in ("draft", "awaiting_materials"):
            for material in application["materials"]:
                if material["state"] == "requested":
                    await _expect(await http.post(
                        f"{path}/materials/{material['key']}", content=PDF,
                        params={"filename": f"{material['key']}.pdf"},
                        headers={**headers, "Content-Type": "application/pdf"}), 200)  # fmt: skip
        decided = sum(1 for h in application["history"] if h["action"] == "task_completed")
        for suffix, org_key, decision, comment in scenario.steps[decided:]:
            officer = {"Authorization": f"Bearer {await token(suffix, org_key)}"}
            inbox = (await _expect(await http.get("/api/workflow/v1/tasks", params={
                "application_id": application["id"]}, headers=officer), 200)).json()["items"]  # fmt: skip
            task = next((t for t in inbox if decision in t["decisions"]), None)
            if task is None:
                raise RuntimeError(f"no task to {decision} in the inbox of demo person {suffix}")
            await _expect(await http.post(
                f"/api/workflow/v1/tasks/{task['id']}/actions",
                json={"decision": decision, "comment": comment}, headers=officer), 200)  # fmt: skip
        if scenario.withdraw and application["status"] != "withdrawn":
            await _expect(await http.post(f"{path}/withdraw", json={"reason": "不再需要"},
                                          headers=headers), 200)  # fmt: skip
        final = (await _expect(await http.get(path, headers=headers), 200)).json()
        return str(final["status"])


async def seed_workflow(client: httpx.AsyncClient, say: Say) -> int:
    """Workflow's client, then applications in every state; safe to run again."""
    orgs = await _org_ids(client)
    path = await ensure_workflow_client(client, orgs.get("data"))
    say(f"    the workflow client (its secret in {path})")
    gateway = str(client.base_url).rstrip("/")
    tokens: dict[tuple[int, str | None], str] = {}
    states = []
    for scenario in SCENARIOS:
        states.append(await _run(gateway, scenario, orgs, tokens))
    say(f"    {len(states)} applications: {', '.join(sorted(set(states)))}")
    return 1 + len(states)
