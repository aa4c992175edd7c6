"""The developer portal: the merged OpenAPI document, the published APIs and the plans page."""

from __future__ import annotations

import html
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, Field

from gateway.developers.openapi import OpenApiAggregator
from gateway.plans import service as plans_service
from gateway.routes import GATEWAY, RouteTable
from gateway.settings import AuthMode
from libs.common.database import SessionDep

# Served at the root (no /v1 prefix): /openapi.json replaces FastAPI's own, /developers is a page.
portal_router = APIRouter(include_in_schema=False)
router = APIRouter(tags=["developers"])

PART_TITLES = {
    "identity": "Identity (统一身份认证): people, organisations, roles, tokens",
    "catalog": "Catalog (政务服务事项与数据资源目录): service items, bundles, datasets",
    "exchange": "Exchange (数据共享交换): datasets, grants, consent, the access ledger",
    "workflow": "Workflow (办件): applications, tasks, SLA clocks",
    "evaluation": "Evaluation (好差评): reviews, rectification, indicators",
}


class PublishedApi(BaseModel):
    """One API the gateway publishes."""

    part: str
    prefix: str = Field(description="Where it is published, e.g. /api/catalog.")
    title: str
    auth: AuthMode = Field(description="What the route asks for at the gateway.")
    operations: int = Field(description="Operations in the merged OpenAPI document.")
    available: bool = Field(description="Whether its document could be read just now.")


async def merged_document(request: Request) -> dict[str, Any]:
    """The merged document, with the gateway's own API (FastAPI's generated document)."""
    aggregator: OpenApiAggregator = request.app.state.openapi
    return await aggregator.document(request.app.openapi())


@portal_router.get("/openapi.json")
async def openapi_json(request: Request) -> JSONResponse:
    return JSONResponse(await merged_document(request))


def _published(document: dict[str, Any], table: RouteTable) -> list[PublishedApi]:
    apis = []
    for part, state in document.get("x-pingtai-parts", {}).items():
        if part == GATEWAY:
            continue
        operations = sum(
            1
            for item in document["paths"].values()
            for op in item.values()
            if isinstance(op, dict) and op.get("tags", [""])[0].split("/")[0] == part
        )
        apis.append(
            PublishedApi(
                part=part,
                prefix=f"/api/{part}",
                title=PART_TITLES.get(part, part),
                auth=table.match(f"/api/{part}").policy.auth,
                operations=operations,
                available=state == "available",
            )
        )
    return apis


@router.get("/apis", summary="The APIs the gateway publishes (public)")
async def list_apis(request: Request) -> list[PublishedApi]:
    return _published(await merged_document(request), request.app.state.routes)


@portal_router.get("/developers", response_class=HTMLResponse)
async def developers_page(request: Request, session: SessionDep) -> HTMLResponse:
    apis = _published(await merged_document(request), request.app.state.routes)
    plans = await plans_service.search(session=session, principal=None, after=None, limit=200)
    esc = html.escape
    api_rows = "".join(
        f"<tr><td><code>{esc(a.prefix)}</code></td><td>{esc(a.title)}</td>"
        f"<td>{a.operations}</td><td>{esc(a.auth)}</td>"
        f"<td>{'yes' if a.available else 'unavailable now'}</td></tr>"
        for a in apis
    )
    plan_rows = "".join(
        f"<tr><td><code>{esc(p.code)}</code></td><td>{esc(p.name)}</td>"
        f"<td>{p.requests_per_minute:,}</td><td>{p.requests_per_day:,}</td>"
        f"<td>{'yes' if p.requires_token else 'no'}</td><td>{esc(p.description)}</td></tr>"
        for p in plans
    )
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Pingtai developers (开发者中心)</title>
<style>body{{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}}
table{{border-collapse:collapse;width:100%}}
td,th{{border:1px solid #ccc;padding:.4rem;text-align:left}}
</style></head><body>
<h1>Pingtai developers <span lang="zh">开发者中心</span></h1>
<p>Every API below is described in one OpenAPI document, <a href="/openapi.json">/openapi.json</a>,
and can be tried in the <a href="/docs">interactive docs</a>.</p>
<h2>Published APIs</h2>
<table><thead><tr><th>Prefix</th><th>API</th><th>Operations</th><th>Gateway asks for</th>
<th>Available</th></tr></thead><tbody>{api_rows}</tbody></table>
<h2>Plans <span lang="zh">套餐</span></h2>
<table><thead><tr><th>Code</th><th>Name</th><th>Requests / minute</th><th>Requests / day</th>
<th>Needs a client-credentials token</th><th>About</th></tr></thead>
<tbody>{plan_rows}</tbody></table>
<h2>Getting a key</h2>
<ol><li>Sign in as your organisation's department admin or enterprise agent and get an access
token from <code>/oauth2/token</code>.</li>
<li>Register your application: <code>POST /v1/applications</code>.</li>
<li>Issue a key on a plan: <code>POST /v1/applications/{{id}}/keys</code>.
The key is shown once.</li>
<li>Send it as <code>X-API-Key</code>. Watch <code>RateLimit</code> headers; follow your usage at
<code>GET /v1/applications/{{id}}/usage</code>.</li></ol>
</body></html>"""
    return HTMLResponse(page)
