"""Department administration (部门管理): service items, one-thing bundles and datasets (draft,
validate, publish), grant requests on the department's datasets, rectification cases (差评整改);
platform administration: indicator weights, API plans, organisations."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Path, Request
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import FormData

from libs.common.database import SessionDep
from portal.forms import fields_of, values_from
from portal.i18n import _
from portal.platform import ApiProblem
from portal.sessions.models import PortalSession
from portal.web import (
    CsrfChecked,
    PageNotAllowed,
    directory,
    platform,
    render,
    require_roles,
    see_other,
    token_of,
)

router = APIRouter(prefix="/admin", include_in_schema=False)

Id = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")]
DeptAdmin = Annotated[PortalSession, require_roles("dept_admin", "platform_admin")]
PlatformAdmin = Annotated[PortalSession, require_roles("platform_admin")]


async def _platform_form(visitor: CsrfChecked) -> PortalSession:
    if "platform_admin" not in visitor.roles:
        raise PageNotAllowed
    return visitor


# A platform admin's form: its CSRF token checked, then the role.
PlatformForm = Annotated[PortalSession, Depends(_platform_form)]

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

# A new bundle: two published items of the department, to be named (their ids from the list).
NEW_BUNDLE: dict[str, Any] = {
    "code": "zj-new-bundle",
    "name": "新的一件事",
    "name_en": "A new one-thing bundle",
    "description": "",
    "item_ids": ["<item id>", "<item id>"],
    "field_mapping": {},
}

# A new dataset: one hosted, shared and open field set, to be edited.
NEW_DATASET: dict[str, Any] = {
    "code": "zj-new-dataset",
    "name": "新数据资源",
    "name_en": "A new dataset",
    "description": "",
    "region_code": "330100",
    "fields": [
        {"name": "credit_code", "type": "string", "sensitivity": "public", "description": ""},
        {"name": "entity_name", "type": "string", "sensitivity": "public", "description": ""},
    ],
    "subject_key": {"kind": "credit_code", "field": "credit_code"},
    "share_type": "conditional",
    "open_type": "not_open",
    "not_open_reason": "含企业经营信息",
    "update_frequency": "daily",
    "hosting": {"mode": "hosted"},
}


@dataclass(frozen=True)
class Definitions:
    """One kind of the catalog's drafts a department edits as JSON: items, bundles, datasets.
    Each is drafted, validated by the catalog on save (every broken rule listed) and published
    through catalog's API with the person's token."""

    path: str  # the portal's and the catalog's: /admin/<path>, /api/catalog/v1/<path>
    new: dict[str, Any]
    # What is sent back on an edit: these keys only (None: all but _VIEW_ONLY).
    editable: frozenset[str] | None
    # The department's drafts: (catalog path, extra parameters).
    drafts: tuple[str, dict[str, str]]
    # The department's published ones.
    published: tuple[str, dict[str, str]]

    def definition(self, found: dict[str, Any]) -> dict[str, Any]:
        """What the editor shows of a catalog view: the editable definition."""
        if self.editable is None:
            return {k: v for k, v in found.items() if k not in _VIEW_ONLY}
        return {k: v for k, v in found.items() if k in self.editable}


KINDS: dict[str, Definitions] = {
    "items": Definitions(
        "items", NEW_ITEM, None, ("item-drafts", {}), ("items", {"sort": "code"})
    ),
    "bundles": Definitions(
        "bundles", NEW_BUNDLE,
        frozenset({"name", "name_en", "description", "item_ids", "field_mapping"}),
        ("bundle-drafts", {}), ("bundles", {}),
    ),
    "datasets": Definitions(
        "datasets", NEW_DATASET,
        frozenset({
            "name", "name_en", "description", "region_code", "fields", "subject_key",
            "share_type", "open_type", "not_open_reason", "update_frequency", "hosting",
        }),
        ("datasets", {"status": "draft"}), ("datasets", {}),
    ),
}  # fmt: skip
Kind = Annotated[str, Path(pattern=r"^(items|bundles|datasets)$")]
CatalogId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,32}$")]


def _dump(definition: dict[str, Any]) -> str:
    return json.dumps(definition, ensure_ascii=False, indent=2)


def _parse(text: str) -> dict[str, Any]:
    try:
        parsed = json.loads(text)
    except ValueError as exc:
        raise ApiProblem(422, "JSON", f"The definition is not JSON: {exc}") from exc
    if not isinstance(parsed, dict):
        raise ApiProblem(422, "JSON", "The definition must be a JSON object.")
    return parsed


def _editor(
    request: Request,
    kind: Definitions,
    found: dict[str, Any] | None,
    text: str,
    problem: ApiProblem | None,
) -> HTMLResponse:
    return render(request, "admin_definition.html", {
        "kind": kind.path, "item": found, "definition": text, "problem": problem,
    }, status=problem.status if problem else 200)  # fmt: skip


async def _list(request: Request, db: SessionDep, visitor: PortalSession, kind: str) -> Response:
    definitions = KINDS[kind]
    token = await token_of(request, db, visitor)
    api = platform(request)
    owner = {"owner_org_id": visitor.org} if visitor.org else {}
    path, extra = definitions.drafts
    drafts = await api.get_json(
        f"/api/catalog/v1/{path}", token=token, params={"limit": 200, **extra, **owner}
    )
    path, extra = definitions.published
    published = await api.get_json(
        f"/api/catalog/v1/{path}", token=token, params={"limit": 200, **extra, **owner}
    )
    return render(request, "admin_list.html", {
        "kind": kind, "drafts": drafts, "published": published,
    })  # fmt: skip


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
    """Platform administration: the index's weights, API plans and organisations, in brief."""
    token = await token_of(request, db, visitor)
    api = platform(request)
    system = await api.get_json("/api/evaluation/v1/index-systems/current", token=token)
    plans = await api.get_json("/v1/plans", token=token, params={"limit": 200})
    orgs = await api.get_json("/api/identity/v1/organisations", token=token, params={"limit": 20})
    return render(request, "admin_platform.html", {
        "system": system, "plans": plans, "orgs": orgs,
    })  # fmt: skip


# --- Indicator weights (指标体系): the next version of evaluation's indicator system ---------


def _number(text: str) -> float | str:
    """A posted number; text that is not one goes as it is, so evaluation's 422 names it."""
    try:
        return float(text)
    except ValueError:
        return text


async def _weights_page(
    request: Request,
    token: str,
    system: dict[str, Any] | None = None,
    problem: ApiProblem | None = None,
) -> HTMLResponse:
    api = platform(request)
    versions = await api.get_json("/api/evaluation/v1/index-systems", token=token)
    if system is None:
        system = await api.get_json("/api/evaluation/v1/index-systems/current", token=token)
    return render(request, "admin_weights.html", {
        "system": system, "versions": versions, "problem": problem,
    }, status=problem.status if problem else 200)  # fmt: skip


@router.get("/platform/weights", response_class=HTMLResponse)
async def weights(request: Request, db: SessionDep, visitor: PlatformAdmin) -> HTMLResponse:
    """The indicator system in use, as a form: dimension and indicator weights, targets and
    floors; its stored versions."""
    return await _weights_page(request, await token_of(request, db, visitor))


@router.post("/platform/weights")
async def save_weights(request: Request, db: SessionDep, visitor: PlatformForm) -> Response:
    """Store the next version of the indicator system (evaluation checks it whole)."""
    token = await token_of(request, db, visitor)
    api = platform(request)
    posted = await request.form()
    system = await api.get_json("/api/evaluation/v1/index-systems/current", token=token)
    for dimension in system["dimensions"]:
        key = dimension["key"]
        dimension["weight"] = _number(str(posted.get(f"d.{key}.weight", dimension["weight"])))
        for indicator in dimension["indicators"]:
            name = f"i.{key}.{indicator['indicator']}"
            for part in ("weight", "target", "floor"):
                indicator[part] = _number(str(posted.get(f"{name}.{part}", indicator[part])))
    note = str(posted.get("note") or "").strip()
    body = {"dimensions": system["dimensions"], "note": note or None}
    try:
        created = await api.call("POST", "/api/evaluation/v1/index-systems", token=token, json=body)
    except ApiProblem as problem:
        if not problem.shown_on_form:
            raise
        return await _weights_page(request, token, {**system, "note": note}, problem)
    return see_other(f"/admin/platform/weights?saved={created.json()['version']}")


# --- API plans (套餐) at the gateway, and organisations (组织机构) at identity ---------------


def _plan_schema(new: bool) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "code": {"type": "string", "title": _("Code"), "maxLength": 64,
                 "description": _("Lower-case letters, digits and hyphens; cannot change.")},
        "name": {"type": "string", "title": _("Name"), "maxLength": 200},
        "description": {"type": "string", "title": _("Description"), "maxLength": 2000},
        "requests_per_minute": {"type": "integer", "title": _("Requests per minute")},
        "requests_per_day": {"type": "integer", "title": _("Requests per day")},
        "requires_token": {"type": "boolean", "title": _("Keys need a client-credentials token")},
        "published": {"type": "boolean", "title": _("Published (listed and open to new keys)")},
    }  # fmt: skip
    if not new:
        del properties["code"]
    required = ["name", "requests_per_minute", "requests_per_day"] + (["code"] if new else [])
    return {"type": "object", "properties": properties, "required": required}


def _organisation_schema(new: bool) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "kind": {"type": "string", "title": _("Kind"), "enum": ["department", "enterprise"]},
        "name": {"type": "string", "title": _("Name (Chinese)"), "maxLength": 200},
        "name_en": {"type": "string", "title": _("Name (English)"), "maxLength": 200},
        "region_code": {"type": "string", "title": _("Region code"), "maxLength": 6,
                        "description": _("Six digits, GB/T 2260 (e.g. 330100, Hangzhou).")},
        "credit_code": {"type": "string", "title": _("Unified social credit code"),
                        "maxLength": 18, "description": _("18 characters, GB 32100.")},
        "status": {"type": "string", "title": _("Status"), "enum": ["active", "suspended"]},
    }  # fmt: skip
    for name in ("status",) if new else ("kind", "region_code", "credit_code"):
        del properties[name]
    required = ["kind", "name", "region_code", "credit_code"] if new else ["name"]
    return {"type": "object", "properties": properties, "required": required}


def _shown(values: dict[str, Any]) -> dict[str, str]:
    """Values as a form shows them (text; checkboxes checked by "true")."""
    return {
        k: ("true" if v else "") if isinstance(v, bool) else "" if v is None else str(v)
        for k, v in values.items()
    }


@dataclass(frozen=True)
class Registry:
    """A list the platform admin manages through a service's API: API plans at the gateway,
    organisations at identity. Each is listed, created and edited with plain forms."""

    path: str  # /admin/platform/<path>
    api: str  # the collection's API path
    schema: Callable[[bool], dict[str, Any]]
    # Booleans a form without the box ticked must send as false.
    flags: tuple[str, ...]
    list_params: dict[str, Any]


REGISTRIES: dict[str, Registry] = {
    "plans": Registry("plans", "/v1/plans", _plan_schema, ("requires_token", "published"),
                      {"limit": 200}),
    "organisations": Registry("organisations", "/api/identity/v1/organisations",
                              _organisation_schema, (), {"limit": 50}),
}  # fmt: skip
RegistryName = Annotated[str, Path(pattern=r"^(plans|organisations)$")]


async def _registry_page(
    request: Request,
    token: str,
    registry: Registry,
    *,
    new_values: dict[str, Any] | None = None,
    problem: ApiProblem | None = None,
) -> HTMLResponse:
    params = dict(registry.list_params)
    for name in ("cursor", "name", "kind"):
        if value := request.query_params.get(name):
            params[name] = value[:500]
    page = await platform(request).get_json(registry.api, token=token, params=params)
    errors = problem.field_errors(("body",)) if problem else {}
    defaults = {"published": True, "kind": "department"}
    fields = fields_of(registry.schema(True), _shown(new_values or defaults), errors)
    return render(request, "admin_registry.html", {
        "registry": registry.path, "page": page, "fields": fields, "problem": problem,
    }, status=problem.status if problem else 200)  # fmt: skip


async def _record_page(
    request: Request,
    token: str,
    registry: Registry,
    record_id: str,
    *,
    values: dict[str, Any] | None = None,
    problem: ApiProblem | None = None,
) -> HTMLResponse:
    found = await platform(request).get_json(f"{registry.api}/{record_id}", token=token)
    errors = problem.field_errors(("body",)) if problem else {}
    fields = fields_of(registry.schema(False), _shown(values or found), errors)
    return render(request, "admin_record.html", {
        "registry": registry.path, "record": found, "fields": fields, "problem": problem,
    }, status=problem.status if problem else 200)  # fmt: skip


def _posted(registry: Registry, new: bool, posted: FormData) -> dict[str, Any]:
    values = values_from(registry.schema(new), posted)
    for flag in registry.flags:
        values.setdefault(flag, False)
    return values


@router.get("/platform/{name}", response_class=HTMLResponse)
async def registry_list(
    request: Request, db: SessionDep, visitor: PlatformAdmin, name: RegistryName
) -> HTMLResponse:
    """The plans or organisations, and a form to add one."""
    return await _registry_page(request, await token_of(request, db, visitor), REGISTRIES[name])


@router.post("/platform/{name}")
async def registry_create(
    request: Request, db: SessionDep, visitor: PlatformForm, name: RegistryName
) -> Response:
    """Create a plan or register an organisation; the service's refusals beside the fields."""
    registry = REGISTRIES[name]
    token = await token_of(request, db, visitor)
    values = _posted(registry, True, await request.form())
    try:
        created = await platform(request).call("POST", registry.api, token=token, json=values)
    except ApiProblem as problem:
        if not problem.shown_on_form:
            raise
        return await _registry_page(request, token, registry, new_values=values, problem=problem)
    return see_other(f"/admin/platform/{name}/{created.json()['id']}?saved=1")


@router.get("/platform/{name}/{record_id}", response_class=HTMLResponse)
async def registry_record(
    request: Request, db: SessionDep, visitor: PlatformAdmin, name: RegistryName,
    record_id: CatalogId,
) -> HTMLResponse:  # fmt: skip
    """One plan or organisation, to edit."""
    token = await token_of(request, db, visitor)
    return await _record_page(request, token, REGISTRIES[name], record_id)


@router.post("/platform/{name}/{record_id}")
async def registry_update(
    request: Request, db: SessionDep, visitor: PlatformForm, name: RegistryName,
    record_id: CatalogId,
) -> Response:  # fmt: skip
    """Change a plan (its keys follow at once) or rename or suspend an organisation."""
    registry = REGISTRIES[name]
    token = await token_of(request, db, visitor)
    values = _posted(registry, False, await request.form())
    try:
        await platform(request).call(
            "PATCH", f"{registry.api}/{record_id}", token=token, json=values
        )
    except ApiProblem as problem:
        if not problem.shown_on_form:
            raise
        return await _record_page(request, token, registry, record_id, values=values,
                                  problem=problem)  # fmt: skip
    return see_other(f"/admin/platform/{name}/{record_id}?saved=1")


# --- The department's catalog drafts: items, bundles, datasets (declared last: the paths are
# --- /admin/<kind>/..., after /admin/grants, /admin/cases and /admin/platform) -------------


@router.get("/{kind}", response_class=HTMLResponse)
async def definitions(request: Request, db: SessionDep, visitor: DeptAdmin, kind: Kind) -> Response:
    """The department's items, bundles or datasets: drafts, and the published ones."""
    return await _list(request, db, visitor, kind)


@router.get("/{kind}/new", response_class=HTMLResponse)
async def new_definition(request: Request, visitor: DeptAdmin, kind: Kind) -> HTMLResponse:
    """A new definition, to edit and save as a draft."""
    return _editor(request, KINDS[kind], None, _dump(KINDS[kind].new), None)


@router.post("/{kind}")
async def create_definition(
    request: Request,
    db: SessionDep,
    visitor: CsrfChecked,
    kind: Kind,
    definition: Annotated[str, Form(max_length=200_000)],
) -> Response:
    """Save a new draft (the catalog checks it whole)."""
    try:
        created = await platform(request).call(
            "POST", f"/api/catalog/v1/{kind}", token=await token_of(request, db, visitor),
            json=_parse(definition),
        )  # fmt: skip
    except ApiProblem as problem:
        if not problem.shown_on_form:
            raise
        return _editor(request, KINDS[kind], None, definition, problem)
    return see_other(f"/admin/{kind}/{created.json()['id']}?saved=1")


@router.get("/{kind}/{draft_id}", response_class=HTMLResponse)
async def definition(
    request: Request, db: SessionDep, visitor: DeptAdmin, kind: Kind, draft_id: CatalogId
) -> HTMLResponse:
    """A draft (the working copy), to edit (validated by the catalog on save) and publish."""
    found = await platform(request).get_json(
        f"/api/catalog/v1/{kind}/{draft_id}", token=await token_of(request, db, visitor)
    )
    return _editor(request, KINDS[kind], found, _dump(KINDS[kind].definition(found)), None)


@router.post("/{kind}/{draft_id}")
async def save_definition(
    request: Request,
    db: SessionDep,
    visitor: CsrfChecked,
    kind: Kind,
    draft_id: CatalogId,
    definition: Annotated[str, Form(max_length=200_000)],
) -> Response:
    """Save the draft: the catalog validates it and names every broken rule."""
    token = await token_of(request, db, visitor)
    api = platform(request)
    try:
        await api.call(
            "PATCH", f"/api/catalog/v1/{kind}/{draft_id}", token=token, json=_parse(definition)
        )
    except ApiProblem as problem:
        if not problem.shown_on_form:
            raise
        found = await api.get_json(f"/api/catalog/v1/{kind}/{draft_id}", token=token)
        return _editor(request, KINDS[kind], found, definition, problem)
    return see_other(f"/admin/{kind}/{draft_id}?saved=1")


@router.post("/{kind}/{draft_id}/publish")
async def publish_definition(
    request: Request, db: SessionDep, visitor: CsrfChecked, kind: Kind, draft_id: CatalogId
) -> Response:
    """Publish the draft as the next version."""
    token = await token_of(request, db, visitor)
    api = platform(request)
    try:
        await api.call("POST", f"/api/catalog/v1/{kind}/{draft_id}/publish", token=token)
    except ApiProblem as problem:
        if not problem.shown_on_form:
            raise
        found = await api.get_json(f"/api/catalog/v1/{kind}/{draft_id}", token=token)
        text = _dump(KINDS[kind].definition(found))
        return _editor(request, KINDS[kind], found, text, problem)
    return see_other(f"/admin/{kind}/{draft_id}?published=1")
