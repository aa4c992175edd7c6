"""Department administration (部门管理): service items (draft, validate, publish), grant requests
on the department's datasets, rectification cases (差评整改); platform administration."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import HTMLResponse, Response

from libs.common.database import SessionDep
from portal.platform import ApiProblem
from portal.sessions.models import PortalSession
from portal.web import CsrfChecked, directory, platform, render, require_roles, see_other, token_of

router = APIRouter(prefix="/admin", include_in_schema=False)

Id = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")]
DeptAdmin = Annotated[PortalSession, require_roles("dept_admin", "platform_admin")]
PlatformAdmin = Annotated[PortalSession, require_roles("platform_admin")]

# A new item starts from this definition: the smallest the catalog accepts, to be edited.
NEW_ITEM: dict[str, Any] = {
    "code": "zj-new-001",
    "name": "新事项",
    "kind": "public_service",
    "applicant_types": ["individual"],
    "min_assurance_level": 1,
    "legal_time_limit_days": 10,
    "promised_time_limit_days": 5,
    "max_visits": 0,
    "fee": {"amount_fen": 0, "description": "不收费"},
    "legal_basis": "",
    "region_code": "330100",
    "form": {
        "type": "object",
        "properties": {"name": {"type": "string", "title": "姓名", "maxLength": 50}},
        "required": ["name"],
    },
    "materials": [],
    "template": {
        "start": "submitted",
        "states": [
            {"key": "submitted", "name": "已提交", "end": False},
            {"key": "approved", "name": "已办结", "end": True},
            {"key": "rejected", "name": "不予办理", "end": True},
        ],
        "actions": [
            {"key": "approve", "name": "办结", "from_states": ["submitted"],
             "to_states": ["approved"], "role": "officer", "department": "owner", "sla_days": 3},
            {"key": "reject", "name": "不予办理", "from_states": ["submitted"],
             "to_states": ["rejected"], "role": "officer", "department": "owner", "sla_days": 3},
        ],
    },
}  # fmt: skip

# What the item view carries beside the definition (not sent back on an edit).
_VIEW_ONLY = {
    "id", "item_id", "owner_org_id", "code", "showing", "version", "has_unpublished_changes",
    "published_at", "status", "retired_at", "created_at", "updated_at",
}  # fmt: skip


@router.get("/items", response_class=HTMLResponse)
async def items(request: Request, db: SessionDep, visitor: DeptAdmin) -> HTMLResponse:
    """The department's items: drafts, and the published ones."""
    token = await token_of(request, db, visitor)
    api = platform(request)
    owner = {"owner_org_id": visitor.org} if visitor.org else {}
    drafts = await api.get_json(
        "/api/catalog/v1/item-drafts", token=token, params={"limit": 200, **owner}
    )
    published = await api.get_json(
        "/api/catalog/v1/items", token=token, params={"limit": 200, "sort": "code", **owner}
    )
    return render(request, "admin_items.html", {"drafts": drafts, "published": published})


def _editor(
    request: Request, item: dict[str, Any] | None, text: str, problem: ApiProblem | None
) -> HTMLResponse:
    return render(request, "admin_item.html", {
        "item": item, "definition": text, "problem": problem,
    }, status=problem.status if problem else 200)  # fmt: skip


@router.get("/items/new", response_class=HTMLResponse)
async def new_item(request: Request, visitor: DeptAdmin) -> HTMLResponse:
    """A new item's definition, to edit and save as a draft."""
    return _editor(request, None, json.dumps(NEW_ITEM, ensure_ascii=False, indent=2), None)


def _parse(text: str) -> dict[str, Any]:
    try:
        parsed = json.loads(text)
    except ValueError as exc:
        raise ApiProblem(422, "JSON", f"The definition is not JSON: {exc}") from exc
    if not isinstance(parsed, dict):
        raise ApiProblem(422, "JSON", "The definition must be a JSON object.")
    return parsed


@router.post("/items")
async def create_item(
    request: Request,
    db: SessionDep,
    visitor: CsrfChecked,
    definition: Annotated[str, Form(max_length=200_000)],
) -> Response:
    """Save a new item as a draft (the catalog checks it whole)."""
    try:
        created = await platform(request).call(
            "POST", "/api/catalog/v1/items", token=await token_of(request, db, visitor),
            json=_parse(definition),
        )  # fmt: skip
    except ApiProblem as problem:
        if not problem.shown_on_form:
            raise
        return _editor(request, None, definition, problem)
    return see_other(f"/admin/items/{created.json()['id']}?saved=1")


@router.get("/items/{item_id}", response_class=HTMLResponse)
async def item(request: Request, db: SessionDep, visitor: DeptAdmin, item_id: Id) -> HTMLResponse:
    """An item's working copy, to edit (validated by the catalog on save) and publish."""
    found = await platform(request).get_json(
        f"/api/catalog/v1/items/{item_id}", token=await token_of(request, db, visitor)
    )
    definition = {k: v for k, v in found.items() if k not in _VIEW_ONLY}
    return _editor(request, found, json.dumps(definition, ensure_ascii=False, indent=2), None)


@router.post("/items/{item_id}")
async def save_item(
    request: Request,
    db: SessionDep,
    visitor: CsrfChecked,
    item_id: Id,
    definition: Annotated[str, Form(max_length=200_000)],
) -> Response:
    """Save the draft: the catalog validates it and names every broken rule."""
    token = await token_of(request, db, visitor)
    api = platform(request)
    try:
        await api.call(
            "PATCH", f"/api/catalog/v1/items/{item_id}", token=token, json=_parse(definition)
        )
    except ApiProblem as problem:
        if not problem.shown_on_form:
            raise
        found = await api.get_json(f"/api/catalog/v1/items/{item_id}", token=token)
        return _editor(request, found, definition, problem)
    return see_other(f"/admin/items/{item_id}?saved=1")


@router.post("/items/{item_id}/publish")
async def publish_item(
    request: Request, db: SessionDep, visitor: CsrfChecked, item_id: Id
) -> Response:
    """Publish the draft as the next version."""
    token = await token_of(request, db, visitor)
    api = platform(request)
    try:
        await api.call("POST", f"/api/catalog/v1/items/{item_id}/publish", token=token)
    except ApiProblem as problem:
        if not problem.shown_on_form:
            raise
        found = await api.get_json(f"/api/catalog/v1/items/{item_id}", token=token)
        definition = {k: v for k, v in found.items() if k not in _VIEW_ONLY}
        return _editor(
            request, found, json.dumps(definition, ensure_ascii=False, indent=2), problem
        )
    return see_other(f"/admin/items/{item_id}?published=1")


@router.get("/grants", response_class=HTMLResponse)
async def grants(request: Request, db: SessionDep, visitor: DeptAdmin) -> HTMLResponse:
    """Requests to use the department's datasets, waiting for an answer, and those answered."""
    page = await platform(request).get_json(
        "/api/exchange/v1/grants", token=await token_of(request, db, visitor),
        params={"side": "owner", "limit": 100},
    )  # fmt: skip
    return render(request, "admin_grants.html", {"page": page})


@router.post("/grants/{grant_id}/{answer}")
async def answer_grant(
    request: Request,
    db: SessionDep,
    visitor: CsrfChecked,
    grant_id: Id,
    answer: Annotated[str, Path(pattern=r"^(approve|refuse)$")],
    reason: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    """Approve or refuse a grant request."""
    body = {"reason": reason} if answer == "refuse" else None
    await platform(request).call(
        "POST", f"/api/exchange/v1/grants/{grant_id}/{answer}",
        token=await token_of(request, db, visitor), json=body,
    )  # fmt: skip
    return see_other("/admin/grants?answered=1")


@router.get("/cases", response_class=HTMLResponse)
async def cases(request: Request, db: SessionDep, visitor: DeptAdmin) -> HTMLResponse:
    """Rectification cases opened by bad reviews of the department's services."""
    token = await token_of(request, db, visitor)
    await directory(request).refresh(platform(request), token)
    page = await platform(request).get_json(
        "/api/evaluation/v1/cases", token=token, params={"limit": 100}
    )
    return render(request, "admin_cases.html", {"page": page, "directory": directory(request)})


@router.post("/cases/{case_id}/reply")
async def reply_to_case(
    request: Request,
    db: SessionDep,
    visitor: CsrfChecked,
    case_id: Id,
    reply: Annotated[str, Form(max_length=2000)] = "",
    fix: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """Answer a case: what the department says to the applicant and what it fixed."""
    await platform(request).call(
        "POST", f"/api/evaluation/v1/cases/{case_id}/reply",
        token=await token_of(request, db, visitor), json={"reply": reply, "fix": fix},
    )  # fmt: skip
    return see_other("/admin/cases?replied=1")


@router.get("/platform", response_class=HTMLResponse)
async def platform_admin(request: Request, db: SessionDep, visitor: PlatformAdmin) -> HTMLResponse:
    """Platform administration: the index's weights, API plans and organisations."""
    token = await token_of(request, db, visitor)
    api = platform(request)
    system = await api.get_json("/api/evaluation/v1/index-systems/current", token=token)
    plans = await api.get_json("/v1/plans", token=token)
    orgs = await api.get_json("/api/identity/v1/organisations", token=token, params={"limit": 200})
    return render(request, "admin_platform.html", {
        "system": system, "plans": plans, "orgs": orgs,
    })  # fmt: skip
