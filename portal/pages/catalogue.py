"""The catalogue (办事指南): search items and one-thing bundles, read one, apply with its form."""

from __future__ import annotations

import secrets
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import FormData

from libs.common.database import SessionDep
from portal.forms import fields_of, values_from
from portal.platform import ApiProblem
from portal.web import (
    CsrfChecked,
    SignedIn,
    Visitor,
    directory,
    keeper,
    platform,
    render,
    see_other,
    token_of,
)

router = APIRouter(prefix="/services", include_in_schema=False)

Kind = Literal["items", "bundles"]
OfferingId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")]
PAGE_SIZE = 20


@router.get("", response_class=HTMLResponse)
async def search(
    request: Request,
    db: SessionDep,
    visitor: Visitor,
    q: Annotated[str, Query(max_length=100)] = "",
    department: Annotated[str, Query(max_length=64)] = "",
    max_visits: Annotated[str, Query(max_length=2)] = "",
    kind: Annotated[Kind, Query()] = "items",
    cursor: Annotated[str, Query(max_length=500)] = "",
) -> HTMLResponse:
    """Search published items (or bundles): words, department, at most how many visits."""
    api = platform(request)
    # A signed-in visitor's calls carry their token: the gateway counts them per person, not
    # with every anonymous visitor of the portal's address.
    token = await keeper(request).access_token(db, visitor) if visitor is not None else None
    await directory(request).refresh(api, token)
    params: dict[str, Any] = {"limit": PAGE_SIZE}
    if q.strip():
        params["q"] = q.strip()
    if department:
        params["owner_org_id"] = department
    if cursor:
        params["cursor"] = cursor
    if kind == "items" and max_visits in {"0", "1", "2"}:
        params["max_visits"] = int(max_visits)
    page = await api.get_json(f"/api/catalog/v1/{kind}", token=token, params=params)
    context = {
        "kind": kind, "q": q, "department": department, "max_visits": max_visits,
        "page": page, "directory": directory(request),
        "next_query": _next_query(request, page.get("next_cursor")),
    }  # fmt: skip
    template = "catalogue_results.html" if request.headers.get("HX-Request") else "catalogue.html"
    return render(request, template, context)


def _next_query(request: Request, cursor: str | None) -> str | None:
    if not cursor:
        return None
    params = dict(request.query_params)
    params["cursor"] = cursor
    return str(request.url.include_query_params(**params).query)


async def _offering(request: Request, kind: Kind, offering_id: str) -> dict[str, Any]:
    found: dict[str, Any] = await platform(request).get_json(
        f"/api/catalog/v1/{kind}/{offering_id}"
    )
    return found


@router.get("/{kind}/{offering_id}", response_class=HTMLResponse)
async def offering(
    request: Request, db: SessionDep, visitor: Visitor, kind: Kind, offering_id: OfferingId
) -> HTMLResponse:
    """One item or bundle: what it is, its materials (which the government fetches), time
    limits and fee."""
    found = await _offering(request, kind, offering_id)
    if visitor is not None:
        api = platform(request)
        await directory(request).refresh(api, await keeper(request).access_token(db, visitor))
    items: list[dict[str, Any]] = []
    if kind == "bundles":
        items = [await _offering(request, "items", item_id) for item_id in found["item_ids"]]
    return render(request, "offering.html", {
        "kind": kind, "offering": found, "items": items, "directory": directory(request),
    })  # fmt: skip


def _schema_of(kind: Kind, found: dict[str, Any]) -> dict[str, Any]:
    schema = found.get("merged_form") if kind == "bundles" else found.get("form")
    return dict(schema) if isinstance(schema, dict) else {"type": "object", "properties": {}}


@router.get("/{kind}/{offering_id}/apply", response_class=HTMLResponse)
async def apply_form(
    request: Request, visitor: SignedIn, kind: Kind, offering_id: OfferingId
) -> HTMLResponse:
    """The application form, rendered from the item's JSON Schema (a bundle's merged form)."""
    found = await _offering(request, kind, offering_id)
    schema = _schema_of(kind, found)
    return render(request, "apply.html", {
        "kind": kind, "offering": found, "fields": fields_of(schema, {}, {}),
        "idempotency_key": secrets.token_urlsafe(16), "problem": None,
    })  # fmt: skip


@router.post("/{kind}/{offering_id}/apply", response_class=HTMLResponse)
async def apply(
    request: Request, db: SessionDep, visitor: CsrfChecked, kind: Kind, offering_id: OfferingId
) -> Response:
    """Submit the application to workflow; field-level errors come back on the form."""
    found = await _offering(request, kind, offering_id)
    schema = _schema_of(kind, found)
    submitted: FormData = await request.form()
    form = values_from(schema, submitted)
    key = str(submitted.get("idempotency_key") or "")[:255] or secrets.token_urlsafe(16)
    target = {"bundle_id" if kind == "bundles" else "item_id": offering_id}
    try:
        created = await platform(request).call(
            "POST", "/api/workflow/v1/applications",
            token=await token_of(request, db, visitor),
            json={**target, "form": form}, headers={"Idempotency-Key": key},
        )  # fmt: skip
    except ApiProblem as problem:
        if problem.status not in {401, 403, 409, 422, 503} or (
            problem.status == 401 and "assurance" not in problem.type
        ):
            raise
        errors = problem.field_errors(("body", "form"))
        raw = {name: str(value) for name, value in submitted.items() if isinstance(value, str)}
        return render(request, "apply.html", {
            "kind": kind, "offering": found, "fields": fields_of(schema, raw, errors),
            "idempotency_key": secrets.token_urlsafe(16) if problem.status == 422 else key,
            "problem": problem, "field_errors": errors,
        }, status=problem.status)  # fmt: skip
    return see_other(f"/me/applications/{created.json()['id']}")
