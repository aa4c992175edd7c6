"""The applicant's applications (我的办件): list, one application followed live, uploads, the
supplement answer, withdrawal and the review (好差评)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Path, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, Response

from libs.common.database import SessionDep
from portal.forms import changed_values
from portal.platform import ApiProblem, relay_events
from portal.web import (
    CsrfChecked,
    SignedIn,
    directory,
    platform,
    render,
    see_other,
    token_of,
)

router = APIRouter(prefix="/me/applications", include_in_schema=False)

ApplicationId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")]
MaterialKey = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
FINISHED = {"completed", "rejected"}
RATINGS = ("overall", "speed", "attitude", "clarity", "convenience")


@router.get("", response_class=HTMLResponse)
async def my_applications(
    request: Request,
    db: SessionDep,
    visitor: SignedIn,
    cursor: Annotated[str, Query(max_length=500)] = "",
) -> HTMLResponse:
    """The signed-in person's applications, newest first."""
    params = {"limit": 50, **({"cursor": cursor} if cursor else {})}
    page = await platform(request).get_json(
        "/api/workflow/v1/applications", token=await token_of(request, db, visitor), params=params
    )
    return render(request, "applications.html", {"page": page})


async def _application(request: Request, token: str, application_id: str) -> dict[str, Any]:
    found: dict[str, Any] = await platform(request).get_json(
        f"/api/workflow/v1/applications/{application_id}", token=token
    )
    return found


@router.get("/{application_id}", response_class=HTMLResponse)
async def application_page(
    request: Request,
    db: SessionDep,
    visitor: SignedIn,
    application_id: ApplicationId,
    part: Annotated[str, Query(max_length=10)] = "",
) -> HTMLResponse:
    """One application: status, deadlines, materials (fetched or to upload), history, result."""
    token = await token_of(request, db, visitor)
    await directory(request).refresh(platform(request), token)
    template = "application_live.html" if part == "live" else "application.html"
    return await _render(request, token, application_id, template=template)


async def _render(
    request: Request,
    token: str,
    application_id: str,
    *,
    template: str = "application.html",
    problem: ApiProblem | None = None,
) -> HTMLResponse:
    application = await _application(request, token, application_id)
    return render(request, template, {
        "application": application, "directory": directory(request), "ratings": RATINGS,
        "finished": application["status"] in FINISHED, "problem": problem,
    }, status=problem.status if problem else 200)  # fmt: skip


@router.get("/{application_id}/live")
async def live(
    request: Request, db: SessionDep, visitor: SignedIn, application_id: ApplicationId
) -> Response:
    """The application's server-sent events, passed on from workflow (through the gateway)."""
    return await relay_events(
        platform(request).http, f"/api/workflow/v1/applications/{application_id}/events",
        token=await token_of(request, db, visitor),
        last_event_id=request.headers.get("Last-Event-ID"),
    )  # fmt: skip


async def _act(request: Request, path: str, token: str, **kwargs: Any) -> ApiProblem | None:
    try:
        await platform(request).call("POST", path, token=token, **kwargs)
    except ApiProblem as problem:
        if not problem.shown_on_form:
            raise
        return problem
    return None


async def _after(
    request: Request, token: str, application_id: str, problem: ApiProblem | None
) -> Response:
    if problem is None:
        return see_other(f"/me/applications/{application_id}")
    return await _render(request, token, application_id, problem=problem)


@router.post("/{application_id}/materials/{key}")
async def upload(
    request: Request,
    db: SessionDep,
    visitor: CsrfChecked,
    application_id: ApplicationId,
    key: MaterialKey,
    file: Annotated[UploadFile, File()],
) -> Response:
    """Upload one material the government does not hold."""
    token = await token_of(request, db, visitor)
    problem = await _act(
        request, f"/api/workflow/v1/applications/{application_id}/materials/{key}", token,
        content=await file.read(), params={"filename": file.filename or key},
        headers={"Content-Type": file.content_type or "application/octet-stream"},
    )  # fmt: skip
    return await _after(request, token, application_id, problem)


@router.post("/{application_id}/supplement")
async def answer_supplement(
    request: Request,
    db: SessionDep,
    visitor: CsrfChecked,
    application_id: ApplicationId,
) -> Response:
    """Answer the one supplement request: the changed fields and a comment."""
    token = await token_of(request, db, visitor)
    application = await _application(request, token, application_id)
    kind = "bundles" if application["kind"] == "bundle" else "items"
    offering_id = application["bundle_id"] or application["item_id"]
    offering = await platform(request).get_json(f"/api/catalog/v1/{kind}/{offering_id}")
    schema = offering.get("merged_form") or offering.get("form") or {}
    posted = await request.form()
    body = {
        "form": changed_values(schema, posted, application["form"]),
        "comment": str(posted.get("comment") or "")[:2000] or None,
    }
    problem = await _act(
        request, f"/api/workflow/v1/applications/{application_id}/supplement", token, json=body
    )
    return await _after(request, token, application_id, problem)


@router.post("/{application_id}/withdraw")
async def withdraw(
    request: Request,
    db: SessionDep,
    visitor: CsrfChecked,
    application_id: ApplicationId,
    reason: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    """Withdraw before a decision."""
    token = await token_of(request, db, visitor)
    problem = await _act(
        request, f"/api/workflow/v1/applications/{application_id}/withdraw", token,
        json={"reason": reason or None},
    )  # fmt: skip
    return await _after(request, token, application_id, problem)


@router.post("/{application_id}/review")
async def review(
    request: Request,
    db: SessionDep,
    visitor: CsrfChecked,
    application_id: ApplicationId,
) -> Response:
    """Review a finished application (1 very poor to 5 very good on each aspect)."""
    token = await token_of(request, db, visitor)
    posted = await request.form()
    body: dict[str, Any] = {"application_id": application_id}
    for rating in RATINGS:
        value = str(posted.get(rating) or "")
        body[rating] = int(value) if value.isdigit() else value
    comment = str(posted.get("comment") or "").strip()
    if comment:
        body["comment"] = comment
    problem = await _act(
        request, "/api/evaluation/v1/reviews", token, json=body,
        headers={"Idempotency-Key": f"portal-review-{application_id}"},
    )  # fmt: skip
    if problem is None:
        return see_other(f"/me/applications/{application_id}?reviewed=1")
    return await _after(request, token, application_id, problem)
