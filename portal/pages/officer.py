"""The officer's desk (工作台): the department inbox in deadline order, a task with its
application and fetched materials, claim and decide."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, Response

from libs.common.database import SessionDep
from portal.platform import ApiProblem, relay_events
from portal.sessions.models import PortalSession
from portal.web import CsrfChecked, directory, platform, render, require_roles, see_other, token_of

router = APIRouter(prefix="/work", include_in_schema=False)

TaskId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")]
Officer = Annotated[PortalSession, require_roles("officer", "dept_admin")]


def _overdue(task: dict[str, Any], now: datetime) -> bool:
    due = task.get("due_at")
    return bool(due) and datetime.fromisoformat(str(due).replace("Z", "+00:00")) < now


@router.get("/inbox", response_class=HTMLResponse)
async def inbox(
    request: Request,
    db: SessionDep,
    visitor: Officer,
    mine: Annotated[bool, Query()] = False,
    cursor: Annotated[str, Query(max_length=500)] = "",
    part: Annotated[str, Query(max_length=10)] = "",
) -> HTMLResponse:
    """The department's open and claimed tasks, the nearest deadline first; overdue marked.
    With JavaScript the list follows the department's stream (``/work/inbox/live``) and is
    fetched again (``?part=list``) when a task arrives or moves; without, a reload shows it."""
    params: dict[str, Any] = {"sort": "due_at", "limit": 50}
    if mine:
        params["mine"] = "true"
    if cursor:
        params["cursor"] = cursor
    token = await token_of(request, db, visitor)
    page = await platform(request).get_json("/api/workflow/v1/tasks", token=token, params=params)
    now = datetime.now(UTC)
    for task in page["items"]:
        task["overdue"] = _overdue(task, now)
    template = "inbox_list.html" if part == "list" else "inbox.html"
    return render(request, template, {"page": page, "mine": mine})


@router.get("/inbox/live")
async def inbox_live(request: Request, db: SessionDep, visitor: Officer) -> Response:
    """The department inbox's server-sent events, passed on from workflow (through the
    gateway): a task opened, claimed or decided in the department."""
    return await relay_events(
        platform(request).http, "/api/workflow/v1/inbox/events",
        token=await token_of(request, db, visitor),
        last_event_id=request.headers.get("Last-Event-ID"),
    )  # fmt: skip


async def _task_page(
    request: Request, token: str, task_id: str, problem: ApiProblem | None = None
) -> HTMLResponse:
    api = platform(request)
    await directory(request).refresh(api, token)
    task = await api.get_json(f"/api/workflow/v1/tasks/{task_id}", token=token)
    task["overdue"] = _overdue(task, datetime.now(UTC))
    return render(request, "task.html", {
        "task": task, "problem": problem, "directory": directory(request),
    }, status=problem.status if problem else 200)  # fmt: skip


@router.get("/tasks/{task_id}", response_class=HTMLResponse)
async def task_page(
    request: Request, db: SessionDep, visitor: Officer, task_id: TaskId
) -> HTMLResponse:
    """One task: the application's form, its materials (fetched with their ledger receipts),
    and the decisions open to the officer."""
    return await _task_page(request, await token_of(request, db, visitor), task_id)


async def _act(request: Request, token: str, task_id: str, path: str, body: Any) -> Response:
    try:
        await platform(request).call(
            "POST", f"/api/workflow/v1/tasks/{task_id}/{path}", token=token, json=body
        )
    except ApiProblem as problem:
        if not problem.shown_on_form:
            raise
        return await _task_page(request, token, task_id, problem)
    return see_other(f"/work/tasks/{task_id}" if path == "claim" else "/work/inbox?done=1")


@router.post("/tasks/{task_id}/claim")
async def claim(
    request: Request, db: SessionDep, visitor: CsrfChecked, task_id: TaskId
) -> Response:
    """Take an open task."""
    return await _act(request, await token_of(request, db, visitor), task_id, "claim", None)


@router.post("/tasks/{task_id}/decide")
async def decide(
    request: Request,
    db: SessionDep,
    visitor: CsrfChecked,
    task_id: TaskId,
    decision: Annotated[str, Form(max_length=64)],
    comment: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """Approve, reject, ask for the supplement (or any other step of the task) with a comment."""
    body = {"decision": decision, "comment": comment or None}
    return await _act(request, await token_of(request, db, visitor), task_id, "actions", body)
