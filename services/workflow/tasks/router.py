"""The officer inbox: a department's tasks by deadline, claim, unclaim, decide."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from libs.common.auth import AUTH_RESPONSES, Principal, Role, require_roles
from libs.common.database import SessionDep
from libs.common.errors import InvalidInput
from libs.common.pagination import TIME_TEXT_CURSOR, Page, PageDep, encode_cursor
from services.workflow.applications import repository as applications_repository
from services.workflow.applications import views
from services.workflow.tasks import repository as tasks_repository
from services.workflow.tasks import service as tasks_service
from services.workflow.tasks.models import Task as TaskRow
from services.workflow.tasks.schemas import Task, TaskAction, TaskDetail, TaskSort, TaskState

router = APIRouter(tags=["officer inbox"], responses=AUTH_RESPONSES)
# Decisions alone: services/workflow/router.py includes it before the other routers, since
# FastAPI tries routes in order (≈ 100 µs of CPU a decision spent matching the others' paths).
decisions_router = APIRouter(tags=["officer inbox"], responses=AUTH_RESPONSES)

Officer = Annotated[Principal, Depends(require_roles(Role.OFFICER, Role.DEPT_ADMIN))]
TaskId = Annotated[str, Path(max_length=32, pattern=r"^[0-9a-f]{1,32}$")]


def _view(task: TaskRow, **extra: str | None) -> Task:
    return Task.model_validate({**{n: getattr(task, n) for n in _TASK_FIELDS}, **extra})


_TASK_FIELDS = set(Task.model_fields) - {"service_code", "service_name", "application_status"}


@decisions_router.post(
    "/tasks/{task_id}/actions",
    summary="Decide a task: one of its decisions, with a comment",
    description=(
        "Fires the template's action in the application's branch: the next steps open, a "
        "finished branch is recorded, and the application completes when every branch is "
        "approved (or is refused when one refuses). The single supplement request opens a "
        "supplement round; a second one is a 409 problem."
    ),
)
async def act(task_id: TaskId, action: TaskAction, officer: Officer, session: SessionDep) -> Task:
    task = await tasks_service.act(
        session, principal=officer, task_id=task_id, decision=action.decision,
        comment=action.comment, expected_version=action.expected_version,
    )  # fmt: skip
    return _view(task)


@router.get(
    "/tasks",
    summary="Your department's inbox for your roles, soonest deadline first",
    description=(
        "Tasks of the caller's department in the roles the caller holds (a department admin "
        "also sees officers' tasks). `state` defaults to open and claimed; `mine=true` keeps "
        "the caller's claims; `due_before` finds what is near or past its deadline."
    ),
)
async def inbox(
    officer: Officer,
    session: SessionDep,
    page: PageDep,
    state: Annotated[list[TaskState] | None, Query()] = None,
    mine: bool = False,
    item_id: Annotated[str | None, Query(max_length=32)] = None,
    application_id: Annotated[str | None, Query(max_length=32)] = None,
    due_before: datetime | None = None,
    sort: TaskSort = "due_at",
) -> Page[Task]:
    if officer.org is None:
        raise InvalidInput.for_field("org", "your token names no department", location="token")
    roles = ["officer", "dept_admin"] if officer.has_role(Role.DEPT_ADMIN) else ["officer"]
    rows = await tasks_repository.inbox(
        session, department_org_id=officer.org, roles=roles,
        states=state or ["open", "claimed"], claimed_by=officer.sub if mine else None,
        item_id=item_id, application_id=application_id, due_before=due_before,
        descending=sort == "-due_at", after=page.position(TIME_TEXT_CURSOR),
        limit=page.limit,
    )  # fmt: skip
    next_cursor = None
    if len(rows) == page.limit and rows[-1][0].due_at is not None:
        last = rows[-1][0]
        assert last.due_at is not None
        next_cursor = encode_cursor([last.due_at.isoformat(), last.id])
    return Page[Task](
        items=[
            _view(t, service_code=a.service_code, service_name=a.service_name,
                  application_status=a.status)
            for t, a in rows
        ],
        next_cursor=next_cursor,
    )  # fmt: skip


@router.get("/tasks/{task_id}", summary="One task of your department, with the application")
async def get_task(task_id: TaskId, officer: Officer, session: SessionDep) -> TaskDetail:
    task = await tasks_service.get_task(session, principal=officer, task_id=task_id)
    application = await applications_repository.get(session, application_id=task.application_id)
    assert application is not None
    materials = views.for_department(
        await applications_repository.materials(session, application_id=application.id),
        await tasks_repository.branches(session, application_id=application.id),
        task.department_org_id,
    )
    return TaskDetail(
        **_view(task, service_code=application.service_code,
                service_name=application.service_name,
                application_status=application.status).model_dump(),
        form=application.form,
        materials=[views.material(m).model_dump(mode="json") for m in materials],
    )  # fmt: skip


@router.post("/tasks/{task_id}/claim", summary="Claim an open task (409 if someone was first)")
async def claim(task_id: TaskId, officer: Officer, session: SessionDep) -> Task:
    return _view(await tasks_service.claim(session, principal=officer, task_id=task_id))


@router.post("/tasks/{task_id}/unclaim", summary="Put a claimed task back in the inbox")
async def unclaim(task_id: TaskId, officer: Officer, session: SessionDep) -> Task:
    return _view(await tasks_service.unclaim(session, principal=officer, task_id=task_id))
